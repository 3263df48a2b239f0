/* SSFPN_OP_MAXPOOL: max pooling; padding counts as -inf, as in PyTorch. */
#ifndef SSFPN_CUDA_MAXPOOL_H
#define SSFPN_CUDA_MAXPOOL_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t cuda_maxpool (const CudaView *in, const CudaView *out, int kernel,
                          int stride, int pad, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
