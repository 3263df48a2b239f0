/* A tensor on the GPU as the CUDA kernels see it.
 *
 * Every buffer of the CUDA backend is NHWC: element (n, c, y, x) of a view
 * lives at data + n * item_stride + (y * width + x) * pixel_stride + c. A
 * view is a channel slice of a root buffer (data already points at its
 * first channel; pixel_stride is the root's channel count), so concats are
 * written in place. Plain C, shared by the .c files and the .cu kernels.
 */
#ifndef SSFPN_CUDA_VIEW_H
#define SSFPN_CUDA_VIEW_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUDA_DTYPE_F32 = 0,
  CUDA_DTYPE_F16 = 1,
} CudaDtype;

typedef struct {
  void *data;           /* element (item 0, pixel 0, channel 0) of the view */
  CudaDtype dtype;
  int batch, channels, height, width;
  int64_t item_stride;  /* elements from one batch item to the next */
  int pixel_stride;     /* elements from one pixel to the next */
} CudaView;

static inline size_t
cuda_dtype_size (CudaDtype dtype)
{
  return dtype == CUDA_DTYPE_F16 ? 2 : 4;
}

#ifdef __cplusplus
}
#endif

#endif /* SSFPN_CUDA_VIEW_H */
