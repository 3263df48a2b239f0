/* Frames in, detections out; see cuda_detect_io.h. */
#define G_LOG_DOMAIN "ssfpn-cuda"

#include "cuda/cuda_detect_io.h"

#include <cuda_runtime_api.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_letterbox.h"
#include "cuda/cuda_nms.h"

/* Results per frame before the first call asks for more: detect.py's
 * max_det. */
#define INITIAL_ROOM 300

G_STATIC_ASSERT ((int) CUDA_FRAME_RGB == (int) SSFPN_FRAME_RGB);
G_STATIC_ASSERT ((int) CUDA_FRAME_BGRX == (int) SSFPN_FRAME_BGRX);
G_STATIC_ASSERT ((int) CUDA_FRAME_NV12 == (int) SSFPN_FRAME_NV12);
G_STATIC_ASSERT ((int) CUDA_FRAME_I420 == (int) SSFPN_FRAME_I420);
G_STATIC_ASSERT (sizeof (CudaDetection) == sizeof (SsfpnDetection));

typedef struct {
  guint8 *host;   /* pinned */
  guint8 *device;
  size_t capacity;
} Staging;

struct _CudaDetectIo {
  int batch, rows, nc;
  Staging *slots;           /* (batch) */
  CudaNmsBuffers nms;       /* device pointers */
  CudaNmsParams *params_host; /* pinned, followed by nc class bytes */
  void *params_device;
  size_t params_bytes;
  void *results_device;     /* counts (batch ints), then (batch, room) */
  void *results_host;       /* pinned mirror */
  size_t results_bytes;
};

static size_t
results_offset (int batch)
{
  /* Keeps the detections 16-byte aligned after the counts. */
  return ((size_t) batch * sizeof (int) + 15) / 16 * 16;
}

/* The new pair is allocated before the old one goes, so that a failure
 * leaves io (and any graph captured on its pointers) as it was. */
static gboolean
allocate_results (CudaDetectIo *io, int room, GError **error)
{
  const size_t bytes = results_offset (io->batch)
                       + (size_t) io->batch * room * sizeof (CudaDetection);
  void *device = NULL, *host = NULL;

  CUDA_CHECK (cudaMalloc (&device, bytes));
  CUDA_CHECK (cudaMallocHost (&host, bytes));
  cudaFree (io->results_device);
  cudaFreeHost (io->results_host);
  io->results_device = device;
  io->results_host = host;
  io->results_bytes = bytes;
  io->nms.room = room;
  io->nms.result_counts = device;
  io->nms.results = (CudaDetection *) ((char *) device
                                       + results_offset (io->batch));
  return TRUE;

fail:
  cudaFree (device);
  return FALSE;
}

void
cuda_detect_io_free (CudaDetectIo *io)
{
  if (io == NULL)
    return;
  for (int i = 0; io->slots != NULL && i < io->batch; i++) {
    cudaFreeHost (io->slots[i].host);
    cudaFree (io->slots[i].device);
  }
  g_free (io->slots);
  cudaFree (io->nms.candidate_counts);
  cudaFree (io->nms.keys);
  cudaFree (io->nms.boxes);
  cudaFree (io->nms.scores);
  cudaFree (io->nms.classes);
  cudaFreeHost (io->params_host);
  cudaFree (io->params_device);
  cudaFree (io->results_device);
  cudaFreeHost (io->results_host);
  g_free (io);
}

CudaDetectIo *
cuda_detect_io_new (int batch, int rows, int nc, const float *output,
                    GError **error)
{
  CudaDetectIo *io = g_new0 (CudaDetectIo, 1);
  size_t by_row = (size_t) batch * rows;
  int sort_size = 1;

  while (sort_size < rows)
    sort_size *= 2;
  io->batch = batch;
  io->rows = rows;
  io->nc = nc;
  io->slots = g_new0 (Staging, batch);
  io->nms.batch = batch;
  io->nms.rows = rows;
  io->nms.nc = nc;
  io->nms.sort_size = sort_size;
  io->nms.output = output;
  CUDA_CHECK (cudaMalloc ((void **) &io->nms.candidate_counts,
                          batch * sizeof (int)));
  CUDA_CHECK (cudaMalloc ((void **) &io->nms.keys,
                          (size_t) batch * sort_size * sizeof (uint64_t)));
  CUDA_CHECK (cudaMalloc ((void **) &io->nms.boxes, by_row * sizeof (float4)));
  CUDA_CHECK (cudaMalloc ((void **) &io->nms.scores, by_row * sizeof (float)));
  CUDA_CHECK (cudaMalloc ((void **) &io->nms.classes, by_row * sizeof (int)));

  io->params_bytes = sizeof (CudaNmsParams) + (size_t) nc;
  CUDA_CHECK (cudaMallocHost ((void **) &io->params_host, io->params_bytes));
  CUDA_CHECK (cudaMalloc (&io->params_device, io->params_bytes));
  memset (io->params_host, 0, io->params_bytes);
  io->nms.params = io->params_device;
  if (!allocate_results (io, INITIAL_ROOM, error))
    goto fail;
  return io;

fail:
  cuda_detect_io_free (io);
  return NULL;
}

