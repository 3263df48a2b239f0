/* SSFPN_OP_SPACE_TO_DEPTH and SSFPN_OP_CONTRACT: the two channel orders of
 * moving 2x2 (gain x gain) pixel blocks into channels. */
#ifndef SSFPN_CUDA_REORDER_H
#define SSFPN_CUDA_REORDER_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Focus order: channel block k takes the pixel at (row, column) offset
 * (0,0), (1,0), (0,1), (1,1) for k = 0..3. */
cudaError_t cuda_space_to_depth (const CudaView *in, const CudaView *out,
                                 cudaStream_t stream);
/* YOLOv5 Contract: out channel (sy * gain + sx) * C + c. */
cudaError_t cuda_contract (const CudaView *in, const CudaView *out, int gain,
                           cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
