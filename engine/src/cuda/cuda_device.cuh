/* Device-side helpers shared by the kernels (C++ only): element access of
 * a CudaView in either precision, and launch sizes. */
#ifndef SSFPN_CUDA_DEVICE_CUH
#define SSFPN_CUDA_DEVICE_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/cuda_view.h"

#define CUDA_BLOCK_THREADS 256

__device__ __forceinline__ float load_float (const float *p) { return *p; }
__device__ __forceinline__ float load_float (const __half *p) { return __half2float (*p); }
__device__ __forceinline__ void store_float (float *p, float v) { *p = v; }
__device__ __forceinline__ void store_float (__half *p, float v) { *p = __float2half_rn (v); }

/* Pointer to element (n, y, x, c) of @v. */
template <typename T>
__device__ __forceinline__ T *
view_at (const CudaView &v, int n, int y, int x, int c)
{
  return static_cast<T *> (v.data) + n * v.item_stride
         + ((int64_t) y * v.width + x) * v.pixel_stride + c;
}

/* Splits a flat index over (n, y, x, c), channels fastest, so neighbouring
 * threads touch neighbouring channels: coalesced in NHWC. */
struct NhwcIndex {
  int n, y, x, c;
};

__device__ __forceinline__ NhwcIndex
nhwc_index (int64_t i, int channels, int height, int width)
{
  NhwcIndex r;
  r.c = (int) (i % channels);
  i /= channels;
  r.x = (int) (i % width);
  i /= width;
  r.y = (int) (i % height);
  r.n = (int) (i / height);
  return r;
}

/* Blocks for a grid-stride loop over @total elements. */
static inline unsigned
cuda_grid_blocks (int64_t total)
{
  int64_t blocks = (total + CUDA_BLOCK_THREADS - 1) / CUDA_BLOCK_THREADS;

  if (blocks < 1)
    blocks = 1;
  return (unsigned) (blocks < 65536 * 8 ? blocks : 65536 * 8);
}

#define GRID_STRIDE_LOOP(i, total)                                         \
  for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;        \
       i < (total); i += (int64_t) blockDim.x * gridDim.x)

static inline int64_t
view_elements (const CudaView *v)
{
  return (int64_t) v->batch * v->height * v->width * v->channels;
}

#endif /* SSFPN_CUDA_DEVICE_CUH */
