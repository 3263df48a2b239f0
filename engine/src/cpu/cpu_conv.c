/* CONV2D through oneDNN: one primitive per op, post-ops fused (see
 * cpu_conv.h for the chain and why accumulation reads a copy). */
#include "cpu/cpu_conv.h"
#include "cpu/dnnl_compat.h"

#include <oneapi/dnnl/dnnl_debug.h>

#include <string.h>

#include "ssfpn/ssfpn.h"

/* Execute arguments: src, weights, bias, dst, scratchpad, up to three binary
 * post-op sources. */
#define MAX_ARGS 8

typedef struct {
  dnnl_memory_t src, dst, residual, scratchpad;
  dnnl_exec_arg_t args[MAX_ARGS];
  int n_args;
} ItemBinding;

struct _CpuConv {
  int layer;
  int batch;
  dnnl_engine_t engine;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t primitive;
  CpuMd src_md, dst_md, residual_md;
  dnnl_memory_t weights, bias, shift;
  /* Accumulation: the previous dst content, copied before each run. */
  dnnl_memory_t previous;
  float *previous_data;
  gsize dst_bytes;
  int shift_arg, residual_arg, previous_arg; /* post-op indices, or -1 */
  gboolean has_residual;
  ItemBinding *items;
  float **dst_pointers; /* per item, for the accumulate copy */
};

#define DNNL_CHECK(call, what)                                             \
  G_STMT_START {                                                           \
    dnnl_status_t status_ = (call);                                        \
    if (status_ != dnnl_success) {                                         \
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,                \
                   "layer %d: oneDNN %s failed: %s (%s)", layer, what,     \
                   dnnl_status2str (status_), #call);                      \
      goto fail;                                                           \
    }                                                                      \
  } G_STMT_END

static dnnl_format_tag_t
tag_for_block (int block)
{
  switch (block) {
    case 16:
      return dnnl_nChw16c;
    case 8:
      return dnnl_nChw8c;
    default:
      return dnnl_nchw;
  }
}

static gboolean
activation_alg (const SsfpnConv2dParams *params, dnnl_alg_kind_t *alg,
                float *alpha, float *beta)
{
  *alpha = *beta = 0.0f;
  switch (params->act) {
    case SSFPN_ACT_NONE:
      return FALSE;
    case SSFPN_ACT_SILU:
      *alg = dnnl_eltwise_swish;
      *alpha = 1.0f;
      return TRUE;
    case SSFPN_ACT_LEAKY_RELU:
      *alg = dnnl_eltwise_relu;
      *alpha = params->act_alpha;
      return TRUE;
    case SSFPN_ACT_RELU:
      *alg = dnnl_eltwise_relu;
      return TRUE;
    case SSFPN_ACT_HARDSWISH:
      /* x * clip(x / 6 + 1 / 2, 0, 1): oneDNN 3 takes the slope and the
       * offset as alpha and beta; 2.x has them fixed and ignores both. */
      *alg = dnnl_eltwise_hardswish;
      *alpha = 1.0f / 6.0f;
      *beta = 0.5f;
      return TRUE;
    case SSFPN_ACT_SIGMOID:
      *alg = dnnl_eltwise_logistic;
      return TRUE;
  }
  return FALSE;
}

/* Copies @data into a new memory of plain layout @md, then reorders it into
 * @target_md (the primitive's preferred layout) when that differs. */
static dnnl_memory_t
constant_memory (dnnl_engine_t engine, CpuConstMd md,
                 CpuConstMd target_md, const float *data,
                 int layer, GError **error)
{
  dnnl_memory_t plain = NULL, target = NULL;
  dnnl_primitive_desc_t reorder_pd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_stream_t stream = NULL;
  void *handle = NULL;

  DNNL_CHECK (dnnl_memory_create (&plain, md, engine, DNNL_MEMORY_ALLOCATE),
              "memory creation");
  DNNL_CHECK (dnnl_memory_get_data_handle (plain, &handle), "memory access");
  memcpy (handle, data, dnnl_memory_desc_get_size (md));
  if (dnnl_memory_desc_equal (md, target_md))
    return plain;

  DNNL_CHECK (dnnl_memory_create (&target, target_md, engine,
                                  DNNL_MEMORY_ALLOCATE), "memory creation");
  DNNL_CHECK (dnnl_reorder_primitive_desc_create (&reorder_pd, md, engine,
                                                  target_md, engine, NULL),
              "weights reorder");
  DNNL_CHECK (dnnl_primitive_create (&reorder, reorder_pd), "weights reorder");
  DNNL_CHECK (dnnl_stream_create (&stream, engine, dnnl_stream_default_flags),
              "stream creation");
  {
    dnnl_exec_arg_t args[2] = {
      { DNNL_ARG_FROM, plain },
      { DNNL_ARG_TO, target },
    };
    DNNL_CHECK (dnnl_primitive_execute (reorder, stream, 2, args),
                "weights reorder");
    DNNL_CHECK (dnnl_stream_wait (stream), "weights reorder");
  }
  dnnl_stream_destroy (stream);
  dnnl_primitive_destroy (reorder);
  dnnl_primitive_desc_destroy (reorder_pd);
  dnnl_memory_destroy (plain);
  return target;

fail:
  if (stream != NULL)
    dnnl_stream_destroy (stream);
  if (reorder != NULL)
    dnnl_primitive_destroy (reorder);
  if (reorder_pd != NULL)
    dnnl_primitive_desc_destroy (reorder_pd);
  if (target != NULL)
    dnnl_memory_destroy (target);
  if (plain != NULL)
    dnnl_memory_destroy (plain);
  return NULL;
}

