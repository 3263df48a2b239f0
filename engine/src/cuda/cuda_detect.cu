/* Detect decode of one level into its rows of the float32 output. One
 * thread per output value, values of a row on neighbouring threads: both
 * the NHWC read (channel a * (5 + nc) + k) and the row write are
 * coalesced. */
#include "cuda/cuda_detect.h"
#include "cuda/cuda_device.cuh"

template <typename T>
__global__ void
detect_kernel (CudaView in, CudaDetectLevel level, float *output)
{
  const int columns = level.nc + 5;
  const int ny = in.height, nx = in.width;
  const int64_t total = (int64_t) in.batch * level.na * ny * nx * columns;
  const float stride = (float) level.stride;

  GRID_STRIDE_LOOP (i, total) {
    int64_t rest = i;
    int k = (int) (rest % columns);
    rest /= columns;
    int x = (int) (rest % nx);
    rest /= nx;
    int y = (int) (rest % ny);
    rest /= ny;
    int a = (int) (rest % level.na);
    int n = (int) (rest / level.na);
    float v = load_float (view_at<T> (in, n, y, x, a * columns + k));
    int64_t row = level.row_offset + ((int64_t) a * ny + y) * nx + x;
    float out;

    switch (k) {
      case 0:
        out = (v * 2.0f - 0.5f + (float) x) * stride;
        break;
      case 1:
        out = (v * 2.0f - 0.5f + (float) y) * stride;
        break;
      case 2:
        out = (v * 2.0f) * (v * 2.0f) * level.anchors[2 * a];
        break;
      case 3:
        out = (v * 2.0f) * (v * 2.0f) * level.anchors[2 * a + 1];
        break;
      default:
        out = v;
        break;
    }
    output[((int64_t) n * level.rows + row) * columns + k] = out;
  }
}

extern "C" cudaError_t
cuda_detect_decode (const CudaView *in, const CudaDetectLevel *level,
                    float *output, cudaStream_t stream)
{
  int64_t total = (int64_t) in->batch * level->na * in->height * in->width
                  * (level->nc + 5);
  unsigned blocks = cuda_grid_blocks (total);

  if (level->na < 1 || level->na > CUDA_DETECT_MAX_ANCHORS
      || in->channels != level->na * (level->nc + 5))
    return cudaErrorInvalidValue;
  if (in->dtype == CUDA_DTYPE_F16)
    detect_kernel<__half><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *level, output);
  else
    detect_kernel<float><<<blocks, CUDA_BLOCK_THREADS, 0, stream>>> (
        *in, *level, output);
  return cudaGetLastError ();
}
