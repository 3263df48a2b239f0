/* Convolutions as cuDNN operation graphs (see cuda_conv.h for the tiers).
 *
 * Tensors are described in NCHW dimension order with NHWC strides; a view's
 * strides are its root's, so slices of concats are read and written in
 * place. Every descriptor a convolution creates is kept until it is freed:
 * execution plans refer to the graphs they were made from.
 */
#define G_LOG_DOMAIN "ssfpn-cuda"

#include "cuda/cuda_conv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_convert.h"
#include "cuda/cuda_copy.h"
#include "cuda/cuda_epilogue.h"
#include "ssfpn/ssfpn.h"

/* Candidates timed per convolution (SSFPN_CUDA_TUNE overrides, 1..16) and
 * heuristic results looked at to find them. */
#define DEFAULT_TUNE_CANDIDATES 4
#define MAX_TUNE_CANDIDATES 16
#define MAX_HEURISTIC_RESULTS 32
#define TUNE_REPEATS 3
/* A candidate wanting more workspace than this is passed over. */
#define MAX_WORKSPACE_BYTES ((int64_t) 512 << 20)

enum {
  UID_X = 1, UID_W, UID_Y, UID_BIAS, UID_SCALE, UID_SHIFT, UID_RESIDUAL,
  UID_VIRTUAL = 100,
  MAX_UIDS = 8,
};

typedef enum {
  TIER_FUSED,
  TIER_EPILOGUE,
  TIER_DENSE_INPUT,
} ConvTier;

static const char *const tier_names[] = { "fused", "epilogue", "dense input" };
G_STATIC_ASSERT (G_N_ELEMENTS (tier_names) == CUDA_CONV_TIERS);

typedef struct {
  cudnnBackendDescriptor_t plan;
  int64_t workspace;
  int64_t engine_index;
  int n_knobs;           /* -1: unknown, the choice cannot be cached */
  int knob_types[CUDA_CONV_MAX_KNOBS];
  int64_t knob_values[CUDA_CONV_MAX_KNOBS];
} Candidate;

struct _CudaConv {
  int layer;
  ConvTier tier;
  cudnnHandle_t handle;
  CudaDtype dtype;
  CudaView input, output, residual, dense_input;
  gboolean has_residual;
  int out_channels;
  void *weight, *bias, *scale, *shift; /* device, plan precision */
  CudaEpilogue epilogue;
  GPtrArray *descriptors;              /* every descriptor made, freed last */
  Candidate candidates[MAX_TUNE_CANDIDATES];
  int n_candidates;
  Candidate chosen;
  gboolean from_cache;
  cudnnBackendDescriptor_t variant_pack;
  void *scratch_out;
  char *description;
};

/* ---- descriptors -------------------------------------------------------- */

/* Creates a descriptor the convolution owns. */
static cudnnStatus_t
create_descriptor (CudaConv *conv, cudnnBackendDescriptorType_t type,
                   cudnnBackendDescriptor_t *descriptor)
{
  cudnnStatus_t status = cudnnBackendCreateDescriptor (type, descriptor);

  if (status == CUDNN_STATUS_SUCCESS)
    g_ptr_array_add (conv->descriptors, *descriptor);
  return status;
}

static void
destroy_descriptor (gpointer descriptor)
{
  cudnnBackendDestroyDescriptor (descriptor);
}

static cudnnDataType_t
cudnn_type (CudaDtype dtype)
{
  return dtype == CUDA_DTYPE_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

/* Largest power of two (up to 256) dividing the address: cuDNN's engines
 * pick vector widths from it. */
static int64_t
pointer_alignment (const void *p)
{
  uintptr_t address = (uintptr_t) p;
  int64_t alignment = 256;

  while (alignment > 1 && address % (uintptr_t) alignment != 0)
    alignment /= 2;
  return alignment;
}

static cudnnBackendDescriptor_t
make_tensor (CudaConv *conv, int64_t uid, cudnnDataType_t type,
             const int64_t dims[4], const int64_t strides[4],
             int64_t alignment, gboolean is_virtual, GError **error)
{
  cudnnBackendDescriptor_t t = NULL;
  bool virtual_flag = is_virtual;

  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_DATA_TYPE,
                                         CUDNN_TYPE_DATA_TYPE, 1, &type));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_DIMENSIONS,
                                         CUDNN_TYPE_INT64, 4, dims));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_STRIDES,
                                         CUDNN_TYPE_INT64, 4, strides));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_UNIQUE_ID,
                                         CUDNN_TYPE_INT64, 1, &uid));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT,
                                         CUDNN_TYPE_INT64, 1, &alignment));
  CUDNN_CHECK (cudnnBackendSetAttribute (t, CUDNN_ATTR_TENSOR_IS_VIRTUAL,
                                         CUDNN_TYPE_BOOLEAN, 1,
                                         &virtual_flag));
  CUDNN_CHECK (cudnnBackendFinalize (t));
  return t;

fail:
  return NULL;
}

/* A view as a cuDNN tensor: NCHW dimensions, the root's NHWC strides. */
static cudnnBackendDescriptor_t
view_tensor (CudaConv *conv, int64_t uid, const CudaView *v, GError **error)
{
  int64_t dims[4] = { v->batch, v->channels, v->height, v->width };
  int64_t strides[4] = { v->item_stride, 1,
                         (int64_t) v->width * v->pixel_stride,
                         v->pixel_stride };

  return make_tensor (conv, uid, cudnn_type (v->dtype), dims, strides,
                      pointer_alignment (v->data), FALSE, error);
}

