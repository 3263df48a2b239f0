/* float32 on the GPU into the plan's precision. */
#include "cuda/cuda_convert.h"
#include "cuda/cuda_device.cuh"

template <typename T>
__global__ void
convert_kernel (const float *src, T *dst, int64_t n)
{
  GRID_STRIDE_LOOP (i, n)
    store_float (dst + i, src[i]);
}

extern "C" cudaError_t
cuda_convert_from_float (const float *src, void *dst, CudaDtype dtype,
                         int64_t n, cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (n);

  if (n <= 0)
    return cudaSuccess;
  if (dtype == CUDA_DTYPE_F16)
    convert_kernel<<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        src, static_cast<__half *> (dst), n);
  else
    convert_kernel<<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        src, static_cast<float *> (dst), n);
  return cudaGetLastError ();
}
