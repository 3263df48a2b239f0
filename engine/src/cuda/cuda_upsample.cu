/* Nearest upsampling into the output view (often a concat slice). */
#include "cuda/cuda_upsample.h"
#include "cuda/cuda_device.cuh"
#include "upsample_index.h"

template <typename T>
__global__ void
upsample_kernel (CudaView in, CudaView out, int factor)
{
  const int64_t total = (int64_t) out.batch * out.height * out.width
                        * out.channels;

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex e = nhwc_index (i, out.channels, out.height, out.width);

    *view_at<T> (out, e.n, e.y, e.x, e.c)
        = *view_at<T> (in, e.n, ssfpn_upsample_source (e.y, factor, in.height),
                       ssfpn_upsample_source (e.x, factor, in.width), e.c);
  }
}

extern "C" cudaError_t
cuda_upsample_nearest (const CudaView *in, const CudaView *out, int factor,
                       cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (out));

  if (in->dtype != out->dtype || factor < 1)
    return cudaErrorInvalidValue;
  if (out->dtype == CUDA_DTYPE_F16)
    upsample_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, factor);
  else
    upsample_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, factor);
  return cudaGetLastError ();
}
