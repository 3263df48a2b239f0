/* ssfpn: video frames to network input.
 *
 * A frame is an 8-bit picture as GStreamer delivers it (packed RGB variants,
 * NV12, I420) with arbitrary strides. A letterbox turns one frame into one
 * batch item of network input: float32 planar RGB (3, H, W) in [0, 1], with
 * YOLOv5's `letterbox(img, new_shape=(H, W), auto=False, scaleFill=False,
 * scaleup=True)` geometry:
 *
 *   r          = min(H / h, W / w)                  (double)
 *   new_w      = round(w * r), new_h = round(h * r) (round half to even)
 *   dw, dh     = (W - new_w) / 2, (H - new_h) / 2
 *   left, top  = round(dw - 0.1), round(dh - 0.1)
 *   padding    = 114 / 255 everywhere outside the resized picture
 *
 * Resizing is bilinear with OpenCV's INTER_LINEAR sampling (half-pixel
 * centres): for output column x, src = (x + 0.5) * (w / new_w) - 0.5,
 * x0 = floor(src), fx = src - x0; when x0 < 0 then x0 = 0, fx = 0; when
 * x0 >= w - 1 then x0 = w - 1, fx = 0; x1 = min(x0 + 1, w - 1). Rows alike.
 * Unlike OpenCV on uint8 pictures, the blend is computed in float32 from the
 * 8-bit samples and never rounded back to 8 bits:
 *
 *   v = (1 - fy) * ((1 - fx) * p00 + fx * p01) + fy * ((1 - fx) * p10 + fx * p11)
 *   out = v / 255
 *
 * An unchanged size therefore copies the samples exactly.
 *
 * YUV frames are first converted to RGB at source resolution (conceptually;
 * the code converts the four source pixels each output pixel reads), then
 * resized as above. Each chroma sample covers 2x2 luma samples (nearest
 * upsampling: luma (x, y) uses chroma (x / 2, y / 2)); odd sizes have
 * ceil(w / 2) x ceil(h / 2) chroma samples. In float32, with Kr, Kb of the
 * matrix (BT.601: 0.299, 0.114; BT.709: 0.2126, 0.0722), Kg = 1 - Kr - Kb:
 *
 *   limited range: y = (Y - 16) * 255 / 219,  cb = (U - 128) * 255 / 224,
 *                  cr = (V - 128) * 255 / 224
 *   full range:    y = Y,  cb = U - 128,  cr = V - 128
 *
 *   R = y + 2 (1 - Kr) cr
 *   G = y - 2 Kb (1 - Kb) / Kg cb - 2 Kr (1 - Kr) / Kg cr
 *   B = y + 2 (1 - Kb) cb
 *
 * each clamped to [0, 255] before resizing. (BT.601 limited gives the
 * familiar R = 1.164 (Y - 16) + 1.596 (V - 128), G = 1.164 (Y - 16)
 * - 0.392 (U - 128) - 0.813 (V - 128), B = 1.164 (Y - 16) + 2.017 (U - 128).)
 * The alpha byte of RGBA/BGRA is ignored, as is the padding byte of
 * RGBx/BGRx.
 */
#ifndef SSFPN_SSFPN_FRAME_H
#define SSFPN_SSFPN_FRAME_H

#include <ssfpn/ssfpn.h>

G_BEGIN_DECLS

typedef enum {
  SSFPN_FRAME_RGB,  /* packed, 3 bytes: R G B */
  SSFPN_FRAME_BGR,  /* packed, 3 bytes: B G R */
  SSFPN_FRAME_RGBA, /* packed, 4 bytes: R G B A */
  SSFPN_FRAME_BGRA, /* packed, 4 bytes: B G R A */
  SSFPN_FRAME_RGBX, /* packed, 4 bytes: R G B x */
  SSFPN_FRAME_BGRX, /* packed, 4 bytes: B G R x */
  SSFPN_FRAME_NV12, /* plane 0: Y; plane 1: interleaved U V */
  SSFPN_FRAME_I420, /* plane 0: Y; plane 1: U; plane 2: V */
} SsfpnFrameFormat;

typedef enum {
  SSFPN_COLOR_MATRIX_BT601,
  SSFPN_COLOR_MATRIX_BT709,
} SsfpnColorMatrix;

typedef enum {
  SSFPN_COLOR_RANGE_LIMITED, /* Y in [16, 235], U and V in [16, 240] */
  SSFPN_COLOR_RANGE_FULL,    /* all in [0, 255] */
} SsfpnColorRange;

