/* Reference ops: the most direct loops that follow the PyTorch definitions,
 * accumulating in double. Slow on purpose; nothing here is clever. */
#include "ref_ops.h"

#include <math.h>
#include <string.h>

/* Element (c, y, x) of batch item @n of @tensor, c counted in the tensor. */
typedef struct {
  float *data;         /* root array */
  int root_channels;
  int offset;          /* channel offset in the root */
  int channels, h, w;
} RefView;

static RefView
view_of (const SsfpnGraph *graph, const RefTensors *t, int tensor)
{
  RefView v;
  int root = ssfpn_graph_root (graph, tensor, &v.offset);

  v.data = t->roots[root];
  v.root_channels = ssfpn_graph_tensor (graph, root)->channels;
  v.channels = ssfpn_graph_tensor (graph, tensor)->channels;
  v.h = t->heights[tensor];
  v.w = t->widths[tensor];
  return v;
}

static float *
at (const RefView *v, int n, int c, int y, int x)
{
  return v->data + (((gsize) n * v->root_channels + v->offset + c) * v->h + y)
                   * v->w + x;
}

static double
activate (SsfpnActivation act, double alpha, double x)
{
  switch (act) {
    case SSFPN_ACT_NONE:
      return x;
    case SSFPN_ACT_SILU:
      return x / (1.0 + exp (-x));
    case SSFPN_ACT_LEAKY_RELU:
      return x >= 0 ? x : alpha * x;
    case SSFPN_ACT_RELU:
      return x >= 0 ? x : 0.0;
    case SSFPN_ACT_HARDSWISH:
      return x * fmin (fmax (x + 3.0, 0.0), 6.0) / 6.0;
    case SSFPN_ACT_SIGMOID:
      return 1.0 / (1.0 + exp (-x));
  }
  return x;
}

static void
ref_conv2d (const SsfpnConv2dParams *c, const RefView *in, const RefView *out,
            const RefView *residual, int batch)
{
  int cin_g = c->in_channels / c->groups, cout_g = c->out_channels / c->groups;

  for (int n = 0; n < batch; n++)
    for (int oc = 0; oc < c->out_channels; oc++)
      for (int oy = 0; oy < out->h; oy++)
        for (int ox = 0; ox < out->w; ox++) {
          int g = oc / cout_g;
          double acc = c->bias[oc];

          for (int ic = 0; ic < cin_g; ic++)
            for (int ky = 0; ky < c->kernel; ky++)
              for (int kx = 0; kx < c->kernel; kx++) {
                int y = oy * c->stride - c->pad + ky;
                int x = ox * c->stride - c->pad + kx;
                float w = c->weight[(((gsize) oc * cin_g + ic) * c->kernel + ky)
                                    * c->kernel + kx];

                if (y < 0 || y >= in->h || x < 0 || x >= in->w)
                  continue;
                acc += (double) w * *at (in, n, c->in_offset + g * cin_g + ic,
                                         y, x);
              }
          acc = activate (c->act, c->act_alpha, acc) * c->out_scale;
          if (c->out_shift != NULL)
            acc += c->out_shift[oc];
          if (residual != NULL)
            acc += *at (residual, n, oc, oy, ox);
          if (c->accumulate)
            acc += *at (out, n, oc, oy, ox);
          *at (out, n, oc, oy, ox) = (float) acc;
        }
}

/* PyTorch's nearest_idx for a scale factor: floorf (dst * (float) (1 /
 * factor)), clamped; its shortcuts for factors 1 and 2 give the same. */
static int
ref_nearest_source (int dst, int factor, int in_size)
{
  int src = (int) floorf ((float) dst * (float) (1.0 / factor));
  return src < in_size - 1 ? src : in_size - 1;
}

static void
ref_upsample (int factor, const RefView *in, const RefView *out, int batch)
{
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < out->channels; c++)
      for (int y = 0; y < out->h; y++)
        for (int x = 0; x < out->w; x++)
          *at (out, n, c, y, x) = *at (in, n, c,
              ref_nearest_source (y, factor, in->h),
              ref_nearest_source (x, factor, in->w));
}

static void
ref_maxpool (const SsfpnMaxpoolParams *m, const RefView *in,
             const RefView *out, int batch)
{
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < out->channels; c++)
      for (int oy = 0; oy < out->h; oy++)
        for (int ox = 0; ox < out->w; ox++) {
          float best = -INFINITY;

          for (int ky = 0; ky < m->kernel; ky++)
            for (int kx = 0; kx < m->kernel; kx++) {
              int y = oy * m->stride - m->pad + ky;
              int x = ox * m->stride - m->pad + kx;
              float v = -INFINITY; /* padding */

              if (y >= 0 && y < in->h && x >= 0 && x < in->w)
                v = *at (in, n, c, y, x);
              if (v > best)
                best = v;
            }
          *at (out, n, c, oy, ox) = best;
        }
}

/* torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
 *            x[..., 1::2, 1::2]], 1) */
static void
ref_space_to_depth (const RefView *in, const RefView *out, int batch)
{
  const int dy[4] = { 0, 1, 0, 1 }, dx[4] = { 0, 0, 1, 1 };

  for (int n = 0; n < batch; n++)
    for (int k = 0; k < 4; k++)
      for (int c = 0; c < in->channels; c++)
        for (int y = 0; y < out->h; y++)
          for (int x = 0; x < out->w; x++)
            *at (out, n, k * in->channels + c, y, x) =
              *at (in, n, c, 2 * y + dy[k], 2 * x + dx[k]);
}

