/* Space-to-depth (Focus order) and Contract: out channel oc is input
 * channel oc % C sampled on the sub-grid of block k = oc / C. */
#include "cuda/cuda_reorder.h"
#include "cuda/cuda_device.cuh"

/* @focus_order: block k takes offset (k % 2, k / 2) as (dy, dx), as Focus
 * concatenates x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2];
 * otherwise Contract's (k / gain, k % gain). */
template <typename T>
__global__ void
reorder_kernel (CudaView in, CudaView out, int gain, bool focus_order)
{
  const int64_t total = (int64_t) out.batch * out.height * out.width
                        * out.channels;

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex e = nhwc_index (i, out.channels, out.height, out.width);
    int k = e.c / in.channels, c = e.c % in.channels;
    int dy = focus_order ? k % 2 : k / gain;
    int dx = focus_order ? k / 2 : k % gain;

    *view_at<T> (out, e.n, e.y, e.x, e.c)
        = *view_at<T> (in, e.n, gain * e.y + dy, gain * e.x + dx, c);
  }
}

static cudaError_t
launch_reorder (const CudaView *in, const CudaView *out, int gain,
                bool focus_order, cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (out));

  if (in->dtype != out->dtype || gain < 1
      || out->channels != gain * gain * in->channels)
    return cudaErrorInvalidValue;
  if (out->dtype == CUDA_DTYPE_F16)
    reorder_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, gain, focus_order);
  else
    reorder_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *out, gain, focus_order);
  return cudaGetLastError ();
}

extern "C" cudaError_t
cuda_space_to_depth (const CudaView *in, const CudaView *out,
                     cudaStream_t stream)
{
  return launch_reorder (in, out, 2, true, stream);
}

extern "C" cudaError_t
cuda_contract (const CudaView *in, const CudaView *out, int gain,
               cudaStream_t stream)
{
  return launch_reorder (in, out, gain, false, stream);
}