/* ---- frames ------------------------------------------------------------- */

/* Bytes per row and rows of each plane, packed without padding. */
static int
plane_layout (const SsfpnFrame *frame, size_t row_bytes[3], int heights[3])
{
  int n = ssfpn_frame_format_n_planes (frame->format);
  size_t chroma_width = ((size_t) frame->width + 1) / 2;
  int chroma_height = (frame->height + 1) / 2;

  switch (frame->format) {
    case SSFPN_FRAME_NV12:
      row_bytes[0] = frame->width;
      row_bytes[1] = 2 * chroma_width;
      break;
    case SSFPN_FRAME_I420:
      row_bytes[0] = frame->width;
      row_bytes[1] = row_bytes[2] = chroma_width;
      break;
    case SSFPN_FRAME_RGB:
    case SSFPN_FRAME_BGR:
      row_bytes[0] = (size_t) frame->width * 3;
      break;
    default:
      row_bytes[0] = (size_t) frame->width * 4;
      break;
  }
  heights[0] = frame->height;
  heights[1] = heights[2] = chroma_height;
  return n;
}

/* frame.c's YUV coefficients: computed in double, stored as float. */
static void
set_yuv_coefficients (CudaFrameDesc *desc, const SsfpnFrame *frame)
{
  gboolean bt709 = frame->matrix == SSFPN_COLOR_MATRIX_BT709;
  gboolean limited = frame->range == SSFPN_COLOR_RANGE_LIMITED;
  double kr = bt709 ? 0.2126 : 0.299;
  double kb = bt709 ? 0.0722 : 0.114;
  double kg = 1.0 - kr - kb;

  desc->y_offset = limited ? 16.0f : 0.0f;
  desc->y_scale = limited ? 255.0 / 219.0 : 1.0;
  desc->c_scale = limited ? 255.0 / 224.0 : 1.0;
  desc->r_cr = 2.0 * (1.0 - kr);
  desc->g_cb = 2.0 * kb * (1.0 - kb) / kg;
  desc->g_cr = 2.0 * kr * (1.0 - kr) / kg;
  desc->b_cb = 2.0 * (1.0 - kb);
}

