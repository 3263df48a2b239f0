/* The source row or column of nearest upsampling by an integer factor, as
 * PyTorch's nearest_idx computes it, for the CPU kernel, the CUDA kernel
 * and the tests alike: in float, from the float 1 / factor, which for
 * factors such as 41 puts output index 41 on input 0 (41 x 0.024390243 is
 * 0.99999994), not on input 1. */
#ifndef SSFPN_UPSAMPLE_INDEX_H
#define SSFPN_UPSAMPLE_INDEX_H

#include <math.h>

#ifdef __CUDACC__
#define SSFPN_HOST_DEVICE __host__ __device__
#else
#define SSFPN_HOST_DEVICE
#endif

static inline SSFPN_HOST_DEVICE int
ssfpn_upsample_source (int dst, int factor, int in_size)
{
  if (factor == 1)
    return dst;
  if (factor == 2)
    return dst >> 1;
  int src = (int) floorf ((float) dst * (float) (1.0 / factor));
  return src < in_size - 1 ? src : in_size - 1;
}

#endif /* SSFPN_UPSAMPLE_INDEX_H */
