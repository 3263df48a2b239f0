/* The host side of the CUDA backend's plan_detect: frames in through
 * pinned staging buffers, detections out through a pinned results area.
 *
 * Each batch slot keeps a pinned host buffer and a device buffer, sized at
 * the first frame that needs them and kept (grown only for a larger frame),
 * so a run allocates nothing once the frame sizes are known. NMS settings
 * travel to the device as data, so the captured graph that runs the network
 * and NMS serves every call. */
#ifndef SSFPN_CUDA_DETECT_IO_H
#define SSFPN_CUDA_DETECT_IO_H

#include <glib.h>

#include "cuda/cuda_view.h"
#include "ssfpn/ssfpn-frame.h"

G_BEGIN_DECLS

typedef struct _CudaDetectIo CudaDetectIo;

/* @output: the plan's device float32 network output (batch, rows, 5 + nc). */
CudaDetectIo *cuda_detect_io_new (int batch, int rows, int nc,
                                  const float *output, GError **error);
void cuda_detect_io_free (CudaDetectIo *io);

/* Copies @frame (checked by the caller) to the device and enqueues the
 * letterbox kernel that writes batch item @slot of @input. */
gboolean cuda_detect_io_upload_frame (CudaDetectIo *io, int slot,
                                      const SsfpnFrame *frame,
                                      const CudaView *input,
                                      cudaStream_t stream, GError **error);

/* Sets the NMS settings of the next run (in pinned memory; enqueue() copies
 * them). Detections per frame: min(@capacity, max_detections if positive).
 * When that exceeds the results area it grows and *@grown is set: commands
 * enqueued or captured before then refer to the old area. */
gboolean cuda_detect_io_set_nms (CudaDetectIo *io, const SsfpnNmsOptions *nms,
                                 int n_frames, int capacity, gboolean *grown,
                                 GError **error);

/* Enqueues the settings upload, NMS and the results download; may be
 * captured into a CUDA graph. */
gboolean cuda_detect_io_enqueue (CudaDetectIo *io, cudaStream_t stream,
                                 GError **error);

/* Once the stream has finished: frame i's detections (boxes in
 * network-input pixels) to @results + i * @capacity, counts to @counts. */
void cuda_detect_io_results (const CudaDetectIo *io, int n_frames,
                             SsfpnDetection *results, int capacity,
                             int *counts);

G_END_DECLS

#endif /* SSFPN_CUDA_DETECT_IO_H */
