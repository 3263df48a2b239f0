/* ssfpndetect: one batch of network inputs, run, and detections per frame. */
#include "ssfpn-inference.h"

struct _SsfpnInference {
  SsfpnModel *model;
  SsfpnContext *context;
  int batch_size;
  int input_height, input_width;
  int rows, columns;           /* raw output of one batch item */
  float *input;                /* (batch, 3, H, W) */
  float *output;               /* (batch, rows, columns) */
  int pending;
  SsfpnLetterboxTransform *geometry; /* per slot: where its frame landed */
  SsfpnDetection *scratch;     /* NMS results of one item */
  int scratch_capacity;
  gint64 last_run_us;
};

static gboolean
run_timed (SsfpnInference *inference, GError **error)
{
  gint64 start = g_get_monotonic_time ();
  gboolean ok = ssfpn_context_run (inference->context, inference->input,
                                   inference->output, error);
  inference->last_run_us = g_get_monotonic_time () - start;
  return ok;
}

SsfpnInference *
ssfpn_inference_new (SsfpnModel *model, const SsfpnContextOptions *options,
                     GError **error)
{
  SsfpnContext *context = ssfpn_context_new (model, options, error);
  if (context == NULL)
    return NULL;

  SsfpnInference *inference = g_new0 (SsfpnInference, 1);
  inference->model = ssfpn_model_ref (model);
  inference->context = context;
  inference->batch_size = ssfpn_context_batch (context);
  ssfpn_context_input_size (context, &inference->input_height,
                            &inference->input_width);
  inference->rows = ssfpn_context_output_rows (context);
  inference->columns = ssfpn_model_output_columns (model);
  gsize item = (gsize) 3 * inference->input_height * inference->input_width;
  inference->input = g_new0 (float, item * inference->batch_size);
  inference->output = g_new0 (float, (gsize) inference->rows
                              * inference->columns * inference->batch_size);
  inference->geometry = g_new0 (SsfpnLetterboxTransform,
                                inference->batch_size);

  /* The first run finishes the backend's lazy setup; the second measures
   * what a frame will cost, for the latency query. */
  if (!run_timed (inference, error) || !run_timed (inference, error)) {
    ssfpn_inference_free (inference);
    return NULL;
  }
  return inference;
}

void
ssfpn_inference_free (SsfpnInference *inference)
{
  if (inference == NULL)
    return;
  ssfpn_context_free (inference->context);
  ssfpn_model_unref (inference->model);
  g_free (inference->input);
  g_free (inference->output);
  g_free (inference->geometry);
  g_free (inference->scratch);
  g_free (inference);
}

const SsfpnContext *
ssfpn_inference_context (const SsfpnInference *inference)
{
  return inference->context;
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
                           const SsfpnLetterbox *letterbox,
                           const SsfpnFrame *frame, GError **error)
{
  g_return_val_if_fail (inference->pending < inference->batch_size, -1);

  int slot = inference->pending;
  gsize item = (gsize) 3 * inference->input_height * inference->input_width;
  if (!ssfpn_letterbox_run (letterbox, frame, inference->input + slot * item,
                            error))
    return -1;
  inference->geometry[slot] = *ssfpn_letterbox_get_transform (letterbox);
  inference->pending++;
  return slot;
}

/* NMS on one batch item, boxes mapped back to the frame and normalised. */
static GArray *
detections_for_slot (SsfpnInference *inference, int slot,
                     const SsfpnNmsOptions *nms)
{
  int capacity = MAX (nms->max_detections, 1);
  if (capacity > inference->scratch_capacity) {
    inference->scratch = g_renew (SsfpnDetection, inference->scratch,
                                  capacity);
    inference->scratch_capacity = capacity;
  }

  const float *raw = inference->output
      + (gsize) slot * inference->rows * inference->columns;
  int n = ssfpn_nms (raw, inference->rows, inference->columns - 5, nms,
                     inference->scratch, capacity);

  const SsfpnLetterboxTransform *geometry = &inference->geometry[slot];
  GArray *detections = g_array_sized_new (FALSE, FALSE,
                                          sizeof (SsfpnFrameDetection), n);
  for (int i = 0; i < n; i++) {
    const SsfpnDetection *d = &inference->scratch[i];
    float box[4] = { d->x1, d->y1, d->x2, d->y2 };
    ssfpn_letterbox_box_to_frame (geometry, box, box);
    SsfpnFrameDetection out = {
      .class_id = d->class_id,
      .confidence = d->confidence,
      .x_min = box[0] / geometry->frame_width,
      .y_min = box[1] / geometry->frame_height,
      .x_max = box[2] / geometry->frame_width,
      .y_max = box[3] / geometry->frame_height,
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

  /* A partial batch (drained at EOS) runs at the full batch size: the
   * context is planned for it, and the stale slots are simply ignored. */
  if (!run_timed (inference, error))
    return NULL;

  GPtrArray *results =
      g_ptr_array_new_full (pending, (GDestroyNotify) g_array_unref);
  for (int slot = 0; slot < pending; slot++)
    g_ptr_array_add (results, detections_for_slot (inference, slot, nms));
  return results;
}

void
ssfpn_inference_discard (SsfpnInference *inference)
{
  inference->pending = 0;
}
