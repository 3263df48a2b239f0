/* The post-operations of SSFPN_OP_CONV2D that cuDNN's fused graph could not
 * take for a layer: y = act(x + bias) * scale + shift[c] + residual
 * + previous output, from the convolution's raw result in a dense buffer. */
#ifndef SSFPN_CUDA_EPILOGUE_H
#define SSFPN_CUDA_EPILOGUE_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUDA_ACT_NONE,
  CUDA_ACT_SILU,
  CUDA_ACT_LEAKY_RELU,
  CUDA_ACT_RELU,
  CUDA_ACT_HARDSWISH,
  CUDA_ACT_SIGMOID,
} CudaActivation;

typedef struct {
  const void *bias;     /* (channels) in the plan's precision */
  const void *shift;    /* (channels) or NULL */
  CudaActivation act;
  float act_alpha;
  float scale;
  int accumulate;       /* add the output's previous content */
} CudaEpilogue;

/* @conv: dense NHWC (out->batch, out->height, out->width, out->channels) in
 * out->dtype; @residual: a view of the output's shape, or NULL. */
cudaError_t cuda_conv_epilogue (const void *conv, const CudaView *residual,
                                const CudaView *out,
                                const CudaEpilogue *epilogue,
                                cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
