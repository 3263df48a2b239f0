/* The CPU backend: oneDNN convolutions plus our own kernels, fp32.
 *
 * A plan holds one zeroed, 64-byte aligned buffer per root tensor for the
 * whole batch, one oneDNN primitive per convolution, and runs the ops in
 * order, one batch item at a time, allocating nothing.
 *
 * Layout: each root buffer is NCHW or channel-blocked (nChw16c, nChw8c).
 * oneDNN's JIT convolutions need blocked layouts to be fast (plain NCHW goes
 * through im2col + GEMM), and a channel slice of a blocked buffer is itself
 * a dense blocked tensor when its offset is a multiple of the block, so a
 * root takes the largest block that every convolution touching it is
 * aligned to. A convolution between layouts that oneDNN only serves with a
 * reference kernel pulls the roots involved down to a common block.
 * SSFPN_CPU_LAYOUT=nchw forces plain NCHW everywhere (tests, debugging).
 */
#define G_LOG_DOMAIN "ssfpn-cpu"

#include "buildconfig.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_conv.h"
#include "cpu/cpu_kernels.h"

#define BUFFER_ALIGNMENT 64

struct _SsfpnPlan {
  const SsfpnGraph *graph; /* borrowed: outlives the plan */
  int batch, height, width;
  int threads;
  int n_tensors;
  int *blocks;             /* per root tensor; 0 for unused roots */
  float **buffers;         /* per root tensor, NULL for views */
  gsize *item_floats;      /* per root tensor */
  CpuTensorView *views;    /* per tensor */
  CpuConv **convs;         /* per op, NULL for other ops */
  void *scratchpad;
  int *level_rows;         /* (nl + 1) */
  int rows, columns;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
};

static gboolean
cpu_available (int device_index, GError **error)
{
  if (device_index != 0) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "there is one CPU device, not %d", device_index);
    return FALSE;
  }
  return TRUE;
}

/* ---- threads ------------------------------------------------------------ */

/* oneDNN (Debian's build uses OpenMP) and our kernels take the thread count
 * from the calling thread's OpenMP setting; set it for the plan's work and
 * give the caller its own back afterwards. */
static int
threads_enter (int threads)
{
#ifdef HAVE_OPENMP
  int saved = omp_get_max_threads ();

  omp_set_num_threads (threads);
  return saved;
#else
  return threads;
#endif
}

static void
threads_leave (int saved)
{
#ifdef HAVE_OPENMP
  omp_set_num_threads (saved);
#endif
}

static int
default_threads (void)
{
#ifdef HAVE_OPENMP
  return omp_get_num_procs ();
#else
  return (int) g_get_num_processors ();
#endif
}

/* ---- layouts ------------------------------------------------------------ */

static int
lower_block (int block)
{
  return block == 16 ? 8 : 1;
}

/* Lowers the block of the root under @tensor until the channel slice
 * [offset, offset + channels) of the tensor is a dense tensor in it. */
static void
require_dense_slice (SsfpnPlan *plan, int tensor, int offset, int channels)
{
  int base = 0;
  int root = ssfpn_graph_root (plan->graph, tensor, &base);
  int root_channels = ssfpn_graph_tensor (plan->graph, root)->channels;
  int begin = base + offset;

  while (plan->blocks[root] > 1) {
    int b = plan->blocks[root];

    /* The last slice may end inside a block: the padding belongs to it. */
    if (begin % b == 0
        && (channels % b == 0 || begin + channels == root_channels))
      break;
    plan->blocks[root] = lower_block (b);
  }
}

static gboolean
force_nchw (void)
{
  return g_strcmp0 (g_getenv ("SSFPN_CPU_LAYOUT"), "nchw") == 0;
}

/* The block the machine's JIT kernels take: 16 channels with AVX-512, 8
 * below it. A wider start makes every convolution a reference one, and the
 * relayout then falls all the way to NCHW (im2col + GEMM: 2.8 to 4.7 times
 * slower on the 2-core AVX2 machine of docs/performance.md). The ISA values are
 * bit sets, so a test of avx512_core's bits leaves AVX2-VNNI out. */
