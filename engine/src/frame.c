/* Video frames to network input: YOLOv5 letterbox geometry, bilinear
 * resampling with OpenCV's INTER_LINEAR sampling, YUV to RGB. The exact
 * definition is in ssfpn-frame.h; tools/make_frame_fixtures.py holds the
 * NumPy reference the tests compare against. Contraction into fused
 * multiply-adds (clang's default) would change the last bit, and the CUDA
 * letterbox, which rules it out too, must match this bit for bit.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

#include "buildconfig.h"

#include "ssfpn/ssfpn-frame.h"

#include <math.h>
#include <stdint.h>

#define PAD_VALUE (114.0f / 255.0f)

/* Below this many output pixels a thread team costs more than it saves. */
#define PARALLEL_MIN_PIXELS (128 * 128)

/* One output row or column: blend source samples i0 and i1 with weights
 * (1 - w1) and w1. */
typedef struct {
  int i0, i1;
  float w1;
} SampleTap;

struct _SsfpnLetterbox {
  SsfpnLetterboxTransform transform;
  SampleTap *columns; /* transform.resized_width entries */
  SampleTap *rows;    /* transform.resized_height entries */
};

/* YUV to RGB in 8-bit units, see ssfpn-frame.h. */
typedef struct {
  float y_offset, y_scale, c_scale;
  float r_cr, g_cb, g_cr, b_cb;
} YuvCoefficients;

/* ---- frames ---------------------------------------------------------- */

static const char *
format_name (SsfpnFrameFormat format)
{
  switch (format)
    {
    case SSFPN_FRAME_RGB: return "RGB";
    case SSFPN_FRAME_BGR: return "BGR";
    case SSFPN_FRAME_RGBA: return "RGBA";
    case SSFPN_FRAME_BGRA: return "BGRA";
    case SSFPN_FRAME_RGBX: return "RGBx";
    case SSFPN_FRAME_BGRX: return "BGRx";
    case SSFPN_FRAME_NV12: return "NV12";
    case SSFPN_FRAME_I420: return "I420";
    }
  return NULL;
}

int
ssfpn_frame_format_n_planes (SsfpnFrameFormat format)
{
  switch (format)
    {
    case SSFPN_FRAME_RGB:
    case SSFPN_FRAME_BGR:
    case SSFPN_FRAME_RGBA:
    case SSFPN_FRAME_BGRA:
    case SSFPN_FRAME_RGBX:
    case SSFPN_FRAME_BGRX:
      return 1;
    case SSFPN_FRAME_NV12:
      return 2;
    case SSFPN_FRAME_I420:
      return 3;
    }
  return 0;
}

static int
packed_bytes_per_pixel (SsfpnFrameFormat format)
{
  return format == SSFPN_FRAME_RGB || format == SSFPN_FRAME_BGR ? 3 : 4;
}

/* Smallest valid stride of @plane in bytes. */
static gint64
plane_row_bytes (const SsfpnFrame *frame, int plane)
{
  gint64 chroma_width = ((gint64) frame->width + 1) / 2;

  switch (frame->format)
    {
    case SSFPN_FRAME_NV12:
      return plane == 0 ? frame->width : 2 * chroma_width;
    case SSFPN_FRAME_I420:
      return plane == 0 ? frame->width : chroma_width;
    default:
      return (gint64) frame->width * packed_bytes_per_pixel (frame->format);
    }
}

gboolean
ssfpn_frame_check (const SsfpnFrame *frame, GError **error)
{
  const char *name;
  int n_planes;

  g_return_val_if_fail (frame != NULL, FALSE);

  name = format_name (frame->format);
  if (name == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "frame: unknown pixel format %d", (int) frame->format);
      return FALSE;
    }
  if (frame->width <= 0 || frame->height <= 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "frame %s %dx%d: width and height must be positive",
                   name, frame->width, frame->height);
      return FALSE;
    }
  if (frame->matrix != SSFPN_COLOR_MATRIX_BT601
      && frame->matrix != SSFPN_COLOR_MATRIX_BT709)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "frame %s %dx%d: unknown colour matrix %d",
                   name, frame->width, frame->height, (int) frame->matrix);
      return FALSE;
    }
  if (frame->range != SSFPN_COLOR_RANGE_LIMITED
      && frame->range != SSFPN_COLOR_RANGE_FULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "frame %s %dx%d: unknown colour range %d",
                   name, frame->width, frame->height, (int) frame->range);
      return FALSE;
    }

  n_planes = ssfpn_frame_format_n_planes (frame->format);
  for (int plane = 0; plane < n_planes; plane++)
    {
      gint64 row_bytes = plane_row_bytes (frame, plane);

      if (frame->planes[plane] == NULL)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                       "frame %s %dx%d: plane %d is NULL",
                       name, frame->width, frame->height, plane);
          return FALSE;
        }
      if (frame->strides[plane] < row_bytes)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                       "frame %s %dx%d: plane %d stride %d is smaller than "
                       "its row of %" G_GINT64_FORMAT " bytes",
                       name, frame->width, frame->height, plane,
                       frame->strides[plane], row_bytes);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- geometry -------------------------------------------------------- */

