/* Lowers the resolved configuration into the primitive ops of graph.h,
 * loading each module's weights by its YOLOv5 state_dict name and folding
 * every BatchNorm into the convolution before it (docs/architecture.md).
 *
 * Concats copy nothing: a layer that feeds a concat writes straight into
 * its channel slice (the layer's tensor becomes a view). A tensor can live
 * in one slice only, so a second concat of the same tensor, or a concat of
 * the network input, gets a COPY. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "config.h"
#include "json_text.h"
#include "model.h"

#define DEFAULT_BN_EPS 0.001
#define SEED_SSFPN_BN_EPS 1e-5   /* nn.BatchNorm3d's default in the seed module */
#define CONV3D_BN_EPS 0.001      /* the official Conv3D block's BatchNorm3d */
#define SSFPN_LEAKY_SLOPE 0.01f  /* nn.LeakyReLU() in both ssFPN forms */
#define CSP_LEAKY_SLOPE 0.1f     /* BottleneckCSP's activation after its BN */

/* Strides are measured at this input size: large, and divisible by every
 * stride a YOLOv5-style network makes (powers of two, 3 and 5 up to 512). */
#define STRIDE_PROBE_SIZE 7680

typedef struct {
  const SsfpnSafetensors *st;
  const char *source;
  const SsfpnConfig *config;
  SsfpnGraph *graph;
  double bn_eps;
  int *outputs;               /* graph tensor of each layer's output */
  const SsfpnLayerConfig *layer; /* being lowered */
  SsfpnLayer *info;           /* its table entry: parameters and costs */
} Builder;

/* ---- weights -------------------------------------------------------------- */

static char *
shape_text (int rank, const gint64 *shape)
{
  GString *out = g_string_new ("[");

  for (int i = 0; i < rank; i++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "",
                            shape[i]);
  g_string_append_c (out, ']');
  return g_string_free (out, FALSE);
}

/* The tensor @prefix@suffix as float32, checked to have @shape. */
static float *
load_tensor (Builder *b, const char *prefix, const char *suffix, int rank,
             const gint64 *shape, GError **error)
{
  char *name = g_strconcat (prefix, suffix, NULL);
  const SsfpnStTensor *tensor = ssfpn_safetensors_get (b->st, name);
  gboolean same = tensor != NULL && tensor->rank == rank;
  float *values = NULL;

  for (int i = 0; same && i < rank; i++)
    same = tensor->shape[i] == shape[i];
  if (tensor == NULL)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_WEIGHTS,
                 "%s: tensor %s is missing (layer %d, %s)", b->source, name,
                 b->layer->index, b->layer->module);
  else if (!same)
    {
      char *expected = shape_text (rank, shape);
      char *found = shape_text (tensor->rank, tensor->shape);
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_WEIGHTS,
                   "%s: tensor %s has shape %s, layer %d (%s) needs %s",
                   b->source, name, found, b->layer->index, b->layer->module,
                   expected);
      g_free (expected);
      g_free (found);
    }
  else
    values = ssfpn_st_tensor_to_f32 (tensor);
  g_free (name);
  return values;
}

static float *
load_vector (Builder *b, const char *prefix, const char *suffix, int n,
             GError **error)
{
  gint64 shape[1] = { n };

  return load_tensor (b, prefix, suffix, 1, shape, error);
}

/* A BatchNorm as y = x * scale + shift (double). Counts its trainable
 * weight and bias. */
static gboolean
load_batchnorm (Builder *b, const char *prefix, int channels, double eps,
                double **scale, double **shift, GError **error)
{
  float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
  gboolean ok = FALSE;

  if ((gamma = load_vector (b, prefix, "weight", channels, error)) == NULL
      || (beta = load_vector (b, prefix, "bias", channels, error)) == NULL
      || (mean = load_vector (b, prefix, "running_mean", channels, error)) == NULL
      || (var = load_vector (b, prefix, "running_var", channels, error)) == NULL)
    goto out;

  *scale = g_new (double, channels);
  *shift = g_new (double, channels);
  for (int c = 0; c < channels; c++)
    {
      double denominator = (double) var[c] + eps;

      if (!(denominator > 0.0) || !isfinite (denominator))
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_WEIGHTS,
                       "%s: tensor %srunning_var[%d] is %g: the variance plus "
                       "eps %g must be positive", b->source, prefix, c,
                       (double) var[c], eps);
          g_clear_pointer (scale, g_free);
          g_clear_pointer (shift, g_free);
          goto out;
        }
      (*scale)[c] = gamma[c] / sqrt (denominator);
      (*shift)[c] = beta[c] - mean[c] * (*scale)[c];
    }
  b->info->parameters += 2 * (gint64) channels;
  ok = TRUE;

out:
  g_free (gamma);
  g_free (beta);
  g_free (mean);
  g_free (var);
  return ok;
}

