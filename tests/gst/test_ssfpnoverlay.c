/* gst-check tests of the ssfpnoverlay element.
 *
 * Frames of a flat colour get region of interest metas attached here, as
 * ssfpndetect attaches them; the tests then look at which pixels the
 * element changed. No model is needed, except by the last test, which runs
 * ssfpndetect in front with the small model of tests/data/element/.
 */
#include "buildconfig.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define FRAME_WIDTH 160
#define FRAME_HEIGHT 120

/* A box well inside the frame, with room above it for the label; even
 * corners, so that 4:2:0 chroma pairs do not straddle its edges. */
#define BOX_X 40
#define BOX_Y 50
#define BOX_W 80
#define BOX_H 50

/* Pixels this close to an outline may change through chroma sharing. */
#define CHROMA_MARGIN 2

static const GstVideoFormat all_formats[] = {
  GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBA,
  GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
  GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420,
};

/* ---- frames ------------------------------------------------------------ */

static void
video_info_init (GstVideoInfo * info, GstVideoFormat format, gint width,
    gint height)
{
  gst_video_info_set_format (info, format, width, height);
  GST_VIDEO_INFO_FPS_N (info) = 30;
  GST_VIDEO_INFO_FPS_D (info) = 1;
}

static guint8 *
component_at (GstVideoFrame * frame, guint component, gint x, gint y)
{
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gint cx = x >> GST_VIDEO_FORMAT_INFO_W_SUB (finfo, component);
  gint cy = y >> GST_VIDEO_FORMAT_INFO_H_SUB (finfo, component);
  return (guint8 *) GST_VIDEO_FRAME_COMP_DATA (frame, component)
      + cy * GST_VIDEO_FRAME_COMP_STRIDE (frame, component)
      + cx * GST_VIDEO_FRAME_COMP_PSTRIDE (frame, component);
}

/* A frame of one colour: R, G, B or Y, U, V; opaque where there is alpha. */
static GstBuffer *
flat_frame (const GstVideoInfo * info, const guint8 colour[3])
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info->size, NULL);
  GstVideoFrame frame;
  gst_buffer_memset (buffer, 0, 0x5a, info->size);      /* padding too */
  fail_unless (gst_video_frame_map (&frame, info, buffer, GST_MAP_WRITE));
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (info); y++)
    for (gint x = 0; x < GST_VIDEO_INFO_WIDTH (info); x++) {
      for (guint c = 0; c < 3; c++)
        *component_at (&frame, c, x, y) = colour[c];
      if (GST_VIDEO_INFO_HAS_ALPHA (info))
        *component_at (&frame, 3, x, y) = 255;
    }
  gst_video_frame_unmap (&frame);
  GST_BUFFER_PTS (buffer) = 0;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 30;
  return buffer;
}

static GstBuffer *
grey_frame (const GstVideoInfo * info)
{
  static const guint8 rgb_grey[3] = { 90, 100, 110 };
  static const guint8 yuv_grey[3] = { 110, 128, 128 };
  return flat_frame (info, GST_VIDEO_INFO_IS_YUV (info) ? yuv_grey : rgb_grey);
}

/* Attaches a region of interest the way ssfpndetect does. */
static void
add_detection (GstBuffer * buffer, const gchar * label, gint label_id,
    gdouble confidence, guint x, guint y, guint w, guint h)
{
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buffer, label, x, y, w, h);
  gst_video_region_of_interest_meta_add_param (roi,
      gst_structure_new ("detection", "label_id", G_TYPE_INT, label_id,
          "confidence", G_TYPE_DOUBLE, confidence,
          "x_min", G_TYPE_DOUBLE, x / (double) FRAME_WIDTH,
          "y_min", G_TYPE_DOUBLE, y / (double) FRAME_HEIGHT,
          "x_max", G_TYPE_DOUBLE, (x + w) / (double) FRAME_WIDTH,
          "y_max", G_TYPE_DOUBLE, (y + h) / (double) FRAME_HEIGHT, NULL));
}

/* ---- running the element ----------------------------------------------- */

/* The input and output of one frame, both mapped for reading. */
typedef struct
{
  GstVideoInfo info;
  GstBuffer *before;
  GstBuffer *after;
  GstVideoFrame in;
  GstVideoFrame out;
} Outcome;

/* Pushes @input (taken) through the harness @h, whose caps are @info. */
static void
push_frame (GstHarness * h, const GstVideoInfo * info, GstBuffer * input,
    Outcome * outcome)
{
  outcome->info = *info;
  outcome->before = gst_buffer_copy_deep (input);
  fail_unless_equals_int (gst_harness_push (h, input), GST_FLOW_OK);
  outcome->after = gst_harness_pull (h);
  fail_unless (outcome->after != NULL);
  fail_unless (gst_video_frame_map (&outcome->in, info, outcome->before,
          GST_MAP_READ));
  fail_unless (gst_video_frame_map (&outcome->out, info, outcome->after,
          GST_MAP_READ));
}

/* Pushes @input (taken) through "ssfpnoverlay @properties". */
static void
run_overlay (const gchar * properties, const GstVideoInfo * info,
    GstBuffer * input, Outcome * outcome)
{
  gchar *launch = g_strdup_printf ("ssfpnoverlay %s", properties);
  GstHarness *h = gst_harness_new_parse (launch);
  g_free (launch);
  gst_harness_set_src_caps (h, gst_video_info_to_caps (info));
  push_frame (h, info, input, outcome);
  gst_harness_teardown (h);
}

