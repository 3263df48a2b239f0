/* The CUDA backend: cuDNN convolutions plus our own kernels, fp32 or fp16.
 *
 * A plan owns one stream, one cuDNN handle, one NHWC device buffer per root
 * tensor for the whole batch (views are channel slices of them, so concats
 * copy nothing), pinned host staging for the input and output, and the
 * shared scratch and workspace buffers of the convolutions. Once built, the
 * whole run (input upload, every op, output download) is captured as a
 * CUDA graph and each run replays it: nothing is allocated per run.
 *
 * SSFPN_CUDA_GRAPH=0 runs the ops eagerly instead (debugging, profiling).
 */
#define G_LOG_DOMAIN "ssfpn-cuda"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <string.h>

#include "backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_copy.h"
#include "cuda/cuda_detect.h"
#include "cuda/cuda_detect_io.h"
#include "cuda/cuda_engine_cache.h"
#include "cuda/cuda_input.h"
#include "cuda/cuda_maxpool.h"
#include "cuda/cuda_reorder.h"
#include "cuda/cuda_upsample.h"
#include "cuda/cuda_view.h"

/* Turing is the oldest architecture the build has code for. */
#define MIN_COMPUTE_CAPABILITY 75

typedef struct {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
} CapturedRun;

struct _SsfpnPlan {
  const SsfpnGraph *graph; /* borrowed: outlives the plan */
  int device;
  int batch, height, width;
  int rows, columns;
  int *level_rows;         /* (nl + 1) */
  CudaDtype dtype;
  cudaStream_t stream;
  cudnnHandle_t cudnn;
  int n_tensors;
  void **buffers;          /* per root tensor, NULL for views and unused */
  CudaView *views;         /* per tensor */
  CudaConv **convs;        /* per op, NULL for other ops */
  void *scratch_out, *scratch_in, *workspace;
  float *input_device;     /* float32 NCHW, as the caller gives it */
  float *output_device;    /* float32 (batch, rows, columns) */
  float *input_host;       /* pinned */
  float *output_host;      /* pinned */
  size_t input_floats, output_floats;
  gboolean use_graphs;     /* FALSE: SSFPN_CUDA_GRAPH=0, run eagerly */
  gboolean graphs_required; /* SSFPN_CUDA_GRAPH=require: a failed capture
                             * is an error (the tests), not a fallback */
  gboolean network_tried;  /* the bench-A capture was attempted */
  /* Captured runs, each NULL until made (or when capture failed):
   * run: upload, network, download (plan_run);
   * network: the network alone on the device-resident input (bench A);
   * detect: NMS settings upload, network, NMS, results download. */
  CapturedRun run, network, detect;
  CudaDetectIo *detect_io; /* made at the first plan_detect */
};

/* ---- availability ------------------------------------------------------- */

/* Once a process: a cuDNN older than the headers of the build may lack
 * what it asks for, and a cuDNN made for another CUDA major looks for that
 * major's NVRTC, without which its runtime-compiled (fused) engines fail
 * and slower ones are chosen without a word. Both still run, so they are
 * said, not refused. */
static void
warn_library_versions (size_t cudnn_version, int runtime)
{
  static gsize once = 0;
  size_t cudnn_cudart = cudnnGetCudartVersion ();

  if (!g_once_init_enter (&once))
    return;
  if (cudnn_version < CUDNN_VERSION)
    g_message ("cuDNN %zu.%zu.%zu was loaded, older than the %d.%d.%d this "
               "build was compiled against: an error naming a missing cuDNN "
               "feature may come from that", cudnn_version / 10000,
               cudnn_version % 10000 / 100, cudnn_version % 100, CUDNN_MAJOR,
               CUDNN_MINOR, CUDNN_PATCHLEVEL);
  if (cudnn_cudart / 1000 != (size_t) runtime / 1000)
    g_message ("the cuDNN loaded was built for CUDA %zu, the CUDA runtime "
               "is %d.%d: its fused engines may not compile, and slower "
               "ones are then used", cudnn_cudart / 1000, runtime / 1000,
               runtime % 1000 / 10);
  g_once_init_leave (&once, 1);
}