/* ---- ops -------------------------------------------------------------------- */

static void
add_cost (Builder *b, int tensor, double macs_per_pixel)
{
  SsfpnLayerCost cost = { tensor, macs_per_pixel };

  g_array_append_val (b->info->costs, cost);
}

static SsfpnConv2dParams
conv_params (int in_channels, int out_channels, int kernel, int stride,
             int pad, int groups)
{
  SsfpnConv2dParams c = {
    .in_channels = in_channels, .out_channels = out_channels,
    .kernel = kernel, .stride = stride, .pad = pad, .groups = groups,
    .act = SSFPN_ACT_NONE, .out_scale = 1.0f, .residual = -1,
  };

  return c;
}

static void
emit_conv (Builder *b, int input, int output, const SsfpnConv2dParams *conv)
{
  SsfpnOp op = { .type = SSFPN_OP_CONV2D, .input = input, .output = output,
                 .layer = b->layer->index };

  op.p.conv = *conv;
  ssfpn_graph_add_op (b->graph, &op);
}

static void
emit_simple (Builder *b, SsfpnOpType type, int input, int output)
{
  SsfpnOp op = { .type = type, .input = input, .output = output,
                 .layer = b->layer->index };

  ssfpn_graph_add_op (b->graph, &op);
}

static void
emit_upsample (Builder *b, int input, int output, int factor)
{
  SsfpnOp op = { .type = SSFPN_OP_UPSAMPLE_NEAREST, .input = input,
                 .output = output, .layer = b->layer->index };

  op.p.upsample.factor = factor;
  ssfpn_graph_add_op (b->graph, &op);
}

static void
emit_maxpool (Builder *b, int input, int output, int kernel)
{
  SsfpnOp op = { .type = SSFPN_OP_MAXPOOL, .input = input, .output = output,
                 .layer = b->layer->index };

  op.p.maxpool.kernel = kernel;
  op.p.maxpool.stride = 1;
  op.p.maxpool.pad = kernel / 2;
  ssfpn_graph_add_op (b->graph, &op);
}

static void
emit_reorder (Builder *b, SsfpnOpType type, int input, int output, int gain)
{
  SsfpnOp op = { .type = type, .input = input, .output = output,
                 .layer = b->layer->index };

  op.p.reorder.gain = gain;
  ssfpn_graph_add_op (b->graph, &op);
}

static int
tensor_channels (Builder *b, int tensor)
{
  return ssfpn_graph_tensor (b->graph, tensor)->channels;
}

static int
new_view (Builder *b, int channels, int parent, int offset)
{
  int tensor = ssfpn_graph_add_tensor (b->graph, channels);

  ssfpn_graph_set_view (b->graph, tensor, parent, offset);
  return tensor;
}

/* Puts @tensor at @offset of the concat tensor @parent: as a view when its
 * producer can write there, else by a COPY. */
static void
place_in_concat (Builder *b, int tensor, int parent, int offset)
{
  if (tensor != 0 && ssfpn_graph_tensor (b->graph, tensor)->parent < 0)
    ssfpn_graph_set_view (b->graph, tensor, parent, offset);
  else
    emit_simple (b, SSFPN_OP_COPY, tensor,
                 new_view (b, tensor_channels (b, tensor), parent, offset));
}

/* ---- convolutions with BatchNorm ------------------------------------------- */

/* Scales each output filter of @weight (@per_output values each) by the
 * BatchNorm and returns the folded bias: shift + conv_bias * scale. */
static float *
fold_batchnorm (float *weight, int out_channels, gint64 per_output,
                const double *scale, const double *shift,
                const float *conv_bias)
{
  float *bias = g_new (float, out_channels);

  for (int o = 0; o < out_channels; o++)
    {
      float *filter = weight + o * per_output;
      for (gint64 i = 0; i < per_output; i++)
        filter[i] = (float) (filter[i] * scale[o]);
      bias[o] = (float) (shift[o] + (conv_bias ? conv_bias[o] * scale[o] : 0.0));
    }
  return bias;
}

/* YOLOv5's Conv at @prefix: Conv2d (no bias) `conv`, BatchNorm2d `bn`,
 * @act. Reads all of @input, writes @output; @residual is added after
 * the activation (Bottleneck's shortcut) when >= 0. */