static void
outcome_clear (Outcome * outcome)
{
  gst_video_frame_unmap (&outcome->in);
  gst_video_frame_unmap (&outcome->out);
  gst_buffer_unref (outcome->before);
  gst_buffer_unref (outcome->after);
}

static gboolean
pixel_changed (Outcome * o, gint x, gint y)
{
  for (guint c = 0; c < GST_VIDEO_INFO_N_COMPONENTS (&o->info); c++)
    if (*component_at (&o->in, c, x, y) != *component_at (&o->out, c, x, y))
      return TRUE;
  return FALSE;
}

/* How many pixels of [x0, x1) x [y0, y1), clipped to the frame, changed. */
static guint
count_changed (Outcome * o, gint x0, gint y0, gint x1, gint y1)
{
  guint changed = 0;
  x0 = MAX (x0, 0);
  y0 = MAX (y0, 0);
  x1 = MIN (x1, GST_VIDEO_INFO_WIDTH (&o->info));
  y1 = MIN (y1, GST_VIDEO_INFO_HEIGHT (&o->info));
  for (gint y = y0; y < y1; y++)
    for (gint x = x0; x < x1; x++)
      changed += pixel_changed (o, x, y);
  return changed;
}

/* The changed pixels outside [x0, x1) x [y0, y1) and outside @except
 * (may be NULL). */
static guint
count_changed_outside (Outcome * o, gint x0, gint y0, gint x1, gint y1,
    const GstVideoRectangle * except)
{
  guint changed = 0;
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (&o->info); y++)
    for (gint x = 0; x < GST_VIDEO_INFO_WIDTH (&o->info); x++) {
      if (x >= x0 && x < x1 && y >= y0 && y < y1)
        continue;
      if (except != NULL && x >= except->x && x < except->x + except->w
          && y >= except->y && y < except->y + except->h)
        continue;
      changed += pixel_changed (o, x, y);
    }
  return changed;
}

/* The bounding box of the changed pixels in a region; w = 0 when none. */
static GstVideoRectangle
changed_bounds (Outcome * o, gint x0, gint y0, gint x1, gint y1)
{
  GstVideoRectangle r = { 0, 0, 0, 0 };
  gint left = G_MAXINT, top = G_MAXINT, right = -1, bottom = -1;
  for (gint y = MAX (y0, 0); y < MIN (y1, GST_VIDEO_INFO_HEIGHT (&o->info));
      y++)
    for (gint x = MAX (x0, 0); x < MIN (x1, GST_VIDEO_INFO_WIDTH (&o->info));
        x++)
      if (pixel_changed (o, x, y)) {
        left = MIN (left, x);
        top = MIN (top, y);
        right = MAX (right, x);
        bottom = MAX (bottom, y);
      }
  if (right >= 0)
    r = (GstVideoRectangle) {
    left, top, right - left + 1, bottom - top + 1};
  return r;
}

/* Checks the outline band of width @line_width along the inside of the
 * box changed everywhere. */
static void
check_outline_drawn (Outcome * o, gint x, gint y, gint w, gint h,
    gint line_width, const gchar * what)
{
  for (gint i = 0; i < line_width; i++) {
    for (gint px = x; px < x + w; px++) {
      fail_unless (pixel_changed (o, px, y + i), "%s: top edge %d,%d kept",
          what, px, y + i);
      fail_unless (pixel_changed (o, px, y + h - 1 - i),
          "%s: bottom edge %d,%d kept", what, px, y + h - 1 - i);
    }
    for (gint py = y; py < y + h; py++) {
      fail_unless (pixel_changed (o, x + i, py), "%s: left edge %d,%d kept",
          what, x + i, py);
      fail_unless (pixel_changed (o, x + w - 1 - i, py),
          "%s: right edge %d,%d kept", what, x + w - 1 - i, py);
    }
  }
}

/* ---- per format -------------------------------------------------------- */

GST_START_TEST (test_box_and_label_every_format)
{
  GstVideoFormat format = all_formats[__i__];
  const gchar *name = gst_video_format_to_string (format);
  GstVideoInfo info;
  video_info_init (&info, format, FRAME_WIDTH, FRAME_HEIGHT);
  const gint line_width = 3;

  GstBuffer *input = grey_frame (&info);
  add_detection (input, "circle", 0, 0.87, BOX_X, BOX_Y, BOX_W, BOX_H);
  Outcome o;
  run_overlay ("line-width=3", &info, input, &o);

  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, line_width, name);

  /* Well inside the box nothing changed (the label is above it). */
  gint margin = line_width + CHROMA_MARGIN;
  fail_unless_equals_int (count_changed (&o, BOX_X + margin, BOX_Y + margin,
          BOX_X + BOX_W - margin, BOX_Y + BOX_H - margin), 0);

  /* The label sits on the box's top-left corner, above it. */
  GstVideoRectangle label = changed_bounds (&o, 0, 0, FRAME_WIDTH, BOX_Y);
  fail_unless (label.w > 0, "%s: no label above the box", name);
  fail_unless (label.x >= BOX_X - CHROMA_MARGIN && label.x <= BOX_X,
      "%s: label starts at x=%d", name, label.x);
  fail_unless_equals_int (label.y + label.h, BOX_Y);
  fail_unless (label.h >= 10 && label.h < 30, "%s: label height %d", name,
      label.h);
  fail_unless (label.w > label.h, "%s: label %dx%d is no text line", name,
      label.w, label.h);
  /* A filled plate behind the text: most of its pixels changed. */
  fail_unless (count_changed (&o, label.x, label.y, label.x + label.w,
          label.y + label.h) > (guint) (label.w * label.h * 9 / 10));

  /* Well outside the box and the label nothing changed. */
  GstVideoRectangle label_area = { label.x - CHROMA_MARGIN,
    label.y - CHROMA_MARGIN, label.w + 2 * CHROMA_MARGIN, label.h + CHROMA_MARGIN
  };
  fail_unless_equals_int (count_changed_outside (&o, BOX_X - CHROMA_MARGIN,
          BOX_Y - CHROMA_MARGIN, BOX_X + BOX_W + CHROMA_MARGIN,
          BOX_Y + BOX_H + CHROMA_MARGIN, &label_area), 0);
  outcome_clear (&o);
}

