/* ssfpndetect: one element's batch of frames, detected in one engine call.
 *
 * Frames join the batch as they arrive, borrowed: the caller keeps their
 * pixels readable until the batch runs or is discarded. A run hands the
 * whole batch to ssfpn_context_detect (letterbox, network, NMS; all on the
 * GPU for a GPU context) on a context that other elements with the same
 * model-instance-id may share (see ssfpn-model-cache.h), and returns each
 * frame's detections in its own coordinates normalised to [0, 1]. Nothing
 * here knows about GStreamer, so the element keeps only the streaming
 * logic.
 */
#ifndef SSFPN_INFERENCE_H
#define SSFPN_INFERENCE_H

#include <ssfpn/ssfpn.h>
#include <ssfpn/ssfpn-frame.h>

G_BEGIN_DECLS

typedef struct {
  int class_id;
  double confidence;
  /* corners, normalised to the frame's width and height, within [0, 1] */
  double x_min, y_min, x_max, y_max;
} SsfpnFrameDetection;

typedef struct _SsfpnInference SsfpnInference;

/* Acquires the context for @model (from ssfpn_model_cache_acquire with the
 * same @instance_id) and @options (the batch size is options->batch): the
 * one other elements with this id and these settings use, else a new one,
 * warmed up and timed on a blank batch. */
SsfpnInference *ssfpn_inference_new (const char *instance_id,
                                     SsfpnModel *model,
                                     const SsfpnContextOptions *options,
                                     GError **error);
void ssfpn_inference_free (SsfpnInference *inference);

/* For what never changes (device, precision, batch and input size); it
 * must not be run directly. */
const SsfpnContext *ssfpn_inference_context (const SsfpnInference *inference);
int ssfpn_inference_batch_size (const SsfpnInference *inference);
/* Frames waiting in the batch. */
int ssfpn_inference_pending (const SsfpnInference *inference);
/* Microseconds the most recent run took, without waiting for a shared
 * context (the timed blank run at first). */
gint64 ssfpn_inference_last_run_us (const SsfpnInference *inference);

/* Adds @frame (borrowed: its planes must stay readable until the run or
 * the discard) to the next free slot; the batch must not be full. Returns
 * the slot, or -1 with @error set when the frame is unusable. */
int ssfpn_inference_add_frame (SsfpnInference *inference,
                               const SsfpnFrame *frame, GError **error);

/* Detects in the pending frames with one engine call. Returns a new array
 * with one GArray of SsfpnFrameDetection per pending frame, in slot order,
 * and empties the batch. NULL with @error set on failure (the batch is
 * emptied too). */
GPtrArray *ssfpn_inference_run (SsfpnInference *inference,
                                const SsfpnNmsOptions *nms, GError **error);

/* Forgets the pending frames (flushing). */
void ssfpn_inference_discard (SsfpnInference *inference);

G_END_DECLS

#endif /* SSFPN_INFERENCE_H */
