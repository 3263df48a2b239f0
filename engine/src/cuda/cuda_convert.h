/* Conversion of float32 data already on the GPU into a plan's precision
 * (weights and constants are uploaded as float32 and converted there). */
#ifndef SSFPN_CUDA_CONVERT_H
#define SSFPN_CUDA_CONVERT_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* @dst[i] = @src[i] for @n elements, stored as @dtype. */
cudaError_t cuda_convert_from_float (const float *src, void *dst,
                                     CudaDtype dtype, int64_t n,
                                     cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