GST_END_TEST;

GST_START_TEST (test_boxes_only_every_format)
{
  GstVideoFormat format = all_formats[__i__];
  const gchar *name = gst_video_format_to_string (format);
  GstVideoInfo info;
  video_info_init (&info, format, FRAME_WIDTH, FRAME_HEIGHT);

  GstBuffer *input = grey_frame (&info);
  add_detection (input, "square", 1, 0.5, BOX_X, BOX_Y, BOX_W, BOX_H);
  Outcome o;
  run_overlay ("show-labels=false show-confidence=false", &info, input, &o);

  /* Default width at 160x120: 2 px. */
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, name);
  gint margin = 2 + CHROMA_MARGIN;
  fail_unless_equals_int (count_changed (&o, BOX_X + margin, BOX_Y + margin,
          BOX_X + BOX_W - margin, BOX_Y + BOX_H - margin), 0);
  fail_unless_equals_int (count_changed_outside (&o, BOX_X - CHROMA_MARGIN,
          BOX_Y - CHROMA_MARGIN, BOX_X + BOX_W + CHROMA_MARGIN,
          BOX_Y + BOX_H + CHROMA_MARGIN, NULL), 0);
  outcome_clear (&o);
}

GST_END_TEST;

/* Random bytes (padding included) come out bit for bit, for every format. */
GST_START_TEST (test_no_metas_bit_identical)
{
  GstVideoFormat format = all_formats[__i__];
  GstVideoInfo info;
  video_info_init (&info, format, 97, 61);
  GstBuffer *input = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstMapInfo map;
  fail_unless (gst_buffer_map (input, &map, GST_MAP_WRITE));
  GRand *rand = g_rand_new_with_seed (5 + __i__);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  g_rand_free (rand);
  gst_buffer_unmap (input, &map);

  Outcome o;
  run_overlay ("", &info, input, &o);
  fail_unless (gst_buffer_get_size (o.after) == gst_buffer_get_size (o.before));
  GstMapInfo a, b;
  fail_unless (gst_buffer_map (o.before, &a, GST_MAP_READ));
  fail_unless (gst_buffer_map (o.after, &b, GST_MAP_READ));
  fail_unless (memcmp (a.data, b.data, a.size) == 0, "%s changed",
      gst_video_format_to_string (format));
  gst_buffer_unmap (o.before, &a);
  gst_buffer_unmap (o.after, &b);
  outcome_clear (&o);
}

GST_END_TEST;

/* ---- geometry and properties ------------------------------------------- */

GST_START_TEST (test_label_inside_box_at_top)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, FRAME_WIDTH, FRAME_HEIGHT);
  const gint line_width = 2;

  /* No room above: the label goes just inside the box's top-left corner. */
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "star", 3, 0.66, BOX_X, 0, BOX_W, BOX_H);
  Outcome o;
  run_overlay ("", &info, input, &o);
  GstVideoRectangle label = changed_bounds (&o, BOX_X + line_width,
      line_width, BOX_X + BOX_W - line_width, BOX_H - line_width);
  fail_unless (label.w > 0, "no label inside the box");
  fail_unless_equals_int (label.x, BOX_X + line_width);
  fail_unless_equals_int (label.y, line_width);
  outcome_clear (&o);

  /* Without labels the inside stays as it was. */
  input = grey_frame (&info);
  add_detection (input, "star", 3, 0.66, BOX_X, 0, BOX_W, BOX_H);
  run_overlay ("show-labels=false show-confidence=false", &info, input, &o);
  fail_unless_equals_int (count_changed (&o, BOX_X + line_width, line_width,
          BOX_X + BOX_W - line_width, BOX_H - line_width), 0);
  outcome_clear (&o);
}

GST_END_TEST;

/* The label of a box at the right edge stays within the frame. */
GST_START_TEST (test_label_kept_in_frame)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_RGB, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "hexagon", 4, 0.99, FRAME_WIDTH - 12, BOX_Y, 12, 20);
  Outcome o;
  run_overlay ("", &info, input, &o);
  GstVideoRectangle label = changed_bounds (&o, 0, 0, FRAME_WIDTH, BOX_Y);
  fail_unless (label.w > 30, "label of width %d", label.w);
  fail_unless_equals_int (label.x + label.w, FRAME_WIDTH);
  outcome_clear (&o);
}

GST_END_TEST;

static gint
label_height (const gchar * properties, gint width, gint height)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, width, height);
  GstBuffer *input = grey_frame (&info);
  gint box_y = height / 2;
  add_detection (input, "triangle", 2, 0.5, width / 4, box_y, width / 2,
      height / 4);
  Outcome o;
  run_overlay (properties, &info, input, &o);
  GstVideoRectangle label = changed_bounds (&o, 0, 0, width, box_y);
  fail_unless_equals_int (label.y + label.h, box_y);
  outcome_clear (&o);
  return label.h;
}

