/* GStreamer overlay of ssFPN detections
 *
 * This library is free software; you can redistribute it and/or modify it
 * under the terms of the GNU Lesser General Public License as published by
 * the Free Software Foundation; either version 2.1 of the License, or (at
 * your option) any later version.
 */

/**
 * SECTION:element-ssfpnoverlay
 * @title: ssfpnoverlay
 *
 * Draws the detections that ssfpndetect attached to each frame: a box per
 * #GstVideoRegionOfInterestMeta in a colour of its class, with a label
 * holding the class name and the confidence. Frames without region of
 * interest metas pass through untouched (not even copied).
 *
 * The element works in place on RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12 and
 * I420, the formats ssfpndetect reads, so no videoconvert is needed between
 * the two. Line width and font size follow the frame size unless set.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc pattern=ball ! ssfpndetect model=model.safetensors ! ssfpnoverlay ! videoconvert ! autovideosink
 * ]| shows the test pattern with its detections drawn on it.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! ssfpndetect model=model.safetensors ! ssfpnoverlay show-confidence=false line-width=4 ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]| writes an annotated copy of a video, labels without confidences.
 */

#include "buildconfig.h"

#include "gstssfpnoverlay.h"
#include "ssfpn-params-keeper.h"

#include <gst/video/video.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_ssfpn_overlay_debug);
#define GST_CAT_DEFAULT gst_ssfpn_overlay_debug

enum
{
  PROP_0,
  PROP_LINE_WIDTH,
  PROP_FONT_SIZE,
  PROP_SHOW_CONFIDENCE,
  PROP_SHOW_LABELS,
};

#define DEFAULT_PROP_LINE_WIDTH 0
#define DEFAULT_PROP_FONT_SIZE 0
#define DEFAULT_PROP_SHOW_CONFIDENCE TRUE
#define DEFAULT_PROP_SHOW_LABELS TRUE

#define MAX_LINE_WIDTH 256
#define MAX_FONT_SIZE 1024

/* Automatic sizes: a 2 px line up to 720p, 3 px at 1080p, 6 px at 2160p;
 * text 1/36 of the frame height (30 px at 1080p), never under 10 px. */
#define AUTO_LINE_WIDTH_MIN 2
#define AUTO_LINE_WIDTH_DIVISOR 360.0
#define AUTO_FONT_SIZE_MIN 10
#define AUTO_FONT_SIZE_DIVISOR 36.0
/* Side of the overlay images a frame's drawing is cut into (even, so that
 * tiles keep whole chroma samples). */
#define OVERLAY_TILE 2048

#define LABEL_FONT_FAMILY "Sans Bold"

#define SSFPN_OVERLAY_FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SSFPN_OVERLAY_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SSFPN_OVERLAY_FORMATS)));

/* Class colours (sRGB), by label_id modulo their count: saturated and far
 * apart in hue for the first classes, so that neighbours stay distinct. */
static const guint8 class_palette[][3] = {
  {255, 56, 56},                /* red */
  {255, 150, 30},               /* orange */
  {235, 215, 40},               /* yellow */
  {70, 200, 60},                /* green */
  {0, 190, 215},                /* cyan */
  {50, 105, 255},               /* blue */
  {155, 70, 255},               /* violet */
  {255, 60, 200},               /* magenta */
  {150, 95, 45},                /* brown */
  {0, 135, 115},                /* teal */
  {160, 200, 255},              /* light blue */
  {255, 170, 205},              /* pink */
};

#define N_CLASS_COLOURS G_N_ELEMENTS (class_palette)

struct _GstSsfpnOverlay
{
  GstBaseTransform parent;

  /* Properties, with the object lock. */
  guint line_width;             /* 0 = from the frame size */
  guint font_size;              /* pixels; 0 = from the frame height */
  gboolean show_confidence;
  gboolean show_labels;