static gboolean
cuda_available (int device_index, GError **error)
{
  int driver = 0, runtime = 0, count = 0;
  size_t cudnn_version = cudnnGetVersion ();
  struct cudaDeviceProp props;
  cudaError_t status;

  /* 0 when no driver (libcuda) is installed at all. */
  if (cudaDriverGetVersion (&driver) != cudaSuccess || driver == 0) {
    (void) cudaGetLastError ();
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "no CUDA device: the NVIDIA driver (libcuda) is not "
                 "installed or cannot be loaded");
    return FALSE;
  }
  cudaRuntimeGetVersion (&runtime);
  /* Minor-version compatibility: any driver of the same major works. */
  if (driver / 1000 < runtime / 1000) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "driver too old: it supports CUDA %d.%d < %d.%d this build "
                 "needs; update the NVIDIA driver", driver / 1000,
                 driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return FALSE;
  }
  status = cudaGetDeviceCount (&count);
  if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0)) {
    (void) cudaGetLastError ();
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "no CUDA device: the driver sees no GPU");
    return FALSE;
  }
  if (status == cudaErrorInsufficientDriver) {
    (void) cudaGetLastError ();
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "driver too old: CUDA %d.%d < %d.%d", driver / 1000,
                 driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return FALSE;
  }
  if (status != cudaSuccess) {
    (void) cudaGetLastError ();
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "no usable CUDA device: %s (%s)", cudaGetErrorString (status),
                 cudaGetErrorName (status));
    return FALSE;
  }
  if (device_index < 0 || device_index >= count) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "device index %d out of range (%d device%s)", device_index,
                 count, count == 1 ? "" : "s");
    return FALSE;
  }
  status = cudaGetDeviceProperties (&props, device_index);
  if (status != cudaSuccess) {
    (void) cudaGetLastError ();
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "CUDA device %d cannot be queried: %s", device_index,
                 cudaGetErrorString (status));
    return FALSE;
  }
  if (props.major * 10 + props.minor < MIN_COMPUTE_CAPABILITY) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "CUDA device %d (%s) has compute capability %d.%d; this "
                 "build needs %d.%d or newer", device_index, props.name,
                 props.major, props.minor, MIN_COMPUTE_CAPABILITY / 10,
                 MIN_COMPUTE_CAPABILITY % 10);
    return FALSE;
  }
  if (cudnn_version / 10000 != CUDNN_MAJOR) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "cuDNN %zu.%zu.%zu was loaded, this build needs cuDNN %d",
                 cudnn_version / 10000, cudnn_version % 10000 / 100,
                 cudnn_version % 100, CUDNN_MAJOR);
    return FALSE;
  }
  warn_library_versions (cudnn_version, runtime);
  return TRUE;
}

/* ---- checks ------------------------------------------------------------- */

