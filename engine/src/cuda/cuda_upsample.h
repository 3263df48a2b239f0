/* SSFPN_OP_UPSAMPLE_NEAREST: nearest-neighbour upsampling by an integer
 * factor, written straight into the output view (a concat slice). */
#ifndef SSFPN_CUDA_UPSAMPLE_H
#define SSFPN_CUDA_UPSAMPLE_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t cuda_upsample_nearest (const CudaView *in, const CudaView *out,
                                   int factor, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