/* Python's round(): half to even, which nearbyint gives in the default
 * rounding mode. */
static int
round_half_even (double value)
{
  return (int) nearbyint (value);
}

gboolean
ssfpn_letterbox_transform_init (SsfpnLetterboxTransform *transform,
                                int frame_width, int frame_height,
                                int input_width, int input_height,
                                GError **error)
{
  double scale, dw, dh;
  int resized_width, resized_height;

  g_return_val_if_fail (transform != NULL, FALSE);

  if (frame_width <= 0 || frame_height <= 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "letterbox: frame size %dx%d must be positive",
                   frame_width, frame_height);
      return FALSE;
    }
  if (input_width <= 0 || input_height <= 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "letterbox: network input size %dx%d must be positive",
                   input_width, input_height);
      return FALSE;
    }

  scale = MIN ((double) input_height / frame_height,
               (double) input_width / frame_width);
  resized_width = round_half_even (frame_width * scale);
  resized_height = round_half_even (frame_height * scale);
  if (resized_width < 1 || resized_height < 1)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "letterbox: a %dx%d frame scaled by %g into %dx%d would "
                   "be %dx%d pixels; the frame is too elongated",
                   frame_width, frame_height, scale, input_width,
                   input_height, resized_width, resized_height);
      return FALSE;
    }

  dw = (input_width - resized_width) / 2.0;
  dh = (input_height - resized_height) / 2.0;

  transform->frame_width = frame_width;
  transform->frame_height = frame_height;
  transform->input_width = input_width;
  transform->input_height = input_height;
  transform->resized_width = resized_width;
  transform->resized_height = resized_height;
  /* YOLOv5 subtracts 0.1 so that half-pixel padding goes below and right. */
  transform->left = round_half_even (dw - 0.1);
  transform->top = round_half_even (dh - 0.1);
  transform->scale = scale;
  /* scale_coords recomputes the padding from the gain, unrounded. */
  transform->pad_x = (input_width - frame_width * scale) / 2.0;
  transform->pad_y = (input_height - frame_height * scale) / 2.0;
  return TRUE;
}

void
ssfpn_letterbox_box_to_frame (const SsfpnLetterboxTransform *transform,
                              const float in[4], float out[4])
{
  double limits[4] = { transform->frame_width, transform->frame_height,
                       transform->frame_width, transform->frame_height };
  double pads[4] = { transform->pad_x, transform->pad_y,
                     transform->pad_x, transform->pad_y };

  for (int i = 0; i < 4; i++)
    {
      double value = (in[i] - pads[i]) / transform->scale;
      out[i] = (float) CLAMP (value, 0.0, limits[i]);
    }
}

void
ssfpn_letterbox_box_to_input (const SsfpnLetterboxTransform *transform,
                              const float in[4], float out[4])
{
  double pads[4] = { transform->pad_x, transform->pad_y,
                     transform->pad_x, transform->pad_y };

  for (int i = 0; i < 4; i++)
    out[i] = (float) (in[i] * transform->scale + pads[i]);
}

/* ---- sampling tables ------------------------------------------------- */

/* OpenCV INTER_LINEAR taps for resizing @src_size samples to @dst_size. */
static void
fill_taps (SampleTap *taps, int src_size, int dst_size)
{
  double ratio = (double) src_size / dst_size;

  for (int d = 0; d < dst_size; d++)
    {
      double position = (d + 0.5) * ratio - 0.5;
      int i0 = (int) floor (position);
      double w1 = position - i0;

      if (i0 < 0)
        {
          i0 = 0;
          w1 = 0.0;
        }
      if (i0 >= src_size - 1)
        {
          i0 = src_size - 1;
          w1 = 0.0;
        }
      taps[d].i0 = i0;
      taps[d].i1 = MIN (i0 + 1, src_size - 1);
      taps[d].w1 = (float) w1;
    }
}

SsfpnLetterbox *
ssfpn_letterbox_new (int frame_width, int frame_height,
                     int input_width, int input_height, GError **error)
{
  SsfpnLetterboxTransform transform;
  SsfpnLetterbox *letterbox;

  if (!ssfpn_letterbox_transform_init (&transform, frame_width, frame_height,
                                       input_width, input_height, error))
    return NULL;

  letterbox = g_new0 (SsfpnLetterbox, 1);
  letterbox->transform = transform;
  letterbox->columns = g_new (SampleTap, transform.resized_width);
  letterbox->rows = g_new (SampleTap, transform.resized_height);
  fill_taps (letterbox->columns, frame_width, transform.resized_width);
  fill_taps (letterbox->rows, frame_height, transform.resized_height);
  return letterbox;
}