static gboolean
lower_conv (Builder *b, const char *prefix, int input, int output, int kernel,
            int stride, int pad, int groups, SsfpnActivation act,
            float act_alpha, int residual, GError **error)
{
  int c1 = tensor_channels (b, input);
  int c2 = tensor_channels (b, output);
  gint64 shape[4] = { c2, c1 / groups, kernel, kernel };
  gint64 per_output = shape[1] * kernel * kernel;
  char *conv_prefix = g_strconcat (prefix, "conv.", NULL);
  char *bn_prefix = g_strconcat (prefix, "bn.", NULL);
  double *scale = NULL, *shift = NULL;
  float *weight;
  SsfpnConv2dParams conv = conv_params (c1, c2, kernel, stride, pad, groups);
  gboolean ok = FALSE;

  weight = load_tensor (b, conv_prefix, "weight", 4, shape, error);
  if (weight == NULL
      || !load_batchnorm (b, bn_prefix, c2, b->bn_eps, &scale, &shift, error))
    goto out;
  conv.bias = fold_batchnorm (weight, c2, per_output, scale, shift, NULL);
  conv.weight = g_steal_pointer (&weight);
  conv.act = act;
  conv.act_alpha = act_alpha;
  conv.residual = residual;
  emit_conv (b, input, output, &conv);
  b->info->parameters += c2 * per_output;
  add_cost (b, output, (double) c2 * per_output);
  ok = TRUE;

out:
  g_free (weight);
  g_free (scale);
  g_free (shift);
  g_free (conv_prefix);
  g_free (bn_prefix);
  return ok;
}

/* A Conv inside a module: 'same' padding, the configuration's activation. */
static gboolean
lower_inner_conv (Builder *b, const char *prefix, const char *name, int input,
                  int output, int kernel, int groups, int residual,
                  GError **error)
{
  char *full = g_strconcat (prefix, name, ".", NULL);
  gboolean ok = lower_conv (b, full, input, output, kernel, 1, kernel / 2,
                            groups, b->config->act, b->config->act_alpha,
                            residual, error);

  g_free (full);
  return ok;
}

/* ---- modules ---------------------------------------------------------------- */

/* Bottleneck at @prefix: cv2(cv1(x)) with the shortcut when @shortcut and
 * the channels agree; writes @output. */
static gboolean
lower_bottleneck (Builder *b, const char *prefix, int input, int output,
                  int hidden, gboolean shortcut, int groups, GError **error)
{
  int mid = ssfpn_graph_add_tensor (b->graph, hidden);
  gboolean add = shortcut
                 && tensor_channels (b, input) == tensor_channels (b, output);

  return lower_inner_conv (b, prefix, "cv1", input, mid, 1, 1, -1, error)
         && lower_inner_conv (b, prefix, "cv2", mid, output, 3, groups,
                              add ? input : -1, error);
}

/* C3's and BottleneckCSP's m: @n Bottlenecks (e=1.0) writing @output. */
static gboolean
lower_bottleneck_chain (Builder *b, const char *prefix, int input, int output,
                        GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  int hidden = l->hidden;

  for (int j = 0; j < l->repeats; j++)
    {
      char *name = g_strdup_printf ("%sm.%d.", prefix, j);
      int out = j == l->repeats - 1 ? output
                                    : ssfpn_graph_add_tensor (b->graph, hidden);
      gboolean ok = lower_bottleneck (b, name, input, out, hidden,
                                      l->shortcut, l->groups, error);
      g_free (name);
      if (!ok)
        return FALSE;
      input = out;
    }
  return TRUE;
}

/* C3: cv3(cat(m(cv1(x)), cv2(x))). */
static gboolean
lower_c3 (Builder *b, const char *prefix, int input, int output,
          GError **error)
{
  int hidden = b->layer->hidden;
  int cat = ssfpn_graph_add_tensor (b->graph, 2 * hidden);
  int first = ssfpn_graph_add_tensor (b->graph, hidden);

  return lower_inner_conv (b, prefix, "cv1", input, first, 1, 1, -1, error)
         && lower_bottleneck_chain (b, prefix, first,
                                    new_view (b, hidden, cat, 0), error)
         && lower_inner_conv (b, prefix, "cv2", input,
                              new_view (b, hidden, cat, hidden), 1, 1, -1,
                              error)
         && lower_inner_conv (b, prefix, "cv3", cat, output, 1, 1, -1, error);
}

/* One of BottleneckCSP's plain 1x1 Conv2d (no bias) with the channels
 * [@bn_offset, @bn_offset + c_out) of the BN over the concat folded in. */
static gboolean
lower_csp_half (Builder *b, const char *prefix, const char *name, int input,
                int output, const double *scale, const double *shift,
                GError **error)
{
  int c1 = tensor_channels (b, input);
  int c2 = tensor_channels (b, output);
  gint64 shape[4] = { c2, c1, 1, 1 };
  char *conv_prefix = g_strconcat (prefix, name, ".", NULL);
  SsfpnConv2dParams conv = conv_params (c1, c2, 1, 1, 0, 1);

  conv.weight = load_tensor (b, conv_prefix, "weight", 4, shape, error);
  g_free (conv_prefix);
  if (conv.weight == NULL)
    return FALSE;
  conv.bias = fold_batchnorm (conv.weight, c2, c1, scale, shift, NULL);
  conv.act = SSFPN_ACT_LEAKY_RELU;
  conv.act_alpha = CSP_LEAKY_SLOPE;
  emit_conv (b, input, output, &conv);
  b->info->parameters += (gint64) c2 * c1;
  add_cost (b, output, (double) c2 * c1);
  return TRUE;
}