static void
free_descriptors (CpuMd a, CpuMd b, CpuMd c, CpuMd d)
{
  cpu_md_destroy (a);
  cpu_md_destroy (b);
  cpu_md_destroy (c);
  cpu_md_destroy (d);
}

CpuConv *
cpu_conv_new (dnnl_engine_t engine, const SsfpnConv2dParams *params,
              const CpuConvShape *shape, int layer, GError **error)
{
  CpuConv *conv = g_new0 (CpuConv, 1);
  const int groups = params->groups, k = params->kernel;
  CpuMd weights_any = NULL, weights_plain = NULL, bias_md = NULL,
      shift_md = NULL;
  dnnl_post_ops_t post_ops = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_alg_kind_t alg;
  float alpha, beta;
  int n_post_ops = 0;

  conv->layer = layer;
  conv->batch = shape->batch;
  conv->engine = engine;
  conv->shift_arg = conv->residual_arg = conv->previous_arg = -1;
  conv->items = g_new0 (ItemBinding, shape->batch);
  conv->dst_pointers = g_new0 (float *, shape->batch);

  {
    dnnl_dims_t src_dims = { 1, params->in_channels, shape->in_height,
                             shape->in_width };
    dnnl_dims_t dst_dims = { 1, params->out_channels, shape->out_height,
                             shape->out_width };
    dnnl_dims_t bias_dims = { params->out_channels };
    dnnl_dims_t shift_dims = { 1, params->out_channels, 1, 1 };

    DNNL_CHECK (cpu_md_create (&conv->src_md, 4, src_dims,
                               tag_for_block (shape->src_block)),
                "source descriptor");
    DNNL_CHECK (cpu_md_create (&conv->dst_md, 4, dst_dims,
                               tag_for_block (shape->dst_block)),
                "destination descriptor");
    DNNL_CHECK (cpu_md_create (&bias_md, 1, bias_dims, dnnl_x),
                "bias descriptor");
    DNNL_CHECK (cpu_md_create (&shift_md, 4, shift_dims, dnnl_nchw),
                "shift descriptor");
    if (params->residual >= 0)
      DNNL_CHECK (cpu_md_create (&conv->residual_md, 4, dst_dims,
                                 tag_for_block (shape->residual_block)),
                  "residual descriptor");
  }

  if (groups == 1) {
    dnnl_dims_t dims = { params->out_channels, params->in_channels, k, k };

    DNNL_CHECK (cpu_md_create (&weights_any, 4, dims, dnnl_format_tag_any),
                "weights descriptor");
    DNNL_CHECK (cpu_md_create (&weights_plain, 4, dims, dnnl_oihw),
                "weights descriptor");
  } else {
    dnnl_dims_t dims = { groups, params->out_channels / groups,
                         params->in_channels / groups, k, k };

    DNNL_CHECK (cpu_md_create (&weights_any, 5, dims, dnnl_format_tag_any),
                "weights descriptor");
    DNNL_CHECK (cpu_md_create (&weights_plain, 5, dims, dnnl_goihw),
                "weights descriptor");
  }

  {
    dnnl_dims_t strides = { params->stride, params->stride };
    dnnl_dims_t padding = { params->pad, params->pad };
    /* PyTorch drops the rows that do not fit; oneDNN wants the right
     * padding that makes the output size exact. */
    dnnl_dims_t padding_r = {
      (shape->out_height - 1) * params->stride + k - shape->in_height
        - params->pad,
      (shape->out_width - 1) * params->stride + k - shape->in_width
        - params->pad,
    };

    DNNL_CHECK (dnnl_post_ops_create (&post_ops), "post-ops");
    if (activation_alg (params, &alg, &alpha, &beta)) {
      DNNL_CHECK (cpu_post_ops_append_eltwise (post_ops, alg, alpha, beta),
                  "activation post-op");
      n_post_ops++;
    }
    if (params->out_scale != 1.0f) {
      DNNL_CHECK (cpu_post_ops_append_eltwise (post_ops, dnnl_eltwise_linear,
                                               params->out_scale, 0.0f),
                  "scale post-op");
      n_post_ops++;
    }
    if (params->out_shift != NULL) {
      DNNL_CHECK (dnnl_post_ops_append_binary (post_ops, dnnl_binary_add,
                                               shift_md), "shift post-op");
      conv->shift_arg = n_post_ops++;
    }
    if (params->residual >= 0) {
      DNNL_CHECK (dnnl_post_ops_append_binary (post_ops, dnnl_binary_add,
                                               conv->residual_md),
                  "residual post-op");
      conv->has_residual = TRUE;
      conv->residual_arg = n_post_ops++;
    }
    if (params->accumulate) {
      DNNL_CHECK (dnnl_post_ops_append_binary (post_ops, dnnl_binary_add,
                                               conv->dst_md),
                  "accumulate post-op");
      conv->previous_arg = n_post_ops++;
    }

    DNNL_CHECK (dnnl_primitive_attr_create (&attr), "attributes");
    DNNL_CHECK (dnnl_primitive_attr_set_post_ops (attr, post_ops),
                "attributes");
    /* The plan owns one scratchpad for all its primitives. */
    DNNL_CHECK (dnnl_primitive_attr_set_scratchpad_mode (attr,
                                                         dnnl_scratchpad_mode_user),
                "attributes");
    DNNL_CHECK (cpu_convolution_pd_create (&conv->pd, engine, conv->src_md,
                                           weights_any, bias_md, conv->dst_md,
                                           strides, padding, padding_r, attr),
                "convolution setup");
  }

  DNNL_CHECK (dnnl_primitive_create (&conv->primitive, conv->pd),
              "convolution setup");
  dnnl_primitive_attr_destroy (attr);
  attr = NULL;
  dnnl_post_ops_destroy (post_ops);
  post_ops = NULL;

  conv->weights = constant_memory (engine, weights_plain,
                                   dnnl_primitive_desc_query_md (conv->pd,
                                                                 dnnl_query_weights_md,
                                                                 0),
                                   params->weight, layer, error);
  if (conv->weights == NULL)
    goto fail;
  conv->bias = constant_memory (engine, bias_md, bias_md, params->bias,
                                layer, error);
  if (conv->bias == NULL)
    goto fail;
  if (params->out_shift != NULL) {
    conv->shift = constant_memory (engine, shift_md, shift_md,
                                   params->out_shift, layer, error);
    if (conv->shift == NULL)
      goto fail;
  }
  if (params->accumulate) {
    conv->dst_bytes = dnnl_memory_desc_get_size (conv->dst_md);
    DNNL_CHECK (dnnl_memory_create (&conv->previous, conv->dst_md, engine,
                                    DNNL_MEMORY_ALLOCATE), "memory creation");
    DNNL_CHECK (dnnl_memory_get_data_handle (conv->previous,
                                             (void **) &conv->previous_data),
                "memory access");
  }
  free_descriptors (weights_any, weights_plain, bias_md, shift_md);
  return conv;

fail:
  if (attr != NULL)
    dnnl_primitive_attr_destroy (attr);
  if (post_ops != NULL)
    dnnl_post_ops_destroy (post_ops);
  free_descriptors (weights_any, weights_plain, bias_md, shift_md);
  cpu_conv_free (conv);
  return NULL;
}