/* What the kernels rely on, naming the layer that breaks it. */
static gboolean
check_ops (const SsfpnGraph *graph, GError **error)
{
  int n_tensors = (int) graph->tensors->len;

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    gboolean detect = op->type == SSFPN_OP_DETECT;
    int in_channels, out_channels;
    gboolean ok = TRUE;

    if (op->input < 0 || op->input >= n_tensors || op->output >= n_tensors
        || (op->output < 0) != detect
        || (op->type == SSFPN_OP_CONV2D && op->p.conv.residual >= n_tensors)) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                   "layer %d: op %u refers to a tensor that does not exist",
                   op->layer, i);
      return FALSE;
    }
    in_channels = ssfpn_graph_tensor (graph, op->input)->channels;
    out_channels = detect ? 0
        : ssfpn_graph_tensor (graph, op->output)->channels;
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
        break;
      }
      case SSFPN_OP_UPSAMPLE_NEAREST:
        ok = op->p.upsample.factor >= 1 && in_channels == out_channels;
        break;
      case SSFPN_OP_MAXPOOL:
        ok = in_channels == out_channels && op->p.maxpool.kernel >= 1
             && op->p.maxpool.stride >= 1 && op->p.maxpool.pad >= 0
             /* as the CPU and PyTorch: no window lies wholly in padding */
             && 2 * op->p.maxpool.pad <= op->p.maxpool.kernel;
        break;
      case SSFPN_OP_SPACE_TO_DEPTH:
        ok = op->p.reorder.gain == 2 && out_channels == 4 * in_channels;
        break;
      case SSFPN_OP_CONTRACT:
        ok = op->p.reorder.gain >= 1
             && out_channels == op->p.reorder.gain * op->p.reorder.gain
                                * in_channels;
        break;
      case SSFPN_OP_COPY:
        ok = in_channels == out_channels;
        break;
      case SSFPN_OP_DETECT:{
        const SsfpnDetectParams *d = &op->p.detect;
        ok = d->level >= 0 && d->level < graph->nl && d->na == graph->na
             && d->na <= CUDA_DETECT_MAX_ANCHORS && d->nc == graph->nc
             && in_channels == d->na * (d->nc + 5);
        break;
      }
      default:
        g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_UNSUPPORTED,
                     "layer %d: op type %d is unknown to the CUDA backend",
                     op->layer, (int) op->type);
        return FALSE;
    }
    if (!ok) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                   "layer %d: the CUDA backend cannot run this op: its "
                   "channels or parameters are inconsistent", op->layer);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- plan --------------------------------------------------------------- */

static void
captured_run_clear (CapturedRun *run)
{
  if (run->exec != NULL)
    cudaGraphExecDestroy (run->exec);
  if (run->graph != NULL)
    cudaGraphDestroy (run->graph);
  run->exec = NULL;
  run->graph = NULL;
}

static void
cuda_plan_free (SsfpnPlan *plan)
{
  if (plan == NULL)
    return;
  cudaSetDevice (plan->device);
  if (plan->stream != NULL)
    cudaStreamSynchronize (plan->stream);
  captured_run_clear (&plan->run);
  captured_run_clear (&plan->network);
  captured_run_clear (&plan->detect);
  cuda_detect_io_free (plan->detect_io);
  for (guint i = 0; plan->convs != NULL && i < plan->graph->ops->len; i++)
    cuda_conv_free (plan->convs[i]);
  g_free (plan->convs);
  for (int t = 0; plan->buffers != NULL && t < plan->n_tensors; t++)
    cudaFree (plan->buffers[t]);
  g_free (plan->buffers);
  g_free (plan->views);
  g_free (plan->level_rows);
  cudaFree (plan->scratch_out);
  cudaFree (plan->scratch_in);
  cudaFree (plan->workspace);
  cudaFree (plan->input_device);
  cudaFree (plan->output_device);
  cudaFreeHost (plan->input_host);
  cudaFreeHost (plan->output_host);
  if (plan->cudnn != NULL)
    cudnnDestroy (plan->cudnn);
  if (plan->stream != NULL)
    cudaStreamDestroy (plan->stream);
  g_free (plan);
}

/* One zeroed NHWC buffer per written root tensor, and every tensor's view
 * into it. */
static gboolean
allocate_tensors (SsfpnPlan *plan, GError **error)
{
  const SsfpnGraph *graph = plan->graph;
  size_t element = cuda_dtype_size (plan->dtype);
  int *heights = g_new0 (int, plan->n_tensors);
  int *widths = g_new0 (int, plan->n_tensors);

  if (!ssfpn_graph_infer_shapes (graph, plan->height, plan->width, heights,
                                 widths, error))
    goto fail;

  for (int t = 0; t < plan->n_tensors; t++) {
    const SsfpnTensor *tensor = ssfpn_graph_tensor (graph, t);
    size_t bytes = (size_t) plan->batch * heights[t] * widths[t]
                   * tensor->channels * element;

    if (tensor->parent >= 0 || heights[t] == 0)
      continue;
    CUDA_CHECK (cudaMalloc (&plan->buffers[t], bytes));
    CUDA_CHECK (cudaMemsetAsync (plan->buffers[t], 0, bytes, plan->stream));
  }
  for (int t = 0; t < plan->n_tensors; t++) {
    CudaView *v = &plan->views[t];
    int offset = 0;
    int root = ssfpn_graph_root (graph, t, &offset);
    int root_channels = ssfpn_graph_tensor (graph, root)->channels;

    if (plan->buffers[root] == NULL)
      continue;
    v->data = (char *) plan->buffers[root] + (size_t) offset * element;
    v->dtype = plan->dtype;
    v->batch = plan->batch;
    v->channels = ssfpn_graph_tensor (graph, t)->channels;
    v->height = heights[t];
    v->width = widths[t];
    v->pixel_stride = root_channels;
    v->item_stride = (int64_t) root_channels * heights[t] * widths[t];
  }
  g_free (heights);
  g_free (widths);
  return TRUE;

fail:
  g_free (heights);
  g_free (widths);
  return FALSE;
}