/* BottleneckCSP: cv4(act(bn(cat(cv3(m(cv1(x))), cv2(x))))); the BN and
 * the activation act per channel, so each half goes into its conv. */
static gboolean
lower_bottleneck_csp (Builder *b, const char *prefix, int input, int output,
                      GError **error)
{
  int hidden = b->layer->hidden;
  int cat = ssfpn_graph_add_tensor (b->graph, 2 * hidden);
  int first = ssfpn_graph_add_tensor (b->graph, hidden);
  int chain = ssfpn_graph_add_tensor (b->graph, hidden);
  char *bn_prefix = g_strconcat (prefix, "bn.", NULL);
  double *scale = NULL, *shift = NULL;
  gboolean ok;

  ok = load_batchnorm (b, bn_prefix, 2 * hidden, b->bn_eps, &scale, &shift,
                       error)
       && lower_inner_conv (b, prefix, "cv1", input, first, 1, 1, -1, error)
       && lower_bottleneck_chain (b, prefix, first, chain, error)
       && lower_csp_half (b, prefix, "cv3", chain, new_view (b, hidden, cat, 0),
                          scale, shift, error)
       && lower_csp_half (b, prefix, "cv2", input,
                          new_view (b, hidden, cat, hidden), scale + hidden,
                          shift + hidden, error)
       && lower_inner_conv (b, prefix, "cv4", cat, output, 1, 1, -1, error);
  g_free (scale);
  g_free (shift);
  g_free (bn_prefix);
  return ok;
}

/* SPP: cv2(cat(x, pool_k1(x), ...)) of x = cv1(input); SPPF: the pools
 * chained, cat(x, p(x), p(p(x)), p(p(p(x)))). Pools write their slices. */
static gboolean
lower_spp (Builder *b, const char *prefix, int input, int output,
           GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  gboolean fast = l->kind == SSFPN_MODULE_SPPF;
  int parts = fast ? 4 : l->n_pools + 1;
  int cat = ssfpn_graph_add_tensor (b->graph, parts * l->hidden);
  int x = new_view (b, l->hidden, cat, 0);

  if (!lower_inner_conv (b, prefix, "cv1", input, x, 1, 1, -1, error))
    return FALSE;
  for (int i = 1; i < parts; i++)
    {
      int pooled = new_view (b, l->hidden, cat, i * l->hidden);
      emit_maxpool (b, x, pooled, fast ? l->pools[0] : l->pools[i - 1]);
      if (fast)
        x = pooled;
    }
  return lower_inner_conv (b, prefix, "cv2", cat, output, 1, 1, -1, error);
}

/* One copy of a repeatable module (nn.Sequential entry @prefix). */
static gboolean
lower_copy (Builder *b, const char *prefix, int input, int output,
            GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  SsfpnActivation act = l->act ? b->config->act : SSFPN_ACT_NONE;
  float alpha = l->act ? b->config->act_alpha : 0.0f;

  switch (l->kind)
    {
    case SSFPN_MODULE_CONV:
      return lower_conv (b, prefix, input, output, l->kernel, l->stride,
                         l->pad, l->groups, act, alpha, -1, error);
    case SSFPN_MODULE_FOCUS:
      {
        int reordered = ssfpn_graph_add_tensor (b->graph,
                                                4 * tensor_channels (b, input));
        char *conv_prefix = g_strconcat (prefix, "conv.", NULL);
        gboolean ok;

        emit_reorder (b, SSFPN_OP_SPACE_TO_DEPTH, input, reordered, 2);
        ok = lower_conv (b, conv_prefix, reordered, output, l->kernel,
                         l->stride, l->pad, l->groups, act, alpha, -1, error);
        g_free (conv_prefix);
        return ok;
      }
    case SSFPN_MODULE_BOTTLENECK:
      return lower_bottleneck (b, prefix, input, output, l->hidden,
                               l->shortcut, l->groups, error);
    case SSFPN_MODULE_SPP:
    case SSFPN_MODULE_SPPF:
      return lower_spp (b, prefix, input, output, error);
    case SSFPN_MODULE_UPSAMPLE:
      emit_upsample (b, input, output, l->factor);
      return TRUE;
    default:
      g_assert_not_reached ();
    }
  return FALSE;
}

/* Conv, Focus, Bottleneck, SPP, SPPF, nn.Upsample: n > 1 is an
 * nn.Sequential, its copies named model.i.j. */
