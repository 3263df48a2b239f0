/* One CONV2D op as a oneDNN convolution primitive with its post-ops fused.
 *
 * Post-op chain (all fused, so the output is written once):
 *   eltwise activation, eltwise linear (out_scale), binary add of the
 *   per-channel shift, binary add of the residual tensor, binary add of a
 *   copy of the previous output (accumulate).
 * oneDNN 2.6's JIT kernels accept a sum post-op only first in the chain, and
 * aliasing dst as a binary source is unsafe (the kernels keep partial sums
 * in dst), so accumulation reads a private copy of the previous output.
 *
 * Memories are one batch item each (N = 1): a channel slice of a root
 * buffer is then always a dense tensor, in NCHW and, when aligned to the
 * block, in nChw8c / nChw16c.
 */
#ifndef SSFPN_CPU_CONV_H
#define SSFPN_CPU_CONV_H

#include <oneapi/dnnl/dnnl.h>

#include "graph.h"

G_BEGIN_DECLS

typedef struct _CpuConv CpuConv;

typedef struct {
  int in_height, in_width;
  int out_height, out_width;
  int src_block, dst_block; /* layouts: 1 (NCHW), 8 or 16 */
  int residual_block;       /* layout of the residual; ignored without one */
  int batch;
} CpuConvShape;

/* Creates the primitive and reorders the weights. @layer names the
 * configuration layer in error messages. */
CpuConv *cpu_conv_new (dnnl_engine_t engine, const SsfpnConv2dParams *params,
                       const CpuConvShape *shape, int layer, GError **error);
void cpu_conv_free (CpuConv *conv);

/* The implementation oneDNN chose, e.g. "jit:avx512_core" or "ref:any". */
const char *cpu_conv_impl (const CpuConv *conv);
gboolean cpu_conv_is_reference (const CpuConv *conv);

/* Bytes of user scratchpad a run needs. */
gsize cpu_conv_scratchpad_size (const CpuConv *conv);

/* Points batch item @item at its buffers (dense per item in the conv's
 * layouts): @src at channel in_offset of the input, @dst, @residual (NULL
 * without one), and the plan's @scratchpad. */
gboolean cpu_conv_bind (CpuConv *conv, int item, float *src, float *dst,
                        float *residual, void *scratchpad, GError **error);

gboolean cpu_conv_run (CpuConv *conv, dnnl_stream_t stream, int item,
                       GError **error);

G_END_DECLS

#endif /* SSFPN_CPU_CONV_H */