/* An intermediate of the fused chain: float, dense NHWC, never in memory. */
static cudnnBackendDescriptor_t
virtual_tensor (CudaConv *conv, int64_t uid, const CudaView *shape,
                GError **error)
{
  int64_t c = shape->channels, h = shape->height, w = shape->width;
  int64_t dims[4] = { shape->batch, c, h, w };
  int64_t strides[4] = { h * w * c, 1, w * c, c };

  return make_tensor (conv, uid, CUDNN_DATA_FLOAT, dims, strides, 16, TRUE,
                      error);
}

/* A per-channel constant (1, C, 1, 1). */
static cudnnBackendDescriptor_t
channel_tensor (CudaConv *conv, int64_t uid, int channels, const void *data,
                GError **error)
{
  int64_t dims[4] = { 1, channels, 1, 1 };
  int64_t strides[4] = { channels, 1, channels, channels };

  return make_tensor (conv, uid, cudnn_type (conv->dtype), dims, strides,
                      pointer_alignment (data), FALSE, error);
}

/* A pointwise op y = mode(x [, b]); @b NULL for unary modes. */
static cudnnBackendDescriptor_t
pointwise_op (CudaConv *conv, cudnnPointwiseMode_t mode, double parameter,
              cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
              cudnnBackendDescriptor_t y, GError **error)
{
  cudnnBackendDescriptor_t pw = NULL, op = NULL;
  cudnnDataType_t precision = CUDNN_DATA_FLOAT;

  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_POINTWISE_DESCRIPTOR,
                                  &pw));
  CUDNN_CHECK (cudnnBackendSetAttribute (pw, CUDNN_ATTR_POINTWISE_MODE,
                                         CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
  CUDNN_CHECK (cudnnBackendSetAttribute (pw, CUDNN_ATTR_POINTWISE_MATH_PREC,
                                         CUDNN_TYPE_DATA_TYPE, 1, &precision));
  if (mode == CUDNN_POINTWISE_RELU_FWD) {
    double lower = 0.0;

    CUDNN_CHECK (cudnnBackendSetAttribute (pw,
                                           CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP,
                                           CUDNN_TYPE_DOUBLE, 1, &lower));
    CUDNN_CHECK (cudnnBackendSetAttribute (pw,
                                           CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE,
                                           CUDNN_TYPE_DOUBLE, 1, &parameter));
  } else if (mode == CUDNN_POINTWISE_SWISH_FWD) {
    CUDNN_CHECK (cudnnBackendSetAttribute (pw, CUDNN_ATTR_POINTWISE_SWISH_BETA,
                                           CUDNN_TYPE_DOUBLE, 1, &parameter));
  }
  CUDNN_CHECK (cudnnBackendFinalize (pw));

  CUDNN_CHECK (create_descriptor (conv,
                                  CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR,
                                  &op));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
  CUDNN_CHECK (cudnnBackendSetAttribute (op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  if (b != NULL)
    CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                           CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                           &b));
  CUDNN_CHECK (cudnnBackendSetAttribute (op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
  CUDNN_CHECK (cudnnBackendFinalize (op));
  return op;

fail:
  return NULL;
}

static cudnnBackendDescriptor_t
convolution_op (CudaConv *conv, const SsfpnConv2dParams *params,
                cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t w,
                cudnnBackendDescriptor_t y, GError **error)
{
  cudnnBackendDescriptor_t desc = NULL, op = NULL;
  int64_t spatial = 2;
  int64_t dilations[2] = { 1, 1 };
  int64_t strides[2] = { params->stride, params->stride };
  int64_t pads[2] = { params->pad, params->pad };
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  float alpha = 1.0f, beta = 0.0f;

  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR,
                                  &desc));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS,
                                         CUDNN_TYPE_INT64, 1, &spatial));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc, CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
                                         CUDNN_TYPE_DATA_TYPE, 1, &compute));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc, CUDNN_ATTR_CONVOLUTION_CONV_MODE,
                                         CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc, CUDNN_ATTR_CONVOLUTION_DILATIONS,
                                         CUDNN_TYPE_INT64, 2, dilations));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc,
                                         CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
                                         CUDNN_TYPE_INT64, 2, strides));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS,
                                         CUDNN_TYPE_INT64, 2, pads));
  CUDNN_CHECK (cudnnBackendSetAttribute (desc,
                                         CUDNN_ATTR_CONVOLUTION_POST_PADDINGS,
                                         CUDNN_TYPE_INT64, 2, pads));
  CUDNN_CHECK (cudnnBackendFinalize (desc));

  CUDNN_CHECK (create_descriptor (conv,
                                  CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                  &op));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &desc));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                         CUDNN_TYPE_FLOAT, 1, &alpha));
  CUDNN_CHECK (cudnnBackendSetAttribute (op,
                                         CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                                         CUDNN_TYPE_FLOAT, 1, &beta));
  CUDNN_CHECK (cudnnBackendFinalize (op));
  return op;

fail:
  return NULL;
}

/* ---- the operation graph of a tier --------------------------------------- */

static gboolean
cudnn_activation (SsfpnActivation act, float alpha, cudnnPointwiseMode_t *mode,
                  double *parameter)
{
  *parameter = 0.0;
  switch (act) {
    case SSFPN_ACT_SILU:
      *mode = CUDNN_POINTWISE_SWISH_FWD;
      *parameter = 1.0; /* swish beta */
      return TRUE;
    case SSFPN_ACT_LEAKY_RELU:
      *mode = CUDNN_POINTWISE_RELU_FWD;
      *parameter = alpha; /* slope below zero */
      return TRUE;
    case SSFPN_ACT_RELU:
      *mode = CUDNN_POINTWISE_RELU_FWD;
      return TRUE;
    case SSFPN_ACT_SIGMOID:
      *mode = CUDNN_POINTWISE_SIGMOID_FWD;
      return TRUE;
    case SSFPN_ACT_NONE:
    case SSFPN_ACT_HARDSWISH:
    default:
      return FALSE;
  }
}