static gboolean
lower_repeatable (Builder *b, int input, int output, GError **error)
{
  int n = b->layer->repeats;

  for (int j = 0; j < n; j++)
    {
      char *prefix = n > 1 ? g_strdup_printf ("model.%d.%d.", b->layer->index, j)
                           : g_strdup_printf ("model.%d.", b->layer->index);
      int out = j == n - 1 ? output
                           : ssfpn_graph_add_tensor (b->graph, b->layer->c2);
      gboolean ok = lower_copy (b, prefix, input, out, error);

      g_free (prefix);
      if (!ok)
        return FALSE;
      input = out;
    }
  return TRUE;
}

static int
layer_input (Builder *b, int from)
{
  return from == SSFPN_FROM_INPUT ? 0 : b->outputs[from];
}

static int
lower_concat (Builder *b)
{
  const SsfpnLayerConfig *l = b->layer;
  int total = 0, cat, offset = 0;

  for (int i = 0; i < l->n_from; i++)
    total += tensor_channels (b, layer_input (b, l->from[i]));
  cat = ssfpn_graph_add_tensor (b->graph, total);
  for (int i = 0; i < l->n_from; i++)
    {
      int tensor = layer_input (b, l->from[i]);
      place_in_concat (b, tensor, cat, offset);
      offset += tensor_channels (b, tensor);
    }
  return cat;
}

/* Seed form: (f(x) + 2 LeakyReLU(BN(0))) / 3, f = LeakyReLU(BN(conv3x3(x))),
 * x = cat(p3, up2(p4), up4(p5)): the Conv3d's depth padding makes two of
 * the three averaged depth slices see only zeros. */
static gboolean
lower_seed_ssfpn (Builder *b, int output, GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  int p3 = layer_input (b, l->from[0]);
  int p4 = layer_input (b, l->from[1]);
  int p5 = layer_input (b, l->from[2]);
  int c3 = tensor_channels (b, p3), c4 = tensor_channels (b, p4);
  int c5 = tensor_channels (b, p5);
  int c1 = l->c1, c2 = l->c2;
  int cat = ssfpn_graph_add_tensor (b->graph, c1);
  gint64 shape[5] = { c2, c1, 1, 3, 3 };
  char *prefix = g_strdup_printf ("model.%d.", l->index);
  char *conv_prefix = g_strconcat (prefix, "conv.", NULL);
  char *bn_prefix = g_strconcat (prefix, "bn.", NULL);
  double *scale = NULL, *shift = NULL;
  SsfpnConv2dParams conv = conv_params (c1, c2, 3, 1, 1, 1);
  gboolean ok = FALSE;

  place_in_concat (b, p3, cat, 0);
  emit_upsample (b, p4, new_view (b, c4, cat, c3), 2);
  emit_upsample (b, p5, new_view (b, c5, cat, c3 + c4), 4);

  /* (c2, c1, 1, 3, 3) is (c2, c1, 3, 3) in memory. */
  conv.weight = load_tensor (b, conv_prefix, "weight", 5, shape, error);
  if (conv.weight == NULL
      || !load_batchnorm (b, bn_prefix, c2, SEED_SSFPN_BN_EPS, &scale, &shift,
                          error))
    goto out;
  conv.bias = fold_batchnorm (conv.weight, c2, (gint64) c1 * 9, scale, shift,
                              NULL);
  conv.act = SSFPN_ACT_LEAKY_RELU;
  conv.act_alpha = SSFPN_LEAKY_SLOPE;
  conv.out_scale = 1.0f / 3.0f;
  conv.out_shift = g_new (float, c2);
  for (int c = 0; c < c2; c++)
    {
      double folded = conv.bias[c];
      double activated = folded >= 0.0 ? folded : folded * SSFPN_LEAKY_SLOPE;
      conv.out_shift[c] = (float) (2.0 * activated / 3.0);
    }
  emit_conv (b, cat, output, &conv);
  conv.weight = NULL;
  b->info->parameters += (gint64) c2 * c1 * 9;
  /* The module's Conv3d computes all three output depth slices. */
  add_cost (b, output, 3.0 * c2 * c1 * 9);
  ok = TRUE;

out:
  g_free (conv.weight);
  g_free (scale);
  g_free (shift);
  g_free (prefix);
  g_free (conv_prefix);
  g_free (bn_prefix);
  return ok;
}

/* Official form: the scale stack is the channel concat [x_0 | ... | x_D-1];
 * output depth d of the 3x3x3 Conv3d (padding 1) reads depths d-1..d+1 that
 * exist, a contiguous channel range, with the matching kernel depth taps.
 * The mean over depth: scale 1/D, the later slices accumulate. */