static int
widest_block (void)
{
  if (force_nchw ())
    return 1;
  return (dnnl_get_effective_cpu_isa () & dnnl_cpu_isa_avx512_core)
         == dnnl_cpu_isa_avx512_core ? 16 : 8;
}

static void
choose_blocks (SsfpnPlan *plan)
{
  const SsfpnGraph *graph = plan->graph;
  int widest = widest_block ();

  for (int t = 0; t < plan->n_tensors; t++)
    plan->blocks[t] = 0;
  for (int t = 0; t < plan->n_tensors; t++) {
    if (ssfpn_graph_tensor (graph, t)->parent < 0 && plan->views[t].height > 0)
      plan->blocks[t] = widest;
  }
  /* The network input is copied in as NCHW; oneDNN's first-layer kernels
   * read it directly. */
  plan->blocks[0] = 1;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    const SsfpnConv2dParams *c = &op->p.conv;

    if (op->type != SSFPN_OP_CONV2D)
      continue;
    require_dense_slice (plan, op->input, c->in_offset, c->in_channels);
    require_dense_slice (plan, op->output, 0, c->out_channels);
    if (c->residual >= 0)
      require_dense_slice (plan, c->residual, 0, c->out_channels);
  }
}

/* ---- plan --------------------------------------------------------------- */

static void
free_convs (SsfpnPlan *plan)
{
  for (guint i = 0; i < plan->graph->ops->len; i++) {
    cpu_conv_free (plan->convs[i]);
    plan->convs[i] = NULL;
  }
}

static void
cpu_plan_free (SsfpnPlan *plan)
{
  if (plan == NULL)
    return;
  if (plan->convs != NULL)
    free_convs (plan);
  g_free (plan->convs);
  for (int t = 0; plan->buffers != NULL && t < plan->n_tensors; t++)
    free (plan->buffers[t]);
  g_free (plan->buffers);
  free (plan->scratchpad);
  g_free (plan->blocks);
  g_free (plan->item_floats);
  g_free (plan->views);
  g_free (plan->level_rows);
  if (plan->stream != NULL)
    dnnl_stream_destroy (plan->stream);
  if (plan->engine != NULL)
    dnnl_engine_destroy (plan->engine);
  g_free (plan);
}

/* NULL when @n floats do not fit in memory: the sizes come from the
 * caller's batch and input size, so running out is an error, not an abort.
 * Free with free(). */
static float *
aligned_zeroed_floats (gsize n)
{
  gsize bytes;
  void *p;

  if (!g_size_checked_mul (&bytes, MAX (n, 1), sizeof (float))
      || bytes > G_MAXSIZE - BUFFER_ALIGNMENT)
    return NULL;
  bytes = (bytes + BUFFER_ALIGNMENT - 1) / BUFFER_ALIGNMENT * BUFFER_ALIGNMENT;
  p = aligned_alloc (BUFFER_ALIGNMENT, bytes);
  if (p != NULL)
    memset (p, 0, bytes);
  return p;
}

/* The root buffers' sum against the memory there is, before any is
 * touched. */
static gboolean
check_plan_memory (const SsfpnPlan *plan, GError **error)
{
  double needed = 0;
  /* Linux overcommits: each buffer's allocation succeeds on its own, and
   * zeroing more than this gets the process killed instead of an error.
   * 0: nothing known, no check. */
  guint64 available = ssfpn_cpu_available_bytes ();

  for (int t = 0; t < plan->n_tensors; t++)
    needed += (double) plan->item_floats[t] * plan->batch * sizeof (float);
  if (available == 0 || needed <= (double) available)
    return TRUE;
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
               "batch %d at %dx%d needs %.1f GiB of activations on the CPU, "
               "more than the %.1f GiB of memory available; try a smaller "
               "batch or input size", plan->batch, plan->height, plan->width,
               needed / (1 << 30), (double) available / (1 << 30));
  return FALSE;
}

