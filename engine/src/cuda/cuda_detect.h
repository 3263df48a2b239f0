/* SSFPN_OP_DETECT: decodes one Detect level (sigmoid already applied by
 * the 1x1 convolution) into its rows of the float32 network output. */
#ifndef SSFPN_CUDA_DETECT_H
#define SSFPN_CUDA_DETECT_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int stride, na, nc;
  int row_offset;       /* first row of this level in an item's output */
  int rows;             /* rows of an item's whole output */
  float anchors[2 * 16]; /* (na, 2) in pixels; na <= 16 */
} CudaDetectLevel;

#define CUDA_DETECT_MAX_ANCHORS 16

/* @output: device float32 (in->batch, level->rows, 5 + nc). */
cudaError_t cuda_detect_decode (const CudaView *in,
                                const CudaDetectLevel *level, float *output,
                                cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
