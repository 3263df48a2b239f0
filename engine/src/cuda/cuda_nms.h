/* YOLOv5 non_max_suppression on the GPU, for every frame of a batch at
 * once, with the semantics and the float arithmetic of engine/src/nms.c:
 * obj > conf; score = obj * best class (first maximum); score > conf; the
 * class filter; candidates in score order (ties by row), cut at 30000;
 * boxes shifted by class * 4096 unless agnostic; a box is suppressed by an
 * earlier kept one when IoU > thr; at most @limit kept, best first.
 *
 * Two kernels: one thread per output row picks the candidates; one block
 * per frame sorts them (bitonic, in shared memory when they fit) and runs
 * the greedy suppression, each pass suppressing in parallel and finding
 * the next survivor with a block-wide minimum. */
#ifndef SSFPN_CUDA_NMS_H
#define SSFPN_CUDA_NMS_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per-call settings, copied to the device before the kernels run (so a
 * captured CUDA graph serves any settings). */
typedef struct {
  float conf_threshold, iou_threshold;
  int limit;          /* detections kept per frame, <= the results' room */
  int agnostic;
  int n_frames;       /* frames past this get no detections */
  int filter_classes; /* class_wanted below is used */
  /* followed by nc bytes: 1 when the class is wanted */
} CudaNmsParams;

/* Laid out as SsfpnDetection. */
typedef struct {
  float x1, y1, x2, y2, confidence;
  int class_id;
} CudaDetection;

/* Device buffers; see cuda_nms_buffers_size(). */
typedef struct {
  int batch, rows, nc;
  int sort_size;           /* power of two >= rows */
  int room;                /* CudaDetection slots per frame */
  const float *output;     /* (batch, rows, 5 + nc) float32 */
  const CudaNmsParams *params; /* followed by the class bytes */
  int *candidate_counts;   /* (batch) */
  uint64_t *keys;          /* (batch, sort_size) */
  float4 *boxes;           /* (batch, rows), by row: x1, y1, x2, y2 */
  float *scores;           /* (batch, rows), by row */
  int *classes;            /* (batch, rows), by row */
  int *result_counts;      /* (batch) */
  CudaDetection *results;  /* (batch, room) */
} CudaNmsBuffers;

/* Enqueues both kernels (and the reset of the counters). */
cudaError_t cuda_nms (const CudaNmsBuffers *buffers, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* SSFPN_CUDA_NMS_H */