  /* Streaming thread; the font map lives from start() to stop(). */
  GstVideoInfo info;
  gboolean have_info;
  /* Pixels per chroma sample across and down (2 and 2 for 4:2:0, 1 for
   * RGB): what is drawn is snapped to them, so that no chroma sample is
   * shared between a box and the picture. */
  gint x_step, y_step;
  PangoFontMap *font_map;
  PangoContext *pango_context;
};

/* One region of interest as it will be drawn, in frame pixels. */
typedef struct
{
  GstVideoRegionOfInterestMeta *roi;
  gint x, y, width, height;     /* the box, clipped to the frame */
  const guint8 *colour;
  PangoLayout *layout;          /* NULL: no label */
  gint label_x, label_y, label_width, label_height;
  gint text_x, text_y;          /* where the layout's origin goes */
} OverlayItem;

G_DEFINE_TYPE (GstSsfpnOverlay, gst_ssfpn_overlay, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (ssfpnoverlay, "ssfpnoverlay", GST_RANK_NONE,
    GST_TYPE_SSFPN_OVERLAY);

static void gst_ssfpn_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_ssfpn_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static gboolean gst_ssfpn_overlay_start (GstBaseTransform * trans);
static gboolean gst_ssfpn_overlay_stop (GstBaseTransform * trans);
static gboolean gst_ssfpn_overlay_set_caps (GstBaseTransform * trans,
    GstCaps * incaps, GstCaps * outcaps);
static GstFlowReturn gst_ssfpn_overlay_prepare_output_buffer (GstBaseTransform
    * trans, GstBuffer * input, GstBuffer ** output);
static GstFlowReturn gst_ssfpn_overlay_transform_ip (GstBaseTransform * trans,
    GstBuffer * buffer);

static void
gst_ssfpn_overlay_class_init (GstSsfpnOverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (gst_ssfpn_overlay_debug, "ssfpnoverlay", 0,
      "ssFPN detection overlay");

  gobject_class->set_property = gst_ssfpn_overlay_set_property;
  gobject_class->get_property = gst_ssfpn_overlay_get_property;

  /**
   * GstSsfpnOverlay:line-width:
   *
   * Width of the box outlines in pixels, drawn inside the box. 0 follows
   * the frame: the shorter side / 360, at least 2 px.
   */
  g_object_class_install_property (gobject_class, PROP_LINE_WIDTH,
      g_param_spec_uint ("line-width", "Line width",
          "Box outline width in pixels; 0 = from the frame size",
          0, MAX_LINE_WIDTH, DEFAULT_PROP_LINE_WIDTH, flags));

  /**
   * GstSsfpnOverlay:font-size:
   *
   * Label text height in pixels. 0 follows the frame: its height / 36,
   * at least 10 px.
   */
  g_object_class_install_property (gobject_class, PROP_FONT_SIZE,
      g_param_spec_uint ("font-size", "Font size",
          "Label font size in pixels; 0 = from the frame height",
          0, MAX_FONT_SIZE, DEFAULT_PROP_FONT_SIZE, flags));

  /**
   * GstSsfpnOverlay:show-confidence:
   *
   * Whether labels show the detection's confidence (two decimals).
   */
  g_object_class_install_property (gobject_class, PROP_SHOW_CONFIDENCE,
      g_param_spec_boolean ("show-confidence", "Show confidence",
          "Show the confidence of each detection", DEFAULT_PROP_SHOW_CONFIDENCE,
          flags));

  /**
   * GstSsfpnOverlay:show-labels:
   *
   * Whether labels show the class name. With both this and
   * show-confidence off, only the boxes are drawn.
   */
  g_object_class_install_property (gobject_class, PROP_SHOW_LABELS,
      g_param_spec_boolean ("show-labels", "Show labels",
          "Show the class name of each detection", DEFAULT_PROP_SHOW_LABELS,
          flags));

  gst_element_class_set_static_metadata (element_class,
      "ssFPN detection overlay", "Filter/Effect/Video",
      "Draws the boxes, labels and confidences of detected objects",
      "ssfpn-gst developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_ssfpn_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_ssfpn_overlay_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_ssfpn_overlay_set_caps);
  trans_class->prepare_output_buffer =
      GST_DEBUG_FUNCPTR (gst_ssfpn_overlay_prepare_output_buffer);
  trans_class->transform_ip =
      GST_DEBUG_FUNCPTR (gst_ssfpn_overlay_transform_ip);
}

static void
gst_ssfpn_overlay_init (GstSsfpnOverlay * self)
{
  self->line_width = DEFAULT_PROP_LINE_WIDTH;
  self->font_size = DEFAULT_PROP_FONT_SIZE;
  self->show_confidence = DEFAULT_PROP_SHOW_CONFIDENCE;
  self->show_labels = DEFAULT_PROP_SHOW_LABELS;
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_ssfpn_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LINE_WIDTH:
      self->line_width = g_value_get_uint (value);
      break;
    case PROP_FONT_SIZE:
      self->font_size = g_value_get_uint (value);
      break;
    case PROP_SHOW_CONFIDENCE:
      self->show_confidence = g_value_get_boolean (value);
      break;
    case PROP_SHOW_LABELS:
      self->show_labels = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_ssfpn_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LINE_WIDTH:
      g_value_set_uint (value, self->line_width);
      break;
    case PROP_FONT_SIZE:
      g_value_set_uint (value, self->font_size);
      break;
    case PROP_SHOW_CONFIDENCE:
      g_value_set_boolean (value, self->show_confidence);
      break;
    case PROP_SHOW_LABELS:
      g_value_set_boolean (value, self->show_labels);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_ssfpn_overlay_start (GstBaseTransform * trans)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (trans);

  /* A font map of our own: Pango's default one is per thread, and this
   * element draws only in its streaming thread. */
  self->font_map = pango_cairo_font_map_new ();
  self->pango_context = pango_font_map_create_context (self->font_map);
  self->have_info = FALSE;
  return TRUE;
}

static gboolean
gst_ssfpn_overlay_stop (GstBaseTransform * trans)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (trans);

  g_clear_object (&self->pango_context);
  g_clear_object (&self->font_map);
  self->have_info = FALSE;
  return TRUE;
}

static gboolean
gst_ssfpn_overlay_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (trans);

  if (!gst_video_info_from_caps (&self->info, incaps)) {
    GST_ERROR_OBJECT (self, "unsupported caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  self->x_step = self->y_step = 1;
  if (GST_VIDEO_INFO_IS_YUV (&self->info)) {
    self->x_step = 1 << GST_VIDEO_FORMAT_INFO_W_SUB (self->info.finfo, 1);
    self->y_step = 1 << GST_VIDEO_FORMAT_INFO_H_SUB (self->info.finfo, 1);
  }
  self->have_info = TRUE;
  return TRUE;
}

/* Frames with nothing to draw go out as they came: the base class would
 * otherwise copy every buffer it cannot write to (after a tee, say). */
static GstFlowReturn
gst_ssfpn_overlay_prepare_output_buffer (GstBaseTransform * trans,
    GstBuffer * input, GstBuffer ** output)
{
  if (gst_buffer_get_video_region_of_interest_meta (input) == NULL) {
    *output = input;
    return GST_FLOW_OK;
  }
  return GST_BASE_TRANSFORM_CLASS (gst_ssfpn_overlay_parent_class)->
      prepare_output_buffer (trans, input, output);
}

/* ---- laying out -------------------------------------------------------- */

static gint
round_down (gint value, gint step)
{
  return value - value % step;
}

static gint
round_up (gint value, gint step)
{
  return round_down (value + step - 1, step);
}

static const guint8 *
roi_colour (GstVideoRegionOfInterestMeta * roi, gint label_id)
{
  /* Metas from other elements carry no class index: their label decides,
   * and one without a label (roi_type 0) takes the first colour. */
  const gchar *name = roi->roi_type != 0
      ? g_quark_to_string (roi->roi_type) : NULL;
  /* A quark GLib never issued has no string. */
  guint index = label_id >= 0 ? (guint) label_id
      : name != NULL ? g_str_hash (name) : 0;
  return class_palette[index % N_CLASS_COLOURS];
}

/* The label's text, or NULL when there is nothing to show. */
static gchar *
label_text (GstVideoRegionOfInterestMeta * roi, gboolean has_confidence,
    gdouble confidence, gboolean show_labels, gboolean show_confidence)
{
  const gchar *quark_name = roi->roi_type != 0
      ? g_quark_to_string (roi->roi_type) : NULL;
  /* Other elements' labels may be any bytes: Pango takes UTF-8 only. */
  g_autofree gchar *name = quark_name != NULL && quark_name[0] != '\0'
      ? g_utf8_make_valid (quark_name, -1) : NULL;
  gchar number[G_ASCII_DTOSTR_BUF_SIZE] = "";

  /* Not the locale's decimal comma: labels read the same everywhere. */
  if (show_confidence && has_confidence && isfinite (confidence))
    g_ascii_formatd (number, sizeof number, "%.2f", confidence);

  if (show_labels && name != NULL && number[0] != '\0')
    return g_strdup_printf ("%s %s", name, number);
  if (show_labels && name != NULL)
    return g_strdup (name);
  if (number[0] != '\0')
    return g_strdup (number);
  return NULL;
}

/* Puts the label above the box's top-left corner, or just inside the box
 * when there is no room above, and keeps it within the frame. */
static void
place_label (GstSsfpnOverlay * self, OverlayItem * item, PangoLayout * layout,
    gint padding)
{
  const gint frame_width = GST_VIDEO_INFO_WIDTH (&self->info);
  PangoRectangle ink, logical;
  pango_layout_get_pixel_extents (layout, &ink, &logical);

  item->layout = layout;
  item->label_width = round_up (logical.width + 2 * padding, self->x_step);
  item->label_height = round_up (logical.height + 2 * padding, self->y_step);
  item->label_y = item->y >= item->label_height
      ? item->y - item->label_height : item->y;
  item->label_x = round_down (CLAMP (item->x, 0,
          MAX (frame_width - item->label_width, 0)), self->x_step);
  item->text_x = item->label_x + padding - logical.x;
  item->text_y = item->label_y + padding - logical.y;
}

/* The regions of interest of @buffer, clipped to the frame; empty ones
 * are left out. */
static GArray *
collect_items (GstSsfpnOverlay * self, GstBuffer * buffer)
{
  const gint frame_width = GST_VIDEO_INFO_WIDTH (&self->info);
  const gint frame_height = GST_VIDEO_INFO_HEIGHT (&self->info);
  GArray *items = g_array_new (FALSE, TRUE, sizeof (OverlayItem));
  gpointer state = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    guint64 right = MIN ((guint64) roi->x + roi->w, (guint64) frame_width);
    guint64 bottom = MIN ((guint64) roi->y + roi->h, (guint64) frame_height);
    if (roi->x >= right || roi->y >= bottom)
      continue;

    /* Outwards to whole chroma samples, within the frame. */
    guint64 left = round_down ((gint) roi->x, self->x_step);
    guint64 top = round_down ((gint) roi->y, self->y_step);
    right = MIN ((guint64) round_up ((gint) right, self->x_step),
        (guint64) frame_width);
    bottom = MIN ((guint64) round_up ((gint) bottom, self->y_step),
        (guint64) frame_height);

    OverlayItem item = { 0 };
    item.roi = roi;
    item.x = (gint) left;
    item.y = (gint) top;
    item.width = (gint) (right - left);
    item.height = (gint) (bottom - top);

    gint label_id = -1;
    GstStructure *detection =
        gst_video_region_of_interest_meta_get_param (roi, "detection");
    if (detection != NULL)
      gst_structure_get_int (detection, "label_id", &label_id);
    item.colour = roi_colour (roi, label_id);
    g_array_append_val (items, item);
  }
  return items;
}

static void
add_labels (GstSsfpnOverlay * self, GArray * items, guint font_size,
    gboolean show_labels, gboolean show_confidence)
{
  PangoFontDescription *font = pango_font_description_from_string
      (LABEL_FONT_FAMILY);
  pango_font_description_set_absolute_size (font, font_size * PANGO_SCALE);
  const gint padding = MAX (1, (gint) font_size / 6);

  for (guint i = 0; i < items->len; i++) {
    OverlayItem *item = &g_array_index (items, OverlayItem, i);
    gdouble confidence = 0.0;
    GstStructure *detection =
        gst_video_region_of_interest_meta_get_param (item->roi, "detection");
    gboolean has_confidence = detection != NULL
        && gst_structure_get_double (detection, "confidence", &confidence);
    g_autofree gchar *text = label_text (item->roi, has_confidence,
        confidence, show_labels, show_confidence);
    if (text == NULL)
      continue;

    PangoLayout *layout = pango_layout_new (self->pango_context);
    pango_layout_set_font_description (layout, font);
    pango_layout_set_text (layout, text, -1);
    place_label (self, item, layout, padding);
  }
  pango_font_description_free (font);
}

/* Whether any of @rectangles overlaps @tile. */
static gboolean
covers_any (GArray * rectangles, const cairo_rectangle_int_t * tile)
{
  for (guint i = 0; i < rectangles->len; i++) {
    const cairo_rectangle_int_t *r =
        &g_array_index (rectangles, cairo_rectangle_int_t, i);
    if (r->x < tile->x + tile->width && tile->x < r->x + r->width
        && r->y < tile->y + tile->height && tile->y < r->y + r->height)
      return TRUE;
  }
  return FALSE;
}

static void
union_rectangle (cairo_rectangle_int_t * total, gint x, gint y, gint width,
    gint height)
{
  if (width <= 0 || height <= 0)
    return;
  if (total->width == 0) {
    *total = (cairo_rectangle_int_t) { x, y, width, height };
    return;
  }
  gint right = MAX (total->x + total->width, x + width);
  gint bottom = MAX (total->y + total->height, y + height);
  total->x = MIN (total->x, x);
  total->y = MIN (total->y, y);
  total->width = right - total->x;
  total->height = bottom - total->y;
}

/* ---- drawing ----------------------------------------------------------- */

static void
set_source_colour (cairo_t * cr, const guint8 * rgb)
{
  cairo_set_source_rgb (cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
}

/* Boxes first, then the labels over them, into @cr whose origin is the
 * frame's. */
static void
draw_items (cairo_t * cr, GArray * items, gint line_width)
{
  for (guint i = 0; i < items->len; i++) {
    const OverlayItem *item = &g_array_index (items, OverlayItem, i);
    set_source_colour (cr, item->colour);
    if (item->width > 2 * line_width && item->height > 2 * line_width) {
      /* Stroked along the inside so the outline stays in the box (and in
       * the frame); whole-pixel edges keep it crisp. */
      cairo_set_line_width (cr, line_width);
      cairo_rectangle (cr, item->x + line_width / 2.0,
          item->y + line_width / 2.0, item->width - line_width,
          item->height - line_width);
      cairo_stroke (cr);
    } else {
      cairo_rectangle (cr, item->x, item->y, item->width, item->height);
      cairo_fill (cr);
    }
  }

  for (guint i = 0; i < items->len; i++) {
    const OverlayItem *item = &g_array_index (items, OverlayItem, i);
    if (item->layout == NULL)
      continue;
    set_source_colour (cr, item->colour);
    cairo_rectangle (cr, item->label_x, item->label_y, item->label_width,
        item->label_height);
    cairo_fill (cr);

    /* Dark text on light colours, light text on dark ones (BT.709 luma). */
    double luma = 0.2126 * item->colour[0] + 0.7152 * item->colour[1]
        + 0.0722 * item->colour[2];
    if (luma > 140.0)
      cairo_set_source_rgb (cr, 0.0, 0.0, 0.0);
    else
      cairo_set_source_rgb (cr, 1.0, 1.0, 1.0);
    cairo_move_to (cr, item->text_x, item->text_y);
    pango_cairo_show_layout (cr, item->layout);
  }
}

/* Cairo's premultiplied native-endian ARGB to AYUV (bytes A, Y, U, V,
 * straight alpha) in place, in the frame's matrix and range. Blending AYUV
 * into a YUV frame needs no conversion of GStreamer's own, which would
 * assume limited-range BT.601 whatever the frame is. */
static void
argb_to_ayuv_in_place (guint8 * pixels, gsize n_pixels,
    const GstVideoColorimetry * colorimetry)
{
  gdouble kr, kb;
  if (!gst_video_color_matrix_get_Kr_Kb (colorimetry->matrix, &kr, &kb)) {
    /* Unknown matrix: BT.709, as ssfpndetect reads such frames. */
    gst_video_color_matrix_get_Kr_Kb (GST_VIDEO_COLOR_MATRIX_BT709, &kr, &kb);
  }
  const gboolean full_range =
      colorimetry->range == GST_VIDEO_COLOR_RANGE_0_255;
  const double luma_scale = full_range ? 1.0 : 219.0 / 255.0;
  const double luma_offset = full_range ? 0.0 : 16.0;
  const double chroma_scale = full_range ? 1.0 : 224.0 / 255.0;

  /* Fills and outlines are runs of one colour: convert each run once. */
  guint32 last_argb = 0;
  guint8 last_ayuv[4] = { 0, 0, 0, 0 };

  for (gsize i = 0; i < n_pixels; i++) {
    guint8 *pixel = pixels + 4 * i;
    guint32 argb;
    memcpy (&argb, pixel, sizeof argb);
    if (argb != last_argb) {
      guint alpha = argb >> 24;
      double r = alpha ? (((argb >> 16) & 0xff) * 255.0) / alpha : 0.0;
      double g = alpha ? (((argb >> 8) & 0xff) * 255.0) / alpha : 0.0;
      double b = alpha ? ((argb & 0xff) * 255.0) / alpha : 0.0;
      double y = kr * r + (1.0 - kr - kb) * g + kb * b;
      double cb = (b - y) / (2.0 * (1.0 - kb));
      double cr = (r - y) / (2.0 * (1.0 - kr));
      last_ayuv[0] = (guint8) alpha;
      last_ayuv[1] = (guint8) CLAMP (lround (luma_offset + y * luma_scale),
          0, 255);
      last_ayuv[2] = (guint8) CLAMP (lround (128.0 + cb * chroma_scale), 0,
          255);
      last_ayuv[3] = (guint8) CLAMP (lround (128.0 + cr * chroma_scale), 0,
          255);
      last_argb = argb;
    }
    memcpy (pixel, last_ayuv, 4);
  }
}

/* Renders @items into one overlay rectangle covering @area (frame
 * pixels), in the pixel format the frame's family blends from. */
static GstVideoOverlayRectangle *
render_rectangle (GstSsfpnOverlay * self, GArray * items,
    const cairo_rectangle_int_t * area, gint line_width)
{
  const gint stride = cairo_format_stride_for_width (CAIRO_FORMAT_ARGB32,
      area->width);
  if (stride != area->width * 4) {
    /* The overlay API assumes 4 * width; Cairo always gives that. */
    GST_ERROR_OBJECT (self, "unexpected Cairo stride %d for width %d",
        stride, area->width);
    return NULL;
  }

  GstBuffer *pixels = gst_buffer_new_allocate (NULL,
      (gsize) stride * area->height, NULL);
  GstMapInfo map;
  if (pixels == NULL || !gst_buffer_map (pixels, &map, GST_MAP_WRITE)) {
    GST_ERROR_OBJECT (self, "cannot allocate a %dx%d overlay", area->width,
        area->height);
    if (pixels != NULL)
      gst_buffer_unref (pixels);
    return NULL;
  }
  memset (map.data, 0, map.size);

  cairo_surface_t *surface = cairo_image_surface_create_for_data (map.data,
      CAIRO_FORMAT_ARGB32, area->width, area->height, stride);
  cairo_t *cr = cairo_create (surface);
  cairo_translate (cr, -area->x, -area->y);
  draw_items (cr, items, line_width);
  cairo_status_t status = cairo_status (cr);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  cairo_surface_destroy (surface);

  GstVideoFormat format = GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB;
  GstVideoOverlayFormatFlags flags =
      GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA;
  if (GST_VIDEO_INFO_IS_YUV (&self->info)) {
    argb_to_ayuv_in_place (map.data, (gsize) area->width * area->height,
        &GST_VIDEO_INFO_COLORIMETRY (&self->info));
    format = GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_YUV;
    flags = GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE;
  }
  gst_buffer_unmap (pixels, &map);

  if (status != CAIRO_STATUS_SUCCESS) {
    GST_ERROR_OBJECT (self, "drawing a %dx%d overlay failed: %s",
        area->width, area->height, cairo_status_to_string (status));
    gst_buffer_unref (pixels);
    return NULL;
  }

  gst_buffer_add_video_meta (pixels, GST_VIDEO_FRAME_FLAG_NONE, format,
      area->width, area->height);
  GstVideoOverlayRectangle *rectangle =
      gst_video_overlay_rectangle_new_raw (pixels, area->x, area->y,
      area->width, area->height, flags);
  gst_buffer_unref (pixels);
  return rectangle;
}

static void
clear_items (GArray * items)
{
  for (guint i = 0; i < items->len; i++)
    g_clear_object (&g_array_index (items, OverlayItem, i).layout);
  g_array_free (items, TRUE);
}

static GstFlowReturn
gst_ssfpn_overlay_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  GstSsfpnOverlay *self = GST_SSFPN_OVERLAY (trans);
  GstFlowReturn ret = GST_FLOW_OK;
  GstVideoOverlayRectangle *rectangle = NULL;
  GstVideoOverlayComposition *composition = NULL;
  GstVideoFrame frame;

  if (gst_buffer_get_video_region_of_interest_meta (buffer) == NULL)
    return GST_FLOW_OK;
  if (!self->have_info)
    return GST_FLOW_NOT_NEGOTIATED;

  GST_OBJECT_LOCK (self);
  guint line_width = self->line_width;
  guint font_size = self->font_size;
  gboolean show_labels = self->show_labels;
  gboolean show_confidence = self->show_confidence;
  GST_OBJECT_UNLOCK (self);

  const gint frame_width = GST_VIDEO_INFO_WIDTH (&self->info);
  const gint frame_height = GST_VIDEO_INFO_HEIGHT (&self->info);
  if (line_width == 0)
    line_width = MAX (AUTO_LINE_WIDTH_MIN, (guint) lround (MIN (frame_width,
                frame_height) / AUTO_LINE_WIDTH_DIVISOR));
  if (font_size == 0)
    font_size = MAX (AUTO_FONT_SIZE_MIN, (guint) lround (frame_height
            / AUTO_FONT_SIZE_DIVISOR));
  /* Whole chroma samples on subsampled frames (the boxes' edges too). */
  line_width = (guint) round_up ((gint) MIN (line_width, G_MAXINT / 2),
      MAX (self->x_step, self->y_step));

  /* Regions an element copied after the detector's keeper meta have not
   * had their detection structure put back yet (see ssfpn-params-keeper.h);
   * the buffer is writable here (prepare_output_buffer). */
  ssfpn_params_keeper_restore (buffer);
  GArray *items = collect_items (self, buffer);
  if (show_labels || show_confidence)
    add_labels (self, items, font_size, show_labels, show_confidence);

  /* What each item covers, and the union of all. */
  GArray *covered = g_array_new (FALSE, FALSE, sizeof (cairo_rectangle_int_t));
  cairo_rectangle_int_t area = { 0, 0, 0, 0 };
  for (guint i = 0; i < items->len; i++) {
    const OverlayItem *item = &g_array_index (items, OverlayItem, i);
    cairo_rectangle_int_t box = { item->x, item->y, item->width,
      item->height
    };
    g_array_append_val (covered, box);
    union_rectangle (&area, box.x, box.y, box.width, box.height);
    if (item->layout != NULL) {
      gint x = MAX (item->label_x, 0);
      gint y = MAX (item->label_y, 0);
      cairo_rectangle_int_t label = { x, y,
        MIN (item->label_x + item->label_width, frame_width) - x,
        MIN (item->label_y + item->label_height, frame_height) - y
      };
      g_array_append_val (covered, label);
      union_rectangle (&area, label.x, label.y, label.width, label.height);
    }
  }

  /* Tiles of the union that something covers, one overlay rectangle each:
   * Cairo draws at most 32767 pixels a side, and boxes in a large frame's
   * corners need not make one image of the whole frame. */
  for (gint ty = area.y; area.width > 0 && ty < area.y + area.height;
      ty += OVERLAY_TILE) {
    for (gint tx = area.x; tx < area.x + area.width; tx += OVERLAY_TILE) {
      cairo_rectangle_int_t tile = { tx, ty,
        MIN (OVERLAY_TILE, area.x + area.width - tx),
        MIN (OVERLAY_TILE, area.y + area.height - ty)
      };
      if (!covers_any (covered, &tile))
        continue;
      rectangle = render_rectangle (self, items, &tile, (gint) line_width);
      if (rectangle == NULL) {
        area = tile;
        g_array_free (covered, TRUE);
        goto render_failed;
      }
      if (composition == NULL)
        composition = gst_video_overlay_composition_new (rectangle);
      else
        gst_video_overlay_composition_add_rectangle (composition, rectangle);
      g_clear_pointer (&rectangle, gst_video_overlay_rectangle_unref);
    }
  }
  g_array_free (covered, TRUE);
  if (composition == NULL)
    goto done;                  /* every region was outside the frame */

  if (!gst_video_frame_map (&frame, &self->info, buffer, GST_MAP_READWRITE))
    goto map_failed;
  gboolean blended = gst_video_overlay_composition_blend (composition, &frame);
  gst_video_frame_unmap (&frame);
  if (!blended)
    goto blend_failed;

done:
  if (composition != NULL)
    gst_video_overlay_composition_unref (composition);
  if (rectangle != NULL)
    gst_video_overlay_rectangle_unref (rectangle);
  clear_items (items);
  return ret;

render_failed:
  GST_ELEMENT_ERROR (self, STREAM, FAILED,
      ("Cannot draw the detections of a %dx%d frame.", frame_width,
          frame_height), ("rendering a %dx%d overlay at %d,%d failed",
          area.width, area.height, area.x, area.y));
  ret = GST_FLOW_ERROR;
  goto done;
map_failed:
  GST_ELEMENT_ERROR (self, STREAM, FAILED,
      ("Cannot write to a %dx%d %s frame to draw on it.", frame_width,
          frame_height, GST_VIDEO_INFO_NAME (&self->info)),
      ("gst_video_frame_map failed for %" GST_PTR_FORMAT, buffer));
  ret = GST_FLOW_ERROR;
  goto done;
blend_failed:
  GST_ELEMENT_ERROR (self, STREAM, FAILED,
      ("Cannot blend the detections into a %s frame.",
          GST_VIDEO_INFO_NAME (&self->info)),
      ("gst_video_overlay_composition_blend failed"));
  ret = GST_FLOW_ERROR;
  goto done;
}