/* Every convolution, its engine from the on-disk cache when there is one
 * for this plan, else timed. The choices go into *@cache, which the caller
 * saves for the next start once a whole run has worked with them. */
static gboolean
create_convs (SsfpnPlan *plan, gboolean read_cache, gboolean *cache_read,
              CudaEngineCache **cache_out, GError **error)
{
  const SsfpnGraph *graph = plan->graph;
  size_t scratch_out = 0, scratch_in = 0, workspace = 0;
  CudaEngineCache *cache = cuda_engine_cache_open (graph, plan->device,
                                                   plan->batch, plan->height,
                                                   plan->width, plan->dtype,
                                                   read_cache);
  int from_cache = 0, n_convs = 0;

  *cache_read = cuda_engine_cache_has_choices (cache);

  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, i);
    const SsfpnConv2dParams *c = &op->p.conv;
    CudaConvSetup setup = { 0 };
    size_t need_out, need_in, need_workspace;

    if (op->type != SSFPN_OP_CONV2D)
      continue;
    setup.handle = plan->cudnn;
    setup.layer = op->layer;
    setup.input = plan->views[op->input];
    setup.input.data = (char *) setup.input.data
                       + (size_t) c->in_offset * cuda_dtype_size (plan->dtype);
    setup.input.channels = c->in_channels;
    setup.output = plan->views[op->output];
    if (c->residual >= 0)
      setup.residual = plan->views[c->residual];
    if (setup.input.data == NULL || setup.output.data == NULL
        || (c->residual >= 0 && setup.residual.data == NULL)) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                   "layer %d: a convolution reads a tensor nothing writes",
                   op->layer);
      goto fail;
    }
    plan->convs[i] = cuda_conv_new (c, &setup,
                                    cuda_engine_cache_lookup (cache, i),
                                    plan->stream, error);
    if (plan->convs[i] == NULL)
      goto fail;
    cuda_conv_requirements (plan->convs[i], &need_out, &need_in,
                            &need_workspace);
    scratch_out = MAX (scratch_out, need_out);
    scratch_in = MAX (scratch_in, need_in);
    workspace = MAX (workspace, need_workspace);
  }

  /* Shared by every convolution: the ops run one after another on one
   * stream. */
  if (scratch_out > 0)
    CUDA_CHECK (cudaMalloc (&plan->scratch_out, scratch_out));
  if (scratch_in > 0)
    CUDA_CHECK (cudaMalloc (&plan->scratch_in, scratch_in));
  if (workspace > 0)
    CUDA_CHECK (cudaMalloc (&plan->workspace, workspace));

  for (guint i = 0; i < graph->ops->len; i++) {
    CudaConvChoice choice;

    if (plan->convs[i] == NULL)
      continue;
    if (!cuda_conv_bind (plan->convs[i], plan->scratch_out, plan->scratch_in,
                         plan->workspace, plan->stream, error))
      goto fail;
    g_debug ("layer %d: %s", ssfpn_graph_op (graph, i)->layer,
             cuda_conv_describe (plan->convs[i]));
    n_convs++;
    from_cache += cuda_conv_from_cache (plan->convs[i]) ? 1 : 0;
    if (cuda_conv_get_choice (plan->convs[i], &choice))
      cuda_engine_cache_store (cache, i, &choice);
  }
  g_debug ("%d of %d convolutions took their engine from the cache %s",
           from_cache, n_convs, cuda_engine_cache_path (cache) != NULL
           ? cuda_engine_cache_path (cache) : "(off)");
  *cache_out = cache;
  return TRUE;

