/* ssfpndetect: frames held until their detections are known.
 *
 * With batching, a frame waits until its batch has run; with an inference
 * interval, the frames between two inferences carry the result of the last
 * inference before them, so they wait for it too. The queue keeps the
 * frames in stream order and releases each once its result is known; see
 * ssfpn_frames_held for how many it can hold.
 */
#ifndef SSFPN_FRAME_QUEUE_H
#define SSFPN_FRAME_QUEUE_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _SsfpnFrameQueue SsfpnFrameQueue;

typedef struct {
  GstBuffer *buffer;
  int frame_width, frame_height;
  gboolean inferred;   /* TRUE: the network ran on this frame; FALSE: it
                        * carries the result of the last one that did */
  GArray *detections;  /* SsfpnFrameDetection; never NULL */
} SsfpnReadyFrame;

SsfpnFrameQueue *ssfpn_frame_queue_new (void);
void ssfpn_frame_queue_free (SsfpnFrameQueue *queue);

/* Appends a frame, taking @buffer. @slot is the batch slot its network
 * input went to, or -1 for a frame that carries the previous result. */
void ssfpn_frame_queue_push (SsfpnFrameQueue *queue, GstBuffer *buffer,
                             int frame_width, int frame_height, int slot);

/* Hands the results of a batch run (one GArray per slot, in slot order) to
 * the frames waiting for them. */
void ssfpn_frame_queue_set_results (SsfpnFrameQueue *queue,
                                    GPtrArray *results);

/* Takes the first frame when its result is known; FALSE when the queue is
 * empty or its first frame still waits. The caller owns frame->buffer and
 * a reference to frame->detections. */
gboolean ssfpn_frame_queue_pop_ready (SsfpnFrameQueue *queue,
                                      SsfpnReadyFrame *frame);

guint ssfpn_frame_queue_length (const SsfpnFrameQueue *queue);

/* The most frames held at once: the first inferred frame of a batch waits
 * for the last, (batch - 1) x interval frames later, with every frame in
 * between; 0 for batch 1, where no frame waits. At most G_MAXUINT. */
guint ssfpn_frames_held (guint batch_size, guint inference_interval);

/* Drops every held frame and forgets the carried result (flushing). */
void ssfpn_frame_queue_clear (SsfpnFrameQueue *queue);

G_END_DECLS

#endif /* SSFPN_FRAME_QUEUE_H */
