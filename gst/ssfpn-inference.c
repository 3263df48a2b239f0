/* ssfpndetect: one element's batch of frames, detected in one engine call. */
#include "ssfpn-inference.h"
#include "ssfpn-model-cache.h"

struct _SsfpnInference {
  SsfpnSharedContext *shared;
  int batch_size;
  SsfpnFrame *frames;          /* batch_size slots, borrowed pixels */
  int pending;
  SsfpnDetection *results;     /* pending x capacity, from the engine */
  gsize results_length;
  int *counts;                 /* per slot */
  gint64 last_run_us;
};

SsfpnInference *
ssfpn_inference_new (const char *instance_id, SsfpnModel *model,
                     const SsfpnContextOptions *options, GError **error)
{
  SsfpnSharedContext *shared =
      ssfpn_model_cache_acquire_context (instance_id, model, options, error);
  if (shared == NULL)
    return NULL;

  SsfpnInference *inference = g_new0 (SsfpnInference, 1);
  inference->shared = shared;
  inference->batch_size =
      ssfpn_context_batch (ssfpn_shared_context_peek (shared));
  inference->frames = g_new0 (SsfpnFrame, inference->batch_size);
  inference->counts = g_new0 (int, inference->batch_size);
  inference->last_run_us = ssfpn_shared_context_warmup_run_us (shared);
  return inference;
}

void
ssfpn_inference_free (SsfpnInference *inference)
{
  if (inference == NULL)
    return;
  ssfpn_model_cache_release_context (inference->shared);
  g_free (inference->frames);
  g_free (inference->results);
  g_free (inference->counts);
  g_free (inference);
}

const SsfpnContext *
ssfpn_inference_context (const SsfpnInference *inference)
{
  return ssfpn_shared_context_peek (inference->shared);
}

int
ssfpn_inference_batch_size (const SsfpnInference *inference)
{
  return inference->batch_size;
}

int
ssfpn_inference_pending (const SsfpnInference *inference)
{
  return inference->pending;
}

gint64
ssfpn_inference_last_run_us (const SsfpnInference *inference)
{
  return inference->last_run_us;
}

int
ssfpn_inference_add_frame (SsfpnInference *inference,
                           const SsfpnFrame *frame, GError **error)
{
  g_return_val_if_fail (inference->pending < inference->batch_size, -1);

  /* Checked now, so that a bad frame fails on its own, not its batch. */
  if (!ssfpn_frame_check (frame, error))
    return -1;
  inference->frames[inference->pending] = *frame;
  return inference->pending++;
}

/* One slot's detections, from frame pixels to normalised corners. */
static GArray *
normalised_detections (const SsfpnDetection *found, int n,
                       const SsfpnFrame *frame)
{
  GArray *detections = g_array_sized_new (FALSE, FALSE,
                                          sizeof (SsfpnFrameDetection), n);
  for (int i = 0; i < n; i++) {
    const SsfpnDetection *d = &found[i];
    /* float division, as the metas have always been computed */
    SsfpnFrameDetection out = {
      .class_id = d->class_id,
      .confidence = d->confidence,
      .x_min = d->x1 / frame->width,
      .y_min = d->y1 / frame->height,
      .x_max = d->x2 / frame->width,
      .y_max = d->y2 / frame->height,
    };
    g_array_append_val (detections, out);
  }
  return detections;
}

GPtrArray *
ssfpn_inference_run (SsfpnInference *inference, const SsfpnNmsOptions *nms,
                     GError **error)
{
  int pending = inference->pending;
  inference->pending = 0;
  if (pending == 0)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);

  /* max-detections may grow while playing. */
  int capacity = MAX (nms->max_detections, 1);
  gsize needed = (gsize) pending * capacity;
  if (needed > inference->results_length) {
    inference->results = g_renew (SsfpnDetection, inference->results, needed);
    inference->results_length = needed;
  }

  SsfpnContext *context = ssfpn_shared_context_lock (inference->shared);
  gint64 start = g_get_monotonic_time ();
  gboolean ok = ssfpn_context_detect (context, inference->frames, pending,
                                      nms, inference->results, capacity,
                                      inference->counts, error);
  inference->last_run_us = g_get_monotonic_time () - start;
  ssfpn_shared_context_unlock (inference->shared);
  if (!ok)
    return NULL;

  GPtrArray *results =
      g_ptr_array_new_full (pending, (GDestroyNotify) g_array_unref);
  for (int slot = 0; slot < pending; slot++)
    g_ptr_array_add (results, normalised_detections (
        inference->results + (gsize) slot * capacity,
        inference->counts[slot], &inference->frames[slot]));
  return results;
}

void
ssfpn_inference_discard (SsfpnInference *inference)
{
  inference->pending = 0;
}