/* Checks what the kernels rely on, naming the layer that breaks it. */
static gboolean
check_op (const SsfpnGraph *graph, const SsfpnOp *op, GError **error)
{
  int in_channels = ssfpn_graph_tensor (graph, op->input)->channels;
  int out_channels = op->output >= 0
                     ? ssfpn_graph_tensor (graph, op->output)->channels : 0;
  gboolean ok = TRUE;
  const char *what = "";

  switch (op->type) {
    case SSFPN_OP_CONV2D:{
      const SsfpnConv2dParams *c = &op->p.conv;
      ok = c->in_offset >= 0 && c->in_offset + c->in_channels <= in_channels
           && c->out_channels == out_channels && c->groups >= 1
           && c->in_channels % c->groups == 0
           && c->out_channels % c->groups == 0 && c->kernel >= 1
           && c->stride >= 1 && c->pad >= 0
           && (c->residual < 0
               || ssfpn_graph_tensor (graph, c->residual)->channels
                  == out_channels);
      what = "convolution channels, groups or residual";
      break;
    }
    case SSFPN_OP_UPSAMPLE_NEAREST:
      ok = op->p.upsample.factor >= 1 && in_channels == out_channels;
      what = "upsample factor or channels";
      break;
    case SSFPN_OP_MAXPOOL:
      ok = in_channels == out_channels && op->p.maxpool.kernel >= 1
           && op->p.maxpool.stride >= 1
           && 2 * op->p.maxpool.pad <= op->p.maxpool.kernel;
      what = "max-pool channels or padding (at most half the kernel)";
      break;
    case SSFPN_OP_SPACE_TO_DEPTH:
      ok = op->p.reorder.gain == 2 && out_channels == 4 * in_channels;
      what = "space-to-depth gain (must be 2) or channels";
      break;
    case SSFPN_OP_CONTRACT:
      ok = op->p.reorder.gain >= 1
           && out_channels == op->p.reorder.gain * op->p.reorder.gain
                              * in_channels;
      what = "Contract gain or channels";
      break;
    case SSFPN_OP_COPY:
      ok = in_channels == out_channels;
      what = "copy channels";
      break;
    case SSFPN_OP_DETECT:{
      const SsfpnDetectParams *d = &op->p.detect;
      ok = d->level >= 0 && d->level < graph->nl && d->na == graph->na
           && d->nc == graph->nc && in_channels == d->na * (d->nc + 5);
      what = "Detect level, anchors or channels";
      break;
    }
    default:
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_UNSUPPORTED,
                   "layer %d: op type %d is unknown to the CPU backend",
                   op->layer, (int) op->type);
      return FALSE;
  }
  if (!ok) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                 "layer %d: the CPU backend cannot run this op: bad %s",
                 op->layer, what);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_ops (const SsfpnPlan *plan, GError **error)
{
  const SsfpnGraph *graph = plan->graph;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    int n_tensors = (int) graph->tensors->len;
    gboolean detect = op->type == SSFPN_OP_DETECT;

    if (op->input < 0 || op->input >= n_tensors || op->output >= n_tensors
        || (op->output < 0 && !detect) || (op->output >= 0 && detect)
        || (op->type == SSFPN_OP_CONV2D && op->p.conv.residual >= n_tensors)) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                   "layer %d: op %u refers to a tensor that does not exist",
                   op->layer, i);
      return FALSE;
    }
    if (!check_op (graph, op, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
create_convs (SsfpnPlan *plan, GError **error)
{
  const SsfpnGraph *graph = plan->graph;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    const SsfpnConv2dParams *c = &op->p.conv;
    CpuConvShape shape;

    if (op->type != SSFPN_OP_CONV2D)
      continue;
    shape.in_height = plan->views[op->input].height;
    shape.in_width = plan->views[op->input].width;
    shape.out_height = plan->views[op->output].height;
    shape.out_width = plan->views[op->output].width;
    shape.src_block = plan->views[op->input].block;
    shape.dst_block = plan->views[op->output].block;
    shape.residual_block = c->residual >= 0 ? plan->views[c->residual].block
                                            : 1;
    shape.batch = plan->batch;
    plan->convs[i] = cpu_conv_new (plan->engine, c, &shape, op->layer, error);
    if (plan->convs[i] == NULL)
      return FALSE;
  }
  return TRUE;
}

static void
update_view_blocks (SsfpnPlan *plan)
{
  for (int t = 0; t < plan->n_tensors; t++) {
    int root = ssfpn_graph_root (plan->graph, t, NULL);

    plan->views[t].block = MAX (plan->blocks[root], 1);
  }
}

/* For each convolution oneDNN serves only with a reference kernel, moves
 * the layouts towards what its JIT kernels take: a source whose channels
 * do not fill the blocks becomes NCHW (the first-layer kernels read NCHW
 * into a blocked output); tensors that disagree go to their common block;
 * tensors that agree go one block smaller (grouped convolutions whose groups
 * do not fill a block). Returns TRUE when something changed. */
static gboolean
relayout_slow_convs (SsfpnPlan *plan)
{
  const SsfpnGraph *graph = plan->graph;
  gboolean changed = FALSE;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    int roots[3], n = 0, lowest = 16, highest = 1;
    int src_root = ssfpn_graph_root (graph, op->input, NULL);

    if (plan->convs[i] == NULL || !cpu_conv_is_reference (plan->convs[i]))
      continue;
    roots[n++] = src_root;
    roots[n++] = ssfpn_graph_root (graph, op->output, NULL);
    if (op->p.conv.residual >= 0)
      roots[n++] = ssfpn_graph_root (graph, op->p.conv.residual, NULL);
    for (int j = 0; j < n; j++) {
      lowest = MIN (lowest, plan->blocks[roots[j]]);
      highest = MAX (highest, plan->blocks[roots[j]]);
    }
    if (highest == 1)
      continue; /* NCHW everywhere already: nothing better to try */
    changed = TRUE;
    if (plan->blocks[src_root] > 1
        && op->p.conv.in_channels % plan->blocks[src_root] != 0) {
      plan->blocks[src_root] = 1;
    } else if (lowest != highest) {
      for (int j = 0; j < n; j++)
        plan->blocks[roots[j]] = lowest;
    } else {
      for (int j = 0; j < n; j++)
        plan->blocks[roots[j]] = lower_block (highest);
    }
  }
  return changed;
}

