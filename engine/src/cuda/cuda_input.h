/* The network input: the float32 NCHW batch, copied to the GPU as it is,
 * into the input tensor's NHWC buffer in the plan's precision. */
#ifndef SSFPN_CUDA_INPUT_H
#define SSFPN_CUDA_INPUT_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* @src: device float32 (dst->batch, dst->channels, dst->height,
 * dst->width). */
cudaError_t cuda_input_from_nchw (const float *src, const CudaView *dst,
                                  cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