GST_START_TEST (test_font_size)
{
  gint small = label_height ("font-size=10", 320, 240);
  gint large = label_height ("font-size=30", 320, 240);
  fail_unless (small >= 10 && small < 20, "10 px text in a %d px label",
      small);
  fail_unless (large >= 30 && large < 50, "30 px text in a %d px label",
      large);

  /* Automatic: the text follows the frame height. */
  gint auto_240 = label_height ("", 320, 240);
  gint auto_720 = label_height ("", 1280, 720);
  fail_unless_equals_int (auto_240, small);
  fail_unless (auto_720 >= 2 * auto_240 - 4,
      "labels of %d px at 720 lines, %d px at 240", auto_720, auto_240);
  fail_unless_equals_int (auto_720, label_height ("font-size=20", 1280, 720));
}

GST_END_TEST;

/* The outline's width in pixels: how many pixels changed from the box's
 * left edge inwards, halfway down. */
static gint
outline_width (const gchar * properties, gint width, gint height)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, width, height);
  GstBuffer *input = grey_frame (&info);
  gint x = width / 4, y = height / 4;
  add_detection (input, "cross", 5, 0.5, x, y, width / 2, height / 2);
  Outcome o;
  run_overlay (properties, &info, input, &o);
  fail_unless (!pixel_changed (&o, x - 1, height / 2));
  gint changed = 0;
  while (pixel_changed (&o, x + changed, height / 2))
    changed++;
  outcome_clear (&o);
  return changed;
}

GST_START_TEST (test_line_width)
{
  fail_unless_equals_int (outline_width ("line-width=1", 160, 120), 1);
  fail_unless_equals_int (outline_width ("line-width=6", 160, 120), 6);
  /* Automatic: 2 px up to 720 lines, then the shorter side / 360. */
  fail_unless_equals_int (outline_width ("", 160, 120), 2);
  fail_unless_equals_int (outline_width ("", 1920, 1080), 3);
  /* A box thinner than two lines is filled. */
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_RGBA, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "circle", 0, 0.5, BOX_X, BOX_Y, 5, 30);
  Outcome o;
  run_overlay ("line-width=3 show-labels=false show-confidence=false", &info,
      input, &o);
  fail_unless_equals_int (count_changed (&o, BOX_X, BOX_Y, BOX_X + 5,
          BOX_Y + 30), 5 * 30);
  fail_unless_equals_int (count_changed_outside (&o, BOX_X, BOX_Y, BOX_X + 5,
          BOX_Y + 30, NULL), 0);
  outcome_clear (&o);
}

GST_END_TEST;

static gint
label_width (const gchar * properties)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_I420, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "circle", 0, 0.87, 10, BOX_Y, 20, 20);
  Outcome o;
  run_overlay (properties, &info, input, &o);
  GstVideoRectangle label = changed_bounds (&o, 0, 0, FRAME_WIDTH, BOX_Y);
  outcome_clear (&o);
  return label.w;
}

GST_START_TEST (test_show_confidence_and_labels)
{
  gint both = label_width ("");
  gint name_only = label_width ("show-confidence=false");
  gint number_only = label_width ("show-labels=false");
  gint none = label_width ("show-labels=false show-confidence=false");
  fail_unless (name_only > 0 && number_only > 0);
  fail_unless (both > name_only + number_only / 2,
      "label widths: both %d, name %d, number %d", both, name_only,
      number_only);
  fail_unless (both > number_only);
  fail_unless_equals_int (none, 0);
}

GST_END_TEST;

static void
outline_colour (Outcome * o, gint x, gint y, guint8 rgb[3])
{
  for (guint c = 0; c < 3; c++)
    rgb[c] = *component_at (&o->out, c, x, y);
}

GST_START_TEST (test_colour_per_class)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_RGBx, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "circle", 0, 0.9, 10, 30, 30, 30);
  add_detection (input, "square", 1, 0.9, 60, 30, 30, 30);
  add_detection (input, "circle", 0, 0.4, 110, 30, 30, 30);
  add_detection (input, "cross", 5, 0.4, 10, 80, 30, 30);
  Outcome o;
  run_overlay ("show-labels=false show-confidence=false", &info, input, &o);
  guint8 a[3], b[3], c[3], d[3];
  outline_colour (&o, 10, 45, a);
  outline_colour (&o, 60, 45, b);
  outline_colour (&o, 110, 45, c);
  outline_colour (&o, 10, 95, d);
  fail_unless (memcmp (a, b, 3) != 0, "classes 0 and 1 share a colour");
  fail_unless (memcmp (a, d, 3) != 0, "classes 0 and 5 share a colour");
  fail_unless (memcmp (b, d, 3) != 0, "classes 1 and 5 share a colour");
  fail_unless (memcmp (a, c, 3) == 0, "class 0 drawn in two colours");
  outcome_clear (&o);
}

GST_END_TEST;

static void
rgb_to_yuv (const guint8 rgb[3], double kr, double kb, gboolean full,
    double yuv[3])
{
  double y = kr * rgb[0] + (1 - kr - kb) * rgb[1] + kb * rgb[2];
  double cb = (rgb[2] - y) / (2 * (1 - kb));
  double cr = (rgb[0] - y) / (2 * (1 - kr));
  yuv[0] = full ? y : 16 + y * 219 / 255;
  yuv[1] = 128 + (full ? cb : cb * 224 / 255);
  yuv[2] = 128 + (full ? cr : cr * 224 / 255);
}

/* YUV frames get the class colour in their own matrix and range: the
 * outline's Y, U, V match the colour drawn on an RGB frame, converted. */
