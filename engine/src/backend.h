/* The backend interface: a small table of functions per backend.
 *
 * A backend turns a graph into a plan for one batch size and input size
 * (allocating everything it needs once), then runs that plan. Adding a
 * backend means a new folder implementing this table and one line in
 * backend_registry.c; nothing else changes.
 */
#ifndef SSFPN_BACKEND_H
#define SSFPN_BACKEND_H

#include "graph.h"
#include "ssfpn/ssfpn-frame.h"
#include "ssfpn/ssfpn.h"

G_BEGIN_DECLS

typedef struct _SsfpnPlan SsfpnPlan; /* opaque, defined by each backend */

typedef struct {
  int batch;
  int height, width;
  SsfpnPrecision precision; /* never DEFAULT here */
  int device_index;         /* GPU ordinal; 0 on the CPU */
  int threads;              /* CPU threads; 0 = all */
} SsfpnPlanOptions;

typedef struct {
  const char *name; /* "cpu", "cuda" */

  /* TRUE when the backend can run on this machine; else sets @error with
   * the reason (no GPU, driver too old, ...). */
  gboolean (*available) (int device_index, GError **error);

  SsfpnPrecision default_precision;

  /* Everything per-run is allocated here; run() allocates nothing. */
  SsfpnPlan *(*plan_new) (const SsfpnGraph *graph,
                          const SsfpnPlanOptions *options, GError **error);
  void (*plan_free) (SsfpnPlan *plan);

  /* @input: host float32 (batch, 3, H, W); @output: host float32
   * (batch, rows, 5 + nc). */
  gboolean (*plan_run) (SsfpnPlan *plan, const float *input, float *output,
                        GError **error);

  /* Optional; NULL means the generic path of detect.c (letterbox and NMS on
   * the host around plan_run). Frames in host memory to detections, all on
   * the device: letterbox @n_frames frames (1 to the plan's batch) into the
   * input, run, NMS per frame; frame i's detections, boxes in network-input
   * pixels, go to results + i * capacity and their number to counts[i]. */
  gboolean (*plan_detect) (SsfpnPlan *plan, const SsfpnFrame *frames,
                           int n_frames, const SsfpnNmsOptions *nms,
                           SsfpnDetection *results, int capacity,
                           int *counts, GError **error);

  /* Optional, for `ssfpn bench`: runs the plan again on the input already
   * on the device (left there by the last run or detect), with no host
   * copies of input or raw output: the network alone when @nms is NULL,
   * else the network and NMS over the whole batch, the detections kept in
   * the backend's own buffers. Returns when the device is done. */
  gboolean (*plan_run_resident) (SsfpnPlan *plan, const SsfpnNmsOptions *nms,
                                 GError **error);
} SsfpnBackend;

/* Backend by name ("cpu", "cuda"), or NULL when not built in. */
const SsfpnBackend *ssfpn_backend_find (const char *name);

/* The check every plan_new starts with (backends are also called
 * directly, by the tests): batch and input size at least 1. */
gboolean ssfpn_plan_options_check_shape (const SsfpnPlanOptions *options,
                                         GError **error);

extern const SsfpnBackend ssfpn_cpu_backend;

G_END_DECLS

#endif /* SSFPN_BACKEND_H */
