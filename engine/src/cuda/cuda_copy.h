/* SSFPN_OP_COPY, and the gather of a convolution's input slice into a dense
 * buffer: a channel-for-channel copy between views of one shape. */
#ifndef SSFPN_CUDA_COPY_H
#define SSFPN_CUDA_COPY_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t cuda_copy_channels (const CudaView *in, const CudaView *out,
                                cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
