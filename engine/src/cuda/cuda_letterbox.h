/* Frame pre-processing on the GPU: one frame, already copied to device
 * memory, letterboxed into one batch item of the network input (NHWC, the
 * plan's precision), with the colour conversion and the division by 255 in
 * the same kernel. The arithmetic is that of ssfpn-frame.h step by step,
 * with contraction into fused multiply-adds ruled out, so the result is the
 * CPU's bit for bit before the conversion to the plan's precision. */
#ifndef SSFPN_CUDA_LETTERBOX_H
#define SSFPN_CUDA_LETTERBOX_H

#include "cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The values of SsfpnFrameFormat, repeated so that nvcc need not see the
 * GLib headers; cuda_frames.c checks that they agree. */
typedef enum {
  CUDA_FRAME_RGB, CUDA_FRAME_BGR, CUDA_FRAME_RGBA, CUDA_FRAME_BGRA,
  CUDA_FRAME_RGBX, CUDA_FRAME_BGRX, CUDA_FRAME_NV12, CUDA_FRAME_I420,
} CudaFrameFormat;

typedef struct {
  CudaFrameFormat format;
  int width, height;
  const uint8_t *planes[3]; /* device */
  int strides[3];           /* bytes per row */
  /* Letterbox placement, as SsfpnLetterboxTransform. */
  int resized_width, resized_height, left, top;
  /* YUV to RGB in 8-bit units (frame.c's coefficients, computed in double
   * and rounded to float exactly as there). */
  float y_offset, y_scale, c_scale, r_cr, g_cb, g_cr, b_cb;
} CudaFrameDesc;

/* Writes batch item @slot of @input (3 channels). */
cudaError_t cuda_letterbox_frame (const CudaFrameDesc *frame,
                                  const CudaView *input, int slot,
                                  cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* SSFPN_CUDA_LETTERBOX_H */