/* The ops of @tier in execution order into @ops (at most 7); returns the
 * count, or -1 with @error set. */
static int
build_ops (CudaConv *conv, const SsfpnConv2dParams *params, ConvTier tier,
           cudnnBackendDescriptor_t *ops, GError **error)
{
  const CudaView *x_view = tier == TIER_DENSE_INPUT ? &conv->dense_input
                                                    : &conv->input;
  int64_t k = params->kernel, cpg = params->in_channels / params->groups;
  int64_t w_dims[4] = { params->out_channels, cpg, k, k };
  int64_t w_strides[4] = { k * k * cpg, 1, k * cpg, cpg };
  cudnnBackendDescriptor_t x, w, y, current;
  cudnnPointwiseMode_t act_mode = CUDNN_POINTWISE_IDENTITY;
  double act_parameter;
  int n = 0, steps = 0, done = 0;
  int64_t next_virtual = UID_VIRTUAL;
  gboolean has_act = cudnn_activation (params->act, params->act_alpha,
                                       &act_mode, &act_parameter);

  x = view_tensor (conv, UID_X, x_view, error);
  w = x ? make_tensor (conv, UID_W, cudnn_type (conv->dtype), w_dims,
                       w_strides, pointer_alignment (conv->weight), FALSE,
                       error) : NULL;
  if (w == NULL)
    return -1;

  if (tier != TIER_FUSED) {
    /* The bare convolution into the dense scratch output. */
    CudaView dense = conv->output;
    int64_t c = dense.channels, h = dense.height, wd = dense.width;
    int64_t dims[4] = { dense.batch, c, h, wd };
    int64_t strides[4] = { h * wd * c, 1, wd * c, c };

    y = make_tensor (conv, UID_Y, cudnn_type (conv->dtype), dims, strides,
                     256, FALSE, error);
    if (y == NULL || (ops[0] = convolution_op (conv, params, x, w, y,
                                               error)) == NULL)
      return -1;
    return 1;
  }

  steps = 1 + (has_act ? 1 : 0) + (params->out_scale != 1.0f ? 1 : 0)
          + (conv->shift != NULL ? 1 : 0) + (conv->has_residual ? 1 : 0);

  /* conv -> virtual, then each post-op; the last writes the output view. */
#define NEXT_TENSOR()                                                      \
  (++done == steps ? view_tensor (conv, UID_Y, &conv->output, error)       \
                   : virtual_tensor (conv, next_virtual++, &conv->output,  \
                                     error))

  current = virtual_tensor (conv, next_virtual++, &conv->output, error);
  if (current == NULL
      || (ops[n++] = convolution_op (conv, params, x, w, current, error)) == NULL)
    return -1;
  {
    cudnnBackendDescriptor_t b = channel_tensor (conv, UID_BIAS,
                                                 params->out_channels,
                                                 conv->bias, error);
    cudnnBackendDescriptor_t next = b ? NEXT_TENSOR () : NULL;

    if (next == NULL || (ops[n++] = pointwise_op (conv, CUDNN_POINTWISE_ADD,
                                                  0.0, current, b, next,
                                                  error)) == NULL)
      return -1;
    current = next;
  }
  if (has_act) {
    cudnnBackendDescriptor_t next = NEXT_TENSOR ();

    if (next == NULL || (ops[n++] = pointwise_op (conv, act_mode,
                                                  act_parameter, current,
                                                  NULL, next, error)) == NULL)
      return -1;
    current = next;
  }
  if (params->out_scale != 1.0f) {
    cudnnBackendDescriptor_t s = channel_tensor (conv, UID_SCALE,
                                                 params->out_channels,
                                                 conv->scale, error);
    cudnnBackendDescriptor_t next = s ? NEXT_TENSOR () : NULL;

    if (next == NULL || (ops[n++] = pointwise_op (conv, CUDNN_POINTWISE_MUL,
                                                  0.0, current, s, next,
                                                  error)) == NULL)
      return -1;
    current = next;
  }
  if (conv->shift != NULL) {
    cudnnBackendDescriptor_t s = channel_tensor (conv, UID_SHIFT,
                                                 params->out_channels,
                                                 conv->shift, error);
    cudnnBackendDescriptor_t next = s ? NEXT_TENSOR () : NULL;

    if (next == NULL || (ops[n++] = pointwise_op (conv, CUDNN_POINTWISE_ADD,
                                                  0.0, current, s, next,
                                                  error)) == NULL)
      return -1;
    current = next;
  }
  if (conv->has_residual) {
    cudnnBackendDescriptor_t r = view_tensor (conv, UID_RESIDUAL,
                                              &conv->residual, error);
    cudnnBackendDescriptor_t next = r ? NEXT_TENSOR () : NULL;

    if (next == NULL || (ops[n++] = pointwise_op (conv, CUDNN_POINTWISE_ADD,
                                                  0.0, current, r, next,
                                                  error)) == NULL)
      return -1;
  }
#undef NEXT_TENSOR
  return n;
}

/* ---- engines ------------------------------------------------------------- */

/* FALSE for engines whose numerics an fp32 plan must not use (TF32 tensor
 * cores, down-converted inputs, FFT) or an fp16 plan (half accumulation). */