GST_START_TEST (test_yuv_colour_matrix)
{
  GstVideoInfo rgb_info;
  video_info_init (&rgb_info, GST_VIDEO_FORMAT_RGB, FRAME_WIDTH,
      FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&rgb_info);
  add_detection (input, "square", 1, 0.9, BOX_X, BOX_Y, BOX_W, BOX_H);
  Outcome o;
  run_overlay ("", &rgb_info, input, &o);
  guint8 rgb[3];
  outline_colour (&o, BOX_X, BOX_Y + BOX_H / 2, rgb);
  outcome_clear (&o);

  struct
  {
    GstVideoFormat format;
    GstVideoColorMatrix matrix;
    GstVideoColorRange range;
  } cases[] = {
    {GST_VIDEO_FORMAT_I420, GST_VIDEO_COLOR_MATRIX_BT709,
        GST_VIDEO_COLOR_RANGE_0_255},
    {GST_VIDEO_FORMAT_NV12, GST_VIDEO_COLOR_MATRIX_BT601,
        GST_VIDEO_COLOR_RANGE_16_235},
    {GST_VIDEO_FORMAT_NV12, GST_VIDEO_COLOR_MATRIX_BT709,
        GST_VIDEO_COLOR_RANGE_16_235},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstVideoInfo info;
    video_info_init (&info, cases[i].format, FRAME_WIDTH, FRAME_HEIGHT);
    info.colorimetry.matrix = cases[i].matrix;
    info.colorimetry.range = cases[i].range;
    double kr, kb, expected[3];
    fail_unless (gst_video_color_matrix_get_Kr_Kb (cases[i].matrix, &kr,
            &kb));
    rgb_to_yuv (rgb, kr, kb, cases[i].range == GST_VIDEO_COLOR_RANGE_0_255,
        expected);

    input = grey_frame (&info);
    add_detection (input, "square", 1, 0.9, BOX_X, BOX_Y, BOX_W, BOX_H);
    run_overlay ("", &info, input, &o);
    for (guint c = 0; c < 3; c++) {
      guint8 got = *component_at (&o.out, c, BOX_X, BOX_Y + BOX_H / 2);
      fail_unless (fabs (got - expected[c]) <= 1.0,
          "case %u component %u: %u, expected %.1f", i, c, got, expected[c]);
    }
    outcome_clear (&o);
  }
}

GST_END_TEST;

/* Region of interest metas from other elements (no "detection" structure)
 * are drawn with their label; parts outside the frame are clipped. */
GST_START_TEST (test_foreign_and_clipped_regions)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_NV12, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  gst_buffer_add_video_region_of_interest_meta (input, "face", BOX_X, BOX_Y,
      BOX_W, BOX_H);
  gst_buffer_add_video_region_of_interest_meta (input, "edge", 140, 100, 100,
      100);
  Outcome o;
  run_overlay ("", &info, input, &o);
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, "face");
  /* The clipped box: its left and top edges, to the frame's border. */
  fail_unless (pixel_changed (&o, 140, FRAME_HEIGHT - 1));
  fail_unless (pixel_changed (&o, FRAME_WIDTH - 1, 100));
  GstVideoRectangle label = changed_bounds (&o, 0, 0, FRAME_WIDTH, BOX_Y);
  fail_unless (label.w > 0, "no label for a meta without confidence");
  outcome_clear (&o);

  /* A region without a type (roi_type 0): its box, and no label. */
  input = grey_frame (&info);
  gst_buffer_add_video_region_of_interest_meta (input, NULL, BOX_X, BOX_Y,
      BOX_W, BOX_H);
  run_overlay ("", &info, input, &o);
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, "untyped");
  fail_unless_equals_int (count_changed (&o, 0, 0, FRAME_WIDTH, BOX_Y), 0);
  outcome_clear (&o);

  /* A type that is no quark GLib issued (it has no string): drawn as an
   * untyped region, not a crash. */
  input = grey_frame (&info);
  GstVideoRegionOfInterestMeta *stray =
      gst_buffer_add_video_region_of_interest_meta (input, NULL, BOX_X, BOX_Y,
      BOX_W, BOX_H);
  stray->roi_type = G_MAXUINT32 - 1;
  run_overlay ("", &info, input, &o);
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, "unissued type");
  fail_unless_equals_int (count_changed (&o, 0, 0, FRAME_WIDTH, BOX_Y), 0);
  outcome_clear (&o);

  /* A region wholly outside the frame draws nothing at all. */
  input = grey_frame (&info);
  gst_buffer_add_video_region_of_interest_meta (input, "away", 500, 10, 20,
      20);
  run_overlay ("", &info, input, &o);
  fail_unless_equals_int (count_changed (&o, 0, 0, FRAME_WIDTH, FRAME_HEIGHT),
      0);
  outcome_clear (&o);
}

GST_END_TEST;

/* Boxes at odd pixels on 4:2:0 frames: every chroma sample an outline
 * touches takes the box's colour (none is left to the picture's, where
 * the blend would read a 2x2 block's top-left pixel only), and nothing
 * beyond the box snapped outwards to even pixels changes. */
