/* SSFPN_OP_CONV2D through cuDNN's graph (backend) API.
 *
 * Each convolution becomes one cuDNN operation graph, tried in tiers until
 * cuDNN has an engine for it:
 *   fused:         conv -> + bias -> act -> * scale -> + shift -> + residual,
 *                  reading and writing the views in place (one kernel);
 *   epilogue:      the bare conv into a dense scratch buffer, then our
 *                  epilogue kernel applies every post-op into the view;
 *   dense input:   as epilogue, after copying the input slice into a dense
 *                  buffer (for engines that refuse strided inputs).
 * Accumulation and Hardswish (no cuDNN pointwise mode) always take the
 * epilogue. The engine is picked once per plan: the first few configs of
 * cuDNN's heuristics that finalise are timed and the fastest kept.
 */
#ifndef SSFPN_CUDA_CONV_H
#define SSFPN_CUDA_CONV_H

#include <cudnn.h>

#include "cuda/cuda_view.h"
#include "graph.h"

G_BEGIN_DECLS

typedef struct _CudaConv CudaConv;

#define CUDA_CONV_MAX_KNOBS 32

/* The engine picked for a convolution, enough to build it again without
 * timing: the tier, cuDNN's global engine index and its knob settings.
 * Stored by cuda_engine_cache.c. */
typedef struct {
  int tier;              /* 0 fused, 1 epilogue, 2 dense input */
  int64_t engine_index;
  int n_knobs;
  int knob_types[CUDA_CONV_MAX_KNOBS];   /* cudnnBackendKnobType_t */
  int64_t knob_values[CUDA_CONV_MAX_KNOBS];
} CudaConvChoice;

#define CUDA_CONV_TIERS 3

typedef struct {
  cudnnHandle_t handle;  /* its stream is the plan's */
  CudaView input;        /* the channel slice the convolution reads */
  CudaView output;
  CudaView residual;     /* data NULL when there is none */
  int layer;             /* for messages */
} CudaConvSetup;

/* Uploads the weights and finds the engine candidates; the views must hold
 * their final device pointers. With @cached (from the engine cache) that
 * engine alone is built, and timing is skipped; when cuDNN refuses it the
 * usual search runs instead. */
CudaConv *cuda_conv_new (const SsfpnConv2dParams *params,
                         const CudaConvSetup *setup,
                         const CudaConvChoice *cached, cudaStream_t stream,
                         GError **error);
void cuda_conv_free (CudaConv *conv);

/* What bind() needs: scratch bytes for the dense output and input (0 when
 * the tier needs none) and the largest workspace of the candidates. */
void cuda_conv_requirements (const CudaConv *conv, size_t *scratch_out,
                             size_t *scratch_in, size_t *workspace);

/* Binds the plan's shared buffers, times the candidates and keeps the
 * fastest. Overwrites the output view (the plan is not running yet). */
gboolean cuda_conv_bind (CudaConv *conv, void *scratch_out, void *scratch_in,
                         void *workspace, cudaStream_t stream,
                         GError **error);

/* Enqueues the convolution (and its epilogue) on the handle's stream. */
gboolean cuda_conv_run (CudaConv *conv, cudaStream_t stream, GError **error);

/* After bind(): the engine kept. FALSE when it cannot be described for the
 * cache (cuDNN did not report its knobs). */
gboolean cuda_conv_get_choice (const CudaConv *conv, CudaConvChoice *choice);

/* TRUE when the engine came from the cache (no timing was done). */
gboolean cuda_conv_from_cache (const CudaConv *conv);

/* "fused, engine 12" and the like, for debug output and the bench. */
const char *cuda_conv_describe (const CudaConv *conv);

G_END_DECLS

#endif /* SSFPN_CUDA_CONV_H */