static gboolean
numerics_acceptable (cudnnBackendDescriptor_t config, CudaDtype dtype)
{
  cudnnBackendDescriptor_t engine = NULL;
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  int64_t n_notes = 0, n = 0;
  gboolean ok = TRUE;

  if (cudnnBackendCreateDescriptor (CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine)
      != CUDNN_STATUS_SUCCESS)
    return FALSE;
  if (cudnnBackendGetAttribute (config, CUDNN_ATTR_ENGINECFG_ENGINE,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine)
      != CUDNN_STATUS_SUCCESS
      || cudnnBackendGetAttribute (engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                   CUDNN_TYPE_NUMERICAL_NOTE,
                                   CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_notes,
                                   notes) != CUDNN_STATUS_SUCCESS) {
    cudnnBackendDestroyDescriptor (engine);
    return FALSE;
  }
  for (int64_t i = 0; i < n_notes; i++) {
    switch (notes[i]) {
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
      case CUDNN_NUMERICAL_NOTE_FFT:
        if (dtype == CUDA_DTYPE_F32)
          ok = FALSE;
        break;
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        ok = FALSE;
        break;
      default:
        break;
    }
  }
  cudnnBackendDestroyDescriptor (engine);
  return ok;
}

static int64_t
engine_index (cudnnBackendDescriptor_t config)
{
  cudnnBackendDescriptor_t engine = NULL;
  int64_t index = -1, n = 0;

  if (cudnnBackendCreateDescriptor (CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine)
      != CUDNN_STATUS_SUCCESS)
    return -1;
  if (cudnnBackendGetAttribute (config, CUDNN_ATTR_ENGINECFG_ENGINE,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine)
      == CUDNN_STATUS_SUCCESS)
    cudnnBackendGetAttribute (engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX,
                              CUDNN_TYPE_INT64, 1, &n, &index);
  cudnnBackendDestroyDescriptor (engine);
  return index;
}

static int
tune_candidates (void)
{
  const char *value = g_getenv ("SSFPN_CUDA_TUNE");
  int n = value != NULL ? atoi (value) : DEFAULT_TUNE_CANDIDATES;

  return CLAMP (n, 1, MAX_TUNE_CANDIDATES);
}

/* Finalises an execution plan for @config into @candidate; FALSE when cuDNN
 * refuses it or it wants too much workspace. */
static gboolean
make_plan (CudaConv *conv, cudnnBackendDescriptor_t config,
           Candidate *candidate)
{
  cudnnBackendDescriptor_t plan = NULL;
  int64_t workspace = 0, count = 0;

  if (cudnnBackendCreateDescriptor (CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                                    &plan) != CUDNN_STATUS_SUCCESS)
    return FALSE;
  if (cudnnBackendSetAttribute (plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                CUDNN_TYPE_HANDLE, 1, &conv->handle)
      != CUDNN_STATUS_SUCCESS
      || cudnnBackendSetAttribute (plan,
                                   CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &config)
         != CUDNN_STATUS_SUCCESS
      || cudnnBackendFinalize (plan) != CUDNN_STATUS_SUCCESS
      || cudnnBackendGetAttribute (plan,
                                   CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                   CUDNN_TYPE_INT64, 1, &count, &workspace)
         != CUDNN_STATUS_SUCCESS
      || workspace > MAX_WORKSPACE_BYTES) {
    cudnnBackendDestroyDescriptor (plan);
    return FALSE;
  }
  candidate->plan = plan;
  candidate->workspace = workspace;
  return TRUE;
}

/* The knob settings of @config, for the engine cache; n_knobs -1 when
 * cuDNN does not tell. */
static void
read_knobs (cudnnBackendDescriptor_t config, Candidate *candidate)
{
  cudnnBackendDescriptor_t knobs[CUDA_CONV_MAX_KNOBS] = { 0 };
  int64_t n = 0;
  gboolean ok = TRUE;

  for (int k = 0; k < CUDA_CONV_MAX_KNOBS && ok; k++)
    ok = cudnnBackendCreateDescriptor (CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR,
                                       &knobs[k]) == CUDNN_STATUS_SUCCESS;
  ok = ok && cudnnBackendGetAttribute (config, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       CUDA_CONV_MAX_KNOBS, &n, knobs)
             == CUDNN_STATUS_SUCCESS
       && n >= 0 && n <= CUDA_CONV_MAX_KNOBS;
  for (int64_t k = 0; ok && k < n; k++) {
    cudnnBackendKnobType_t type;
    int64_t value = 0, count = 0;

    ok = cudnnBackendGetAttribute (knobs[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE,
                                   CUDNN_TYPE_KNOB_TYPE, 1, &count, &type)
             == CUDNN_STATUS_SUCCESS
         && cudnnBackendGetAttribute (knobs[k],
                                      CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE,
                                      CUDNN_TYPE_INT64, 1, &count, &value)
            == CUDNN_STATUS_SUCCESS;
    candidate->knob_types[k] = (int) type;
    candidate->knob_values[k] = value;
  }
  candidate->n_knobs = ok ? (int) n : -1;
  for (int k = 0; k < CUDA_CONV_MAX_KNOBS; k++)
    if (knobs[k] != NULL)
      cudnnBackendDestroyDescriptor (knobs[k]);
}

/* The engine config a cached choice describes, for @graph; NULL (and a
 * debug message) when cuDNN refuses it. Its descriptors live as long as
 * the convolution. */
static cudnnBackendDescriptor_t
config_from_choice (CudaConv *conv, cudnnBackendDescriptor_t graph,
                    const CudaConvChoice *choice)
{
  cudnnBackendDescriptor_t engine = NULL, config = NULL;
  cudnnBackendDescriptor_t knobs[CUDA_CONV_MAX_KNOBS] = { 0 };
  GError *reason = NULL;
  GError **error = &reason;

  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_ENGINE_DESCRIPTOR,
                                  &engine));
  CUDNN_CHECK (cudnnBackendSetAttribute (engine,
                                         CUDNN_ATTR_ENGINE_OPERATION_GRAPH,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                         &graph));
  CUDNN_CHECK (cudnnBackendSetAttribute (engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX,
                                         CUDNN_TYPE_INT64, 1,
                                         &choice->engine_index));
  CUDNN_CHECK (cudnnBackendFinalize (engine));
  for (int k = 0; k < choice->n_knobs; k++) {
    cudnnBackendKnobType_t type = (cudnnBackendKnobType_t) choice->knob_types[k];

    CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR,
                                    &knobs[k]));
    CUDNN_CHECK (cudnnBackendSetAttribute (knobs[k],
                                           CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE,
                                           CUDNN_TYPE_KNOB_TYPE, 1, &type));
    CUDNN_CHECK (cudnnBackendSetAttribute (knobs[k],
                                           CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE,
                                           CUDNN_TYPE_INT64, 1,
                                           &choice->knob_values[k]));
    CUDNN_CHECK (cudnnBackendFinalize (knobs[k]));
  }
  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
                                  &config));
  CUDNN_CHECK (cudnnBackendSetAttribute (config, CUDNN_ATTR_ENGINECFG_ENGINE,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                         &engine));
  if (choice->n_knobs > 0)
    CUDNN_CHECK (cudnnBackendSetAttribute (config,
                                           CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                           choice->n_knobs, knobs));
  CUDNN_CHECK (cudnnBackendFinalize (config));
  return config;

