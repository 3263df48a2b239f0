/* Reference implementations of the graph ops: plain loops in double
 * precision over plain NCHW arrays, no oneDNN, no layouts, no threads.
 * What the backends are tested against. */
#ifndef SSFPN_REF_OPS_H
#define SSFPN_REF_OPS_H

#include "graph.h"

G_BEGIN_DECLS

/* The tensors of a reference run: one (batch, channels, H, W) array per
 * root tensor (NULL where nothing writes it), and every tensor's size. */
typedef struct {
  int n_tensors, batch;
  float **roots;
  int *heights, *widths;
} RefTensors;

/* Runs @graph on @input (batch, C0, H, W) and writes the decoded output
 * (batch, rows, 5 + nc) into @output (may be NULL when the graph has no
 * Detect). Returns NULL, with @error set, when the shapes do not work. */
RefTensors *ref_run_graph (const SsfpnGraph *graph, int batch, int height,
                           int width, const float *input, float *output,
                           GError **error);
void ref_tensors_free (RefTensors *tensors);

/* Copies item @item of @tensor (a root or a view) as (channels, H, W). */
void ref_read_tensor (const SsfpnGraph *graph, const RefTensors *tensors,
                      int tensor, int item, float *out);

G_END_DECLS

#endif /* SSFPN_REF_OPS_H */