fail:
  cuda_engine_cache_free (cache);
  return FALSE;
}

static gboolean
enqueue_op (SsfpnPlan *plan, guint i, GError **error)
{
  const SsfpnOp *op = ssfpn_graph_op (plan->graph, i);
  const CudaView *in = &plan->views[op->input];
  const CudaView *out = op->output >= 0 ? &plan->views[op->output] : NULL;

  switch (op->type) {
    case SSFPN_OP_CONV2D:
      return cuda_conv_run (plan->convs[i], plan->stream, error);
    case SSFPN_OP_UPSAMPLE_NEAREST:
      CUDA_CHECK (cuda_upsample_nearest (in, out, op->p.upsample.factor,
                                         plan->stream));
      break;
    case SSFPN_OP_MAXPOOL:
      CUDA_CHECK (cuda_maxpool (in, out, op->p.maxpool.kernel,
                                op->p.maxpool.stride, op->p.maxpool.pad,
                                plan->stream));
      break;
    case SSFPN_OP_SPACE_TO_DEPTH:
      CUDA_CHECK (cuda_space_to_depth (in, out, plan->stream));
      break;
    case SSFPN_OP_CONTRACT:
      CUDA_CHECK (cuda_contract (in, out, op->p.reorder.gain, plan->stream));
      break;
    case SSFPN_OP_COPY:
      CUDA_CHECK (cuda_copy_channels (in, out, plan->stream));
      break;
    case SSFPN_OP_DETECT:{
      const SsfpnDetectParams *d = &op->p.detect;
      CudaDetectLevel level = { 0 };

      level.stride = d->stride;
      level.na = d->na;
      level.nc = d->nc;
      level.row_offset = plan->level_rows[d->level];
      level.rows = plan->rows;
      memcpy (level.anchors, d->anchors, 2 * d->na * sizeof (float));
      CUDA_CHECK (cuda_detect_decode (in, &level, plan->output_device,
                                      plan->stream));
      break;
    }
  }
  return TRUE;

fail:
  return FALSE;
}

/* Every op, from the input tensor to the float32 output, on the device. */
static gboolean
enqueue_network (SsfpnPlan *plan, GError **error)
{
  for (guint i = 0; i < plan->graph->ops->len; i++)
    if (!enqueue_op (plan, i, error)) {
      /* The op's error names the call; the layer says where. */
      g_prefix_error (error, "layer %d: ",
                      ssfpn_graph_op (plan->graph, i)->layer);
      return FALSE;
    }
  return TRUE;
}

/* The whole run on the plan's stream: upload from the pinned input,
 * convert, every op, download into the pinned output. */
static gboolean
enqueue_run (SsfpnPlan *plan, GError **error)
{
  CUDA_CHECK (cudaMemcpyAsync (plan->input_device, plan->input_host,
                               plan->input_floats * sizeof (float),
                               cudaMemcpyHostToDevice, plan->stream));
  CUDA_CHECK (cuda_input_from_nchw (plan->input_device, &plan->views[0],
                                    plan->stream));
  if (!enqueue_network (plan, error))
    return FALSE;
  CUDA_CHECK (cudaMemcpyAsync (plan->output_host, plan->output_device,
                               plan->output_floats * sizeof (float),
                               cudaMemcpyDeviceToHost, plan->stream));
  return TRUE;

fail:
  return FALSE;
}

/* The frames are already letterboxed into the input tensor: network, NMS
 * and the detections back to pinned memory. */
static gboolean
enqueue_detect (SsfpnPlan *plan, GError **error)
{
  return enqueue_network (plan, error)
         && cuda_detect_io_enqueue (plan->detect_io, plan->stream, error);
}

typedef gboolean (*EnqueueFunc) (SsfpnPlan *plan, GError **error);

