/* The graph container: tensors, views and ops, and the spatial sizes they
 * take for a given input size. */
#include "graph.h"

#include "ssfpn/ssfpn.h"

SsfpnGraph *
ssfpn_graph_new (void)
{
  SsfpnGraph *graph = g_new0 (SsfpnGraph, 1);

  graph->tensors = g_array_new (FALSE, TRUE, sizeof (SsfpnTensor));
  graph->ops = g_array_new (FALSE, TRUE, sizeof (SsfpnOp));
  return graph;
}

static void
op_clear (SsfpnOp *op)
{
  switch (op->type) {
    case SSFPN_OP_CONV2D:
      g_free (op->p.conv.weight);
      g_free (op->p.conv.bias);
      g_free (op->p.conv.out_shift);
      break;
    case SSFPN_OP_DETECT:
      g_free (op->p.detect.anchors);
      break;
    default:
      break;
  }
}

void
ssfpn_graph_free (SsfpnGraph *graph)
{
  if (graph == NULL)
    return;
  for (guint i = 0; i < graph->ops->len; i++)
    op_clear (ssfpn_graph_op (graph, i));
  g_array_unref (graph->ops);
  g_array_unref (graph->tensors);
  g_free (graph->strides);
  g_free (graph);
}

int
ssfpn_graph_add_tensor (SsfpnGraph *graph, int channels)
{
  SsfpnTensor t = { .channels = channels, .parent = -1, .channel_offset = 0 };

  g_array_append_val (graph->tensors, t);
  return (int) graph->tensors->len - 1;
}

void
ssfpn_graph_set_view (SsfpnGraph *graph, int tensor, int parent,
                      int channel_offset)
{
  SsfpnTensor *t = ssfpn_graph_tensor (graph, tensor);

  g_assert (parent != tensor);
  g_assert (channel_offset >= 0 && channel_offset + t->channels
            <= ssfpn_graph_tensor (graph, parent)->channels);
  t->parent = parent;
  t->channel_offset = channel_offset;
}

SsfpnOp *
ssfpn_graph_add_op (SsfpnGraph *graph, const SsfpnOp *op)
{
  g_array_append_val (graph->ops, *op);
  return ssfpn_graph_op (graph, (int) graph->ops->len - 1);
}

int
ssfpn_graph_root (const SsfpnGraph *graph, int tensor, int *channel_offset)
{
  int offset = 0;

  while (ssfpn_graph_tensor (graph, tensor)->parent >= 0) {
    offset += ssfpn_graph_tensor (graph, tensor)->channel_offset;
    tensor = ssfpn_graph_tensor (graph, tensor)->parent;
  }
  if (channel_offset)
    *channel_offset = offset;
  return tensor;
}

/* Output size of a windowed op, as PyTorch computes it (floor); 0, which
 * is refused as empty, where the kernel is larger than the padded input, as
 * PyTorch refuses it (C division would round -1 / 2 up to 0). */
static int
window_output (int in, int kernel, int stride, int pad)
{
  if (in + 2 * pad < kernel)
    return 0;
  return (in + 2 * pad - kernel) / stride + 1;
}

/* Sizes live on root tensors: a view has its root's size. A root's size is
 * set by its first writer; every later writer must agree. */
static gboolean
assign_size (const SsfpnGraph *graph, const SsfpnOp *op, int tensor, int h,
             int w, int *heights, int *widths, GError **error)
{
  int root = ssfpn_graph_root (graph, tensor, NULL);

  if (h < 1 || w < 1) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                 "layer %d: output size %dx%d is empty for this input size",
                 op->layer, h, w);
    return FALSE;
  }
  if (heights[root] == 0) {
    heights[root] = h;
    widths[root] = w;
  } else if (heights[root] != h || widths[root] != w) {
    /* @op writes into a concatenation (the only root with two writers)
     * whose other inputs came first. */
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                 "layer %d: its %dx%d output is concatenated with %dx%d "
                 "tensors; a Concat's inputs must have one size (check the "
                 "Concat's 'from')", op->layer, h, w, heights[root],
                 widths[root]);
    return FALSE;
  }
  return TRUE;
}

gboolean
ssfpn_graph_infer_shapes (const SsfpnGraph *graph, int height, int width,
                          int *heights, int *widths, GError **error)
{
  guint n_tensors = graph->tensors->len;

  for (guint i = 0; i < n_tensors; i++)
    heights[i] = widths[i] = 0;
  heights[0] = height;
  widths[0] = width;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    int in_root = ssfpn_graph_root (graph, op->input, NULL);
    int h = heights[in_root], w = widths[in_root];
    int oh = h, ow = w;

    if (h == 0) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                   "layer %d: reads a tensor nothing has written", op->layer);
      return FALSE;
    }

    switch (op->type) {
      case SSFPN_OP_CONV2D:{
        const SsfpnConv2dParams *c = &op->p.conv;
        oh = window_output (h, c->kernel, c->stride, c->pad);
        ow = window_output (w, c->kernel, c->stride, c->pad);
        break;
      }
      case SSFPN_OP_MAXPOOL:{
        const SsfpnMaxpoolParams *m = &op->p.maxpool;
        oh = window_output (h, m->kernel, m->stride, m->pad);
        ow = window_output (w, m->kernel, m->stride, m->pad);
        break;
      }
      case SSFPN_OP_UPSAMPLE_NEAREST:
        if (op->p.upsample.factor < 1 || h > G_MAXINT / op->p.upsample.factor
            || w > G_MAXINT / op->p.upsample.factor) {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                       "layer %d: upsampling %dx%d by %d is too large",
                       op->layer, h, w, op->p.upsample.factor);
          return FALSE;
        }
        oh = h * op->p.upsample.factor;
        ow = w * op->p.upsample.factor;
        break;
      case SSFPN_OP_SPACE_TO_DEPTH:
      case SSFPN_OP_CONTRACT:{
        int gain = op->p.reorder.gain;
        if (h % gain != 0 || w % gain != 0) {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                       "layer %d: size %dx%d is not divisible by %d",
                       op->layer, h, w, gain);
          return FALSE;
        }
        oh = h / gain;
        ow = w / gain;
        break;
      }
      case SSFPN_OP_COPY:
        break;
      case SSFPN_OP_DETECT:
        if (h * op->p.detect.stride != height
            || w * op->p.detect.stride != width) {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                       "layer %d: Detect level %d is %dx%d for a %dx%d input, "
                       "not a stride of %d", op->layer, op->p.detect.level,
                       h, w, height, width, op->p.detect.stride);
          return FALSE;
        }
        continue; /* writes the network output, not a tensor */
    }
    if (!assign_size (graph, op, op->output, oh, ow, heights, widths, error))
      return FALSE;
  }

  /* Views take their root's size. */
  for (guint i = 0; i < n_tensors; i++) {
    int root = ssfpn_graph_root (graph, (int) i, NULL);
    heights[i] = heights[root];
    widths[i] = widths[root];
  }
  return TRUE;
}

int
ssfpn_graph_output_rows (const SsfpnGraph *graph, int height, int width,
                         int *level_row_offsets)
{
  int rows = 0;

  for (int l = 0; l < graph->nl; l++) {
    /* In double: the int product overflows for absurd sizes. */
    double level = (double) graph->na * (height / graph->strides[l])
        * (width / graph->strides[l]);
    if (level_row_offsets)
      level_row_offsets[l] = rows;
    if (rows + level > G_MAXINT)
      return -1;
    rows += (int) level;
  }
  if (level_row_offsets)
    level_row_offsets[graph->nl] = rows;
  return rows;
}