static gboolean
lower_conv3d (Builder *b, int input, int output, GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  int c = l->c1, c2 = l->c2;
  int depth = tensor_channels (b, input) / c;
  gint64 shape[5] = { c2, c, 3, 3, 3 };
  char *prefix = g_strdup_printf ("model.%d.", l->index);
  char *conv_prefix = g_strconcat (prefix, "conv3d.", NULL);
  char *bn_prefix = g_strconcat (prefix, "batch3d.", NULL);
  float *weight = NULL, *conv_bias = NULL, *bias = NULL;
  double *scale = NULL, *shift = NULL;
  gboolean ok = FALSE;

  if ((weight = load_tensor (b, conv_prefix, "weight", 5, shape, error)) == NULL
      || (conv_bias = load_vector (b, conv_prefix, "bias", c2, error)) == NULL
      || !load_batchnorm (b, bn_prefix, c2, CONV3D_BN_EPS, &scale, &shift,
                          error))
    goto out;
  bias = fold_batchnorm (weight, c2, (gint64) c * 27, scale, shift, conv_bias);

  for (int d = 0; d < depth; d++)
    {
      int first = MAX (d - 1, 0), last = MIN (d + 1, depth - 1);
      int blocks = last - first + 1;
      SsfpnConv2dParams conv = conv_params (blocks * c, c2, 3, 1, 1, 1);

      conv.in_offset = first * c;
      conv.weight = g_new (float, (gsize) c2 * blocks * c * 9);
      for (int o = 0; o < c2; o++)
        for (int k = 0; k < blocks; k++)
          {
            int tap = first + k - d + 1; /* kernel depth index */
            for (int i = 0; i < c; i++)
              memcpy (conv.weight + (((gsize) o * blocks + k) * c + i) * 9,
                      weight + (((gsize) o * c + i) * 3 + tap) * 9,
                      9 * sizeof (float));
          }
      conv.bias = g_memdup2 (bias, c2 * sizeof (float));
      conv.act = SSFPN_ACT_LEAKY_RELU;
      conv.act_alpha = SSFPN_LEAKY_SLOPE;
      conv.out_scale = 1.0f / depth;
      conv.accumulate = d > 0;
      emit_conv (b, input, output, &conv);
    }
  b->info->parameters += (gint64) c2 * c * 27 + c2;
  add_cost (b, output, (double) depth * c2 * c * 27);
  ok = TRUE;

out:
  g_free (weight);
  g_free (conv_bias);
  g_free (bias);
  g_free (scale);
  g_free (shift);
  g_free (prefix);
  g_free (conv_prefix);
  g_free (bn_prefix);
  return ok;
}

/* Detect's per-level 1x1 convolutions with the sigmoid; the decode ops
 * follow once the strides are known. Returns the level tensors. */
static int *
lower_detect_convs (Builder *b, GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  int no = l->c2;
  int *levels = g_new (int, l->n_from);
  char *prefix = g_strdup_printf ("model.%d.m.", l->index);

  for (int i = 0; i < l->n_from; i++)
    {
      int input = layer_input (b, l->from[i]);
      int c = tensor_channels (b, input);
      gint64 shape[4] = { no, c, 1, 1 };
      char *name = g_strdup_printf ("%s%d.", prefix, i);
      SsfpnConv2dParams conv = conv_params (c, no, 1, 1, 0, 1);

      conv.weight = load_tensor (b, name, "weight", 4, shape, error);
      conv.bias = conv.weight ? load_vector (b, name, "bias", no, error) : NULL;
      g_free (name);
      if (conv.bias == NULL)
        {
          g_free (conv.weight);
          g_clear_pointer (&levels, g_free);
          break;
        }
      conv.act = SSFPN_ACT_SIGMOID;
      levels[i] = ssfpn_graph_add_tensor (b->graph, no);
      emit_conv (b, input, levels[i], &conv);
      b->info->parameters += (gint64) no * c + no;
      add_cost (b, levels[i], (double) no * c);
    }
  g_free (prefix);
  return levels;
}

/* ---- layers ---------------------------------------------------------------- */

static gboolean
lower_layer (Builder *b, int *output, GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  int input = layer_input (b, l->from[0]);
  char *prefix;
  gboolean ok = TRUE;

  switch (l->kind)
    {
    case SSFPN_MODULE_CONCAT:
      *output = lower_concat (b);
      return TRUE;
    case SSFPN_MODULE_UNSQUEEZE:
      /* The scale axis exists only in the configuration: same tensor. */
      *output = input;
      return TRUE;
    case SSFPN_MODULE_DETECT:
      *output = -1;
      return TRUE; /* lowered by the caller */
    default:
      break;
    }

  *output = ssfpn_graph_add_tensor (b->graph, l->c2);
  prefix = g_strdup_printf ("model.%d.", l->index);
  switch (l->kind)
    {
    case SSFPN_MODULE_C3:
      ok = lower_c3 (b, prefix, input, *output, error);
      break;
    case SSFPN_MODULE_BOTTLENECK_CSP:
      ok = lower_bottleneck_csp (b, prefix, input, *output, error);
      break;
    case SSFPN_MODULE_SPACE_TO_DEPTH:
      emit_reorder (b, SSFPN_OP_SPACE_TO_DEPTH, input, *output, l->factor);
      break;
    case SSFPN_MODULE_CONTRACT:
      emit_reorder (b, SSFPN_OP_CONTRACT, input, *output, l->factor);
      break;
    case SSFPN_MODULE_SSFPN:
      ok = lower_seed_ssfpn (b, *output, error);
      break;
    case SSFPN_MODULE_CONV3D:
      ok = lower_conv3d (b, input, *output, error);
      break;
    default:
      ok = lower_repeatable (b, input, *output, error);
      break;
    }
  g_free (prefix);
  return ok;
}

