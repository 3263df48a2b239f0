/* Channel copy between two views of one shape. */
#include "cuda/cuda_copy.h"
#include "cuda/cuda_device.cuh"

template <typename T>
__global__ void
copy_kernel (CudaView in, CudaView out)
{
  const int64_t total = (int64_t) out.batch * out.height * out.width
                        * out.channels;

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex e = nhwc_index (i, out.channels, out.height, out.width);

    *view_at<T> (out, e.n, e.y, e.x, e.c) = *view_at<T> (in, e.n, e.y, e.x, e.c);
  }
}

extern "C" cudaError_t
cuda_copy_channels (const CudaView *in, const CudaView *out,
                    cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (out));

  if (in->dtype != out->dtype || in->channels != out->channels
      || in->height != out->height || in->width != out->width)
    return cudaErrorInvalidValue;
  if (out->dtype == CUDA_DTYPE_F16)
    copy_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (*in, *out);
  else
    copy_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (*in, *out);
  return cudaGetLastError ();
}