void
ssfpn_letterbox_free (SsfpnLetterbox *letterbox)
{
  if (letterbox == NULL)
    return;
  g_free (letterbox->columns);
  g_free (letterbox->rows);
  g_free (letterbox);
}

const SsfpnLetterboxTransform *
ssfpn_letterbox_get_transform (const SsfpnLetterbox *letterbox)
{
  g_return_val_if_fail (letterbox != NULL, NULL);
  return &letterbox->transform;
}

/* ---- resampling ------------------------------------------------------ */

static void
yuv_coefficients_init (YuvCoefficients *k, SsfpnColorMatrix matrix,
                       SsfpnColorRange range)
{
  double kr = matrix == SSFPN_COLOR_MATRIX_BT709 ? 0.2126 : 0.299;
  double kb = matrix == SSFPN_COLOR_MATRIX_BT709 ? 0.0722 : 0.114;
  double kg = 1.0 - kr - kb;
  double c_scale = range == SSFPN_COLOR_RANGE_LIMITED ? 255.0 / 224.0 : 1.0;

  k->y_offset = range == SSFPN_COLOR_RANGE_LIMITED ? 16.0f : 0.0f;
  k->y_scale = range == SSFPN_COLOR_RANGE_LIMITED ? 255.0 / 219.0 : 1.0;
  k->c_scale = c_scale;
  k->r_cr = 2.0 * (1.0 - kr);
  k->g_cb = 2.0 * kb * (1.0 - kb) / kg;
  k->g_cr = 2.0 * kr * (1.0 - kr) / kg;
  k->b_cb = 2.0 * (1.0 - kb);
}

static inline float
clamp_255 (float value)
{
  return value < 0.0f ? 0.0f : value > 255.0f ? 255.0f : value;
}

static inline void
yuv_to_rgb (const YuvCoefficients *k, int y, int u, int v, float rgb[3])
{
  float luma = (y - k->y_offset) * k->y_scale;
  float cb = (u - 128) * k->c_scale;
  float cr = (v - 128) * k->c_scale;

  rgb[0] = clamp_255 (luma + k->r_cr * cr);
  rgb[1] = clamp_255 (luma - k->g_cb * cb - k->g_cr * cr);
  rgb[2] = clamp_255 (luma + k->b_cb * cb);
}

static inline float
blend (float wx0, float wx1, float wy0, float wy1,
       float p00, float p01, float p10, float p11)
{
  return wy0 * (wx0 * p00 + wx1 * p01) + wy1 * (wx0 * p10 + wx1 * p11);
}

/* One resized row of a packed frame into out[0..2][0 .. resized_width). */
static void
resize_row_packed (const SsfpnLetterbox *letterbox, const SsfpnFrame *frame,
                   const SampleTap *row, float *const out[3])
{
  int bytes_per_pixel = packed_bytes_per_pixel (frame->format);
  gboolean bgr = frame->format == SSFPN_FRAME_BGR
                 || frame->format == SSFPN_FRAME_BGRA
                 || frame->format == SSFPN_FRAME_BGRX;
  int offsets[3] = { bgr ? 2 : 0, 1, bgr ? 0 : 2 };
  const guint8 *src0 = frame->planes[0] + (ptrdiff_t) row->i0 * frame->strides[0];
  const guint8 *src1 = frame->planes[0] + (ptrdiff_t) row->i1 * frame->strides[0];
  float wy1 = row->w1, wy0 = 1.0f - wy1;

  for (int x = 0; x < letterbox->transform.resized_width; x++)
    {
      const SampleTap *column = &letterbox->columns[x];
      const guint8 *p00 = src0 + (ptrdiff_t) column->i0 * bytes_per_pixel;
      const guint8 *p01 = src0 + (ptrdiff_t) column->i1 * bytes_per_pixel;
      const guint8 *p10 = src1 + (ptrdiff_t) column->i0 * bytes_per_pixel;
      const guint8 *p11 = src1 + (ptrdiff_t) column->i1 * bytes_per_pixel;
      float wx1 = column->w1, wx0 = 1.0f - wx1;

      for (int c = 0; c < 3; c++)
        {
          int o = offsets[c];
          out[c][x] = blend (wx0, wx1, wy0, wy1,
                             p00[o], p01[o], p10[o], p11[o]) / 255.0f;
        }
    }
}

/* One source row of a YUV frame: its luma and chroma rows. */
typedef struct {
  const guint8 *y, *u, *v;
} YuvRow;

