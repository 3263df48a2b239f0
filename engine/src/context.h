/* The internals of SsfpnContext, shared by context.c and detect.c. */
#ifndef SSFPN_CONTEXT_H
#define SSFPN_CONTEXT_H

#include "backend.h"
#include "model.h"

G_BEGIN_DECLS

typedef struct _SsfpnDetectState SsfpnDetectState;

struct _SsfpnContext {
  SsfpnModel *model;
  const SsfpnBackend *backend;
  SsfpnPlan *plan;
  char *device;
  SsfpnPrecision precision;
  int batch, height, width, rows;
  int threads; /* CPU threads asked for; 0 = all cores */
  SsfpnAugment augment;
  int views;                  /* network passes per image: the plan's batch
                               * is batch x views */
  float *view_input, *view_output; /* the views' buffers, when views > 1 */
  SsfpnDetectState *detect; /* detect.c's buffers, made on first use */
};

void ssfpn_detect_state_free (SsfpnDetectState *state);

/* The pre-processing of ssfpn_context_detect's host path alone: letterboxes
 * @frames into the context's host input, with its thread count (for
 * `ssfpn bench`). */
gboolean ssfpn_context_letterbox_on_host (SsfpnContext *context,
                                          const SsfpnFrame *frames,
                                          int n_frames, GError **error);

G_END_DECLS

#endif /* SSFPN_CONTEXT_H */