static gboolean
bind_convs (SsfpnPlan *plan, GError **error)
{
  const SsfpnGraph *graph = plan->graph;
  gsize scratch_bytes = 0;

  for (guint i = 0; i < graph->ops->len; i++) {
    if (plan->convs[i] != NULL)
      scratch_bytes = MAX (scratch_bytes,
                           cpu_conv_scratchpad_size (plan->convs[i]));
  }
  plan->scratchpad = aligned_zeroed_floats (scratch_bytes / sizeof (float) + 1);
  if (plan->scratchpad == NULL) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                 "batch %d at %dx%d: cannot allocate %" G_GSIZE_FORMAT
                 " bytes of convolution scratch space", plan->batch,
                 plan->height, plan->width, scratch_bytes);
    return FALSE;
  }

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    const SsfpnConv2dParams *c = &op->p.conv;

    if (plan->convs[i] == NULL)
      continue;
    g_debug ("layer %d: %dx%d conv %d -> %d, stride %d, groups %d: %s "
             "(blocks %d -> %d)", op->layer, c->kernel, c->kernel,
             c->in_channels, c->out_channels, c->stride, c->groups,
             cpu_conv_impl (plan->convs[i]), plan->views[op->input].block,
             plan->views[op->output].block);
    for (int item = 0; item < plan->batch; item++) {
      float *src = cpu_view_channel (&plan->views[op->input], item,
                                     c->in_offset);
      float *dst = cpu_view_channel (&plan->views[op->output], item, 0);
      float *residual = c->residual >= 0
                        ? cpu_view_channel (&plan->views[c->residual], item, 0)
                        : NULL;

      if (!cpu_conv_bind (plan->convs[i], item, src, dst, residual,
                          plan->scratchpad, error))
        return FALSE;
    }
  }
  return TRUE;
}