/* Records what @enqueue does as a CUDA graph into @run. Failing to capture
 * is not fatal: that run is then enqueued eagerly, and the debug log says
 * why; with SSFPN_CUDA_GRAPH=require it is, in @out. The stream must be
 * idle. */
static gboolean
capture (SsfpnPlan *plan, EnqueueFunc enqueue, const char *what,
         CapturedRun *run, GError **out)
{
  GError *reason = NULL;
  GError **error = &reason;
  cudaGraph_t graph = NULL;
  gboolean enqueued;

  captured_run_clear (run);
  if (!plan->use_graphs)
    return TRUE;
  /* Thread-local: other threads' CUDA calls must not break the capture. */
  CUDA_CHECK (cudaStreamBeginCapture (plan->stream,
                                      cudaStreamCaptureModeThreadLocal));
  enqueued = enqueue (plan, &reason);
  /* Capture must end whatever happened; a failed enqueue already said why
   * (and usually invalidated the capture, so ending it fails too). */
  cudaError_t ended = cudaStreamEndCapture (plan->stream, &graph);
  if (!enqueued)
    goto fail;
  CUDA_CHECK (ended);
  CUDA_CHECK (cudaGraphInstantiate (&run->exec, graph, 0));
  run->graph = graph;
  return TRUE;

fail:
  if (plan->graphs_required)
    g_set_error (out, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                 "no CUDA graph for the %s run (SSFPN_CUDA_GRAPH=require): "
                 "%s", what, reason != NULL ? reason->message
                                             : "capture failed");
  else
    g_debug ("no CUDA graph for the %s run, running eagerly: %s", what,
             reason != NULL ? reason->message : "capture failed");
  g_clear_error (&reason);
  if (graph != NULL)
    cudaGraphDestroy (graph);
  run->exec = NULL;
  (void) cudaGetLastError ();
  return !plan->graphs_required;
}

/* Replays @run, or enqueues it eagerly when it has no graph. */
static gboolean
launch (SsfpnPlan *plan, const CapturedRun *run, EnqueueFunc enqueue,
        GError **error)
{
  if (run->exec == NULL)
    return enqueue (plan, error);
  CUDA_CHECK (cudaGraphLaunch (run->exec, plan->stream));
  return TRUE;

fail:
  return FALSE;
}

/* The plan, its engines from the cache when @read_cache; *@cache_read
 * says whether the cache held choices for it. */
