/* One frame into one batch item of the network input; see
 * cuda_letterbox.h. One thread per network-input pixel writes its three
 * channels. Sampling taps are recomputed per thread in double, exactly as
 * frame.c's tables are built, which costs less than reading tables. The
 * _rn intrinsics keep nvcc from fusing multiply-adds, which would change
 * the last bit against the CPU. */
#include "cuda/cuda_letterbox.h"
#include "cuda/cuda_device.cuh"

#define PAD_VALUE (114.0f / 255.0f)

struct Tap {
  int i0, i1;
  float w1;
};

/* OpenCV INTER_LINEAR tap of output sample @d, frame.c's fill_taps(). */
__device__ __forceinline__ Tap
linear_tap (int d, int src_size, int dst_size)
{
  double ratio = __ddiv_rn ((double) src_size, (double) dst_size);
  double position = __dsub_rn (__dmul_rn (__dadd_rn ((double) d, 0.5), ratio),
                               0.5);
  int i0 = (int) floor (position);
  double w1 = __dsub_rn (position, (double) i0);
  Tap tap;

  if (i0 < 0) {
    i0 = 0;
    w1 = 0.0;
  }
  if (i0 >= src_size - 1) {
    i0 = src_size - 1;
    w1 = 0.0;
  }
  tap.i0 = i0;
  tap.i1 = min (i0 + 1, src_size - 1);
  tap.w1 = __double2float_rn (w1);
  return tap;
}

__device__ __forceinline__ float
blend (float wx0, float wx1, float wy0, float wy1, float p00, float p01,
       float p10, float p11)
{
  float top = __fadd_rn (__fmul_rn (wx0, p00), __fmul_rn (wx1, p01));
  float bottom = __fadd_rn (__fmul_rn (wx0, p10), __fmul_rn (wx1, p11));

  return __fadd_rn (__fmul_rn (wy0, top), __fmul_rn (wy1, bottom));
}

__device__ __forceinline__ float
clamp_255 (float value)
{
  return value < 0.0f ? 0.0f : value > 255.0f ? 255.0f : value;
}

__device__ __forceinline__ void
yuv_to_rgb (const CudaFrameDesc &f, int y, int u, int v, float rgb[3])
{
  float luma = __fmul_rn ((float) y - f.y_offset, f.y_scale);
  float cb = __fmul_rn ((float) (u - 128), f.c_scale);
  float cr = __fmul_rn ((float) (v - 128), f.c_scale);

  rgb[0] = clamp_255 (__fadd_rn (luma, __fmul_rn (f.r_cr, cr)));
  rgb[1] = clamp_255 (__fsub_rn (__fsub_rn (luma, __fmul_rn (f.g_cb, cb)),
                                 __fmul_rn (f.g_cr, cr)));
  rgb[2] = clamp_255 (__fadd_rn (luma, __fmul_rn (f.b_cb, cb)));
}

/* The four source pixels of a packed frame, channel by channel. */
__device__ __forceinline__ void
sample_packed (const CudaFrameDesc &f, Tap row, Tap column, float out[3])
{
  const int bytes = f.format == CUDA_FRAME_RGB || f.format == CUDA_FRAME_BGR
                    ? 3 : 4;
  const bool bgr = f.format == CUDA_FRAME_BGR || f.format == CUDA_FRAME_BGRA
                   || f.format == CUDA_FRAME_BGRX;
  const uint8_t *r0 = f.planes[0] + (int64_t) row.i0 * f.strides[0];
  const uint8_t *r1 = f.planes[0] + (int64_t) row.i1 * f.strides[0];
  const uint8_t *p00 = r0 + column.i0 * bytes, *p01 = r0 + column.i1 * bytes;
  const uint8_t *p10 = r1 + column.i0 * bytes, *p11 = r1 + column.i1 * bytes;
  float wx1 = column.w1, wx0 = 1.0f - wx1, wy1 = row.w1, wy0 = 1.0f - wy1;

  for (int c = 0; c < 3; c++) {
    int o = bgr ? 2 - c : c;
    out[c] = blend (wx0, wx1, wy0, wy1, p00[o], p01[o], p10[o], p11[o]);
  }
}

/* The four source pixels of a YUV frame, each converted to RGB (nearest
 * chroma) before blending. */
__device__ __forceinline__ void
sample_yuv (const CudaFrameDesc &f, Tap row, Tap column, float out[3])
{
  const bool nv12 = f.format == CUDA_FRAME_NV12;
  const int step = nv12 ? 2 : 1;
  const int rows[2] = { row.i0, row.i1 };
  const int columns[2] = { column.i0, column.i1 };
  float rgb[2][2][3];
  float wx1 = column.w1, wx0 = 1.0f - wx1, wy1 = row.w1, wy0 = 1.0f - wy1;

  for (int j = 0; j < 2; j++) {
    const uint8_t *luma = f.planes[0] + (int64_t) rows[j] * f.strides[0];
    const uint8_t *u = f.planes[1] + (int64_t) (rows[j] / 2) * f.strides[1];
    const uint8_t *v = nv12 ? u + 1
        : f.planes[2] + (int64_t) (rows[j] / 2) * f.strides[2];

    for (int i = 0; i < 2; i++) {
      int x = columns[i], c = (x / 2) * step;
      yuv_to_rgb (f, luma[x], u[c], v[c], rgb[j][i]);
    }
  }
  for (int c = 0; c < 3; c++)
    out[c] = blend (wx0, wx1, wy0, wy1, rgb[0][0][c], rgb[0][1][c],
                    rgb[1][0][c], rgb[1][1][c]);
}

template <typename T>
__global__ void
letterbox_kernel (CudaFrameDesc f, CudaView dst, int slot)
{
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int rx = x - f.left, ry = y - f.top;
  float rgb[3] = { PAD_VALUE, PAD_VALUE, PAD_VALUE };

  if (x >= dst.width || y >= dst.height)
    return;
  if (rx >= 0 && rx < f.resized_width && ry >= 0 && ry < f.resized_height) {
    Tap column = linear_tap (rx, f.width, f.resized_width);
    Tap row = linear_tap (ry, f.height, f.resized_height);

    if (f.format == CUDA_FRAME_NV12 || f.format == CUDA_FRAME_I420)
      sample_yuv (f, row, column, rgb);
    else
      sample_packed (f, row, column, rgb);
    for (int c = 0; c < 3; c++)
      rgb[c] = __fdiv_rn (rgb[c], 255.0f);
  }
  for (int c = 0; c < 3; c++)
    store_float (view_at<T> (dst, slot, y, x, c), rgb[c]);
}

extern "C" cudaError_t
cuda_letterbox_frame (const CudaFrameDesc *frame, const CudaView *input,
                      int slot, cudaStream_t stream)
{
  dim3 block (32, 8);
  dim3 grid ((input->width + block.x - 1) / block.x,
             (input->height + block.y - 1) / block.y);

  if (input->channels != 3 || slot < 0 || slot >= input->batch)
    return cudaErrorInvalidValue;
  if (input->dtype == CUDA_DTYPE_F16)
    letterbox_kernel<__half><<<grid, block, 0, stream>>> (*frame, *input,
                                                          slot);
  else
    letterbox_kernel<float><<<grid, block, 0, stream>>> (*frame, *input, slot);
  return cudaGetLastError ();
}