GST_START_TEST (test_odd_boxes_whole_chroma)
{
  static const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420
  };
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    GstVideoInfo info;
    video_info_init (&info, formats[f], 97, 61);
    GstBuffer *input = grey_frame (&info);
    /* 11..51 x 13..43, snapped to 10..51 x 12..43; line width 1 -> 2. */
    add_detection (input, "circle", 0, 0.5, 11, 13, 41, 31);
    /* To the odd frame's right and bottom edges. */
    add_detection (input, "star", 3, 0.5, 70, 40, 27, 21);
    Outcome o;
    run_overlay ("line-width=1 show-labels=false show-confidence=false",
        &info, input, &o);
    const gchar *name = gst_video_format_to_string (formats[f]);
    for (gint x = 11; x <= 51; x++)
      for (gint k = 0; k < 2; k++) {
        gint y = k ? 43 : 13;
        fail_unless (*component_at (&o.out, 1, x, y) != 128
            || *component_at (&o.out, 2, x, y) != 128,
            "%s: %d,%d kept the picture's chroma", name, x, y);
      }
    for (gint y = 13; y <= 43; y++)
      for (gint k = 0; k < 2; k++) {
        gint x = k ? 51 : 11;
        fail_unless (*component_at (&o.out, 1, x, y) != 128
            || *component_at (&o.out, 2, x, y) != 128,
            "%s: %d,%d kept the picture's chroma", name, x, y);
      }
    fail_unless (pixel_changed (&o, 96, 50), "%s: right edge", name);
    fail_unless (pixel_changed (&o, 80, 60), "%s: bottom edge", name);
    GstVideoRectangle second = { 70, 40, 27, 21 };
    fail_unless_equals_int (count_changed_outside (&o, 10, 12, 52, 44,
            &second), 0);
    outcome_clear (&o);
  }
}

GST_END_TEST;

/* Wider than Cairo's 32767 pixels: drawn in tiles, boxes at both ends. */
GST_START_TEST (test_frame_wider_than_cairo)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_NV12, 33000, 16);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "circle", 0, 0.9, 4, 2, 40, 12);
  add_detection (input, "square", 1, 0.9, 32900, 2, 60, 12);
  Outcome o;
  run_overlay ("line-width=2", &info, input, &o);
  check_outline_drawn (&o, 4, 2, 40, 12, 2, "left box");
  check_outline_drawn (&o, 32900, 2, 60, 12, 2, "right box");
  fail_unless_equals_int (count_changed (&o, 100, 0, 32800, 16), 0);
  outcome_clear (&o);
}

GST_END_TEST;

/* Pango's warnings, counted: Pango logs through GLib's structured log,
 * which g_log_set_handler does not see, so the suite installs this writer
 * (once a process, as GLib allows). */
static guint pango_warnings;

static GLogWriterOutput
count_pango_warnings (GLogLevelFlags level, const GLogField * fields,
    gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0
        && fields[i].length < 0 && g_strcmp0 (fields[i].value, "Pango") == 0
        && (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)))
      g_atomic_int_inc (&pango_warnings);
  return g_log_writer_default (level, fields, n_fields, user_data);
}

/* Labels other elements made: bytes that are not UTF-8 are shown with
 * replacement characters (Pango would warn on every frame), an empty type
 * and a confidence that is no number show no label. */
GST_START_TEST (test_foreign_label_text)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, FRAME_WIDTH, FRAME_HEIGHT);
  GstBuffer *input = grey_frame (&info);
  add_detection (input, "caf\xe9", 0, 0.5, BOX_X, BOX_Y, BOX_W, BOX_H);
  Outcome o;
  guint warnings_before = g_atomic_int_get (&pango_warnings);
  run_overlay ("", &info, input, &o);
  fail_unless_equals_int (g_atomic_int_get (&pango_warnings),
      warnings_before);
  GstVideoRectangle label = changed_bounds (&o, 0, 0, FRAME_WIDTH, BOX_Y);
  fail_unless (label.w > 0, "no label for a name that is not UTF-8");
  outcome_clear (&o);

  input = grey_frame (&info);
  add_detection (input, "", 0, NAN, BOX_X, BOX_Y, BOX_W, BOX_H);
  run_overlay ("", &info, input, &o);
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, "empty name");
  fail_unless_equals_int (count_changed (&o, 0, 0, FRAME_WIDTH, BOX_Y), 0);
  outcome_clear (&o);
}

GST_END_TEST;

/* Rows padded past the width (a GstVideoMeta's stride): drawn in the
 * right place, and the padding bytes are left as they were. */
GST_START_TEST (test_padded_stride)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, FRAME_WIDTH, FRAME_HEIGHT);
  const gint stride = FRAME_WIDTH * 4 + 64;
  gsize size = (gsize) stride * FRAME_HEIGHT;
  GstBuffer *input = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (input, 0, 0x5a, size);
  gsize offsets[GST_VIDEO_MAX_PLANES] = { 0 };
  gint strides[GST_VIDEO_MAX_PLANES] = { stride };
  gst_buffer_add_video_meta_full (input, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_BGRx, FRAME_WIDTH, FRAME_HEIGHT, 1, offsets, strides);
  GST_BUFFER_PTS (input) = 0;
  GST_BUFFER_DURATION (input) = GST_SECOND / 30;
  add_detection (input, "hexagon", 4, 0.5, BOX_X, BOX_Y, BOX_W, BOX_H);
  Outcome o;
  run_overlay ("line-width=2", &info, input, &o);
  fail_unless_equals_int (GST_VIDEO_FRAME_PLANE_STRIDE (&o.out, 0), stride);
  check_outline_drawn (&o, BOX_X, BOX_Y, BOX_W, BOX_H, 2, "padded");
  fail_unless_equals_int (count_changed_outside (&o, BOX_X, 0,
          BOX_X + BOX_W, BOX_Y + BOX_H, NULL), 0);
  GstMapInfo map;
  fail_unless (gst_buffer_map (o.after, &map, GST_MAP_READ));
  for (gint y = 0; y < FRAME_HEIGHT; y++)
    for (gint x = FRAME_WIDTH * 4; x < stride; x++)
      fail_unless_equals_int (map.data[(gsize) y * stride + x], 0x5a);
  gst_buffer_unmap (o.after, &map);
  outcome_clear (&o);
}