static SsfpnPlan *
build_plan (const SsfpnGraph *graph, const SsfpnPlanOptions *options,
            gboolean read_cache, gboolean *cache_read, GError **error)
{
  SsfpnPlan *plan;
  CudaEngineCache *cache = NULL;

  *cache_read = FALSE;
  plan = g_new0 (SsfpnPlan, 1);

  plan->graph = graph;
  plan->device = options->device_index;
  plan->batch = options->batch;
  plan->height = options->height;
  plan->width = options->width;
  plan->dtype = options->precision == SSFPN_PRECISION_FP16 ? CUDA_DTYPE_F16
                                                           : CUDA_DTYPE_F32;
  plan->use_graphs = g_strcmp0 (g_getenv ("SSFPN_CUDA_GRAPH"), "0") != 0;
  plan->graphs_required = g_strcmp0 (g_getenv ("SSFPN_CUDA_GRAPH"),
                                     "require") == 0;
  plan->n_tensors = (int) graph->tensors->len;
  plan->buffers = g_new0 (void *, plan->n_tensors);
  plan->views = g_new0 (CudaView, plan->n_tensors);
  plan->convs = g_new0 (CudaConv *, graph->ops->len);
  plan->level_rows = g_new0 (int, graph->nl + 1);
  plan->rows = ssfpn_graph_output_rows (graph, plan->height, plan->width,
                                        plan->level_rows);
  plan->columns = graph->nc + 5;
  plan->input_floats = (size_t) plan->batch * 3 * plan->height * plan->width;
  plan->output_floats = (size_t) plan->batch * plan->rows * plan->columns;

  CUDA_CHECK (cudaSetDevice (plan->device));
  CUDA_CHECK (cudaStreamCreateWithFlags (&plan->stream,
                                         cudaStreamNonBlocking));
  CUDNN_CHECK (cudnnCreate (&plan->cudnn));
  CUDNN_CHECK (cudnnSetStream (plan->cudnn, plan->stream));

  if (!allocate_tensors (plan, error))
    goto fail;
  if (plan->views[0].data == NULL || plan->views[0].channels != 3) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG,
                 "the network input (tensor 0) is not a 3-channel tensor "
                 "that the network reads");
    goto fail;
  }
  CUDA_CHECK (cudaMalloc ((void **) &plan->input_device,
                          plan->input_floats * sizeof (float)));
  CUDA_CHECK (cudaMalloc ((void **) &plan->output_device,
                          plan->output_floats * sizeof (float)));
  CUDA_CHECK (cudaMallocHost ((void **) &plan->input_host,
                              plan->input_floats * sizeof (float)));
  CUDA_CHECK (cudaMallocHost ((void **) &plan->output_host,
                              plan->output_floats * sizeof (float)));
  memset (plan->input_host, 0, plan->input_floats * sizeof (float));
  CUDA_CHECK (cudaMemsetAsync (plan->output_device, 0,
                               plan->output_floats * sizeof (float),
                               plan->stream));

  if (!create_convs (plan, read_cache, cache_read, &cache, error))
    goto fail;

  /* One eager run: lazily initialised engines set themselves up outside
   * the capture, and a failure shows here, with its layer. Only then are
   * the engine choices saved: one that fails to run must not be found in
   * the cache by every later start. */
  if (!enqueue_run (plan, error))
    goto fail;
  CUDA_CHECK (cudaStreamSynchronize (plan->stream));
  cuda_engine_cache_save (cache);
  g_clear_pointer (&cache, cuda_engine_cache_free);
  if (!capture (plan, enqueue_run, "whole", &plan->run, error))
    goto fail;
  return plan;

fail:
  g_clear_pointer (&cache, cuda_engine_cache_free);
  cuda_plan_free (plan);
  return NULL;
}

static SsfpnPlan *
cuda_plan_new (const SsfpnGraph *graph, const SsfpnPlanOptions *options,
               GError **error)
{
  GError *cached_error = NULL;
  gboolean cache_read = FALSE;
  SsfpnPlan *plan;

  if (options->precision != SSFPN_PRECISION_FP32
      && options->precision != SSFPN_PRECISION_FP16) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "the CUDA backend runs fp32 or fp16, not precision %d",
                 (int) options->precision);
    return NULL;
  }
  if (!ssfpn_plan_options_check_shape (options, error))
    return NULL;
  if (!cuda_available (options->device_index, error))
    return NULL;
  if (!check_ops (graph, error))
    return NULL;

  plan = build_plan (graph, options, TRUE, &cache_read, &cached_error);
  /* Engines a cache file named may no longer run (another driver, say): a
   * start would then fail every time until the file went. They are chosen
   * again instead, and the file rewritten. */
  if (plan == NULL && cache_read) {
    g_message ("the cached cuDNN engine choices failed (%s); choosing the "
               "engines again", cached_error->message);
    g_clear_error (&cached_error);
    plan = build_plan (graph, options, FALSE, &cache_read, error);
  } else if (plan == NULL) {
    g_propagate_error (error, cached_error);
  }
  return plan;
}

static gboolean
cuda_plan_run (SsfpnPlan *plan, const float *input, float *output,
               GError **error)
{
  CUDA_CHECK (cudaSetDevice (plan->device));
  memcpy (plan->input_host, input, plan->input_floats * sizeof (float));
  if (!launch (plan, &plan->run, enqueue_run, error))
    goto fail;
  CUDA_CHECK (cudaStreamSynchronize (plan->stream));
  memcpy (output, plan->output_host, plan->output_floats * sizeof (float));
  return TRUE;

fail:
  /* What was queued before the failure (the input upload) must finish
   * before the next call writes the pinned buffers again. */
  cudaStreamSynchronize (plan->stream);
  (void) cudaGetLastError ();
  return FALSE;
}

