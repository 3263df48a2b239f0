/* Max pooling; a window clipped to the image is the same as -inf padding. */
#include "cuda/cuda_maxpool.h"
#include "cuda/cuda_device.cuh"

template <typename T>
__global__ void
maxpool_kernel (CudaView in, CudaView out, int kernel, int stride, int pad)
{
  const int64_t total = (int64_t) out.batch * out.height * out.width
                        * out.channels;

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex e = nhwc_index (i, out.channels, out.height, out.width);
    int y0 = max (e.y * stride - pad, 0);
    int y1 = min (e.y * stride - pad + kernel, in.height);
    int x0 = max (e.x * stride - pad, 0);
    int x1 = min (e.x * stride - pad + kernel, in.width);
    float best = -INFINITY;

    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++)
        best = fmaxf (best, load_float (view_at<T> (in, e.n, y, x, e.c)));
    store_float (view_at<T> (out, e.n, e.y, e.x, e.c), best);
  }
}

extern "C" cudaError_t
cuda_maxpool (const CudaView *in, const CudaView *out, int kernel, int stride,
              int pad, cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (out));

  if (in->dtype != out->dtype || kernel < 1 || stride < 1 || pad < 0)
    return cudaErrorInvalidValue;
  if (out->dtype == CUDA_DTYPE_F16)
    maxpool_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, kernel, stride, pad);
  else
    maxpool_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, kernel, stride, pad);
  return cudaGetLastError ();
}
