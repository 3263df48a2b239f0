/* ssfpndetect: one batch of network inputs, run, and detections per frame.
 *
 * Frames are letterboxed into the next free batch slot as they arrive; a
 * run fills every slot's detections, in the frame's own coordinates
 * normalised to [0, 1], and empties the batch. Nothing here knows about
 * GStreamer, so the element keeps only the streaming logic.
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

/* Creates the inference context for @options (the batch size is
 * options->batch), warms it up and times one run on a blank batch. */
SsfpnInference *ssfpn_inference_new (SsfpnModel *model,
                                     const SsfpnContextOptions *options,
                                     GError **error);
void ssfpn_inference_free (SsfpnInference *inference);

const SsfpnContext *ssfpn_inference_context (const SsfpnInference *inference);
int ssfpn_inference_batch_size (const SsfpnInference *inference);
/* Frames waiting in the batch. */
int ssfpn_inference_pending (const SsfpnInference *inference);
/* Microseconds the most recent run took (the timed blank one at first). */
gint64 ssfpn_inference_last_run_us (const SsfpnInference *inference);

/* Letterboxes @frame into the next free slot; the batch must not be full.
 * Returns the slot, or -1 with @error set. */
int ssfpn_inference_add_frame (SsfpnInference *inference,
                               const SsfpnLetterbox *letterbox,
                               const SsfpnFrame *frame, GError **error);

/* Runs the network on the pending frames and applies NMS. Returns a new
 * array with one GArray of SsfpnFrameDetection per pending frame, in slot
 * order, and empties the batch. NULL with @error set on failure (the batch
 * is emptied too). */
GPtrArray *ssfpn_inference_run (SsfpnInference *inference,
                                const SsfpnNmsOptions *nms, GError **error);

/* Forgets the pending frames (flushing). */
void ssfpn_inference_discard (SsfpnInference *inference);

G_END_DECLS

#endif /* SSFPN_INFERENCE_H */