/* ---- frames to detections ------------------------------------------------ */

/* The detection buffers and the detect graph for the current results
 * area, made at the first call and again when the area grows. */
static gboolean
prepare_detect (SsfpnPlan *plan, const SsfpnNmsOptions *nms, int n_frames,
                int capacity, GError **error)
{
  gboolean grown = FALSE, first = plan->detect_io == NULL;

  if (first) {
    plan->detect_io = cuda_detect_io_new (plan->batch, plan->rows,
                                          plan->columns - 5,
                                          plan->output_device, error);
    if (plan->detect_io == NULL)
      return FALSE;
  }
  if (!cuda_detect_io_set_nms (plan->detect_io, nms, n_frames, capacity,
                               &grown, error))
    return FALSE;
  if ((first || grown)
      && !capture (plan, enqueue_detect, "detect", &plan->detect, error))
    return FALSE;
  return TRUE;
}

static gboolean
cuda_plan_detect (SsfpnPlan *plan, const SsfpnFrame *frames, int n_frames,
                  const SsfpnNmsOptions *nms, SsfpnDetection *results,
                  int capacity, int *counts, GError **error)
{
  CUDA_CHECK (cudaSetDevice (plan->device));
  if (n_frames < 1 || n_frames > plan->batch || capacity < 1) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "CUDA detect: %d frames for a batch of %d, room for %d "
                 "detections each", n_frames, plan->batch, capacity);
    return FALSE;
  }
  /* Captures (when needed) while the stream is idle, before the frames. */
  if (!prepare_detect (plan, nms, n_frames, capacity, error))
    return FALSE;
  /* Frame i+1 is copied into pinned memory while frame i travels. Slots
   * past n_frames keep old content; NMS ignores them. */
  for (int i = 0; i < n_frames; i++)
    if (!cuda_detect_io_upload_frame (plan->detect_io, i, &frames[i],
                                      &plan->views[0], plan->stream, error))
      goto fail;
  if (!launch (plan, &plan->detect, enqueue_detect, error))
    goto fail;
  CUDA_CHECK (cudaStreamSynchronize (plan->stream));
  cuda_detect_io_results (plan->detect_io, n_frames, results, capacity,
                          counts);
  return TRUE;

fail:
  /* Leaves the stream idle for the next call. */
  cudaStreamSynchronize (plan->stream);
  (void) cudaGetLastError ();
  return FALSE;
}

/* Bench scopes A (network alone) and B (network and NMS for the whole
 * batch) on whatever the input tensor holds. */
static gboolean
cuda_plan_run_resident (SsfpnPlan *plan, const SsfpnNmsOptions *nms,
                        GError **error)
{
  CUDA_CHECK (cudaSetDevice (plan->device));
  if (nms == NULL) {
    /* Once: after a failed capture the network runs eagerly, rather than
     * capturing again (and timing that) on every call. */
    if (plan->use_graphs && !plan->network_tried) {
      plan->network_tried = TRUE;
      if (!capture (plan, enqueue_network, "network", &plan->network, error))
        goto fail;
    }
    if (!launch (plan, &plan->network, enqueue_network, error))
      goto fail;
  } else {
    if (!prepare_detect (plan, nms, plan->batch, nms->max_detections > 0 ? nms->max_detections : 300,
                         error))
      goto fail;
    if (!launch (plan, &plan->detect, enqueue_detect, error))
      goto fail;
  }
  CUDA_CHECK (cudaStreamSynchronize (plan->stream));
  return TRUE;

fail:
  /* Leaves the stream idle for the next call. */
  cudaStreamSynchronize (plan->stream);
  (void) cudaGetLastError ();
  return FALSE;
}

const SsfpnBackend ssfpn_cuda_backend = {
  .name = "cuda",
  .available = cuda_available,
  .default_precision = SSFPN_PRECISION_FP16,
  .plan_new = cuda_plan_new,
  .plan_free = cuda_plan_free,
  .plan_run = cuda_plan_run,
  .plan_detect = cuda_plan_detect,
  .plan_run_resident = cuda_plan_run_resident,
};
