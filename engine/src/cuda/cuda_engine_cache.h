/* The on-disk cache of cuDNN engine choices.
 *
 * Timing the candidate engines of every convolution is the slow part of
 * making a plan; the choice depends only on the network, the GPU, cuDNN,
 * the batch, the input size and the precision. One small text file per such
 * key under $XDG_CACHE_HOME/ssfpn (default ~/.cache/ssfpn) holds the
 * choices, so a second start builds the same engines without timing.
 *
 * The file is data, never trusted: it must name the exact key it was
 * written for, every line must parse and name a convolution of this graph,
 * or the whole file is ignored (with a debug message) and rewritten after
 * tuning. A cached engine cuDNN refuses is searched for again. The cache is
 * off when SSFPN_CUDA_CACHE=0; with SSFPN_CUDA_TUNE set it is not read
 * (a new search) but rewritten.
 */
#ifndef SSFPN_CUDA_ENGINE_CACHE_H
#define SSFPN_CUDA_ENGINE_CACHE_H

#include "cuda/cuda_conv.h"
#include "graph.h"

G_BEGIN_DECLS

typedef struct _CudaEngineCache CudaEngineCache;

/* Reads the file for this key, if any and when @read (else the file is
 * only written: a new search). Never fails: an unreadable cache is an
 * empty one. */
CudaEngineCache *cuda_engine_cache_open (const SsfpnGraph *graph,
                                         int device, int batch, int height,
                                         int width, CudaDtype dtype,
                                         gboolean read);

/* Whether the file gave any convolution its engine. */
gboolean cuda_engine_cache_has_choices (const CudaEngineCache *cache);
void cuda_engine_cache_free (CudaEngineCache *cache);

/* The choice for op @op (a CONV2D), or NULL. */
const CudaConvChoice *cuda_engine_cache_lookup (const CudaEngineCache *cache,
                                                guint op);

/* Records the choice for op @op; save() writes the file when anything
 * changed. Failing to write is only logged: the cache is an optimisation. */
void cuda_engine_cache_store (CudaEngineCache *cache, guint op,
                              const CudaConvChoice *choice);
void cuda_engine_cache_save (CudaEngineCache *cache);

/* The file this cache reads and writes (NULL when the cache is off). */
const char *cuda_engine_cache_path (const CudaEngineCache *cache);

/* A 64-bit hash of the graph: structure, parameters and weights. */
guint64 cuda_graph_hash (const SsfpnGraph *graph);

G_END_DECLS

#endif /* SSFPN_CUDA_ENGINE_CACHE_H */