static YuvRow
yuv_row (const SsfpnFrame *frame, int row)
{
  YuvRow r;
  ptrdiff_t chroma_row = row / 2;

  r.y = frame->planes[0] + (ptrdiff_t) row * frame->strides[0];
  r.u = frame->planes[1] + chroma_row * frame->strides[1];
  if (frame->format == SSFPN_FRAME_NV12)
    r.v = r.u + 1;
  else
    r.v = frame->planes[2] + chroma_row * frame->strides[2];
  return r;
}

/* One resized row of a YUV frame: each of the four source pixels is
 * converted (and clamped) before blending, as if the frame were RGB. */
static void
resize_row_yuv (const SsfpnLetterbox *letterbox, const SsfpnFrame *frame,
                const YuvCoefficients *k, const SampleTap *row,
                float *const out[3])
{
  /* NV12 interleaves U and V, so each chroma sample is 2 bytes apart. */
  int chroma_step = frame->format == SSFPN_FRAME_NV12 ? 2 : 1;
  YuvRow r0 = yuv_row (frame, row->i0);
  YuvRow r1 = yuv_row (frame, row->i1);
  float wy1 = row->w1, wy0 = 1.0f - wy1;

  for (int x = 0; x < letterbox->transform.resized_width; x++)
    {
      const SampleTap *column = &letterbox->columns[x];
      int x0 = column->i0, x1 = column->i1;
      ptrdiff_t c0 = (ptrdiff_t) (x0 / 2) * chroma_step;
      ptrdiff_t c1 = (ptrdiff_t) (x1 / 2) * chroma_step;
      float wx1 = column->w1, wx0 = 1.0f - wx1;
      float p00[3], p01[3], p10[3], p11[3];

      yuv_to_rgb (k, r0.y[x0], r0.u[c0], r0.v[c0], p00);
      yuv_to_rgb (k, r0.y[x1], r0.u[c1], r0.v[c1], p01);
      yuv_to_rgb (k, r1.y[x0], r1.u[c0], r1.v[c0], p10);
      yuv_to_rgb (k, r1.y[x1], r1.u[c1], r1.v[c1], p11);
      for (int c = 0; c < 3; c++)
        out[c][x] = blend (wx0, wx1, wy0, wy1,
                           p00[c], p01[c], p10[c], p11[c]) / 255.0f;
    }
}

static void
fill_padding (float *const row[3], int begin, int end)
{
  for (int c = 0; c < 3; c++)
    for (int x = begin; x < end; x++)
      row[c][x] = PAD_VALUE;
}

gboolean
ssfpn_letterbox_run (const SsfpnLetterbox *letterbox, const SsfpnFrame *frame,
                     float *dst, GError **error)
{
  const SsfpnLetterboxTransform *t;
  gboolean yuv;
  YuvCoefficients coefficients;
  ptrdiff_t plane_size;

  g_return_val_if_fail (letterbox != NULL, FALSE);
  g_return_val_if_fail (frame != NULL, FALSE);
  g_return_val_if_fail (dst != NULL, FALSE);

  t = &letterbox->transform;
  if (!ssfpn_frame_check (frame, error))
    return FALSE;
  if (frame->width != t->frame_width || frame->height != t->frame_height)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "frame %s %dx%d: the letterbox was made for %dx%d frames",
                   format_name (frame->format), frame->width, frame->height,
                   t->frame_width, t->frame_height);
      return FALSE;
    }

  yuv = frame->format == SSFPN_FRAME_NV12 || frame->format == SSFPN_FRAME_I420;
  if (yuv)
    yuv_coefficients_init (&coefficients, frame->matrix, frame->range);
  plane_size = (ptrdiff_t) t->input_width * t->input_height;

#ifdef HAVE_OPENMP
#pragma omp parallel for schedule(static) if (plane_size >= PARALLEL_MIN_PIXELS)
#endif
  for (int y = 0; y < t->input_height; y++)
    {
      ptrdiff_t offset = (ptrdiff_t) y * t->input_width;
      float *const row[3] = { dst + offset, dst + plane_size + offset,
                              dst + 2 * plane_size + offset };
      int resized_y = y - t->top;

      if (resized_y < 0 || resized_y >= t->resized_height)
        {
          fill_padding (row, 0, t->input_width);
          continue;
        }
      fill_padding (row, 0, t->left);
      fill_padding (row, t->left + t->resized_width, t->input_width);

      {
        float *const content[3] = { row[0] + t->left, row[1] + t->left,
                                    row[2] + t->left };
        const SampleTap *tap = &letterbox->rows[resized_y];

        if (yuv)
          resize_row_yuv (letterbox, frame, &coefficients, tap, content);
        else
          resize_row_packed (letterbox, frame, tap, content);
      }
    }
  return TRUE;
}