static void
layer_clear (gpointer data)
{
  SsfpnLayer *layer = data;

  g_free (layer->from);
  g_free (layer->module);
  g_free (layer->args);
  if (layer->costs != NULL)
    g_array_unref (layer->costs);
}

/* ---- strides, anchors and checks at the model's size ---------------------- */

/* Strides as YOLOv5 measures them: input size / level size. */
static gboolean
measure_strides (Builder *b, const int imgsz[2], const int *levels,
                 GError **error)
{
  SsfpnGraph *graph = b->graph;
  int n = (int) graph->tensors->len;
  int *heights = g_new (int, n), *widths = g_new (int, n);
  gboolean ok;

  ok = ssfpn_graph_infer_shapes (graph, STRIDE_PROBE_SIZE, STRIDE_PROBE_SIZE,
                                 heights, widths, NULL);
  if (!ok)
    {
      /* Sizes that disagree (an ssFPN whose inputs do not halve, a concat
       * of different scales) read best at the model's own input size. */
      GError *probe_error = NULL;

      if (ssfpn_graph_infer_shapes (graph, imgsz[0], imgsz[1], heights, widths,
                                    error))
        {
          ssfpn_graph_infer_shapes (graph, STRIDE_PROBE_SIZE, STRIDE_PROBE_SIZE,
                                    heights, widths, &probe_error);
          g_propagate_prefixed_error (error, probe_error, "%s: at a %dx%d "
                                      "input: ", b->source, STRIDE_PROBE_SIZE,
                                      STRIDE_PROBE_SIZE);
        }
      else
        g_prefix_error (error, "%s: at ssfpn.imgsz [%d, %d]: ", b->source,
                        imgsz[0], imgsz[1]);
    }
  graph->strides = g_new0 (int, graph->nl);
  graph->max_stride = 0;
  for (int l = 0; ok && l < graph->nl; l++)
    {
      int h = heights[levels[l]], w = widths[levels[l]];

      if (STRIDE_PROBE_SIZE % h != 0 || h != w)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                       "%s: layer %d (Detect): level %d is %dx%d for a %dx%d "
                       "input, not an integer stride", b->source,
                       b->layer->index, l, h, w, STRIDE_PROBE_SIZE,
                       STRIDE_PROBE_SIZE);
          ok = FALSE;
          break;
        }
      graph->strides[l] = STRIDE_PROBE_SIZE / h;
      graph->max_stride = MAX (graph->max_stride, graph->strides[l]);
    }
  g_free (heights);
  g_free (widths);
  return ok;
}

/* The decode ops; anchors in pixels: model.i.anchors is in stride units. */
static gboolean
lower_detect_decode (Builder *b, const int *levels, GError **error)
{
  const SsfpnLayerConfig *l = b->layer;
  SsfpnGraph *graph = b->graph;
  gint64 shape[3] = { graph->nl, graph->na, 2 };
  char *prefix = g_strdup_printf ("model.%d.", l->index);
  float *anchors = load_tensor (b, prefix, "anchors", 3, shape, error);

  g_free (prefix);
  if (anchors == NULL)
    return FALSE;
  for (int level = 0; level < graph->nl; level++)
    {
      SsfpnOp op = { .type = SSFPN_OP_DETECT, .input = levels[level],
                     .output = -1, .layer = l->index };
      float stride = (float) graph->strides[level];

      op.p.detect.level = level;
      op.p.detect.stride = graph->strides[level];
      op.p.detect.na = graph->na;
      op.p.detect.nc = graph->nc;
      op.p.detect.anchors = g_new (float, 2 * graph->na);
      for (int i = 0; i < 2 * graph->na; i++)
        op.p.detect.anchors[i] = anchors[level * 2 * graph->na + i] * stride;
      ssfpn_graph_add_op (graph, &op);
    }
  g_free (anchors);
  return TRUE;
}