/* x.view(b, c, h/s, s, w/s, s).permute(0, 3, 5, 1, 2, 4)
 *  .contiguous().view(b, c * s * s, h/s, w/s), written index by index. */
static void
ref_contract (int s, const RefView *in, const RefView *out, int batch)
{
  for (int n = 0; n < batch; n++)
    for (int sy = 0; sy < s; sy++)
      for (int sx = 0; sx < s; sx++)
        for (int c = 0; c < in->channels; c++)
          for (int y = 0; y < out->h; y++)
            for (int x = 0; x < out->w; x++)
              *at (out, n, (sy * s + sx) * in->channels + c, y, x) =
                *at (in, n, c, y * s + sy, x * s + sx);
}

static void
ref_copy (const RefView *in, const RefView *out, int batch)
{
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < out->channels; c++)
      for (int y = 0; y < out->h; y++)
        for (int x = 0; x < out->w; x++)
          *at (out, n, c, y, x) = *at (in, n, c, y, x);
}

/* YOLOv5 Detect in eval mode on already-sigmoided values y:
 * xy = (y * 2 - 0.5 + grid) * stride, wh = (y * 2) ** 2 * anchor_grid. */
static void
ref_detect (const SsfpnDetectParams *d, const RefView *in, int batch,
            int total_rows, int row_offset, float *output)
{
  int columns = d->nc + 5;

  for (int n = 0; n < batch; n++)
    for (int a = 0; a < d->na; a++)
      for (int y = 0; y < in->h; y++)
        for (int x = 0; x < in->w; x++) {
          gsize row = (gsize) n * total_rows + row_offset
                      + ((gsize) a * in->h + y) * in->w + x;
          float *dst = output + row * columns;

          for (int k = 0; k < columns; k++) {
            double v = *at (in, n, a * columns + k, y, x);

            if (k == 0)
              v = (v * 2.0 - 0.5 + x) * d->stride;
            else if (k == 1)
              v = (v * 2.0 - 0.5 + y) * d->stride;
            else if (k == 2 || k == 3)
              v = (v * 2.0) * (v * 2.0) * d->anchors[2 * a + (k - 2)];
            dst[k] = (float) v;
          }
        }
}

RefTensors *
ref_run_graph (const SsfpnGraph *graph, int batch, int height, int width,
               const float *input, float *output, GError **error)
{
  RefTensors *t = g_new0 (RefTensors, 1);
  int *level_rows = g_new0 (int, graph->nl + 1);
  int total_rows = ssfpn_graph_output_rows (graph, height, width, level_rows);

  t->n_tensors = (int) graph->tensors->len;
  t->batch = batch;
  t->roots = g_new0 (float *, t->n_tensors);
  t->heights = g_new0 (int, t->n_tensors);
  t->widths = g_new0 (int, t->n_tensors);
  if (!ssfpn_graph_infer_shapes (graph, height, width, t->heights, t->widths,
                                 error)) {
    g_free (level_rows);
    ref_tensors_free (t);
    return NULL;
  }
  for (int i = 0; i < t->n_tensors; i++) {
    const SsfpnTensor *tensor = ssfpn_graph_tensor (graph, i);

    if (tensor->parent < 0 && t->heights[i] > 0)
      t->roots[i] = g_new0 (float, (gsize) batch * tensor->channels
                                   * t->heights[i] * t->widths[i]);
  }
  memcpy (t->roots[0], input, (gsize) batch * ssfpn_graph_tensor (graph, 0)->channels
                              * height * width * sizeof (float));

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    RefView in = view_of (graph, t, op->input);
    RefView out = op->output >= 0 ? view_of (graph, t, op->output) : in;

    switch (op->type) {
      case SSFPN_OP_CONV2D:
        if (op->p.conv.residual >= 0) {
          RefView residual = view_of (graph, t, op->p.conv.residual);
          ref_conv2d (&op->p.conv, &in, &out, &residual, batch);
        } else {
          ref_conv2d (&op->p.conv, &in, &out, NULL, batch);
        }
        break;
      case SSFPN_OP_UPSAMPLE_NEAREST:
        ref_upsample (op->p.upsample.factor, &in, &out, batch);
        break;
      case SSFPN_OP_MAXPOOL:
        ref_maxpool (&op->p.maxpool, &in, &out, batch);
        break;
      case SSFPN_OP_SPACE_TO_DEPTH:
        ref_space_to_depth (&in, &out, batch);
        break;
      case SSFPN_OP_CONTRACT:
        ref_contract (op->p.reorder.gain, &in, &out, batch);
        break;
      case SSFPN_OP_COPY:
        ref_copy (&in, &out, batch);
        break;
      case SSFPN_OP_DETECT:
        ref_detect (&op->p.detect, &in, batch, total_rows,
                    level_rows[op->p.detect.level], output);
        break;
    }
  }
  g_free (level_rows);
  return t;
}

void
ref_tensors_free (RefTensors *t)
{
  if (t == NULL)
    return;
  for (int i = 0; i < t->n_tensors; i++)
    g_free (t->roots[i]);
  g_free (t->roots);
  g_free (t->heights);
  g_free (t->widths);
  g_free (t);
}

void
ref_read_tensor (const SsfpnGraph *graph, const RefTensors *t, int tensor,
                 int item, float *out)
{
  RefView v = view_of (graph, t, tensor);

  for (int c = 0; c < v.channels; c++)
    for (int y = 0; y < v.h; y++)
      for (int x = 0; x < v.w; x++)
        out[((gsize) c * v.h + y) * v.w + x] = *at (&v, item, c, y, x);
}
