/* The CPU backend's kernels for every op but the convolution: simple loops
 * over channel planes, parallel over channels when the work is large enough
 * to pay for waking the threads. */
#include "buildconfig.h"

#include "cpu/cpu_kernels.h"
#include "upsample_index.h"

#include <math.h>
#include <string.h>

/* Below this many output elements a kernel runs on the calling thread. */
#define PARALLEL_MIN_ELEMENTS 32768

gsize
cpu_root_item_floats (int channels, int height, int width, int block)
{
  gsize padded = ((gsize) channels + block - 1) / block * block;

  return padded * height * width;
}

static inline gboolean
worth_parallel (const CpuTensorView *out)
{
  return (gsize) out->channels * out->height * out->width
         >= PARALLEL_MIN_ELEMENTS;
}

void
cpu_upsample_nearest (const CpuTensorView *in, const CpuTensorView *out,
                      int item, int factor)
{
  const int is = in->block, os = out->block;

#pragma omp parallel for schedule(static) if (worth_parallel (out))
  for (int c = 0; c < out->channels; c++) {
    const float *src = cpu_view_channel (in, item, c);
    float *dst = cpu_view_channel (out, item, c);

    for (int y = 0; y < out->height; y++) {
      const int sy = ssfpn_upsample_source (y, factor, in->height);
      const float *src_row = src + (gsize) sy * in->width * is;
      float *dst_row = dst + (gsize) y * out->width * os;

      for (int x = 0; x < out->width; x++)
        dst_row[(gsize) x * os] =
            src_row[(gsize) ssfpn_upsample_source (x, factor, in->width) * is];
    }
  }
}

void
cpu_maxpool (const CpuTensorView *in, const CpuTensorView *out, int item,
             int kernel, int stride, int pad)
{
  const int is = in->block, os = out->block;

#pragma omp parallel for schedule(static) if (worth_parallel (out))
  for (int c = 0; c < out->channels; c++) {
    const float *src = cpu_view_channel (in, item, c);
    float *dst = cpu_view_channel (out, item, c);

    for (int oy = 0; oy < out->height; oy++) {
      /* Clipping the window to the image is the same as -inf padding. */
      int y0 = MAX (oy * stride - pad, 0);
      int y1 = MIN (oy * stride - pad + kernel, in->height);

      for (int ox = 0; ox < out->width; ox++) {
        int x0 = MAX (ox * stride - pad, 0);
        int x1 = MIN (ox * stride - pad + kernel, in->width);
        float best = -INFINITY;

        for (int y = y0; y < y1; y++) {
          const float *row = src + (gsize) y * in->width * is;

          for (int x = x0; x < x1; x++)
            best = MAX (best, row[(gsize) x * is]);
        }
        dst[((gsize) oy * out->width + ox) * os] = best;
      }
    }
  }
}

/* out channel @out_c is input channel @in_c sampled at (gain * y + dy,
 * gain * x + dx). */
static void
gather_subgrid (const CpuTensorView *in, const CpuTensorView *out, int item,
                int in_c, int out_c, int gain, int dy, int dx)
{
  const float *src = cpu_view_channel (in, item, in_c);
  float *dst = cpu_view_channel (out, item, out_c);
  const int is = in->block, os = out->block;

  for (int y = 0; y < out->height; y++) {
    const float *src_row = src + ((gsize) (gain * y + dy) * in->width + dx) * is;
    float *dst_row = dst + (gsize) y * out->width * os;

    for (int x = 0; x < out->width; x++)
      dst_row[(gsize) x * os] = src_row[(gsize) gain * x * is];
  }
}

void
cpu_space_to_depth (const CpuTensorView *in, const CpuTensorView *out,
                    int item)
{
  /* Offsets of channel blocks 0..3, as YOLOv5's Focus concatenates them:
   * x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2]. */
  static const int row_offset[4] = { 0, 1, 0, 1 };
  static const int col_offset[4] = { 0, 0, 1, 1 };
  const int c_in = in->channels;

#pragma omp parallel for schedule(static) if (worth_parallel (out))
  for (int oc = 0; oc < out->channels; oc++) {
    int k = oc / c_in;

    gather_subgrid (in, out, item, oc % c_in, oc, 2, row_offset[k],
                    col_offset[k]);
  }
}

void
cpu_contract (const CpuTensorView *in, const CpuTensorView *out, int item,
              int gain)
{
  const int c_in = in->channels;

#pragma omp parallel for schedule(static) if (worth_parallel (out))
  for (int oc = 0; oc < out->channels; oc++) {
    int k = oc / c_in; /* sy * gain + sx */

    gather_subgrid (in, out, item, oc % c_in, oc, gain, k / gain, k % gain);
  }
}

void
cpu_copy_channels (const CpuTensorView *in, const CpuTensorView *out,
                   int item)
{
  const int is = in->block, os = out->block;
  const gsize plane = (gsize) out->height * out->width;

#pragma omp parallel for schedule(static) if (worth_parallel (out))
  for (int c = 0; c < out->channels; c++) {
    const float *src = cpu_view_channel (in, item, c);
    float *dst = cpu_view_channel (out, item, c);

    if (is == 1 && os == 1) {
      memcpy (dst, src, plane * sizeof (float));
    } else {
      for (gsize p = 0; p < plane; p++)
        dst[p * os] = src[p * is];
    }
  }
}

void
cpu_detect_decode (const CpuTensorView *in, int item,
                   const SsfpnDetectParams *params, int row_offset,
                   float *output)
{
  const int na = params->na, columns = params->nc + 5;
  const int ny = in->height, nx = in->width, is = in->block;
  const float stride = (float) params->stride;

#pragma omp parallel for schedule(static) if (worth_parallel (in))
  for (int ay = 0; ay < na * ny; ay++) {
    int a = ay / ny, y = ay % ny;
    float anchor_w = params->anchors[2 * a];
    float anchor_h = params->anchors[2 * a + 1];
    float *rows = output + ((gsize) row_offset + (gsize) ay * nx) * columns;

    for (int k = 0; k < columns; k++) {
      const float *src = cpu_view_channel (in, item, a * columns + k)
                         + (gsize) y * nx * is;

      for (int x = 0; x < nx; x++) {
        float v = src[(gsize) x * is];
        float *out = rows + (gsize) x * columns + k;

        switch (k) {
          case 0:
            *out = (v * 2.0f - 0.5f + (float) x) * stride;
            break;
          case 1:
            *out = (v * 2.0f - 0.5f + (float) y) * stride;
            break;
          case 2:
            *out = (v * 2.0f) * (v * 2.0f) * anchor_w;
            break;
          case 3:
            *out = (v * 2.0f) * (v * 2.0f) * anchor_h;
            break;
          default:
            *out = v;
            break;
        }
      }
    }
  }
}