void
cpu_conv_free (CpuConv *conv)
{
  if (conv == NULL)
    return;
  for (int i = 0; i < conv->batch; i++) {
    ItemBinding *b = &conv->items[i];

    if (b->src != NULL)
      dnnl_memory_destroy (b->src);
    if (b->dst != NULL)
      dnnl_memory_destroy (b->dst);
    if (b->residual != NULL)
      dnnl_memory_destroy (b->residual);
    if (b->scratchpad != NULL)
      dnnl_memory_destroy (b->scratchpad);
  }
  g_free (conv->items);
  g_free (conv->dst_pointers);
  if (conv->previous != NULL)
    dnnl_memory_destroy (conv->previous);
  if (conv->shift != NULL)
    dnnl_memory_destroy (conv->shift);
  if (conv->bias != NULL)
    dnnl_memory_destroy (conv->bias);
  if (conv->weights != NULL)
    dnnl_memory_destroy (conv->weights);
  if (conv->primitive != NULL)
    dnnl_primitive_destroy (conv->primitive);
  if (conv->pd != NULL)
    dnnl_primitive_desc_destroy (conv->pd);
  cpu_md_destroy (conv->src_md);
  cpu_md_destroy (conv->dst_md);
  cpu_md_destroy (conv->residual_md);
  g_free (conv);
}

