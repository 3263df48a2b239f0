/* Frames to detections: letterbox, network, NMS, boxes back to frame
 * pixels. Backends that can do it all on the device provide plan_detect;
 * the others, multi-label NMS and augmentation take the generic path here,
 * on the host. */
#include "buildconfig.h"

#include "context.h"

#ifdef HAVE_OPENMP
#include <omp.h>
#endif

struct _SsfpnDetectState {
  float *input;                 /* (batch, 3, H, W) */
  float *output;                /* (batch, rows, 5 + nc) */
  SsfpnLetterbox **letterboxes; /* one per batch slot, kept while the frame
                                 * size stays the same */
  int slots;
};

void
ssfpn_detect_state_free (SsfpnDetectState *state)
{
  if (state == NULL)
    return;
  for (int i = 0; i < state->slots; i++)
    ssfpn_letterbox_free (state->letterboxes[i]);
  g_free (state->input);
  g_free (state->output);
  g_free (state->letterboxes);
  g_free (state);
}

/* The host buffers, made on first use; NULL with @error set when they do
 * not fit in memory. */
static SsfpnDetectState *
detect_state_get (SsfpnContext *context, GError **error)
{
  if (context->detect == NULL) {
    SsfpnDetectState *state = g_new0 (SsfpnDetectState, 1);
    gsize image = (gsize) 3 * context->height * context->width;
    gsize rows = (gsize) context->rows
        * ssfpn_model_output_columns (context->model);

    state->input = g_try_new0 (float, image * context->batch);
    state->output = g_try_new0 (float, rows * context->batch);
    state->letterboxes = g_new0 (SsfpnLetterbox *, context->batch);
    state->slots = context->batch;
    if (state->input == NULL || state->output == NULL) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "batch %d at %dx%d: cannot allocate the host input and "
                   "output buffers for detection", context->batch,
                   context->height, context->width);
      ssfpn_detect_state_free (state);
      return NULL;
    }
    context->detect = state;
  }
  return context->detect;
}

/* The letterbox for batch slot @slot, rebuilt only when the size changes. */
static SsfpnLetterbox *
slot_letterbox (SsfpnContext *context, SsfpnDetectState *state, int slot,
                const SsfpnFrame *frame, GError **error)
{
  SsfpnLetterbox *lb = state->letterboxes[slot];

  if (lb != NULL) {
    const SsfpnLetterboxTransform *t = ssfpn_letterbox_get_transform (lb);
    if (t->frame_width == frame->width && t->frame_height == frame->height)
      return lb;
    ssfpn_letterbox_free (lb);
    state->letterboxes[slot] = NULL;
  }
  lb = ssfpn_letterbox_new (frame->width, frame->height, context->width,
                            context->height, error);
  state->letterboxes[slot] = lb;
  return lb;
}

/* Letterboxes the frames into the host input, with as many threads as the
 * context was asked for: the CPU backend keeps the network to that count,
 * and so must the letterbox's parallel loop. */
static gboolean
letterbox_frames (SsfpnContext *context, SsfpnDetectState *state,
                  const SsfpnFrame *frames, int n_frames, GError **error)
{
  gsize image = (gsize) 3 * context->height * context->width;
  gboolean ok = TRUE;
#ifdef HAVE_OPENMP
  int saved_threads = omp_get_max_threads ();
  if (context->threads > 0)
    omp_set_num_threads (context->threads);
#endif
  for (int i = 0; i < n_frames && ok; i++) {
    SsfpnLetterbox *lb = slot_letterbox (context, state, i, &frames[i],
                                         error);
    ok = lb != NULL
        && ssfpn_letterbox_run (lb, &frames[i], state->input + i * image,
                                error);
  }
#ifdef HAVE_OPENMP
  omp_set_num_threads (saved_threads);
#endif
  return ok;
}

gboolean
ssfpn_context_letterbox_on_host (SsfpnContext *context,
                                 const SsfpnFrame *frames, int n_frames,
                                 GError **error)
{
  if (n_frames < 1 || n_frames > context->batch) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "letterboxing needs 1 to %d frames (the batch size), got %d",
                 context->batch, n_frames);
    return FALSE;
  }
  SsfpnDetectState *state = detect_state_get (context, error);
  return state != NULL
      && letterbox_frames (context, state, frames, n_frames, error);
}

static gboolean
detect_on_host (SsfpnContext *context, const SsfpnFrame *frames,
                int n_frames, const SsfpnNmsOptions *nms,
                SsfpnDetection *results, int capacity, int *counts,
                GError **error)
{
  SsfpnDetectState *state = detect_state_get (context, error);
  int cols = ssfpn_model_output_columns (context->model);

  if (state == NULL)
    return FALSE;
  if (!letterbox_frames (context, state, frames, n_frames, error))
    return FALSE;
  if (!ssfpn_context_run (context, state->input, state->output, error))
    return FALSE;
  for (int i = 0; i < n_frames; i++)
    counts[i] = ssfpn_nms (state->output + (gsize) i * context->rows * cols,
                           context->rows, cols - 5, nms,
                           results + (gsize) i * capacity, capacity);
  return TRUE;
}

gboolean
ssfpn_context_detect (SsfpnContext *context, const SsfpnFrame *frames,
                      int n_frames, const SsfpnNmsOptions *nms,
                      SsfpnDetection *results, int capacity, int *counts,
                      GError **error)
{
  SsfpnNmsOptions defaults;

  g_return_val_if_fail (context != NULL, FALSE);
  if (frames == NULL || results == NULL || counts == NULL || capacity < 1
      || n_frames < 1 || n_frames > context->batch) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "ssfpn_context_detect needs 1 to %d frames (the batch size), "
                 "result space and counts; got %d frames", context->batch,
                 n_frames);
    return FALSE;
  }
  for (int i = 0; i < n_frames; i++)
    if (!ssfpn_frame_check (&frames[i], error))
      return FALSE;
  if (nms == NULL) {
    ssfpn_nms_options_init (&defaults);
    nms = &defaults;
  }

  /* The device NMS is single-label and sees one view; multi-label NMS
   * (evaluation) and augmentation take the host path, which runs the
   * network on the same backend. */
  if (context->backend->plan_detect != NULL && !nms->multi_label
      && context->views == 1) {
    if (!context->backend->plan_detect (context->plan, frames, n_frames, nms,
                                        results, capacity, counts, error))
      return FALSE;
  } else if (!detect_on_host (context, frames, n_frames, nms, results,
                              capacity, counts, error)) {
    return FALSE;
  }

  /* Boxes from network-input pixels to each frame's pixels. */
  for (int i = 0; i < n_frames; i++) {
    SsfpnLetterboxTransform transform;

    if (!ssfpn_letterbox_transform_init (&transform, frames[i].width,
                                         frames[i].height, context->width,
                                         context->height, error))
      return FALSE;
    for (int k = 0; k < counts[i]; k++) {
      SsfpnDetection *d = &results[(gsize) i * capacity + k];
      float in[4] = { d->x1, d->y1, d->x2, d->y2 }, out[4];

      ssfpn_letterbox_box_to_frame (&transform, in, out);
      d->x1 = out[0];
      d->y1 = out[1];
      d->x2 = out[2];
      d->y2 = out[3];
    }
  }
  return TRUE;
}
