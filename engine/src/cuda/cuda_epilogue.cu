/* Convolution post-operations in the order graph.h defines them, computed
 * in float: act(x + bias) * scale + shift[c] + residual + previous. */
#include "cuda/cuda_epilogue.h"
#include "cuda/cuda_device.cuh"

__device__ __forceinline__ float
activate (float x, CudaActivation act, float alpha)
{
  switch (act) {
    case CUDA_ACT_SILU:
      return x / (1.0f + expf (-x));
    case CUDA_ACT_LEAKY_RELU:
      return x > 0.0f ? x : alpha * x;
    case CUDA_ACT_RELU:
      return fmaxf (x, 0.0f);
    case CUDA_ACT_HARDSWISH:
      return x * fminf (fmaxf (x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case CUDA_ACT_SIGMOID:
      return 1.0f / (1.0f + expf (-x));
    case CUDA_ACT_NONE:
    default:
      return x;
  }
}

template <typename T>
__global__ void
epilogue_kernel (const T *conv, CudaView residual, bool has_residual,
                 CudaView out, CudaEpilogue e)
{
  const int64_t total = (int64_t) out.batch * out.height * out.width
                        * out.channels;
  const T *bias = static_cast<const T *> (e.bias);
  const T *shift = static_cast<const T *> (e.shift);

  GRID_STRIDE_LOOP (i, total) {
    NhwcIndex p = nhwc_index (i, out.channels, out.height, out.width);
    T *dst = view_at<T> (out, p.n, p.y, p.x, p.c);
    /* conv is dense NHWC of the output's shape: element i. */
    float y = activate (load_float (conv + i) + load_float (bias + p.c),
                        e.act, e.act_alpha) * e.scale;

    if (shift != NULL)
      y += load_float (shift + p.c);
    if (has_residual)
      y += load_float (view_at<T> (residual, p.n, p.y, p.x, p.c));
    if (e.accumulate)
      y += load_float (dst);
    store_float (dst, y);
  }
}

extern "C" cudaError_t
cuda_conv_epilogue (const void *conv, const CudaView *residual,
                    const CudaView *out, const CudaEpilogue *epilogue,
                    cudaStream_t stream)
{
  unsigned blocks = cuda_grid_blocks (view_elements (out));
  CudaView no_residual = *out;
  const CudaView *r = residual != NULL ? residual : &no_residual;

  if (residual != NULL && residual->dtype != out->dtype)
    return cudaErrorInvalidValue;
  if (out->dtype == CUDA_DTYPE_F16)
    epilogue_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        static_cast<const __half *> (conv), *r, residual != NULL, *out,
        *epilogue);
  else
    epilogue_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        static_cast<const float *> (conv), *r, residual != NULL, *out,
        *epilogue);
  return cudaGetLastError ();
}