static SsfpnPlan *
cpu_plan_new (const SsfpnGraph *graph, const SsfpnPlanOptions *options,
              GError **error)
{
  SsfpnPlan *plan;
  int *heights, *widths;
  int saved_threads;

  if (options->precision != SSFPN_PRECISION_FP32) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_UNSUPPORTED,
                 "the CPU backend runs fp32 only; fp16 needs a GPU backend");
    return NULL;
  }
  if (!ssfpn_plan_options_check_shape (options, error))
    return NULL;

  plan = g_new0 (SsfpnPlan, 1);
  plan->graph = graph;
  plan->batch = options->batch;
  plan->height = options->height;
  plan->width = options->width;
  plan->threads = options->threads > 0 ? options->threads : default_threads ();
  plan->n_tensors = (int) graph->tensors->len;
  plan->blocks = g_new0 (int, plan->n_tensors);
  plan->buffers = g_new0 (float *, plan->n_tensors);
  plan->item_floats = g_new0 (gsize, plan->n_tensors);
  plan->views = g_new0 (CpuTensorView, plan->n_tensors);
  plan->convs = g_new0 (CpuConv *, graph->ops->len);
  plan->level_rows = g_new0 (int, graph->nl + 1);
  plan->rows = ssfpn_graph_output_rows (graph, plan->height, plan->width,
                                        plan->level_rows);
  plan->columns = graph->nc + 5;

  saved_threads = threads_enter (plan->threads);

  heights = g_new0 (int, plan->n_tensors);
  widths = g_new0 (int, plan->n_tensors);
  if (!ssfpn_graph_infer_shapes (graph, plan->height, plan->width, heights,
                                 widths, error)) {
    g_free (heights);
    g_free (widths);
    goto fail;
  }
  for (int t = 0; t < plan->n_tensors; t++) {
    CpuTensorView *v = &plan->views[t];
    int root = ssfpn_graph_root (graph, t, &v->channel_offset);

    (void) root;
    v->channels = ssfpn_graph_tensor (graph, t)->channels;
    v->height = heights[t];
    v->width = widths[t];
  }
  g_free (heights);
  g_free (widths);

  if (!check_ops (plan, error))
    goto fail;
  if (dnnl_engine_create (&plan->engine, dnnl_cpu, 0) != dnnl_success
      || dnnl_stream_create (&plan->stream, plan->engine,
                             dnnl_stream_default_flags) != dnnl_success) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "oneDNN cannot create a CPU engine");
    goto fail;
  }

  choose_blocks (plan);
  for (;;) {
    update_view_blocks (plan);
    if (!create_convs (plan, error))
      goto fail;
    if (!relayout_slow_convs (plan))
      break;
    free_convs (plan);
  }

  for (int t = 0; t < plan->n_tensors; t++) {
    int block = plan->blocks[t];

    if (block == 0)
      continue;
    plan->item_floats[t] = cpu_root_item_floats (plan->views[t].channels,
                                                 plan->views[t].height,
                                                 plan->views[t].width, block);
  }
  if (!check_plan_memory (plan, error))
    goto fail;
  for (int t = 0; t < plan->n_tensors; t++) {
    gsize floats;

    if (plan->blocks[t] == 0)
      continue;
    if (g_size_checked_mul (&floats, plan->item_floats[t], plan->batch))
      plan->buffers[t] = aligned_zeroed_floats (floats);
    if (plan->buffers[t] == NULL) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "batch %d at %dx%d: not enough memory for a %d x %d x %d "
                   "tensor per image; try a smaller batch or input size",
                   plan->batch, plan->height, plan->width,
                   plan->views[t].channels, plan->views[t].height,
                   plan->views[t].width);
      goto fail;
    }
  }
  for (int t = 0; t < plan->n_tensors; t++) {
    int root = ssfpn_graph_root (graph, t, NULL);

    plan->views[t].data = plan->buffers[root];
    plan->views[t].item_stride = plan->item_floats[root];
  }
  if (!bind_convs (plan, error))
    goto fail;

  threads_leave (saved_threads);
  return plan;