GST_END_TEST;

/* A property set while frames flow applies from the next frame on. */
GST_START_TEST (test_property_change_between_frames)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRx, FRAME_WIDTH, FRAME_HEIGHT);
  GstHarness *h = gst_harness_new_parse ("ssfpnoverlay line-width=2 "
      "show-labels=false show-confidence=false");
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  gint widths[2];
  for (gint i = 0; i < 2; i++) {
    if (i == 1) {
      GstElement *overlay = gst_harness_find_element (h, "ssfpnoverlay");
      g_object_set (overlay, "line-width", 6, NULL);
      gst_object_unref (overlay);
    }
    GstBuffer *input = grey_frame (&info);
    GST_BUFFER_PTS (input) = i * GST_SECOND / 30;
    add_detection (input, "cross", 5, 0.5, BOX_X, BOX_Y, BOX_W, BOX_H);
    Outcome o;
    push_frame (h, &info, input, &o);
    widths[i] = 0;
    while (pixel_changed (&o, BOX_X + widths[i], BOX_Y + BOX_H / 2))
      widths[i]++;
    outcome_clear (&o);
  }
  gst_harness_teardown (h);
  fail_unless_equals_int (widths[0], 2);
  fail_unless_equals_int (widths[1], 6);
}

GST_END_TEST;

/* A buffer someone else still holds is not drawn on: with metas the
 * element draws on a copy; without, it passes the very same buffer. */
GST_START_TEST (test_shared_buffers)
{
  GstVideoInfo info;
  video_info_init (&info, GST_VIDEO_FORMAT_BGRA, FRAME_WIDTH, FRAME_HEIGHT);
  GstHarness *h = gst_harness_new ("ssfpnoverlay");
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));

  GstBuffer *plain = grey_frame (&info);
  gst_buffer_ref (plain);
  fail_unless_equals_int (gst_harness_push (h, plain), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);
  fail_unless (out == plain, "a frame without metas was copied");
  gst_buffer_unref (out);
  gst_buffer_unref (plain);

  GstBuffer *held = grey_frame (&info);
  add_detection (held, "circle", 0, 0.9, BOX_X, BOX_Y, BOX_W, BOX_H);
  GstBuffer *pristine = gst_buffer_copy_deep (held);
  gst_buffer_ref (held);
  fail_unless_equals_int (gst_harness_push (h, held), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != held);
  fail_unless (gst_buffer_get_video_region_of_interest_meta (out) != NULL,
      "the copy lost its metas");
  GstMapInfo map;
  fail_unless (gst_buffer_map (pristine, &map, GST_MAP_READ));
  fail_unless (gst_buffer_memcmp (held, 0, map.data, map.size) == 0,
      "the held buffer was drawn on");
  fail_unless (gst_buffer_memcmp (out, 0, map.data, map.size) != 0,
      "nothing drawn on the copy");
  gst_buffer_unmap (pristine, &map);
  gst_buffer_unref (out);
  gst_buffer_unref (held);
  gst_buffer_unref (pristine);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_property_defaults_and_ranges)
{
  GstElement *e = gst_element_factory_make ("ssfpnoverlay", NULL);
  fail_unless (e != NULL);
  guint line_width, font_size;
  gboolean show_confidence, show_labels;
  g_object_get (e, "line-width", &line_width, "font-size", &font_size,
      "show-confidence", &show_confidence, "show-labels", &show_labels, NULL);
  fail_unless_equals_int (line_width, 0);
  fail_unless_equals_int (font_size, 0);
  fail_unless (show_confidence && show_labels);

  GObjectClass *klass = G_OBJECT_GET_CLASS (e);
  GParamSpecUInt *lw = G_PARAM_SPEC_UINT (g_object_class_find_property (klass,
          "line-width"));
  GParamSpecUInt *fs = G_PARAM_SPEC_UINT (g_object_class_find_property (klass,
          "font-size"));
  fail_unless_equals_int (lw->minimum, 0);
  fail_unless_equals_int (lw->maximum, 256);
  fail_unless_equals_int (fs->minimum, 0);
  fail_unless_equals_int (fs->maximum, 1024);
  const gchar *names[] = { "line-width", "font-size", "show-confidence",
    "show-labels"
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    GParamSpec *pspec = g_object_class_find_property (klass, names[i]);
    fail_unless (pspec->flags & GST_PARAM_MUTABLE_PLAYING, "%s", names[i]);
    fail_unless (pspec->flags & G_PARAM_READWRITE, "%s", names[i]);
  }

  g_object_set (e, "line-width", 7, "font-size", 40, "show-confidence",
      FALSE, "show-labels", FALSE, NULL);
  g_object_get (e, "line-width", &line_width, "font-size", &font_size,
      "show-confidence", &show_confidence, "show-labels", &show_labels, NULL);
  fail_unless_equals_int (line_width, 7);
  fail_unless_equals_int (font_size, 40);
  fail_unless (!show_confidence && !show_labels);
  gst_object_unref (e);

  /* The pads take what ssfpndetect takes. */
  GstElementFactory *overlay = gst_element_factory_find ("ssfpnoverlay");
  GstElementFactory *detect = gst_element_factory_find ("ssfpndetect");
  fail_unless (overlay != NULL && detect != NULL);
  const GList *templates =
      gst_element_factory_get_static_pad_templates (overlay);
  const GList *detect_templates =
      gst_element_factory_get_static_pad_templates (detect);
  fail_unless_equals_int (g_list_length ((GList *) templates), 2);
  GstCaps *ours = gst_static_caps_get (&((GstStaticPadTemplate *)
          templates->data)->static_caps);
  GstCaps *theirs = gst_static_caps_get (&((GstStaticPadTemplate *)
          detect_templates->data)->static_caps);
  fail_unless (gst_caps_is_equal (ours, theirs));
  gst_caps_unref (ours);
  gst_caps_unref (theirs);
  gst_object_unref (overlay);
  gst_object_unref (detect);
}