const char *
cpu_conv_impl (const CpuConv *conv)
{
  const char *impl = NULL;

  if (dnnl_primitive_desc_query (conv->pd, dnnl_query_impl_info_str, 0,
                                 &impl) != dnnl_success)
    return "unknown";
  return impl;
}

gboolean
cpu_conv_is_reference (const CpuConv *conv)
{
  return g_str_has_prefix (cpu_conv_impl (conv), "ref");
}

gsize
cpu_conv_scratchpad_size (const CpuConv *conv)
{
  CpuConstMd md =
    dnnl_primitive_desc_query_md (conv->pd, dnnl_query_scratchpad_md, 0);

  return md != NULL ? dnnl_memory_desc_get_size (md) : 0;
}

static void
add_arg (ItemBinding *b, int arg, dnnl_memory_t memory)
{
  g_assert (b->n_args < MAX_ARGS);
  b->args[b->n_args].arg = arg;
  b->args[b->n_args].memory = memory;
  b->n_args++;
}

gboolean
cpu_conv_bind (CpuConv *conv, int item, float *src, float *dst,
               float *residual, void *scratchpad, GError **error)
{
  ItemBinding *b = &conv->items[item];
  const int layer = conv->layer;
  CpuConstMd scratch_md =
    dnnl_primitive_desc_query_md (conv->pd, dnnl_query_scratchpad_md, 0);

  if (b->src != NULL || conv->has_residual != (residual != NULL))
    {
      /* A broken internal invariant, still reported as an error. */
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "layer %d: internal error: convolution item %d bound "
                   "twice or with the wrong residual", layer, item);
      return FALSE;
    }

  DNNL_CHECK (dnnl_memory_create (&b->src, conv->src_md, conv->engine, src),
              "memory creation");
  DNNL_CHECK (dnnl_memory_create (&b->dst, conv->dst_md, conv->engine, dst),
              "memory creation");
  add_arg (b, DNNL_ARG_SRC, b->src);
  add_arg (b, DNNL_ARG_WEIGHTS, conv->weights);
  add_arg (b, DNNL_ARG_BIAS, conv->bias);
  add_arg (b, DNNL_ARG_DST, b->dst);
  if (scratch_md != NULL && dnnl_memory_desc_get_size (scratch_md) > 0) {
    DNNL_CHECK (dnnl_memory_create (&b->scratchpad, scratch_md, conv->engine,
                                    scratchpad), "memory creation");
    add_arg (b, DNNL_ARG_SCRATCHPAD, b->scratchpad);
  }
  if (conv->shift_arg >= 0)
    add_arg (b, DNNL_ARG_ATTR_MULTIPLE_POST_OP (conv->shift_arg)
                | DNNL_ARG_SRC_1, conv->shift);
  if (conv->residual_arg >= 0) {
    DNNL_CHECK (dnnl_memory_create (&b->residual, conv->residual_md,
                                    conv->engine, residual),
                "memory creation");
    add_arg (b, DNNL_ARG_ATTR_MULTIPLE_POST_OP (conv->residual_arg)
                | DNNL_ARG_SRC_1, b->residual);
  }
  if (conv->previous_arg >= 0)
    add_arg (b, DNNL_ARG_ATTR_MULTIPLE_POST_OP (conv->previous_arg)
                | DNNL_ARG_SRC_1, conv->previous);
  conv->dst_pointers[item] = dst;
  return TRUE;

fail:
  return FALSE;
}

gboolean
cpu_conv_run (CpuConv *conv, dnnl_stream_t stream, int item, GError **error)
{
  ItemBinding *b = &conv->items[item];
  const int layer = conv->layer;

  if (conv->previous != NULL)
    memcpy (conv->previous_data, conv->dst_pointers[item], conv->dst_bytes);
  DNNL_CHECK (dnnl_primitive_execute (conv->primitive, stream, b->n_args,
                                      b->args), "convolution");
  return TRUE;

fail:
  return FALSE;
}