/* One frame, borrowed: nothing here is copied or freed. Strides are bytes
 * per row and may be anything >= the row's size (width x bytes per pixel for
 * packed formats; width for Y; 2 x ceil(width / 2) for NV12's UV plane;
 * ceil(width / 2) for I420's U and V). Planes a format does not use are
 * ignored. Matrix and range matter for YUV formats only. */
typedef struct {
  SsfpnFrameFormat format;
  int width, height;
  const guint8 *planes[3];
  int strides[3];
  SsfpnColorMatrix matrix;
  SsfpnColorRange range;
} SsfpnFrame;

/* Number of planes @format uses (1 to 3), or 0 for an unknown format. */
SSFPN_API int ssfpn_frame_format_n_planes (SsfpnFrameFormat format);

/* Checks that @frame is usable: known format, matrix and range, positive
 * size, non-NULL planes, strides large enough. */
SSFPN_API gboolean ssfpn_frame_check (const SsfpnFrame *frame, GError **error);

/* ---- letterbox geometry ---------------------------------------------- */

/* Where a frame lands in the network input. @scale and @pad_x, @pad_y are
 * YOLOv5 scale_coords' gain and (unrounded) padding, used to map boxes back;
 * @left, @top, @resized_width, @resized_height place the resized picture. */
typedef struct {
  int frame_width, frame_height;
  int input_width, input_height;
  int resized_width, resized_height;
  int left, top;
  double scale;        /* r = min(H / h, W / w) */
  double pad_x, pad_y; /* (W - w r) / 2, (H - h r) / 2 */
} SsfpnLetterboxTransform;

/* Computes the geometry for a @frame_width x @frame_height frame and a
 * @input_width x @input_height network input. Fails when a size is not
 * positive or the frame is so elongated that the resized picture would be
 * 0 pixels wide or high. */
SSFPN_API gboolean ssfpn_letterbox_transform_init (SsfpnLetterboxTransform *transform,
                                                   int frame_width, int frame_height,
                                                   int input_width, int input_height,
                                                   GError **error);

/* YOLOv5 scale_coords for one box (x1, y1, x2, y2) in network-input pixels:
 * subtracts the padding, divides by the gain and clips to [0, w] x [0, h]
 * of the frame. @in and @out may be the same array. */
SSFPN_API void ssfpn_letterbox_box_to_frame (const SsfpnLetterboxTransform *transform,
                                             const float in[4], float out[4]);

/* The inverse without clipping: a box in frame pixels to network-input
 * pixels (multiply by the gain, add the padding). */
SSFPN_API void ssfpn_letterbox_box_to_input (const SsfpnLetterboxTransform *transform,
                                             const float in[4], float out[4]);

/* ---- letterboxing frames --------------------------------------------- */

/* Sampling tables for one frame size and one input size, made once and
 * reused for every frame: a run allocates nothing. Read-only after
 * creation, so several threads may run the same letterbox at once. */
typedef struct _SsfpnLetterbox SsfpnLetterbox;

SSFPN_API SsfpnLetterbox *ssfpn_letterbox_new (int frame_width, int frame_height,
                                               int input_width, int input_height,
                                               GError **error);
SSFPN_API void ssfpn_letterbox_free (SsfpnLetterbox *letterbox);

SSFPN_API const SsfpnLetterboxTransform *
ssfpn_letterbox_get_transform (const SsfpnLetterbox *letterbox);

/* Writes one batch item, float32 (3, H, W), into @dst. @frame must pass
 * ssfpn_frame_check and have the size the letterbox was made for. Parallel
 * over rows with OpenMP when the build has it. */
SSFPN_API gboolean ssfpn_letterbox_run (const SsfpnLetterbox *letterbox,
                                        const SsfpnFrame *frame, float *dst,
                                        GError **error);

/* ---- frames to detections -------------------------------------------- */

/* Detections for @n_frames frames (1 to the context's batch size) run as one
 * batch: each frame is letterboxed to the context's input size, the network
 * runs, YOLOv5 NMS picks the detections, and their boxes are mapped back to
 * the frame's own pixels (clipped). Frames may differ in size and format.
 * Frame i's detections go to @results + i * @capacity, highest confidence
 * first, and their number to @counts[i]. A GPU context does all of it on
 * the GPU, nothing allocated per call once a frame size has been seen,
 * except with multi-label NMS: the CUDA NMS is single-label, so then the
 * letterbox and NMS run on the host (ssfpn_nms allocates per call). */
SSFPN_API gboolean ssfpn_context_detect (SsfpnContext *context,
                                         const SsfpnFrame *frames,
                                         int n_frames,
                                         const SsfpnNmsOptions *nms,
                                         SsfpnDetection *results,
                                         int capacity, int *counts,
                                         GError **error);

G_END_DECLS

#endif /* SSFPN_SSFPN_FRAME_H */