/* A model that opens will run: the graph must take its own input size. */
static gboolean
check_input_size (Builder *b, const int imgsz[2], GError **error)
{
  SsfpnGraph *graph = b->graph;
  int n = (int) graph->tensors->len;
  int *heights, *widths;
  gboolean ok;

  if (imgsz[0] % graph->max_stride != 0 || imgsz[1] % graph->max_stride != 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: ssfpn.imgsz [%d, %d] is not a multiple of the network's "
                   "largest stride %d", b->source, imgsz[0], imgsz[1],
                   graph->max_stride);
      return FALSE;
    }
  heights = g_new (int, n);
  widths = g_new (int, n);
  ok = ssfpn_graph_infer_shapes (graph, imgsz[0], imgsz[1], heights, widths,
                                 error);
  if (!ok)
    g_prefix_error (error, "%s: at ssfpn.imgsz [%d, %d]: ", b->source,
                    imgsz[0], imgsz[1]);
  g_free (heights);
  g_free (widths);
  return ok;
}

static gboolean
read_bn_eps (Builder *b, GError **error)
{
  const char *text = ssfpn_safetensors_metadata (b->st, "ssfpn.bn_eps");
  char *what;
  JsonNode *root;
  gboolean ok;

  b->bn_eps = DEFAULT_BN_EPS;
  if (text == NULL)
    return TRUE;
  what = g_strdup_printf ("%s: ssfpn.bn_eps", b->source);
  /* Checked first, so the message below is about the value, not about
   * text json-glib cannot be trusted with. */
  ok = ssfpn_json_check_text (text, strlen (text), what, error);
  if (ok)
    {
      root = ssfpn_json_parse (text, strlen (text), what, NULL);
      ok = root != NULL && JSON_NODE_TYPE (root) == JSON_NODE_VALUE
           && (json_node_get_value_type (root) == G_TYPE_DOUBLE
               || json_node_get_value_type (root) == G_TYPE_INT64);
      if (ok)
        {
          b->bn_eps = json_node_get_double (root);
          ok = isfinite (b->bn_eps) && b->bn_eps >= 0.0 && b->bn_eps < 1.0;
        }
      if (!ok)
        g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                     "%s: must be a JSON number in [0, 1), not \"%s\"", what,
                     text);
      if (root != NULL)
        json_node_unref (root);
    }
  g_free (what);
  return ok;
}

gboolean
ssfpn_model_build (SsfpnModel *model, const SsfpnSafetensors *st,
                   GError **error)
{
  Builder b = { .st = st, .source = st->source };
  const char *text = ssfpn_safetensors_metadata (st, "ssfpn.config");
  SsfpnConfig *config = NULL;
  int *levels = NULL;
  gboolean ok = FALSE;

  if (text == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: metadata ssfpn.config is missing", st->source);
      return FALSE;
    }
  if (!read_bn_eps (&b, error))
    return FALSE;
  config = ssfpn_config_parse (text, st->source, error);
  if (config == NULL)
    return FALSE;

  b.config = config;
  b.graph = ssfpn_graph_new ();
  b.graph->nc = config->nc;
  b.graph->na = config->na;
  b.graph->nl = config->nl;
  b.outputs = g_new (int, config->n_layers);
  model->layers = g_array_sized_new (FALSE, TRUE, sizeof (SsfpnLayer),
                                     config->n_layers);
  g_array_set_clear_func (model->layers, layer_clear);
  ssfpn_graph_add_tensor (b.graph, 3); /* the network input */

  for (int i = 0; i < config->n_layers; i++)
    {
      const SsfpnLayerConfig *l = &config->layers[i];
      SsfpnLayer info = {
        .from = g_strdup (l->from_text), .repeats = l->repeats,
        .module = g_strdup (l->module), .args = g_strdup (l->args_text),
        .depth = l->depth > 0 ? l->depth : 1,
        .costs = g_array_new (FALSE, FALSE, sizeof (SsfpnLayerCost)),
      };

      g_array_append_val (model->layers, info);
      b.layer = l;
      b.info = &g_array_index (model->layers, SsfpnLayer, i);
      if (!lower_layer (&b, &b.outputs[i], error))
        goto out;
      b.info->output_tensor = b.outputs[i];
      if (l->kind == SSFPN_MODULE_DETECT
          && (levels = lower_detect_convs (&b, error)) == NULL)
        goto out;
    }

  /* b.layer and b.info are the Detect layer's from here on. */
  if (!measure_strides (&b, model->imgsz, levels, error)
      || !lower_detect_decode (&b, levels, error)
      || !check_input_size (&b, model->imgsz, error))
    goto out;

  model->parameters = 0;
  for (guint i = 0; i < model->layers->len; i++)
    model->parameters += g_array_index (model->layers, SsfpnLayer, i).parameters;
  model->graph = g_steal_pointer (&b.graph);
  ok = TRUE;

out:
  if (!ok)
    g_clear_pointer (&model->layers, g_array_unref);
  ssfpn_graph_free (b.graph);
  g_free (levels);
  g_free (b.outputs);
  ssfpn_config_free (config);
  return ok;
}