fail:
  g_debug ("layer %d: cached engine %" G_GINT64_FORMAT " refused: %s",
           conv->layer, choice->engine_index, reason->message);
  g_clear_error (&reason);
  return NULL;
}

/* Adds the execution plans of @graph's heuristic results (mode @mode) that
 * finalise, up to the tuning count. cuDNN refusing an engine is not an
 * error; only failures of the calls themselves are. */
static gboolean
collect_candidates (CudaConv *conv, cudnnBackendDescriptor_t graph,
                    cudnnBackendHeurMode_t mode, GError **error)
{
  cudnnBackendDescriptor_t heuristics = NULL;
  cudnnBackendDescriptor_t configs[MAX_HEURISTIC_RESULTS] = { 0 };
  int64_t available = 0, returned = 0;
  int wanted = tune_candidates ();
  gboolean ok = FALSE;

  CUDNN_CHECK (cudnnBackendCreateDescriptor (CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR,
                                             &heuristics));
  CUDNN_CHECK (cudnnBackendSetAttribute (heuristics,
                                         CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                         &graph));
  CUDNN_CHECK (cudnnBackendSetAttribute (heuristics, CUDNN_ATTR_ENGINEHEUR_MODE,
                                         CUDNN_TYPE_HEUR_MODE, 1, &mode));
  if (cudnnBackendFinalize (heuristics) != CUDNN_STATUS_SUCCESS) {
    ok = TRUE; /* no heuristics for this graph: no candidates */
    goto fail;
  }
  CUDNN_CHECK (cudnnBackendGetAttribute (heuristics,
                                         CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                         &available, NULL));
  available = MIN (available, MAX_HEURISTIC_RESULTS);
  for (int64_t i = 0; i < available; i++)
    CUDNN_CHECK (cudnnBackendCreateDescriptor (CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
                                               &configs[i]));
  if (available > 0)
    CUDNN_CHECK (cudnnBackendGetAttribute (heuristics,
                                           CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                           available, &returned, configs));

  for (int64_t i = 0; i < returned && conv->n_candidates < wanted; i++) {
    Candidate *candidate = &conv->candidates[conv->n_candidates];
    int64_t index = engine_index (configs[i]);
    gboolean duplicate = FALSE;

    for (int j = 0; j < conv->n_candidates; j++)
      duplicate |= conv->candidates[j].engine_index == index && index >= 0;
    if (duplicate || !numerics_acceptable (configs[i], conv->dtype))
      continue;
    memset (candidate, 0, sizeof *candidate);
    if (!make_plan (conv, configs[i], candidate))
      continue;
    candidate->engine_index = index;
    read_knobs (configs[i], candidate);
    conv->n_candidates++;
  }
  ok = TRUE;

fail:
  for (int64_t i = 0; i < MAX_HEURISTIC_RESULTS; i++)
    if (configs[i] != NULL)
      cudnnBackendDestroyDescriptor (configs[i]);
  if (heuristics != NULL)
    cudnnBackendDestroyDescriptor (heuristics);
  return ok;
}

/* Builds @tier's operation graph into *@graph, NULL when cuDNN rejects
 * it; FALSE only on a failed call. */
static gboolean
build_graph (CudaConv *conv, const SsfpnConv2dParams *params, ConvTier tier,
             cudnnBackendDescriptor_t *result, GError **error)
{
  cudnnBackendDescriptor_t ops[8], graph = NULL;
  int n_ops;
  GError *graph_error = NULL;

  *result = NULL;
  n_ops = build_ops (conv, params, tier, ops, &graph_error);
  if (n_ops < 0) {
    /* A descriptor cuDNN rejects (strides, alignment) rules the tier out. */
    g_debug ("layer %d: %s tier: %s", conv->layer, tier_names[tier],
             graph_error->message);
    g_clear_error (&graph_error);
    return TRUE;
  }
  CUDNN_CHECK (create_descriptor (conv, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR,
                                  &graph));
  CUDNN_CHECK (cudnnBackendSetAttribute (graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops,
                                         ops));
  CUDNN_CHECK (cudnnBackendSetAttribute (graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE,
                                         CUDNN_TYPE_HANDLE, 1, &conv->handle));
  if (cudnnBackendFinalize (graph) != CUDNN_STATUS_SUCCESS) {
    g_debug ("layer %d: %s tier: cuDNN rejects the operation graph",
             conv->layer, tier_names[tier]);
    return TRUE;
  }
  *result = graph;
  return TRUE;

fail:
  return FALSE;
}