fail:
  threads_leave (saved_threads);
  cpu_plan_free (plan);
  return NULL;
}

static gboolean
run_op (SsfpnPlan *plan, guint i, int item, float *output, GError **error)
{
  const SsfpnOp *op = ssfpn_graph_op (plan->graph, i);
  const CpuTensorView *in = &plan->views[op->input];
  const CpuTensorView *out = op->output >= 0 ? &plan->views[op->output] : NULL;

  switch (op->type) {
    case SSFPN_OP_CONV2D:
      return cpu_conv_run (plan->convs[i], plan->stream, item, error);
    case SSFPN_OP_UPSAMPLE_NEAREST:
      cpu_upsample_nearest (in, out, item, op->p.upsample.factor);
      break;
    case SSFPN_OP_MAXPOOL:
      cpu_maxpool (in, out, item, op->p.maxpool.kernel, op->p.maxpool.stride,
                   op->p.maxpool.pad);
      break;
    case SSFPN_OP_SPACE_TO_DEPTH:
      cpu_space_to_depth (in, out, item);
      break;
    case SSFPN_OP_CONTRACT:
      cpu_contract (in, out, item, op->p.reorder.gain);
      break;
    case SSFPN_OP_COPY:
      cpu_copy_channels (in, out, item);
      break;
    case SSFPN_OP_DETECT:
      cpu_detect_decode (in, item, &op->p.detect,
                         plan->level_rows[op->p.detect.level],
                         output + (gsize) item * plan->rows * plan->columns);
      break;
  }
  return TRUE;
}

static gboolean
cpu_plan_run (SsfpnPlan *plan, const float *input, float *output,
              GError **error)
{
  const CpuTensorView *in = &plan->views[0];
  gsize input_floats = (gsize) in->channels * in->height * in->width;
  gboolean ok = TRUE;
  int saved_threads = threads_enter (plan->threads);

  for (int item = 0; item < plan->batch && ok; item++) {
    /* Tensor 0 is an NCHW root of exactly the input's shape. */
    memcpy (cpu_view_channel (in, item, 0), input + item * input_floats,
            input_floats * sizeof (float));
    for (guint i = 0; i < plan->graph->ops->len && ok; i++)
      ok = run_op (plan, i, item, output, error);
  }
  if (ok && dnnl_stream_wait (plan->stream) != dnnl_success) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                 "oneDNN failed to finish the CPU stream");
    ok = FALSE;
  }
  threads_leave (saved_threads);
  return ok;
}

gboolean
ssfpn_cpu_plan_read_tensor (const SsfpnPlan *plan, int tensor, int item,
                            float *out)
{
  const CpuTensorView *v;
  gsize plane;

  if (tensor < 0 || tensor >= plan->n_tensors || item < 0
      || item >= plan->batch || plan->views[tensor].data == NULL)
    return FALSE;
  v = &plan->views[tensor];
  plane = (gsize) v->height * v->width;
  for (int c = 0; c < v->channels; c++) {
    const float *src = cpu_view_channel (v, item, c);

    for (gsize p = 0; p < plane; p++)
      out[c * plane + p] = src[p * v->block];
  }
  return TRUE;
}

int
ssfpn_cpu_plan_tensor_block (const SsfpnPlan *plan, int tensor)
{
  if (tensor < 0 || tensor >= plan->n_tensors)
    return 0;
  return plan->blocks[ssfpn_graph_root (plan->graph, tensor, NULL)];
}

int
ssfpn_cpu_plan_reference_convs (const SsfpnPlan *plan)
{
  int n = 0;

  for (guint i = 0; i < plan->graph->ops->len; i++)
    n += plan->convs[i] != NULL && cpu_conv_is_reference (plan->convs[i]);
  return n;
}

const SsfpnBackend ssfpn_cpu_backend = {
  .name = "cpu",
  .available = cpu_available,
  .default_precision = SSFPN_PRECISION_FP32,
  .plan_new = cpu_plan_new,
  .plan_free = cpu_plan_free,
  .plan_run = cpu_plan_run,
};
