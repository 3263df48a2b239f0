/* The float32 NCHW input batch into the input tensor's NHWC buffer. */
#include "cuda/cuda_input.h"
#include "cuda/cuda_device.cuh"

template <typename T>
__global__ void
input_kernel (const float *src, CudaView dst)
{
  const int64_t total = (int64_t) dst.batch * dst.height * dst.width
                        * dst.channels;
  const int64_t plane = (int64_t) dst.height * dst.width;

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex e = nhwc_index (i, dst.channels, dst.height, dst.width);
    float v = src[((int64_t) e.n * dst.channels + e.c) * plane
                  + (int64_t) e.y * dst.width + e.x];

    store_float (view_at<T> (dst, e.n, e.y, e.x, e.c), v);
  }
}

extern "C" cudaError_t
cuda_input_from_nchw (const float *src, const CudaView *dst,
                      cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (dst));

  if (dst->dtype == CUDA_DTYPE_F16)
    input_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (src, *dst);
  else
    input_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (src, *dst);
  return cudaGetLastError ();
}