/* The one candidate a cached choice names; FALSE (no candidate) when it
 * cannot be rebuilt, and the caller searches as usual. */
static gboolean
try_cached (CudaConv *conv, const SsfpnConv2dParams *params,
            const CudaConvChoice *choice, GError **error)
{
  cudnnBackendDescriptor_t graph = NULL, config;
  Candidate *candidate = &conv->candidates[0];

  if (choice->tier < TIER_FUSED || choice->tier > TIER_DENSE_INPUT
      || (choice->tier == TIER_FUSED
          && (params->accumulate || params->act == SSFPN_ACT_HARDSWISH)))
    return TRUE;
  conv->tier = (ConvTier) choice->tier;
  if (!build_graph (conv, params, conv->tier, &graph, error))
    return FALSE;
  config = graph != NULL ? config_from_choice (conv, graph, choice) : NULL;
  if (config == NULL)
    return TRUE;
  /* The cache file is not trusted: a stale or edited choice must not bring
   * an engine the search would refuse (TF32 in fp32, say) into the plan. */
  if (!numerics_acceptable (config, conv->dtype)) {
    g_debug ("layer %d: cached engine %" G_GINT64_FORMAT " has numerics "
             "this precision refuses; searching again", conv->layer,
             choice->engine_index);
    return TRUE;
  }
  memset (candidate, 0, sizeof *candidate);
  if (!make_plan (conv, config, candidate)) {
    g_debug ("layer %d: cached engine %" G_GINT64_FORMAT " does not "
             "finalise; searching again", conv->layer, choice->engine_index);
    return TRUE;
  }
  candidate->engine_index = choice->engine_index;
  candidate->n_knobs = choice->n_knobs;
  memcpy (candidate->knob_types, choice->knob_types,
          sizeof candidate->knob_types);
  memcpy (candidate->knob_values, choice->knob_values,
          sizeof candidate->knob_values);
  conv->n_candidates = 1;
  conv->from_cache = TRUE;
  return TRUE;
}

/* Builds @tier's graph and collects its candidates; FALSE only on a failed
 * call (no candidates is not a failure). */
static gboolean
try_tier (CudaConv *conv, const SsfpnConv2dParams *params, ConvTier tier,
          GError **error)
{
  cudnnBackendDescriptor_t graph = NULL;

  if (!build_graph (conv, params, tier, &graph, error))
    return FALSE;
  if (graph == NULL)
    return TRUE;
  if (!collect_candidates (conv, graph, CUDNN_HEUR_MODE_A, error))
    return FALSE;
  if (conv->n_candidates == 0
      && !collect_candidates (conv, graph, CUDNN_HEUR_MODE_FALLBACK, error))
    return FALSE;
  return TRUE;
}

/* ---- constants ----------------------------------------------------------- */

/* Uploads @n floats and converts them to the plan's precision in place of
 * a new device buffer. */
static void *
upload_constant (const float *host, size_t n, CudaDtype dtype,
                 cudaStream_t stream, GError **error)
{
  float *staging = NULL;
  void *device = NULL;

  CUDA_CHECK (cudaMalloc ((void **) &staging, n * sizeof (float)));
  CUDA_CHECK (cudaMalloc (&device, n * cuda_dtype_size (dtype)));
  CUDA_CHECK (cudaMemcpyAsync (staging, host, n * sizeof (float),
                               cudaMemcpyHostToDevice, stream));
  CUDA_CHECK (cuda_convert_from_float (staging, device, dtype, (int64_t) n,
                                       stream));
  CUDA_CHECK (cudaStreamSynchronize (stream));
  cudaFree (staging);
  return device;

fail:
  cudaFree (staging);
  cudaFree (device);
  return NULL;
}

/* Weights (out, in / groups, k, k) into (out, k, k, in / groups): the
 * filter layout of NHWC convolutions. */
static float *
weights_krsc (const SsfpnConv2dParams *params)
{
  int k = params->kernel, cpg = params->in_channels / params->groups;
  size_t n = (size_t) params->out_channels * cpg * k * k;
  float *out = g_new (float, n);

  for (int o = 0; o < params->out_channels; o++)
    for (int c = 0; c < cpg; c++)
      for (int r = 0; r < k * k; r++)
        out[((size_t) o * k * k + r) * cpg + c]
            = params->weight[((size_t) o * cpg + c) * k * k + r];
  return out;
}

static CudaActivation
epilogue_activation (SsfpnActivation act)
{
  switch (act) {
    case SSFPN_ACT_SILU: return CUDA_ACT_SILU;
    case SSFPN_ACT_LEAKY_RELU: return CUDA_ACT_LEAKY_RELU;
    case SSFPN_ACT_RELU: return CUDA_ACT_RELU;
    case SSFPN_ACT_HARDSWISH: return CUDA_ACT_HARDSWISH;
    case SSFPN_ACT_SIGMOID: return CUDA_ACT_SIGMOID;
    case SSFPN_ACT_NONE:
    default: return CUDA_ACT_NONE;
  }
}

/* ---- public -------------------------------------------------------------- */