gboolean
cuda_detect_io_upload_frame (CudaDetectIo *io, int slot,
                             const SsfpnFrame *frame, const CudaView *input,
                             cudaStream_t stream, GError **error)
{
  Staging *staging = &io->slots[slot];
  SsfpnLetterboxTransform transform;
  CudaFrameDesc desc = { 0 };
  size_t row_bytes[3] = { 0 }, offsets[3] = { 0 }, total = 0;
  int heights[3] = { 0 };
  int n_planes = plane_layout (frame, row_bytes, heights);

  if (!ssfpn_letterbox_transform_init (&transform, frame->width,
                                       frame->height, input->width,
                                       input->height, error))
    return FALSE;
  for (int p = 0; p < n_planes; p++) {
    offsets[p] = total;
    total += row_bytes[p] * heights[p];
  }

  /* Grown only for a frame larger than any this slot has seen. */
  if (total > staging->capacity) {
    cudaFreeHost (staging->host);
    cudaFree (staging->device);
    staging->host = staging->device = NULL;
    staging->capacity = 0;
    CUDA_CHECK (cudaMallocHost ((void **) &staging->host, total));
    CUDA_CHECK (cudaMalloc ((void **) &staging->device, total));
    staging->capacity = total;
    g_debug ("slot %d: staging for %dx%d frames, %zu bytes", slot,
             frame->width, frame->height, total);
  }

  /* Rows packed tightly: the copy to the device moves no stride padding. */
  for (int p = 0; p < n_planes; p++) {
    guint8 *dst = staging->host + offsets[p];
    const guint8 *src = frame->planes[p];

    if ((size_t) frame->strides[p] == row_bytes[p]) {
      memcpy (dst, src, row_bytes[p] * heights[p]);
    } else {
      for (int y = 0; y < heights[p]; y++)
        memcpy (dst + y * row_bytes[p],
                src + (size_t) y * frame->strides[p], row_bytes[p]);
    }
    desc.planes[p] = staging->device + offsets[p];
    desc.strides[p] = (int) row_bytes[p];
  }
  CUDA_CHECK (cudaMemcpyAsync (staging->device, staging->host, total,
                               cudaMemcpyHostToDevice, stream));

  desc.format = (CudaFrameFormat) frame->format;
  desc.width = frame->width;
  desc.height = frame->height;
  desc.resized_width = transform.resized_width;
  desc.resized_height = transform.resized_height;
  desc.left = transform.left;
  desc.top = transform.top;
  set_yuv_coefficients (&desc, frame);
  CUDA_CHECK (cuda_letterbox_frame (&desc, input, slot, stream));
  return TRUE;

fail:
  return FALSE;
}

/* ---- NMS and results ---------------------------------------------------- */

gboolean
cuda_detect_io_set_nms (CudaDetectIo *io, const SsfpnNmsOptions *nms,
                        int n_frames, int capacity, gboolean *grown,
                        GError **error)
{
  CudaNmsParams *params = io->params_host;
  guint8 *wanted = (guint8 *) (params + 1);
  int limit = capacity;

  *grown = FALSE;
  if (nms->multi_label) {  /* ssfpn_context_detect sends these to the host */
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "CUDA NMS: multi-label NMS runs on the host, not here");
    return FALSE;
  }
  if (nms->max_detections > 0 && nms->max_detections < limit)
    limit = nms->max_detections;
  if (limit > io->nms.room) {
    if (!allocate_results (io, limit, error))
      return FALSE;
    *grown = TRUE;
  }
  params->conf_threshold = nms->conf_threshold;
  params->iou_threshold = nms->iou_threshold;
  params->limit = limit;
  params->agnostic = nms->agnostic ? 1 : 0;
  params->n_frames = n_frames;
  params->filter_classes = nms->classes != NULL;
  memset (wanted, 0, io->nc);
  for (int i = 0; nms->classes != NULL && i < nms->n_classes; i++)
    if (nms->classes[i] >= 0 && nms->classes[i] < io->nc)
      wanted[nms->classes[i]] = 1;
  return TRUE;
}

gboolean
cuda_detect_io_enqueue (CudaDetectIo *io, cudaStream_t stream,
                        GError **error)
{
  CUDA_CHECK (cudaMemcpyAsync (io->params_device, io->params_host,
                               io->params_bytes, cudaMemcpyHostToDevice,
                               stream));
  CUDA_CHECK (cuda_nms (&io->nms, stream));
  CUDA_CHECK (cudaMemcpyAsync (io->results_host, io->results_device,
                               io->results_bytes, cudaMemcpyDeviceToHost,
                               stream));
  return TRUE;

fail:
  return FALSE;
}

void
cuda_detect_io_results (const CudaDetectIo *io, int n_frames,
                        SsfpnDetection *results, int capacity, int *counts)
{
  const int *found = io->results_host;
  const CudaDetection *detections
      = (const CudaDetection *) ((const char *) io->results_host
                                 + results_offset (io->batch));

  for (int i = 0; i < n_frames; i++) {
    const CudaDetection *from = detections + (size_t) i * io->nms.room;
    SsfpnDetection *to = results + (size_t) i * capacity;

    counts[i] = MIN (found[i], capacity);
    for (int k = 0; k < counts[i]; k++) {
      to[k].x1 = from[k].x1;
      to[k].y1 = from[k].y1;
      to[k].x2 = from[k].x2;
      to[k].y2 = from[k].y2;
      to[k].confidence = from[k].confidence;
      to[k].class_id = from[k].class_id;
    }
  }
}
