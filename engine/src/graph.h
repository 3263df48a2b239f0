/* The network as a backend sees it: a list of primitive ops over tensors.
 *
 * The graph builder (graph_build.c) lowers YOLOv5 modules into these ops,
 * with BatchNorm already folded into convolution weights. The graph knows
 * nothing of backends; each backend switches on SsfpnOpType.
 *
 * Tensors are logical NCHW per batch item with a channel count; spatial sizes
 * follow from the input size through ssfpn_graph_infer_shapes(). A tensor
 * may be a *view*: a channel slice [channel_offset, channel_offset +
 * channels) of a parent tensor. Concats are expressed as views, so producers
 * write straight into their slice and nothing is copied.
 */
#ifndef SSFPN_GRAPH_H
#define SSFPN_GRAPH_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SSFPN_ACT_NONE,
  SSFPN_ACT_SILU,
  SSFPN_ACT_LEAKY_RELU, /* slope in act_alpha */
  SSFPN_ACT_RELU,
  SSFPN_ACT_HARDSWISH,
  SSFPN_ACT_SIGMOID,
} SsfpnActivation;

typedef struct {
  int channels;       /* per batch item */
  int parent;         /* tensor id this one is a channel slice of, or -1 */
  int channel_offset; /* within parent */
} SsfpnTensor;

typedef enum {
  SSFPN_OP_CONV2D,
  SSFPN_OP_UPSAMPLE_NEAREST,
  SSFPN_OP_MAXPOOL,
  SSFPN_OP_SPACE_TO_DEPTH, /* Focus and space_to_depth channel order */
  SSFPN_OP_CONTRACT,       /* YOLOv5 Contract channel order */
  SSFPN_OP_COPY,           /* channel copy, when a tensor feeds two concats */
  SSFPN_OP_DETECT,         /* decode of one Detect level into the output */
} SsfpnOpType;

/* out = post(conv(in[in_offset : in_offset + in_channels]))
 * post: y = act(x + bias); y = y * out_scale; y += out_shift[c] (if set);
 *       y += residual (if >= 0); y += previous out content (if accumulate). */
typedef struct {
  int in_offset;      /* first channel of the input tensor that is read */
  int in_channels;
  int out_channels;
  int kernel, stride, pad, groups;
  float *weight;      /* (out, in / groups, k, k), BatchNorm folded */
  float *bias;        /* (out) */
  SsfpnActivation act;
  float act_alpha;
  float out_scale;    /* 1 unless averaging */
  float *out_shift;   /* (out) or NULL */
  int residual;       /* tensor id, same shape as out, or -1 */
  gboolean accumulate;
} SsfpnConv2dParams;

typedef struct {
  int factor;
} SsfpnUpsampleParams;

typedef struct {
  int kernel, stride, pad;
} SsfpnMaxpoolParams;

typedef struct {
  int gain; /* 2 */
} SsfpnReorderParams; /* space-to-depth and Contract */

/* Input: the level's 1x1 conv output, na * (5 + nc) channels, sigmoid
 * already applied (by the conv's activation). Writes rows
 * [row_offset, row_offset + na * ny * nx) of the (A, 5 + nc) output, where
 * row_offset comes from ssfpn_graph_output_rows() for the input size. */
typedef struct {
  int level;
  int stride;
  int na, nc;
  float *anchors;     /* (na, 2) in pixels (anchor x stride) */
} SsfpnDetectParams;

typedef struct {
  SsfpnOpType type;
  int input;          /* tensor id */
  int output;         /* tensor id; -1 for DETECT (writes the network output) */
  int layer;          /* configuration layer it came from, for messages */
  union {
    SsfpnConv2dParams conv;
    SsfpnUpsampleParams upsample;
    SsfpnMaxpoolParams maxpool;
    SsfpnReorderParams reorder;
    SsfpnDetectParams detect;
  } p;
} SsfpnOp;

typedef struct {
  GArray *tensors;    /* SsfpnTensor; tensor 0 is the network input (3 ch) */
  GArray *ops;        /* SsfpnOp, in execution order */
  int nc, na, nl;
  int *strides;       /* (nl) */
  int max_stride;
} SsfpnGraph;

SsfpnGraph *ssfpn_graph_new (void);
void ssfpn_graph_free (SsfpnGraph *graph);

int ssfpn_graph_add_tensor (SsfpnGraph *graph, int channels);
/* Makes @tensor a view of @parent at @channel_offset. */
void ssfpn_graph_set_view (SsfpnGraph *graph, int tensor, int parent,
                           int channel_offset);
/* Appends @op (copied); returns a pointer valid until the next append. */
SsfpnOp *ssfpn_graph_add_op (SsfpnGraph *graph, const SsfpnOp *op);

static inline SsfpnTensor *
ssfpn_graph_tensor (const SsfpnGraph *graph, int id)
{
  return &g_array_index (graph->tensors, SsfpnTensor, id);
}

static inline SsfpnOp *
ssfpn_graph_op (const SsfpnGraph *graph, int i)
{
  return &g_array_index (graph->ops, SsfpnOp, i);
}

/* Root tensor of a view chain and the accumulated channel offset. */
int ssfpn_graph_root (const SsfpnGraph *graph, int tensor, int *channel_offset);

/* Spatial size of every tensor for an input of @height x @width, by walking
 * the ops: @heights and @widths have one entry per tensor. Fails, naming the
 * layer, when sizes disagree (a concat of different sizes, a size that does
 * not divide). */
gboolean ssfpn_graph_infer_shapes (const SsfpnGraph *graph, int height,
                                   int width, int *heights, int *widths,
                                   GError **error);

/* Rows of the network output for an input size, and the first row of each
 * Detect level (array of nl + 1, last = total); -1 (offsets incomplete)
 * when the count does not fit an int. */
int ssfpn_graph_output_rows (const SsfpnGraph *graph, int height, int width,
                             int *level_row_offsets);

G_END_DECLS

#endif /* SSFPN_GRAPH_H */