CudaConv *
cuda_conv_new (const SsfpnConv2dParams *params, const CudaConvSetup *setup,
               const CudaConvChoice *cached, cudaStream_t stream,
               GError **error)
{
  CudaConv *conv = g_new0 (CudaConv, 1);
  float *krsc = NULL, *scale = NULL;
  ConvTier first_tier;

  conv->layer = setup->layer;
  conv->handle = setup->handle;
  conv->dtype = setup->output.dtype;
  conv->input = setup->input;
  conv->output = setup->output;
  conv->residual = setup->residual;
  conv->has_residual = setup->residual.data != NULL;
  conv->out_channels = params->out_channels;
  conv->descriptors = g_ptr_array_new_with_free_func (destroy_descriptor);
  /* The dense copy of the input slice; its data pointer comes at bind. */
  conv->dense_input = setup->input;
  conv->dense_input.pixel_stride = setup->input.channels;
  conv->dense_input.item_stride = (int64_t) setup->input.channels
                                  * setup->input.height * setup->input.width;
  conv->dense_input.data = NULL;

  krsc = weights_krsc (params);
  conv->weight = upload_constant (krsc,
                                  (size_t) params->out_channels
                                  * (params->in_channels / params->groups)
                                  * params->kernel * params->kernel,
                                  conv->dtype, stream, error);
  if (conv->weight == NULL)
    goto fail;
  conv->bias = upload_constant (params->bias, params->out_channels,
                                conv->dtype, stream, error);
  if (conv->bias == NULL)
    goto fail;
  scale = g_new (float, params->out_channels);
  for (int c = 0; c < params->out_channels; c++)
    scale[c] = params->out_scale;
  conv->scale = upload_constant (scale, params->out_channels, conv->dtype,
                                 stream, error);
  if (conv->scale == NULL)
    goto fail;
  if (params->out_shift != NULL) {
    conv->shift = upload_constant (params->out_shift, params->out_channels,
                                   conv->dtype, stream, error);
    if (conv->shift == NULL)
      goto fail;
  }

  conv->epilogue.bias = conv->bias;
  conv->epilogue.shift = conv->shift;
  conv->epilogue.act = epilogue_activation (params->act);
  conv->epilogue.act_alpha = params->act_alpha;
  conv->epilogue.scale = params->out_scale;
  conv->epilogue.accumulate = params->accumulate;

  /* The dense input buffer is 256-byte aligned like every cudaMalloc; give
   * the descriptor that alignment before the real pointer exists. */
  conv->dense_input.data = (void *) (uintptr_t) 256;
  first_tier = params->accumulate || params->act == SSFPN_ACT_HARDSWISH
               ? TIER_EPILOGUE : TIER_FUSED;
  if (cached != NULL && !try_cached (conv, params, cached, error))
    goto fail;
  for (ConvTier tier = first_tier; tier <= TIER_DENSE_INPUT
       && conv->n_candidates == 0; tier++) {
    conv->tier = tier;
    if (!try_tier (conv, params, tier, error))
      goto fail;
  }
  conv->dense_input.data = NULL;
  if (conv->n_candidates == 0) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_UNSUPPORTED,
                 "layer %d: cuDNN has no engine for this %dx%d convolution "
                 "(%d -> %d channels, stride %d, groups %d, %s) on this GPU",
                 conv->layer, params->kernel, params->kernel,
                 params->in_channels, params->out_channels, params->stride,
                 params->groups,
                 conv->dtype == CUDA_DTYPE_F16 ? "fp16" : "fp32");
    goto fail;
  }
  g_free (krsc);
  g_free (scale);
  return conv;

fail:
  g_free (krsc);
  g_free (scale);
  cuda_conv_free (conv);
  return NULL;
}

void
cuda_conv_free (CudaConv *conv)
{
  if (conv == NULL)
    return;
  if (conv->variant_pack != NULL)
    cudnnBackendDestroyDescriptor (conv->variant_pack);
  if (conv->chosen.plan != NULL)
    cudnnBackendDestroyDescriptor (conv->chosen.plan);
  for (int i = 0; i < conv->n_candidates; i++)
    cudnnBackendDestroyDescriptor (conv->candidates[i].plan);
  /* Plans before the graphs they were made from. */
  g_ptr_array_unref (conv->descriptors);
  cudaFree (conv->weight);
  cudaFree (conv->bias);
  cudaFree (conv->scale);
  cudaFree (conv->shift);
  g_free (conv->description);
  g_free (conv);
}

void
cuda_conv_requirements (const CudaConv *conv, size_t *scratch_out,
                        size_t *scratch_in, size_t *workspace)
{
  const CudaView *o = &conv->output, *i = &conv->input;
  size_t size = cuda_dtype_size (conv->dtype);
  int64_t largest = 0;

  *scratch_out = conv->tier == TIER_FUSED ? 0
      : (size_t) o->batch * o->height * o->width * o->channels * size;
  *scratch_in = conv->tier != TIER_DENSE_INPUT ? 0
      : (size_t) i->batch * i->height * i->width * i->channels * size;
  for (int c = 0; c < conv->n_candidates; c++)
    largest = MAX (largest, conv->candidates[c].workspace);
  *workspace = (size_t) largest;
}

static cudnnBackendDescriptor_t
make_variant_pack (CudaConv *conv, void *scratch_out, void *workspace,
                   GError **error)
{
  cudnnBackendDescriptor_t pack = NULL;
  int64_t uids[MAX_UIDS];
  void *pointers[MAX_UIDS];
  int n = 0;

  uids[n] = UID_X;
  pointers[n++] = conv->tier == TIER_DENSE_INPUT ? conv->dense_input.data
                                                 : conv->input.data;
  uids[n] = UID_W;
  pointers[n++] = conv->weight;
  uids[n] = UID_Y;
  pointers[n++] = conv->tier == TIER_FUSED ? conv->output.data : scratch_out;
  if (conv->tier == TIER_FUSED) {
    uids[n] = UID_BIAS;
    pointers[n++] = conv->bias;
    if (conv->epilogue.scale != 1.0f) {
      uids[n] = UID_SCALE;
      pointers[n++] = conv->scale;
    }
    if (conv->shift != NULL) {
      uids[n] = UID_SHIFT;
      pointers[n++] = conv->shift;
    }
    if (conv->has_residual) {
      uids[n] = UID_RESIDUAL;
      pointers[n++] = conv->residual.data;
    }
  }

  CUDNN_CHECK (cudnnBackendCreateDescriptor (CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR,
                                             &pack));
  CUDNN_CHECK (cudnnBackendSetAttribute (pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                         CUDNN_TYPE_INT64, n, uids));
  CUDNN_CHECK (cudnnBackendSetAttribute (pack,
                                         CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                         CUDNN_TYPE_VOID_PTR, n, pointers));
  CUDNN_CHECK (cudnnBackendSetAttribute (pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                         CUDNN_TYPE_VOID_PTR, 1, &workspace));
  CUDNN_CHECK (cudnnBackendFinalize (pack));
  return pack;

fail:
  if (pack != NULL)
    cudnnBackendDestroyDescriptor (pack);
  return NULL;
}

