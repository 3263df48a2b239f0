/* ssfpndetect: frames held until their detections are known. */
#include "ssfpn-frame-queue.h"
#include "ssfpn-inference.h"

typedef struct {
  GstBuffer *buffer;
  int frame_width, frame_height;
  int slot;            /* -1: carries the previous result */
  GArray *detections;  /* own result, once its batch has run */
} HeldFrame;

struct _SsfpnFrameQueue {
  GQueue frames;       /* HeldFrame, oldest first */
  GArray *carried;     /* result of the last released inferred frame */
};

static void
held_frame_free (gpointer data)
{
  HeldFrame *held = data;
  gst_buffer_unref (held->buffer);
  if (held->detections != NULL)
    g_array_unref (held->detections);
  g_free (held);
}

SsfpnFrameQueue *
ssfpn_frame_queue_new (void)
{
  SsfpnFrameQueue *queue = g_new0 (SsfpnFrameQueue, 1);
  g_queue_init (&queue->frames);
  return queue;
}

void
ssfpn_frame_queue_free (SsfpnFrameQueue *queue)
{
  if (queue == NULL)
    return;
  ssfpn_frame_queue_clear (queue);
  g_free (queue);
}

void
ssfpn_frame_queue_push (SsfpnFrameQueue *queue, GstBuffer *buffer,
                        int frame_width, int frame_height, int slot)
{
  HeldFrame *held = g_new0 (HeldFrame, 1);
  held->buffer = buffer;
  held->frame_width = frame_width;
  held->frame_height = frame_height;
  held->slot = slot;
  g_queue_push_tail (&queue->frames, held);
}

void
ssfpn_frame_queue_set_results (SsfpnFrameQueue *queue, GPtrArray *results)
{
  for (GList *l = queue->frames.head; l != NULL; l = l->next) {
    HeldFrame *held = l->data;
    if (held->slot < 0 || held->detections != NULL)
      continue;
    if ((guint) held->slot < results->len)
      held->detections = g_array_ref (g_ptr_array_index (results, held->slot));
  }
}

gboolean
ssfpn_frame_queue_pop_ready (SsfpnFrameQueue *queue, SsfpnReadyFrame *frame)
{
  HeldFrame *held = g_queue_peek_head (&queue->frames);
  if (held == NULL || (held->slot >= 0 && held->detections == NULL))
    return FALSE;
  g_queue_pop_head (&queue->frames);

  if (held->slot >= 0) {
    if (queue->carried != NULL)
      g_array_unref (queue->carried);
    queue->carried = g_array_ref (held->detections);
  } else if (queue->carried == NULL) {
    /* The element infers the first frame after every reset, so this does not
     * happen; an empty result keeps the queue total anyway. */
    queue->carried = g_array_new (FALSE, FALSE, sizeof (SsfpnFrameDetection));
  }

  frame->buffer = held->buffer;
  frame->frame_width = held->frame_width;
  frame->frame_height = held->frame_height;
  frame->inferred = held->slot >= 0;
  frame->detections = g_array_ref (queue->carried);

  held->buffer = NULL;
  if (held->detections != NULL)
    g_array_unref (held->detections);
  g_free (held);
  return TRUE;
}

guint
ssfpn_frame_queue_length (const SsfpnFrameQueue *queue)
{
  return queue->frames.length;
}

void
ssfpn_frame_queue_clear (SsfpnFrameQueue *queue)
{
  g_queue_clear_full (&queue->frames, held_frame_free);
  g_clear_pointer (&queue->carried, g_array_unref);
}

guint
ssfpn_frames_held (guint batch_size, guint inference_interval)
{
  if (batch_size <= 1)
    return 0;
  guint64 held = (guint64) (batch_size - 1) * inference_interval + 1;
  return (guint) MIN (held, G_MAXUINT);
}