GST_END_TEST;

/* ---- behind ssfpndetect ------------------------------------------------ */

typedef struct
{
  GQueue inputs;                /* deep copies of what entered */
  guint frames;
  guint with_metas;
  guint drawn;
  guint untouched;
} PipelineCounts;

static GstPadProbeReturn
keep_input (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  PipelineCounts *counts = user_data;
  g_queue_push_tail (&counts->inputs,
      gst_buffer_copy_deep (GST_PAD_PROBE_INFO_BUFFER (info)));
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
compare_output (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  PipelineCounts *counts = user_data;
  GstBuffer *out = GST_PAD_PROBE_INFO_BUFFER (info);
  GstBuffer *in = g_queue_pop_head (&counts->inputs);
  fail_unless (in != NULL);
  GstMapInfo map;
  fail_unless (gst_buffer_map (in, &map, GST_MAP_READ));
  gboolean same = gst_buffer_get_size (out) == map.size
      && gst_buffer_memcmp (out, 0, map.data, map.size) == 0;
  gst_buffer_unmap (in, &map);
  gst_buffer_unref (in);

  counts->frames++;
  if (gst_buffer_get_video_region_of_interest_meta (out) != NULL) {
    counts->with_metas++;
    counts->drawn += !same;
  } else {
    counts->untouched += same;
  }
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_pipeline_behind_detect)
{
  const gchar *root = g_getenv ("SSFPN_TEST_DATA");
  fail_unless (root != NULL, "SSFPN_TEST_DATA is not set");
  gchar *model = g_build_filename (root, "element", "element.safetensors",
      NULL);
  gchar *launch = g_strdup_printf ("videotestsrc num-buffers=60 "
      "pattern=ball ! video/x-raw,format=I420,width=96,height=72 ! "
      "ssfpndetect model=\"%s\" conf-threshold=0.05 ! "
      "ssfpnoverlay name=overlay ! fakesink", model);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (launch, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  g_free (launch);
  g_free (model);

  PipelineCounts counts = { G_QUEUE_INIT, 0, 0, 0, 0 };
  GstElement *overlay = gst_bin_get_by_name (GST_BIN (pipeline), "overlay");
  GstPad *sink = gst_element_get_static_pad (overlay, "sink");
  GstPad *src = gst_element_get_static_pad (overlay, "src");
  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER, keep_input, &counts,
      NULL);
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, compare_output, &counts,
      NULL);
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (overlay);

  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);

  fail_unless_equals_int (counts.frames, 60);
  fail_unless (counts.with_metas > 0, "ssfpndetect found nothing");
  fail_unless_equals_int (counts.drawn, counts.with_metas);
  fail_unless_equals_int (counts.untouched, counts.frames - counts.with_metas);
  fail_unless (g_queue_is_empty (&counts.inputs));
}

GST_END_TEST;

static Suite *
ssfpnoverlay_suite (void)
{
  Suite *s = suite_create ("ssfpnoverlay");
  TCase *tc = tcase_create ("general");
  const gint n_formats = G_N_ELEMENTS (all_formats);

  g_log_set_writer_func (count_pango_warnings, NULL, NULL);

  tcase_set_timeout (tc, 300);
  tcase_add_loop_test (tc, test_box_and_label_every_format, 0, n_formats);
  tcase_add_loop_test (tc, test_boxes_only_every_format, 0, n_formats);
  tcase_add_loop_test (tc, test_no_metas_bit_identical, 0, n_formats);
  tcase_add_test (tc, test_label_inside_box_at_top);
  tcase_add_test (tc, test_label_kept_in_frame);
  tcase_add_test (tc, test_font_size);
  tcase_add_test (tc, test_line_width);
  tcase_add_test (tc, test_show_confidence_and_labels);
  tcase_add_test (tc, test_colour_per_class);
  tcase_add_test (tc, test_yuv_colour_matrix);
  tcase_add_test (tc, test_foreign_and_clipped_regions);
  tcase_add_test (tc, test_odd_boxes_whole_chroma);
  tcase_add_test (tc, test_frame_wider_than_cairo);
  tcase_add_test (tc, test_foreign_label_text);
  tcase_add_test (tc, test_padded_stride);
  tcase_add_test (tc, test_property_change_between_frames);
  tcase_add_test (tc, test_shared_buffers);
  tcase_add_test (tc, test_property_defaults_and_ranges);
  tcase_add_test (tc, test_pipeline_behind_detect);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  SRunner *runner = srunner_create (ssfpnoverlay_suite ());
  srunner_run_all (runner, CK_NORMAL);
  int failed = srunner_ntests_failed (runner);
  int run = srunner_ntests_run (runner);
  srunner_free (runner);
  printf ("%d passed, %d failed\n", run - failed, failed);
  return failed == 0 ? 0 : 1;
}