/* Mean time of a candidate in ms, or a negative value when it fails to
 * run (some engines only find out at launch). */
static float
time_candidate (CudaConv *conv, cudnnBackendDescriptor_t plan,
                cudaStream_t stream, cudaEvent_t start, cudaEvent_t stop)
{
  float ms = -1.0f;

  if (cudnnBackendExecute (conv->handle, plan, conv->variant_pack)
      != CUDNN_STATUS_SUCCESS
      || cudaStreamSynchronize (stream) != cudaSuccess) {
    (void) cudaGetLastError ();
    return -1.0f;
  }
  if (cudaEventRecord (start, stream) != cudaSuccess)
    return -1.0f;
  for (int r = 0; r < TUNE_REPEATS; r++)
    if (cudnnBackendExecute (conv->handle, plan, conv->variant_pack)
        != CUDNN_STATUS_SUCCESS)
      return -1.0f;
  if (cudaEventRecord (stop, stream) != cudaSuccess
      || cudaEventSynchronize (stop) != cudaSuccess
      || cudaEventElapsedTime (&ms, start, stop) != cudaSuccess)
    return -1.0f;
  return ms / TUNE_REPEATS;
}

gboolean
cuda_conv_bind (CudaConv *conv, void *scratch_out, void *scratch_in,
                void *workspace, cudaStream_t stream, GError **error)
{
  cudaEvent_t start = NULL, stop = NULL;
  float best_ms = -1.0f;
  int best = -1;

  conv->scratch_out = scratch_out;
  conv->dense_input.data = scratch_in;
  conv->variant_pack = make_variant_pack (conv, scratch_out, workspace,
                                          error);
  if (conv->variant_pack == NULL)
    goto fail;

  CUDA_CHECK (cudaEventCreate (&start));
  CUDA_CHECK (cudaEventCreate (&stop));
  for (int i = 0; i < conv->n_candidates; i++) {
    float ms = conv->n_candidates == 1 ? 0.0f
        : time_candidate (conv, conv->candidates[i].plan, stream, start, stop);

    g_debug ("layer %d: %s, engine %" G_GINT64_FORMAT ": %.4f ms",
             conv->layer, tier_names[conv->tier],
             conv->candidates[i].engine_index, ms);
    if (ms >= 0.0f && (best < 0 || ms < best_ms)) {
      best = i;
      best_ms = ms;
    }
  }
  if (best < 0) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                 "layer %d: none of the %d cuDNN engines cuDNN offered for "
                 "this convolution runs", conv->layer, conv->n_candidates);
    goto fail;
  }
  conv->chosen = conv->candidates[best];
  for (int i = 0; i < conv->n_candidates; i++)
    if (i != best)
      cudnnBackendDestroyDescriptor (conv->candidates[i].plan);
  conv->n_candidates = 0;
  conv->description = g_strdup_printf ("%s, engine %" G_GINT64_FORMAT "%s",
                                       tier_names[conv->tier],
                                       conv->chosen.engine_index,
                                       conv->from_cache ? " (cached)" : "");
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  return TRUE;

fail:
  if (start != NULL)
    cudaEventDestroy (start);
  if (stop != NULL)
    cudaEventDestroy (stop);
  return FALSE;
}

gboolean
cuda_conv_run (CudaConv *conv, cudaStream_t stream, GError **error)
{
  if (conv->tier == TIER_DENSE_INPUT)
    CUDA_CHECK (cuda_copy_channels (&conv->input, &conv->dense_input, stream));
  CUDNN_CHECK (cudnnBackendExecute (conv->handle, conv->chosen.plan,
                                    conv->variant_pack));
  if (conv->tier != TIER_FUSED)
    CUDA_CHECK (cuda_conv_epilogue (conv->scratch_out,
                                    conv->has_residual ? &conv->residual : NULL,
                                    &conv->output, &conv->epilogue, stream));
  return TRUE;

fail:
  return FALSE;
}

gboolean
cuda_conv_get_choice (const CudaConv *conv, CudaConvChoice *choice)
{
  const Candidate *c = &conv->chosen;

  if (c->plan == NULL || c->n_knobs < 0 || c->engine_index < 0)
    return FALSE;
  memset (choice, 0, sizeof *choice);
  choice->tier = (int) conv->tier;
  choice->engine_index = c->engine_index;
  choice->n_knobs = c->n_knobs;
  memcpy (choice->knob_types, c->knob_types, sizeof choice->knob_types);
  memcpy (choice->knob_values, c->knob_values, sizeof choice->knob_values);
  return TRUE;
}

gboolean
cuda_conv_from_cache (const CudaConv *conv)
{
  return conv->from_cache;
}

const char *
cuda_conv_describe (const CudaConv *conv)
{
  return conv->description != NULL ? conv->description
                                   : tier_names[conv->tier];
}
