/* gst-check tests of the ssfpndetect element.
 *
 * The fixtures in tests/data/element/ come from
 * tools/make_element_fixtures.py: a small model and synthetic frames with
 * the detections the PyTorch reference finds through the same letterbox.
 */
#include "buildconfig.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gmodule.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* GObject refuses an out-of-range property value with a warning (GLib
 * 2.74) or a critical (newer GLib); either is the refusal. */
#define ASSERT_REFUSED(code)                                            \
  G_STMT_START {                                                        \
    _gst_check_expecting_log = TRUE;                                    \
    _gst_check_raised_warning = _gst_check_raised_critical = FALSE;     \
    code;                                                               \
    fail_unless (_gst_check_raised_warning || _gst_check_raised_critical, \
        "no warning or critical from %s", #code);                       \
    _gst_check_expecting_log = FALSE;                                   \
  } G_STMT_END

/* ---- fixtures ---------------------------------------------------------- */

static gchar *data_dir;
static gchar *model_path;
static JsonObject *fixture_index;
static JsonParser *fixture_parser;

static void
load_fixtures (void)
{
  const gchar *root = g_getenv ("SSFPN_TEST_DATA");
  GError *error = NULL;

  fail_unless (root != NULL, "SSFPN_TEST_DATA is not set");
  data_dir = g_build_filename (root, "element", NULL);
  model_path = g_build_filename (data_dir, "element.safetensors", NULL);
  gchar *index_path = g_build_filename (data_dir, "cases.json", NULL);
  fixture_parser = json_parser_new ();
  fail_unless (json_parser_load_from_file (fixture_parser, index_path,
          &error), "cannot read %s: %s", index_path,
      error ? error->message : "");
  fixture_index = json_node_get_object (json_parser_get_root (fixture_parser));
  g_free (index_path);
}

static void
free_fixtures (void)
{
  g_clear_object (&fixture_parser);
  fixture_index = NULL;
  g_clear_pointer (&data_dir, g_free);
  g_clear_pointer (&model_path, g_free);
}

static JsonObject *
fixture_case (const gchar * name)
{
  JsonArray *cases = json_object_get_array_member (fixture_index, "cases");
  for (guint i = 0; i < json_array_get_length (cases); i++) {
    JsonObject *c = json_array_get_object_element (cases, i);
    if (g_str_equal (json_object_get_string_member (c, "name"), name))
      return c;
  }
  fail ("no fixture case %s", name);
  return NULL;
}

static double
tolerance (const gchar * what)
{
  return json_object_get_double_member (json_object_get_object_member
      (fixture_index, "tolerance"), what);
}

static void
video_info_for_case (JsonObject * c, GstVideoInfo * info)
{
  GstVideoFormat format =
      gst_video_format_from_string (json_object_get_string_member (c,
          "format"));
  gst_video_info_set_format (info, format,
      json_object_get_int_member (c, "width"),
      json_object_get_int_member (c, "height"));
  GST_VIDEO_INFO_FPS_N (info) = 30;
  GST_VIDEO_INFO_FPS_D (info) = 1;
  if (GST_VIDEO_INFO_IS_YUV (info)) {
    info->colorimetry.matrix =
        g_str_equal (json_object_get_string_member (c, "matrix"), "bt709")
        ? GST_VIDEO_COLOR_MATRIX_BT709 : GST_VIDEO_COLOR_MATRIX_BT601;
    info->colorimetry.range =
        g_str_equal (json_object_get_string_member (c, "range"), "full")
        ? GST_VIDEO_COLOR_RANGE_0_255 : GST_VIDEO_COLOR_RANGE_16_235;
  }
}

static GstCaps *
caps_for_case (const gchar * name)
{
  GstVideoInfo info;
  video_info_for_case (fixture_case (name), &info);
  return gst_video_info_to_caps (&info);
}

/* The fixture's tightly packed planes, copied into GStreamer's layout
 * (whose rows are padded to 4 bytes). */
static GstBuffer *
buffer_for_case (const gchar * name, guint frame_number)
{
  JsonObject *c = fixture_case (name);
  GstVideoInfo info;
  video_info_for_case (c, &info);

  gchar *file = g_strdup_printf ("%s/%s.frame", data_dir, name);
  gchar *bytes = NULL;
  gsize length = 0;
  fail_unless (g_file_get_contents (file, &bytes, &length, NULL));

  GstBuffer *buffer = gst_buffer_new_allocate (NULL, info.size, NULL);
  GstVideoFrame frame;
  fail_unless (gst_video_frame_map (&frame, &info, buffer, GST_MAP_WRITE));
  gsize offset = 0;
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    guint rows = GST_VIDEO_FRAME_COMP_HEIGHT (&frame, p);
    guint row_bytes = GST_VIDEO_FRAME_COMP_WIDTH (&frame, p)
        * GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, p);
    guint8 *dst = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    for (guint y = 0; y < rows; y++) {
      fail_unless (offset + row_bytes <= length);
      memcpy (dst + y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p),
          bytes + offset, row_bytes);
      offset += row_bytes;
    }
  }
  fail_unless_equals_uint64 (offset, length);
  gst_video_frame_unmap (&frame);

  GST_BUFFER_PTS (buffer) = frame_number * GST_SECOND / 30;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 30;
  g_free (bytes);
  g_free (file);
  return buffer;
}

/* ---- checking detections ----------------------------------------------- */

static GstVideoRegionOfInterestMeta **
roi_metas (GstBuffer * buffer, guint * n)
{
  GPtrArray *metas = g_ptr_array_new ();
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
    g_ptr_array_add (metas, meta);
  *n = metas->len;
  return (GstVideoRegionOfInterestMeta **) g_ptr_array_free (metas, FALSE);
}

static gboolean
near_half (double v)
{
  double f = v - floor (v);
  return fabs (f - 0.5) < 0.01;
}

/* Asserts that @buffer carries exactly the reference detections of @name,
 * in order (highest confidence first), with @keep_class >= 0 keeping only
 * that class and @min_confidence dropping weaker ones. */
static void
check_detections_filtered (GstBuffer * buffer, const gchar * name,
    gint keep_class, double min_confidence, guint max_count)
{
  JsonObject *c = fixture_case (name);
  JsonArray *expected = json_object_get_array_member (c, "detections");
  int width = json_object_get_int_member (c, "width");
  int height = json_object_get_int_member (c, "height");
  double box_tol = tolerance ("box_px");
  double conf_tol = tolerance ("confidence");

  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (buffer, &n);
  guint matched = 0;
  for (guint i = 0; i < json_array_get_length (expected); i++) {
    JsonObject *e = json_array_get_object_element (expected, i);
    int class_id = json_object_get_int_member (e, "class_id");
    double confidence = json_object_get_double_member (e, "confidence");
    if ((keep_class >= 0 && class_id != keep_class)
        || confidence <= min_confidence || matched >= max_count)
      continue;

    fail_unless (matched < n, "%s: %u detections, expected more", name, n);
    GstVideoRegionOfInterestMeta *roi = metas[matched++];
    GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
        "detection");
    fail_unless (s != NULL, "%s: ROI without a detection structure", name);

    int label_id;
    double got_conf, x_min, y_min, x_max, y_max;
    fail_unless (gst_structure_get (s, "label_id", G_TYPE_INT, &label_id,
            "confidence", G_TYPE_DOUBLE, &got_conf,
            "x_min", G_TYPE_DOUBLE, &x_min, "y_min", G_TYPE_DOUBLE, &y_min,
            "x_max", G_TYPE_DOUBLE, &x_max, "y_max", G_TYPE_DOUBLE, &y_max,
            NULL));
    fail_unless_equals_int (label_id, class_id);
    fail_unless_equals_string (g_quark_to_string (roi->roi_type),
        json_object_get_string_member (e, "label"));
    fail_unless (fabs (got_conf - confidence) < conf_tol,
        "%s #%u: confidence %f, expected %f", name, matched, got_conf,
        confidence);

    JsonArray *box = json_object_get_array_member (e, "box");
    double want[4], got[4] = { x_min * width, y_min * height, x_max * width,
      y_max * height
    };
    for (int k = 0; k < 4; k++) {
      want[k] = json_array_get_double_element (box, k);
      fail_unless (fabs (got[k] - want[k]) < box_tol,
          "%s #%u: box[%d] %f px, expected %f", name, matched, k, got[k],
          want[k]);
    }
    /* The ROI in whole pixels: rounded corners. */
    if (!near_half (want[0]) && !near_half (want[2]))
      fail_unless (roi->x == lround (want[0])
          && roi->x + roi->w == lround (want[2]),
          "%s #%u: ROI x %u w %u for box %f..%f", name, matched, roi->x,
          roi->w, want[0], want[2]);
    if (!near_half (want[1]) && !near_half (want[3]))
      fail_unless (roi->y == lround (want[1])
          && roi->y + roi->h == lround (want[3]),
          "%s #%u: ROI y %u h %u for box %f..%f", name, matched, roi->y,
          roi->h, want[1], want[3]);
  }
  fail_unless_equals_int (n, matched);
  g_free (metas);
}

static void
check_detections (GstBuffer * buffer, const gchar * name)
{
  check_detections_filtered (buffer, name, -1, -1.0, G_MAXUINT);
}

static guint
expected_count (const gchar * name)
{
  return json_array_get_length (json_object_get_array_member (fixture_case
          (name), "detections"));
}

/* A function of the plugin's own model cache (the test must not link a
 * second copy). */
static gpointer
model_cache_function (const gchar * name)
{
  gpointer function = NULL;
  GstPlugin *plugin = gst_plugin_load_by_name ("ssfpn");
  fail_unless (plugin != NULL);
  GModule *module = g_module_open (gst_plugin_get_filename (plugin),
      G_MODULE_BIND_LAZY);
  fail_unless (module != NULL);
  fail_unless (g_module_symbol (module, name, &function), "no %s", name);
  /* The module stays open with the plugin. */
  gst_object_unref (plugin);
  return function;
}

/* How many elements hold the model of a model-instance-id. */
static int
model_cache_users (const gchar * instance_id)
{
  static int (*users) (const char *) = NULL;

  if (users == NULL)
    users = model_cache_function ("ssfpn_model_cache_users");
  return users (instance_id);
}

/* How many distinct inference contexts the elements of an id hold. */
static int
model_cache_contexts (const gchar * instance_id)
{
  static int (*contexts) (const char *) = NULL;

  if (contexts == NULL)
    contexts = model_cache_function ("ssfpn_model_cache_contexts");
  return contexts (instance_id);
}

/* ---- harness ----------------------------------------------------------- */

/* An ssfpndetect with @properties ("name=value name=value", no spaces
 * inside values) set before the harness starts it. */
static GstHarness *
harness_new (const gchar * properties)
{
  GstElement *element = gst_element_factory_make ("ssfpndetect", NULL);
  fail_unless (element != NULL, "ssfpndetect not found; GST_PLUGIN_PATH?");
  g_object_set (element, "model", model_path, NULL);

  gchar **assignments = g_strsplit (properties ? properties : "", " ", -1);
  for (guint i = 0; assignments[i] != NULL; i++) {
    gchar **pair = g_strsplit (assignments[i], "=", 2);
    if (pair[0] != NULL && pair[1] != NULL)
      gst_util_set_object_arg (G_OBJECT (element), pair[0], pair[1]);
    g_strfreev (pair);
  }
  g_strfreev (assignments);

  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  return h;
}

static GstBuffer *
push_and_pull (GstHarness * h, const gchar * name, guint frame_number)
{
  fail_unless_equals_int (gst_harness_push (h, buffer_for_case (name,
              frame_number)), GST_FLOW_OK);
  return gst_harness_pull (h);
}

/* An element on its own with a bus, for start-up errors. */
typedef struct
{
  GstElement *element;
  GstBus *bus;
} Standalone;

static Standalone
standalone_new (void)
{
  Standalone s;
  s.element = gst_element_factory_make ("ssfpndetect", NULL);
  fail_unless (s.element != NULL, "ssfpndetect not found; GST_PLUGIN_PATH?");
  s.bus = gst_bus_new ();
  gst_element_set_bus (s.element, s.bus);
  return s;
}

static void
standalone_free (Standalone * s)
{
  gst_element_set_state (s->element, GST_STATE_NULL);
  gst_element_set_bus (s->element, NULL);
  gst_object_unref (s->element);
  gst_object_unref (s->bus);
}

/* Starting fails with an error of @domain/@code whose message contains
 * every one of the NULL-terminated strings. */
static void
expect_start_error (Standalone * s, GQuark domain, gint code, ...)
{
  fail_unless_equals_int (gst_element_set_state (s->element,
          GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (s->bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error posted");
  GError *error = NULL;
  gchar *debug = NULL;
  gst_message_parse_error (msg, &error, &debug);
  GST_INFO ("error: %s (%s)", error->message, debug);
  fail_unless (g_error_matches (error, domain, code),
      "error %s:%d \"%s\", expected %s:%d", g_quark_to_string (error->domain),
      error->code, error->message, g_quark_to_string (domain), code);

  va_list args;
  va_start (args, code);
  const gchar *part;
  while ((part = va_arg (args, const gchar *)) != NULL)
    fail_unless (strstr (error->message, part) != NULL,
        "error \"%s\" does not mention \"%s\"", error->message, part);
  va_end (args);

  g_error_free (error);
  g_free (debug);
  gst_message_unref (msg);
}

static gchar *
write_temp_file (const gchar * name, const gchar * contents, gssize length)
{
  gchar *path = g_build_filename (g_get_tmp_dir (), name, NULL);
  fail_unless (g_file_set_contents (path, contents, length, NULL));
  return path;
}

/* ---- caps -------------------------------------------------------------- */

static const gchar *all_formats[] = { "RGB", "BGR", "RGBA", "BGRA", "RGBx",
  "BGRx", "NV12", "I420"
};

GST_START_TEST (test_caps_every_format)
{
  for (guint f = 0; f < G_N_ELEMENTS (all_formats); f++) {
    GstHarness *h = harness_new (NULL);
    GstVideoInfo info;
    gst_video_info_set_format (&info,
        gst_video_format_from_string (all_formats[f]), 33, 17);
    GstCaps *caps = gst_video_info_to_caps (&info);
    gst_harness_set_src_caps (h, gst_caps_copy (caps));

    GstBuffer *in = gst_buffer_new_allocate (NULL, info.size, NULL);
    gst_buffer_memset (in, 0, 90, info.size);
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    GstBuffer *out = gst_harness_pull (h);
    fail_unless (out != NULL);
    /* pixels untouched */
    fail_unless (gst_buffer_memcmp (out, 0, (guint8[1]) { 90 }, 1) == 0);

    GstCaps *negotiated = gst_pad_get_current_caps (h->sinkpad);
    fail_unless (gst_caps_is_equal (negotiated, caps),
        "%s: downstream got %" GST_PTR_FORMAT, all_formats[f], negotiated);
    gst_caps_unref (negotiated);
    gst_caps_unref (caps);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_caps_template)
{
  GstElementFactory *factory = gst_element_factory_find ("ssfpndetect");
  fail_unless (factory != NULL);
  const GList *templates = gst_element_factory_get_static_pad_templates
      (factory);
  fail_unless_equals_int (g_list_length ((GList *) templates), 2);
  for (const GList * l = templates; l; l = l->next) {
    GstCaps *caps = gst_static_caps_get (&((GstStaticPadTemplate *)
            l->data)->static_caps);
    for (guint f = 0; f < G_N_ELEMENTS (all_formats); f++) {
      GstCaps *one = gst_caps_new_simple ("video/x-raw", "format",
          G_TYPE_STRING, all_formats[f], "width", G_TYPE_INT, 7, "height",
          G_TYPE_INT, 5, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
      fail_unless (gst_caps_can_intersect (caps, one), "%s missing",
          all_formats[f]);
      gst_caps_unref (one);
    }
    GstCaps *yuy2 = gst_caps_from_string ("video/x-raw,format=YUY2");
    fail_if (gst_caps_can_intersect (caps, yuy2));
    gst_caps_unref (yuy2);
    gst_caps_unref (caps);
  }
  gst_object_unref (factory);

  /* An unsupported format does not negotiate. */
  GstHarness *h = harness_new (NULL);
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=YUY2,width=16,height=16,framerate=30/1");
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_new_allocate (NULL, 16 * 16 * 2, NULL)),
      GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- detections -------------------------------------------------------- */

/* Every fixture frame through one element: formats, sizes and strides
 * change from one to the next, so this is also caps renegotiation. */
GST_START_TEST (test_detections_match_reference)
{
  GstHarness *h = harness_new (NULL);
  JsonArray *cases = json_object_get_array_member (fixture_index, "cases");
  GHashTable *ids = g_hash_table_new (NULL, NULL);

  for (guint i = 0; i < json_array_get_length (cases); i++) {
    const gchar *name = json_object_get_string_member
        (json_array_get_object_element (cases, i), "name");
    gst_harness_set_src_caps (h, caps_for_case (name));
    GstBuffer *out = push_and_pull (h, name, i);
    check_detections (out, name);

    guint n;
    GstVideoRegionOfInterestMeta **metas = roi_metas (out, &n);
    for (guint k = 0; k < n; k++) {
      fail_if (g_hash_table_contains (ids, GINT_TO_POINTER (metas[k]->id)),
          "ROI id %d used twice", metas[k]->id);
      g_hash_table_add (ids, GINT_TO_POINTER (metas[k]->id));
    }
    g_free (metas);
    gst_buffer_unref (out);
  }
  fail_unless (g_hash_table_size (ids) > 20);
  g_hash_table_unref (ids);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* GStreamer 1.22's scale transform of region metas (videoscale, and
 * videoconvert, the same element) drops their params: the element's keeper
 * meta puts the "detection" structures back. Through a converter to I420
 * and a scaler to twice the size, every region keeps its structure, equal
 * to the one attached, with its box scaled. */
GST_START_TEST (test_detection_survives_scaling)
{
  GstHarness *direct = harness_new (NULL);
  gst_harness_set_src_caps (direct, caps_for_case ("seq-0"));
  GstBuffer *want = push_and_pull (direct, "seq-0", 0);

  gchar *launch = g_strdup_printf ("ssfpndetect model=\"%s\" ! videoconvert "
      "! capsfilter caps=video/x-raw,format=I420 ! videoscale ! capsfilter "
      "caps=video/x-raw,width=160,height=120", model_path);
  GstHarness *h = gst_harness_new_parse (launch);
  g_free (launch);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *got = push_and_pull (h, "seq-0", 0);

  guint n_want, n_got;
  GstVideoRegionOfInterestMeta **wanted = roi_metas (want, &n_want);
  GstVideoRegionOfInterestMeta **scaled = roi_metas (got, &n_got);
  fail_unless (n_want > 0);
  fail_unless_equals_int (n_got, n_want);
  for (guint i = 0; i < n_got; i++) {
    GstStructure *expected =
        gst_video_region_of_interest_meta_get_param (wanted[i], "detection");
    GstStructure *kept =
        gst_video_region_of_interest_meta_get_param (scaled[i], "detection");
    fail_unless (kept != NULL, "region %u lost its detection structure", i);
    fail_unless (gst_structure_is_equal (kept, expected),
        "region %u: %" GST_PTR_FORMAT ", attached %" GST_PTR_FORMAT, i, kept,
        expected);
    fail_unless_equals_int (scaled[i]->roi_type, wanted[i]->roi_type);
    fail_unless (abs ((gint) scaled[i]->x - 2 * (gint) wanted[i]->x) <= 1
        && abs ((gint) scaled[i]->w - 2 * (gint) wanted[i]->w) <= 2,
        "region %u: x %u w %u, attached at x %u w %u", i, scaled[i]->x,
        scaled[i]->w, wanted[i]->x, wanted[i]->w);
  }
  g_free (wanted);
  g_free (scaled);
  gst_buffer_unref (want);
  gst_buffer_unref (got);
  gst_harness_teardown (direct);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Another element's region that happens to have our region's id (ids are
 * per element) must not be given our detection structure when a copy or
 * scale puts the kept structures back. */
GST_START_TEST (test_kept_detection_not_given_to_foreign_region)
{
  GstHarness *h = harness_new (NULL);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (h, "seq-0", 0);
  guint n;
  GstVideoRegionOfInterestMeta **ours = roi_metas (out, &n);
  fail_unless (n > 0);
  gint shared_id = ours[0]->id;
  g_free (ours);

  /* The foreign region comes first on the buffer, as from an element
   * upstream; copying our metas after it runs the keeper's restore. */
  GstBuffer *copy = gst_buffer_new ();
  GstVideoRegionOfInterestMeta *face =
      gst_buffer_add_video_region_of_interest_meta (copy, "face", 1, 2, 3, 4);
  face->id = shared_id;
  fail_unless (gst_buffer_copy_into (copy, out, GST_BUFFER_COPY_METADATA, 0,
          -1));

  GstVideoRegionOfInterestMeta **metas = roi_metas (copy, &n);
  guint faces = 0;
  for (guint i = 0; i < n; i++) {
    GstStructure *detection =
        gst_video_region_of_interest_meta_get_param (metas[i], "detection");
    if (metas[i]->roi_type == g_quark_from_string ("face")) {
      faces++;
      fail_unless (detection == NULL, "the foreign region got %"
          GST_PTR_FORMAT, detection);
    } else {
      fail_unless (detection != NULL, "region %u lost its structure", i);
    }
  }
  fail_unless_equals_int (faces, 1);
  g_free (metas);
  gst_buffer_unref (copy);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Detections are top-level regions: parent_id -1, as documented, not the
 * 0 GStreamer initialises it to (which reads as a reference to ROI 0). */
GST_START_TEST (test_roi_has_no_parent)
{
  GstHarness *h = harness_new (NULL);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (h, "seq-0", 0);
  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (out, &n);
  fail_unless (n > 0);
  for (guint k = 0; k < n; k++) {
    fail_unless (metas[k]->id > 0, "ROI id %d", metas[k]->id);
    fail_unless_equals_int (metas[k]->parent_id, -1);
  }
  g_free (metas);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

#ifdef HAVE_GST_ANALYTICS
/* GStreamer >= 1.24: every ROI has its object-detection mtd (same label,
 * box and confidence) in the buffer's one relation meta, found by the id
 * in "analytics_id"; a relation meta from upstream is joined, not
 * duplicated. */
GST_START_TEST (test_analytics_meta)
{
  GstHarness *h = harness_new (NULL);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *in = buffer_for_case ("seq-0", 0);
  GstAnalyticsRelationMeta *upstream =
      gst_buffer_add_analytics_relation_meta (in);
  GstAnalyticsODMtd theirs;
  fail_unless (gst_analytics_relation_meta_add_od_mtd (upstream,
          g_quark_from_static_string ("upstream"), 1, 2, 3, 4, 0.5f, &theirs));
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (h);

  guint relation_metas = 0;
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered (out, &state,
              GST_ANALYTICS_RELATION_META_API_TYPE)))
    relation_metas++;
  fail_unless_equals_int (relation_metas, 1);

  GstAnalyticsRelationMeta *relations =
      gst_buffer_get_analytics_relation_meta (out);
  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (out, &n);
  fail_unless (n > 0);
  fail_unless_equals_int (gst_analytics_relation_get_length (relations), n + 1);
  for (guint k = 0; k < n; k++) {
    const GstStructure *params =
        gst_video_region_of_interest_meta_get_param (metas[k], "detection");
    guint id;
    double confidence;
    fail_unless (gst_structure_get_uint (params, "analytics_id", &id));
    fail_unless (gst_structure_get_double (params, "confidence", &confidence));
    fail_if (id == theirs.id, "the upstream mtd's id reused");
    GstAnalyticsODMtd od;
    fail_unless (gst_analytics_relation_meta_get_od_mtd (relations, id, &od));
    gint x, y, w, h;
    gfloat conf;
    fail_unless (gst_analytics_od_mtd_get_location (&od, &x, &y, &w, &h, &conf));
    fail_unless_equals_int (x, metas[k]->x);
    fail_unless_equals_int (y, metas[k]->y);
    fail_unless_equals_int (w, metas[k]->w);
    fail_unless_equals_int (h, metas[k]->h);
    fail_unless_equals_float (conf, (gfloat) confidence);
    fail_unless_equals_int (gst_analytics_od_mtd_get_obj_type (&od),
        metas[k]->roi_type);
  }
  g_free (metas);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;
#endif

GST_START_TEST (test_class_filter_and_thresholds)
{
  /* classes keeps one class: the reference's detections of that class. */
  GstHarness *h = harness_new ("classes=2");
  gst_harness_set_src_caps (h, caps_for_case ("i420-48x80-709-full"));
  GstBuffer *out = push_and_pull (h, "i420-48x80-709-full", 0);
  check_detections_filtered (out, "i420-48x80-709-full", 2, -1.0, G_MAXUINT);
  gst_buffer_unref (out);

  /* Thresholds change while playing. */
  g_object_set (h->element, "classes", "", "conf-threshold", 0.5,
      "max-detections", 3, NULL);
  out = push_and_pull (h, "i420-48x80-709-full", 1);
  check_detections_filtered (out, "i420-48x80-709-full", -1, 0.5, 3);
  gst_buffer_unref (out);

  /* An invalid filter in PLAYING is refused and the old one stays. */
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  g_object_set (h->element, "conf-threshold", 0.25, "max-detections", 300,
      "classes", "1", NULL);
  g_object_set (h->element, "classes", "1,x", NULL);
  GstMessage *warning = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (warning != NULL);
  gst_message_unref (warning);
  gchar *classes;
  g_object_get (h->element, "classes", &classes, NULL);
  fail_unless_equals_string (classes, "1");
  g_free (classes);
  out = push_and_pull (h, "i420-48x80-709-full", 2);
  check_detections_filtered (out, "i420-48x80-709-full", 1, -1.0, G_MAXUINT);
  gst_buffer_unref (out);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_labels_file)
{
  gchar *labels = write_temp_file ("ssfpn-test-labels.txt",
      "walker\r\nautomobile\n  hound  \n\n \n", -1);  /* blank lines end it */
  gchar *props = g_strdup_printf ("labels=%s", labels);
  GstHarness *h = harness_new (props);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (h, "seq-0", 0);

  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (out, &n);
  fail_unless (n > 0);
  const gchar *names[] = { "walker", "automobile", "hound" };
  for (guint i = 0; i < n; i++) {
    gint label_id;
    gst_structure_get_int (gst_video_region_of_interest_meta_get_param
        (metas[i], "detection"), "label_id", &label_id);
    fail_unless_equals_string (g_quark_to_string (metas[i]->roi_type),
        names[label_id]);
  }
  g_free (metas);

  GstStructure *info = NULL;
  g_object_get (h->element, "model-info", &info, NULL);
  const GValue *classes = gst_structure_get_value (info, "classes");
  fail_unless_equals_int (gst_value_array_get_size (classes), 3);
  fail_unless_equals_string (g_value_get_string (gst_value_array_get_value
          (classes, 2)), "hound");
  gst_structure_free (info);

  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_unlink (labels);
  g_free (labels);
  g_free (props);
}

GST_END_TEST;

GST_START_TEST (test_post_messages)
{
  GstHarness *h = harness_new ("post-messages=true inference-interval=2");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));

  for (guint i = 0; i < 2; i++) {
    GstBuffer *out = push_and_pull (h, i == 0 ? "seq-0" : "seq-1", i);
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
    fail_unless (msg != NULL);
    const GstStructure *s = gst_message_get_structure (msg);
    fail_unless (gst_structure_has_name (s, "ssfpndetect"));
    guint64 timestamp;
    gboolean inferred;
    fail_unless (gst_structure_get (s, "timestamp", G_TYPE_UINT64, &timestamp,
            "inferred", G_TYPE_BOOLEAN, &inferred, NULL));
    fail_unless_equals_uint64 (timestamp, GST_BUFFER_PTS (out));
    fail_unless_equals_int (inferred, i == 0);
    const GValue *list = gst_structure_get_value (s, "detections");
    /* frame 1 carries frame 0's result */
    fail_unless_equals_int (gst_value_list_get_size (list),
        expected_count ("seq-0"));
    const GstStructure *first =
        gst_value_get_structure (gst_value_list_get_value (list, 0));
    fail_unless (gst_structure_has_field (first, "label"));
    fail_unless (gst_structure_has_field (first, "confidence"));
    gst_message_unref (msg);
    gst_buffer_unref (out);
  }
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A stream in bytes (appsrc's default format) has no running or stream
 * time for the frames: the message says so instead of converting with a
 * segment of the wrong format. */
GST_START_TEST (test_post_messages_bytes_segment)
{
  GstHarness *h = harness_new ("post-messages=true");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_BYTES);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));

  GstBuffer *out = push_and_pull (h, "seq-0", 1);
  check_detections (out, "seq-0");
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
  fail_unless (msg != NULL);
  guint64 timestamp, stream_time, running_time;
  fail_unless (gst_structure_get (gst_message_get_structure (msg),
          "timestamp", G_TYPE_UINT64, &timestamp,
          "stream-time", G_TYPE_UINT64, &stream_time,
          "running-time", G_TYPE_UINT64, &running_time, NULL));
  fail_unless_equals_uint64 (timestamp, GST_BUFFER_PTS (out));
  fail_unless_equals_uint64 (stream_time, GST_CLOCK_TIME_NONE);
  fail_unless_equals_uint64 (running_time, GST_CLOCK_TIME_NONE);
  gst_message_unref (msg);
  gst_buffer_unref (out);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- properties -------------------------------------------------------- */

GST_START_TEST (test_property_defaults_and_ranges)
{
  GstElement *e = gst_element_factory_make ("ssfpndetect", NULL);
  gchar *model, *device, *classes, *instance;
  gdouble conf, iou;
  gint max_det, precision, augment;
  guint input_size, interval, batch;
  gboolean agnostic, post;
  GstStructure *info;

  g_object_get (e, "model", &model, "device", &device, "classes", &classes,
      "model-instance-id", &instance, "conf-threshold", &conf,
      "iou-threshold", &iou, "max-detections", &max_det, "precision",
      &precision, "augment", &augment, "input-size", &input_size,
      "inference-interval", &interval,
      "batch-size", &batch, "agnostic-nms", &agnostic, "post-messages", &post,
      "model-info", &info, NULL);
  fail_unless (model == NULL);
  fail_unless_equals_string (device, "auto");
  fail_unless (classes == NULL);
  fail_unless (instance == NULL);
  fail_unless_equals_float (conf, 0.25);
  fail_unless_equals_float (iou, 0.45);
  fail_unless_equals_int (max_det, 300);
  fail_unless_equals_int (precision, 0);
  fail_unless_equals_int (augment, 0);
  fail_unless_equals_int (input_size, 0);
  fail_unless_equals_int (interval, 1);
  fail_unless_equals_int (batch, 1);
  fail_unless (!agnostic && !post);
  fail_unless (info == NULL, "model-info before start");
  g_free (device);

  struct
  {
    const gchar *name;
    gboolean playing;
  } mutability[] = {
    {"model", FALSE}, {"labels", FALSE}, {"device", FALSE},
    {"precision", FALSE}, {"augment", FALSE}, {"input-size", FALSE},
    {"batch-size", FALSE},
    {"model-instance-id", FALSE}, {"conf-threshold", TRUE},
    {"iou-threshold", TRUE}, {"max-detections", TRUE},
    {"agnostic-nms", TRUE}, {"classes", TRUE},
    {"inference-interval", TRUE}, {"post-messages", TRUE},
  };
  for (guint i = 0; i < G_N_ELEMENTS (mutability); i++) {
    GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e),
        mutability[i].name);
    fail_unless (pspec != NULL, "no property %s", mutability[i].name);
    fail_unless (g_param_spec_get_blurb (pspec) != NULL);
    fail_unless_equals_int (! !(pspec->flags & GST_PARAM_MUTABLE_PLAYING),
        mutability[i].playing);
  }
  GParamSpec *info_spec = g_object_class_find_property (G_OBJECT_GET_CLASS
      (e), "model-info");
  fail_if (info_spec->flags & G_PARAM_WRITABLE);

  /* Precision is a registered enum. */
  GEnumClass *precisions = g_type_class_ref (G_PARAM_SPEC_VALUE_TYPE
      (g_object_class_find_property (G_OBJECT_GET_CLASS (e), "precision")));
  fail_unless (g_enum_get_value_by_nick (precisions, "fp16") != NULL);
  fail_unless (g_enum_get_value_by_nick (precisions, "fp32") != NULL);
  g_type_class_unref (precisions);

  /* Out-of-range values are refused by GObject and leave the value. */
  ASSERT_REFUSED (g_object_set (e, "conf-threshold", 1.5, NULL));
  ASSERT_REFUSED (g_object_set (e, "batch-size", 0, NULL));
  ASSERT_REFUSED (g_object_set (e, "inference-interval", 0, NULL));
  ASSERT_REFUSED (g_object_set (e, "max-detections", 0, NULL));
  g_object_get (e, "conf-threshold", &conf, "batch-size", &batch,
      "inference-interval", &interval, "max-detections", &max_det, NULL);
  fail_unless_equals_float (conf, 0.25);
  fail_unless_equals_int (batch, 1);
  fail_unless_equals_int (interval, 1);
  fail_unless_equals_int (max_det, 300);

  /* gst-launch style strings. */
  gst_util_set_object_arg (G_OBJECT (e), "precision", "fp32");
  g_object_get (e, "precision", &precision, NULL);
  fail_unless_equals_int (precision, 1);
  gst_util_set_object_arg (G_OBJECT (e), "augment", "flips");
  g_object_get (e, "augment", &augment, NULL);
  fail_unless_equals_int (augment, 1);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_model_info_and_auto_device)
{
  GstHarness *h = harness_new ("batch-size=2");
  GstStructure *info = NULL;
  g_object_get (h->element, "model-info", &info, NULL);
  fail_unless (info != NULL);
  gint classes, width, height, batch;
  fail_unless (gst_structure_get (info, "num-classes", G_TYPE_INT, &classes,
          "input-width", G_TYPE_INT, &width, "input-height", G_TYPE_INT,
          &height, "batch-size", G_TYPE_INT, &batch, NULL));
  fail_unless_equals_int (classes, 3);
  fail_unless_equals_int (width, 64);
  fail_unless_equals_int (height, 64);
  fail_unless_equals_int (batch, 2);
  /* device=auto resolves to a real device; this build has the CPU only. */
  const gchar *device = gst_structure_get_string (info, "device");
  fail_unless (g_str_equal (device, "cpu") || g_str_has_prefix (device,
          "cuda:"), "device %s", device);
  fail_unless_equals_string (gst_structure_get_string (info, "model"),
      model_path);
  gst_structure_free (info);

  /* READY-only properties are refused while running. */
  g_object_set (h->element, "batch-size", 8, NULL);
  guint batch_now;
  g_object_get (h->element, "batch-size", &batch_now, NULL);
  fail_unless_equals_int (batch_now, 2);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_input_size_override)
{
  GstHarness *h = harness_new ("input-size=96");
  GstStructure *info = NULL;
  g_object_get (h->element, "model-info", &info, NULL);
  gint width;
  fail_unless (gst_structure_get_int (info, "input-width", &width));
  fail_unless_equals_int (width, 96);
  gst_structure_free (info);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (h, "seq-0", 0);
  /* A different input size gives different detections; that there are
   * well-formed ones is what this can check. */
  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (out, &n);
  for (guint i = 0; i < n; i++)
    fail_unless (metas[i]->x + metas[i]->w <= 80
        && metas[i]->y + metas[i]->h <= 60);
  g_free (metas);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- errors ------------------------------------------------------------ */

GST_START_TEST (test_error_missing_model)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", "/nonexistent/yolo.safetensors", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "/nonexistent/yolo.safetensors", "does not exist", NULL);
  standalone_free (&s);
}

GST_END_TEST;

GST_START_TEST (test_error_corrupt_model)
{
  /* A header length far beyond the file. */
  gchar *path = write_temp_file ("ssfpn-test-corrupt.safetensors",
      "\xff\xff\xff\x00\x00\x00\x00\x00{\"a\":1}", 15);
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", path, NULL);
  expect_start_error (&s, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, path,
      "not a usable ssFPN model", NULL);
  standalone_free (&s);
  g_unlink (path);
  g_free (path);
}

GST_END_TEST;

GST_START_TEST (test_error_unreadable_model)
{
  /* A directory exists but cannot be read as a file. */
  gchar *dir = g_dir_make_tmp ("ssfpn-test-XXXXXX", NULL);
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", dir, NULL);
  fail_unless_equals_int (gst_element_set_state (s.element,
          GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (s.bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  GError *error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (strstr (error->message, dir) != NULL, "%s", error->message);
  g_error_free (error);
  gst_message_unref (msg);
  standalone_free (&s);
  g_rmdir (dir);
  g_free (dir);
}

GST_END_TEST;

GST_START_TEST (test_error_unusable_device)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", model_path, "device", "cuda:7", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "cuda:7", NULL);
  gst_element_set_state (s.element, GST_STATE_NULL);

  /* A name that is no device at all is the same settings error. */
  g_object_set (s.element, "device", "gpu0", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "\"gpu0\"", "auto, cpu, cuda, cuda:N", NULL);
  standalone_free (&s);
}

GST_END_TEST;

GST_START_TEST (test_error_classes)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", model_path, "classes", "0,x", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "classes", "\"x\"", NULL);
  gst_element_set_state (s.element, GST_STATE_NULL);

  g_object_set (s.element, "classes", "1, 5", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "class 5", "3 classes", NULL);
  standalone_free (&s);
}

GST_END_TEST;

GST_START_TEST (test_error_input_size)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", model_path, "input-size", 50, NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "input-size", "50", "32", NULL);
  standalone_free (&s);

  /* Below the stride the examples are real sizes, not 0 (which means the
   * model's own size, not a multiple to pick). */
  s = standalone_new ();
  g_object_set (s.element, "model", model_path, "input-size", 16, NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "input-size", "16", "for example 32 or 64", NULL);
  standalone_free (&s);
}

GST_END_TEST;

GST_START_TEST (test_error_labels)
{
  Standalone s = standalone_new ();
  gchar *short_labels = write_temp_file ("ssfpn-test-short-labels.txt",
      "one\ntwo\n", -1);
  g_object_set (s.element, "model", model_path, "labels", short_labels, NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      short_labels, "2 classes", "3", NULL);
  gst_element_set_state (s.element, GST_STATE_NULL);

  /* Latin-1, not UTF-8: names go into structures and Pango text. */
  gchar *latin1_labels = write_temp_file ("ssfpn-test-latin1-labels.txt",
      "one\ncaf\xe9\nthree\n", -1);
  g_object_set (s.element, "labels", latin1_labels, NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      latin1_labels, "line 2 is not UTF-8", NULL);
  gst_element_set_state (s.element, GST_STATE_NULL);

  g_object_set (s.element, "labels", "/nonexistent/labels.txt", NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
      "/nonexistent/labels.txt", NULL);
  standalone_free (&s);
  g_unlink (short_labels);
  g_free (short_labels);
  g_unlink (latin1_labels);
  g_free (latin1_labels);
}

GST_END_TEST;

/* A batch whose activations cannot fit the machine's memory is refused at
 * start with the engine's reason (on the CPU: before any allocation), not
 * left to the kernel's out-of-memory killer.  256 frames at 8192x8192 need
 * hundreds of GiB for the input alone. */
GST_START_TEST (test_error_context_memory)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", model_path, "device", "cpu",
      "batch-size", 256, "input-size", 8192, NULL);
  expect_start_error (&s, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
      "Cannot prepare model", model_path, "batch-size 256",
      "input-size 8192", "GiB of activations", "try a smaller batch", NULL);
  standalone_free (&s);
}

GST_END_TEST;

/* A frame so elongated that letterboxing would leave it no pixel rows is
 * refused when its caps arrive, naming the size. */
GST_START_TEST (test_error_elongated_frame)
{
  GstHarness *h = harness_new ("input-size=64");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGB,width=4096,height=1,framerate=30/1");
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_new_allocate (NULL, 4096 * 3, NULL)),
      GST_FLOW_NOT_NEGOTIATED);

  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error posted");
  GError *error = NULL;
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (g_error_matches (error, GST_CORE_ERROR,
          GST_CORE_ERROR_NEGOTIATION), "error %s:%d \"%s\"",
      g_quark_to_string (error->domain), error->code, error->message);
  fail_unless (strstr (error->message, "Cannot letterbox 4096x1 frames into "
          "the 64x64 network input") != NULL, "error \"%s\"", error->message);
  fail_unless (strstr (error->message, "too elongated") != NULL,
      "error \"%s\"", error->message);
  g_error_free (error);
  gst_message_unref (msg);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- interval, batching, flushing -------------------------------------- */

static const gchar *sequence[] = { "seq-0", "seq-1", "seq-2", "seq-3",
  "seq-4", "seq-5", "seq-6", "seq-7"
};

GST_START_TEST (test_sequence_fixture_differs)
{
  /* The interval and batching tests tell results apart only if
   * neighbouring frames have different detections. */
  for (guint i = 0; i + 1 < G_N_ELEMENTS (sequence); i++) {
    JsonArray *a = json_object_get_array_member (fixture_case (sequence[i]),
        "detections");
    JsonArray *b = json_object_get_array_member (fixture_case (sequence[i +
                1]), "detections");
    fail_unless (json_array_get_length (a) > 0);
    gboolean differ = json_array_get_length (a) != json_array_get_length (b)
        || json_object_get_double_member (json_array_get_object_element (a, 0),
        "confidence") != json_object_get_double_member
        (json_array_get_object_element (b, 0), "confidence");
    fail_unless (differ, "%s and %s have the same detections", sequence[i],
        sequence[i + 1]);
  }
}

GST_END_TEST;

GST_START_TEST (test_inference_interval)
{
  GstHarness *h = harness_new ("inference-interval=3");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  for (guint i = 0; i < G_N_ELEMENTS (sequence); i++) {
    GstBuffer *out = push_and_pull (h, sequence[i], i);
    /* frames 1, 2 carry frame 0's result; 4, 5 frame 3's; 7 frame 6's */
    check_detections (out, sequence[i - i % 3]);
    gst_buffer_unref (out);
  }

  /* Changed while playing: now every frame. */
  g_object_set (h->element, "inference-interval", 1, NULL);
  for (guint i = 0; i < 3; i++) {
    GstBuffer *out = push_and_pull (h, sequence[i], 8 + i);
    check_detections (out, sequence[i]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A caps change restarts the interval: a result from frames of another
 * size is never carried onto the new ones. */
GST_START_TEST (test_interval_restarts_on_caps)
{
  const gchar *other = "i420-48x80-709-full";
  GstHarness *h = harness_new ("inference-interval=3");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (h, sequence[0], 0);
  check_detections (out, sequence[0]);
  gst_buffer_unref (out);
  out = push_and_pull (h, sequence[1], 1);
  check_detections (out, sequence[0]);
  gst_buffer_unref (out);

  gst_harness_set_src_caps (h, caps_for_case (other));
  out = push_and_pull (h, other, 2);
  check_detections (out, other);
  gst_buffer_unref (out);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  for (guint i = 2; i < 5; i++) {
    out = push_and_pull (h, sequence[i], 1 + i);
    check_detections (out, sequence[2]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_batch_size)
{
  GstHarness *h = harness_new ("batch-size=4");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));

  for (guint i = 0; i < 3; i++) {
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  }
  fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[3],
              3)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 4);
  for (guint i = 0; i < 4; i++) {
    GstBuffer *out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    check_detections (out, sequence[i]);
    gst_buffer_unref (out);
  }

  /* EOS drains a partial batch, before the EOS itself. */
  for (guint i = 4; i < 6; i++)
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 4);
  while (gst_harness_events_in_queue (h) > 0)
    gst_event_unref (gst_harness_pull_event (h));
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 6);
  for (guint i = 4; i < 6; i++) {
    GstBuffer *out = gst_harness_pull (h);
    check_detections (out, sequence[i]);
    gst_buffer_unref (out);
  }
  GstEvent *eos = gst_harness_pull_event (h);
  fail_unless_equals_int (GST_EVENT_TYPE (eos), GST_EVENT_EOS);
  gst_event_unref (eos);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_batch_with_interval)
{
  /* Inferred frames 0, 2, 4, 6 in batches {0, 2} and {4, 6}; frames 1, 3,
   * 5, 7 carry the result before them and wait for it. */
  GstHarness *h = harness_new ("batch-size=2 inference-interval=2");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  guint received_after[8] = { 0, 0, 3, 4, 4, 4, 7, 8 };
  for (guint i = 0; i < 8; i++) {
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_buffers_received (h),
        received_after[i]);
  }
  for (guint i = 0; i < 8; i++) {
    GstBuffer *out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    check_detections (out, sequence[i - i % 2]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The run's own time, as the element measured it at start. */
static GstClockTime
processing_latency (GstHarness * h)
{
  GstStructure *info = NULL;
  guint64 processing = GST_CLOCK_TIME_NONE;
  g_object_get (h->element, "model-info", &info, NULL);
  fail_unless (info != NULL);
  fail_unless (gst_structure_get_uint64 (info, "processing-latency",
          &processing));
  gst_structure_free (info);
  return processing;
}

/* The pool minimum the element proposes upstream; 0 without a pool. */
static guint
proposed_pool_min (GstHarness * h)
{
  GstCaps *caps = caps_for_case ("seq-0");
  GstQuery *query = gst_query_new_allocation (caps, TRUE);
  fail_unless (gst_pad_peer_query (h->srcpad, query));
  guint size, min = 0, max = 0;
  if (gst_query_get_n_allocation_pools (query) > 0)
    gst_query_parse_nth_allocation_pool (query, 0, NULL, &size, &min, &max);
  fail_unless (max == 0 || max >= min);
  gst_query_unref (query);
  gst_caps_unref (caps);
  return min;
}

/* Held frames must not starve a fixed-size upstream pool: the allocation
 * query asks for (batch-size - 1) x inference-interval + 1 buffers more
 * than downstream does, and none more with batch-size 1, where no frame
 * waits. */
GST_START_TEST (test_allocation_counts_held_frames)
{
  GstHarness *h = harness_new (NULL);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  guint downstream = proposed_pool_min (h);
  gst_harness_teardown (h);

  h = harness_new ("inference-interval=30");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  fail_unless_equals_int (proposed_pool_min (h), downstream);
  gst_harness_teardown (h);

  h = harness_new ("batch-size=3 inference-interval=2");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  fail_unless_equals_int (proposed_pool_min (h), downstream + 5);

  /* A longer interval while streaming holds more frames than that: the
   * element asks upstream to renegotiate, and the new query counts them. */
  GstEvent *event;
  while ((event = gst_harness_try_pull_upstream_event (h)) != NULL)
    gst_event_unref (event);
  g_object_set (h->element, "inference-interval", 5, NULL);
  event = gst_harness_try_pull_upstream_event (h);
  fail_unless (event != NULL && GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE,
      "no reconfigure event upstream after inference-interval grew");
  gst_event_unref (event);
  fail_unless_equals_int (proposed_pool_min (h), downstream + 11);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Waits up to @seconds for EOS (an error fails the test), then stops and
 * drops @pipeline. */
static void
wait_for_eos (GstElement * pipeline, guint seconds)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, seconds * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "neither EOS nor an error in %u s", seconds);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

/* Plays @pipeline to EOS (wait_for_eos). */
static void
play_to_eos (GstElement * pipeline, guint seconds)
{
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE);
  wait_for_eos (pipeline, seconds);
}

static GstPadProbeReturn
record_allocation_min (GstPad * pad, GstPadProbeInfo * info,
    gpointer user_data)
{
  guint *min_seen = user_data;
  GstQuery *query = GST_PAD_PROBE_INFO_QUERY (info);
  /* A pull probe sees only queries that were answered. */
  if (GST_QUERY_TYPE (query) == GST_QUERY_ALLOCATION
      && gst_query_get_n_allocation_pools (query) > 0)
    gst_query_parse_nth_allocation_pool (query, 0, NULL, NULL, min_seen,
        NULL);
  return GST_PAD_PROBE_OK;
}

/* fakesink (and appsink) do not answer the allocation query: the element
 * must still ask upstream for the frames it holds. */
GST_START_TEST (test_allocation_without_downstream_answer)
{
  gchar *launch = g_strdup_printf ("videotestsrc name=src num-buffers=4 ! "
      "video/x-raw,format=NV12,width=96,height=72 ! ssfpndetect model=\"%s\" "
      "batch-size=3 inference-interval=2 ! fakesink", model_path);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (launch, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  g_free (launch);

  guint min_seen = 0;
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstPad *pad = gst_element_get_static_pad (src, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM
      | GST_PAD_PROBE_TYPE_PULL, record_allocation_min, &min_seen, NULL);
  gst_object_unref (pad);
  gst_object_unref (src);

  play_to_eos (pipeline, 120);

  fail_unless_equals_int (min_seen, 5);
}

GST_END_TEST;

/* A new stream (concat, a playlist) with the same caps shows other
 * pictures: its first frame is inferred, not given the old stream's
 * result; a new segment (a seek) likewise. */
GST_START_TEST (test_new_stream_restarts_interval)
{
  GstHarness *h = harness_new ("post-messages=true inference-interval=5");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));

  const gchar *boundaries[] = { NULL, "stream-start", "segment" };
  for (guint i = 0; i < G_N_ELEMENTS (boundaries); i++) {
    if (g_strcmp0 (boundaries[i], "stream-start") == 0)
      fail_unless (gst_harness_push_event (h,
              gst_event_new_stream_start ("second")));
    if (boundaries[i] != NULL) {
      GstSegment segment;
      gst_segment_init (&segment, GST_FORMAT_TIME);
      fail_unless (gst_harness_push_event (h,
              gst_event_new_segment (&segment)));
    }
    /* two frames: the first inferred, the second carrying its result */
    for (guint k = 0; k < 2; k++) {
      gst_buffer_unref (push_and_pull (h, "seq-0", 2 * i + k));
      GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
      fail_unless (msg != NULL);
      gboolean inferred;
      fail_unless (gst_structure_get_boolean (gst_message_get_structure (msg),
              "inferred", &inferred));
      fail_unless_equals_int (inferred, k == 0);
      gst_message_unref (msg);
    }
  }
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  /* Exact: the batching part is a fixed number of frame durations; the
   * measured processing time is read back rather than guessed, so machine
   * load cannot make this fail. */
  GstHarness *h = harness_new ("batch-size=4 inference-interval=2");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  gst_harness_set_upstream_latency (h, 0);
  GstClockTime batched = gst_harness_query_latency (h);
  GstClockTime processing = processing_latency (h);
  fail_unless (GST_CLOCK_TIME_IS_VALID (processing) && processing > 0);
  /* three more inferred frames, two frames apart, at 30 fps */
  GstClockTime frame = gst_util_uint64_scale_int (GST_SECOND, 1, 30);
  fail_unless_equals_uint64 (batched, processing + 6 * frame);
  gst_harness_teardown (h);

  h = harness_new (NULL);
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  gst_harness_set_upstream_latency (h, 0);
  GstClockTime single = gst_harness_query_latency (h);
  fail_unless_equals_uint64 (single, processing_latency (h));
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A variable frame rate (0/1 in the caps, as from RTSP or a webcam): the
 * batching wait comes from the first buffer's duration, announced with a
 * latency message. */
GST_START_TEST (test_latency_variable_frame_rate)
{
  GstHarness *h = harness_new ("batch-size=3");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  GstCaps *caps = caps_for_case ("seq-0");
  gst_caps_set_simple (caps, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
  gst_harness_set_src_caps (h, caps);
  gst_harness_set_upstream_latency (h, 0);
  GstClockTime processing = processing_latency (h);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), processing);

  GstBuffer *buffer = buffer_for_case ("seq-0", 0);
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 25;
  fail_unless_equals_int (gst_harness_push (h, buffer), GST_FLOW_OK);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_LATENCY);
  fail_unless (msg != NULL, "no latency message once the duration is known");
  gst_message_unref (msg);
  fail_unless_equals_uint64 (gst_harness_query_latency (h),
      processing + 2 * (GST_SECOND / 25));

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_flush_discards_partial_batch)
{
  GstHarness *h = harness_new ("batch-size=3");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  for (guint i = 0; i < 2; i++)
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);

  /* After the flush a batch holds only new frames. */
  for (guint i = 3; i < 6; i++)
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 3);
  for (guint i = 3; i < 6; i++) {
    GstBuffer *out = gst_harness_pull (h);
    check_detections (out, sequence[i]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A drain query (decoders send one before they reuse or reconfigure their
 * buffers) must get back every frame held for a partial batch, as EOS does. */
GST_START_TEST (test_drain_query_pushes_partial_batch)
{
  GstHarness *h = harness_new ("batch-size=3");
  gst_harness_set_src_caps (h, caps_for_case ("seq-0"));
  for (guint i = 0; i < 2; i++)
    fail_unless_equals_int (gst_harness_push (h, buffer_for_case (sequence[i],
                i)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);

  GstQuery *drain = gst_query_new_drain ();
  gst_pad_peer_query (h->srcpad, drain);
  gst_query_unref (drain);
  fail_unless_equals_int (gst_harness_buffers_received (h), 2);
  for (guint i = 0; i < 2; i++) {
    GstBuffer *out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    check_detections (out, sequence[i]);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_renegotiation_drains_batch)
{
  GstHarness *h = harness_new ("batch-size=2");
  gst_harness_set_src_caps (h, caps_for_case ("rgb-97x61"));
  fail_unless_equals_int (gst_harness_push (h, buffer_for_case ("rgb-97x61",
              0)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);

  /* New caps: the held frame leaves first, with its own result. */
  gst_harness_set_src_caps (h, caps_for_case ("nv12-97x61-601-limited"));
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  GstBuffer *out = gst_harness_pull (h);
  check_detections (out, "rgb-97x61");
  gst_buffer_unref (out);

  fail_unless_equals_int (gst_harness_push (h,
          buffer_for_case ("nv12-97x61-601-limited", 1)), GST_FLOW_OK);
  gst_harness_set_src_caps (h, caps_for_case ("bgrx-64x48"));
  fail_unless_equals_int (gst_harness_push (h, buffer_for_case ("bgrx-64x48",
              2)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, buffer_for_case ("bgrx-64x48",
              3)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  check_detections (out, "nv12-97x61-601-limited");
  gst_buffer_unref (out);
  for (guint i = 0; i < 2; i++) {
    out = gst_harness_pull (h);
    check_detections (out, "bgrx-64x48");
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- shared instances and lifetime ------------------------------------- */

GST_START_TEST (test_shared_model_instances)
{
  GstHarness *a = harness_new ("model-instance-id=shared-test");
  GstHarness *b = harness_new ("model-instance-id=shared-test batch-size=2");
  fail_unless_equals_int (model_cache_users ("shared-test"), 2);
  /* One model, but a context per batch size. */
  fail_unless_equals_int (model_cache_contexts ("shared-test"), 2);

  gst_harness_set_src_caps (a, caps_for_case ("seq-0"));
  gst_harness_set_src_caps (b, caps_for_case ("seq-0"));
  GstBuffer *out = push_and_pull (a, "seq-0", 0);
  check_detections (out, "seq-0");
  gst_buffer_unref (out);
  fail_unless_equals_int (gst_harness_push (b, buffer_for_case ("seq-1", 0)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (b, buffer_for_case ("seq-2", 1)),
      GST_FLOW_OK);
  out = gst_harness_pull (b);
  check_detections (out, "seq-1");
  gst_buffer_unref (out);
  out = gst_harness_pull (b);
  check_detections (out, "seq-2");
  gst_buffer_unref (out);

  /* Another model file under the same id is refused. */
  gchar *contents;
  gsize length;
  fail_unless (g_file_get_contents (model_path, &contents, &length, NULL));
  gchar *other = write_temp_file ("ssfpn-test-other.safetensors", contents,
      length);
  g_free (contents);
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", other, "model-instance-id", "shared-test",
      NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "shared-test", other, NULL);
  standalone_free (&s);
  fail_unless_equals_int (model_cache_users ("shared-test"), 2);

  /* A symbolic link to the same file is the same model. */
  gchar *link = g_build_filename (g_get_tmp_dir (),
      "ssfpn-test-link.safetensors", NULL);
  g_unlink (link);
  fail_unless (symlink (model_path, link) == 0);
  s = standalone_new ();
  g_object_set (s.element, "model", link, "model-instance-id", "shared-test",
      NULL);
  fail_unless_equals_int (gst_element_set_state (s.element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (model_cache_users ("shared-test"), 3);
  standalone_free (&s);
  fail_unless_equals_int (model_cache_users ("shared-test"), 2);
  g_unlink (link);
  g_free (link);

  /* The built-in default model (an empty "model") is refused too. */
  s = standalone_new ();
  g_object_set (s.element, "model", "", "model-instance-id", "shared-test",
      NULL);
  expect_start_error (&s, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "shared-test", "default", NULL);
  standalone_free (&s);
  fail_unless_equals_int (model_cache_users ("shared-test"), 2);

  gst_harness_teardown (a);
  fail_unless_equals_int (model_cache_users ("shared-test"), 1);
  fail_unless_equals_int (model_cache_contexts ("shared-test"), 1);
  gst_harness_teardown (b);
  fail_unless_equals_int (model_cache_users ("shared-test"), 0);
  fail_unless_equals_int (model_cache_contexts ("shared-test"), 0);
  g_unlink (other);
  g_free (other);
}

GST_END_TEST;

/* Every detection structure of @buffer, in order, as text: equal strings
 * mean bit-identical results (doubles are written to round trip). The
 * analytics id is a per-buffer counter, not a result. */
static gchar *
detections_text (GstBuffer * buffer)
{
  GString *text = g_string_new (NULL);
  guint n;
  GstVideoRegionOfInterestMeta **metas = roi_metas (buffer, &n);
  for (guint i = 0; i < n; i++) {
    GstStructure *s = gst_structure_copy
        (gst_video_region_of_interest_meta_get_param (metas[i], "detection"));
    gst_structure_remove_field (s, "analytics_id");
    gchar *one = gst_structure_to_string (s);
    g_string_append_printf (text, "%s@%u,%u,%u,%u;", one, metas[i]->x,
        metas[i]->y, metas[i]->w, metas[i]->h);
    g_free (one);
    gst_structure_free (s);
  }
  g_free (metas);
  return g_string_free (text, FALSE);
}

/* Starting one element, in a thread; @done is set when it returned. */
typedef struct
{
  GstElement *element;
  GThread *thread;
  GMutex lock;
  GCond returned;
  gboolean done;
  GstStateChangeReturn result;
} Starter;

static gpointer
start_in_thread (gpointer data)
{
  Starter *starter = data;
  GstStateChangeReturn result =
      gst_element_set_state (starter->element, GST_STATE_PAUSED);
  g_mutex_lock (&starter->lock);
  starter->result = result;
  starter->done = TRUE;
  g_cond_signal (&starter->returned);
  g_mutex_unlock (&starter->lock);
  return NULL;
}

static void
starter_begin (Starter * starter, GstElement * element, const gchar * name)
{
  starter->element = element;
  starter->done = FALSE;
  g_mutex_init (&starter->lock);
  g_cond_init (&starter->returned);
  starter->thread = g_thread_new (name, start_in_thread, starter);
}

/* Whether the start returned within @seconds. */
static gboolean
starter_wait (Starter * starter, gint seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_TIME_SPAN_SECOND;
  g_mutex_lock (&starter->lock);
  while (!starter->done && g_cond_wait_until (&starter->returned,
          &starter->lock, deadline));
  gboolean done = starter->done;
  g_mutex_unlock (&starter->lock);
  return done;
}

static GstStateChangeReturn
starter_finish (Starter * starter)
{
  g_thread_join (starter->thread);
  g_mutex_clear (&starter->lock);
  g_cond_clear (&starter->returned);
  return starter->result;
}

/* A model file that is a FIFO no one writes to yet: opening it blocks,
 * so a start() that loads it waits. */
typedef struct
{
  gchar *dir, *path;
} FifoModel;

static FifoModel
fifo_model_new (void)
{
  FifoModel f;
  f.dir = g_dir_make_tmp ("ssfpn-fifo-XXXXXX", NULL);
  fail_unless (f.dir != NULL);
  f.path = g_build_filename (f.dir, "model.safetensors", NULL);
  fail_unless (mkfifo (f.path, 0600) == 0);
  return f;
}

/* Lets the waiting open() go with an empty file: that start fails. */
static void
fifo_model_release (FifoModel * f)
{
  int writer = open (f->path, O_WRONLY);
  fail_unless (writer >= 0);
  close (writer);
}

static void
fifo_model_free (FifoModel * f)
{
  g_unlink (f->path);
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

/* Elements of different model-instance-ids build their models and
 * contexts independently: while one is stuck opening its model file (a
 * FIFO no one writes to yet), an element of another id starts. */
GST_START_TEST (test_instance_ids_build_independently)
{
  FifoModel fifo = fifo_model_new ();
  Standalone stuck = standalone_new ();
  g_object_set (stuck.element, "model", fifo.path, "model-instance-id",
      "fifo-test", NULL);
  Starter stuck_start, other_start;
  starter_begin (&stuck_start, stuck.element, "stuck");
  g_usleep (300 * 1000);        /* it reaches the blocking open() */

  Standalone other = standalone_new ();
  g_object_set (other.element, "model", model_path, "model-instance-id",
      "other-test", NULL);
  starter_begin (&other_start, other.element, "other");
  gboolean in_time = starter_wait (&other_start, 60);

  fifo_model_release (&fifo);
  GstStateChangeReturn stuck_result = starter_finish (&stuck_start);
  GstStateChangeReturn other_result = starter_finish (&other_start);
  fail_unless (in_time, "an element of another id waited for a model load");
  fail_unless_equals_int (other_result, GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (stuck_result, GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (model_cache_users ("fifo-test"), 0);

  standalone_free (&stuck);
  standalone_free (&other);
  fifo_model_free (&fifo);
}

GST_END_TEST;

/* start() loads and warms up outside the object lock: a property it has
 * read must be refused meanwhile, as while running, not stored and never
 * used. The model is a FIFO no one writes to yet, so start() waits. */
GST_START_TEST (test_properties_refused_while_starting)
{
  FifoModel fifo = fifo_model_new ();
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", fifo.path, NULL);
  Starter starter;
  starter_begin (&starter, s.element, "starting");
  g_usleep (300 * 1000);        /* it reaches the blocking open() */
  g_object_set (s.element, "batch-size", 4, "input-size", 320, NULL);
  guint batch_size, input_size;
  g_object_get (s.element, "batch-size", &batch_size, "input-size",
      &input_size, NULL);

  fifo_model_release (&fifo);
  fail_unless_equals_int (starter_finish (&starter), GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (batch_size, 1);
  fail_unless_equals_int (input_size, 0);

  standalone_free (&s);
  fifo_model_free (&fifo);
}

GST_END_TEST;

static void
count_notify (GObject * object, GParamSpec * pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

/* model-info changes at start and stop, and says so. */
GST_START_TEST (test_model_info_notifies)
{
  Standalone s = standalone_new ();
  g_object_set (s.element, "model", model_path, NULL);
  guint notified = 0;
  g_signal_connect (s.element, "notify::model-info",
      G_CALLBACK (count_notify), &notified);
  fail_unless_equals_int (gst_element_set_state (s.element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (notified, 1);
  gst_element_set_state (s.element, GST_STATE_NULL);
  fail_unless_equals_int (notified, 2);
  standalone_free (&s);
}

GST_END_TEST;

/* What an element with no model-instance-id finds in sequence[0..n-1]. */
static gchar **
unshared_detections (const gchar * properties, guint n)
{
  GstHarness *h = harness_new (properties);
  gst_harness_set_src_caps (h, caps_for_case (sequence[0]));
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (gst_harness_push (h,
            buffer_for_case (sequence[i % G_N_ELEMENTS (sequence)], i)),
        GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  gchar **texts = g_new0 (gchar *, n + 1);
  for (guint i = 0; i < n; i++) {
    GstBuffer *out = gst_harness_pull (h);
    texts[i] = detections_text (out);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (h);
  return texts;
}

static GstPadProbeReturn
keep_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  g_ptr_array_add (user_data, gst_buffer_ref (GST_PAD_PROBE_INFO_BUFFER
          (info)));
  return GST_PAD_PROBE_OK;
}

/* A tee feeding three elements with one id: two with the same settings
 * share one context (each branch has its own streaming thread, so they use
 * it concurrently), the third with another batch size gets its own on the
 * same model. Every branch finds exactly what an unshared element finds. */
GST_START_TEST (test_shared_context_in_pipeline)
{
  const guint n_frames = G_N_ELEMENTS (sequence);
  const gchar *branch_props[] = { "", "", "batch-size=2" };
  GString *launch = g_string_new ("appsrc name=src format=time ! tee name=t");
  for (guint b = 0; b < G_N_ELEMENTS (branch_props); b++)
    g_string_append_printf (launch, " t. ! queue ! ssfpndetect name=d%u "
        "model=\"%s\" model-instance-id=tee-test %s ! fakesink name=sink%u "
        "sync=false", b, model_path, branch_props[b], b);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (launch->str, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  g_string_free (launch, TRUE);

  GPtrArray *received[G_N_ELEMENTS (branch_props)];
  for (guint b = 0; b < G_N_ELEMENTS (branch_props); b++) {
    received[b] = g_ptr_array_new_with_free_func ((GDestroyNotify)
        gst_buffer_unref);
    gchar *name = g_strdup_printf ("sink%u", b);
    GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), name);
    GstPad *pad = gst_element_get_static_pad (sink, "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, keep_buffer,
        received[b], NULL);
    gst_object_unref (pad);
    gst_object_unref (sink);
    g_free (name);
  }

  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstCaps *caps = caps_for_case (sequence[0]);
  g_object_set (src, "caps", caps, NULL);
  gst_caps_unref (caps);
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (model_cache_users ("tee-test"), 3);
  fail_unless_equals_int (model_cache_contexts ("tee-test"), 2);
  for (guint i = 0; i < n_frames; i++) {
    GstFlowReturn ret;
    GstBuffer *buffer = buffer_for_case (sequence[i], i);
    g_signal_emit_by_name (src, "push-buffer", buffer, &ret);
    gst_buffer_unref (buffer);
    fail_unless_equals_int (ret, GST_FLOW_OK);
  }
  GstFlowReturn ret;
  g_signal_emit_by_name (src, "end-of-stream", &ret);
  gst_object_unref (src);

  wait_for_eos (pipeline, 120);
  fail_unless_equals_int (model_cache_users ("tee-test"), 0);
  fail_unless_equals_int (model_cache_contexts ("tee-test"), 0);

  gchar **expected = unshared_detections (NULL, n_frames);
  for (guint b = 0; b < G_N_ELEMENTS (branch_props); b++) {
    fail_unless_equals_int (received[b]->len, n_frames);
    for (guint i = 0; i < n_frames; i++) {
      GstBuffer *out = g_ptr_array_index (received[b], i);
      check_detections (out, sequence[i]);
      gchar *got = detections_text (out);
      fail_unless_equals_string (got, expected[i]);
      g_free (got);
    }
    g_ptr_array_unref (received[b]);
  }
  g_strfreev (expected);
}

GST_END_TEST;

typedef struct
{
  GstHarness *harness;
  guint n_frames;
  guint first;                  /* the sequence frame this thread starts at */
  GMutex *gate_lock;
  GCond *gate;
  gboolean *open;
  guint failed_pushes;
} PushJob;

static gpointer
push_frames (gpointer data)
{
  PushJob *job = data;

  /* Both threads start together, to overlap as much as possible. */
  g_mutex_lock (job->gate_lock);
  while (!*job->open)
    g_cond_wait (job->gate, job->gate_lock);
  g_mutex_unlock (job->gate_lock);

  for (guint i = 0; i < job->n_frames; i++) {
    guint k = (job->first + i) % G_N_ELEMENTS (sequence);
    if (gst_harness_push (job->harness, buffer_for_case (sequence[k], i))
        != GST_FLOW_OK)
      job->failed_pushes++;
  }
  if (!gst_harness_push_event (job->harness, gst_event_new_eos ()))
    job->failed_pushes++;
  return NULL;
}

/* Two threads push through two elements that share a context; the lock
 * around each engine call keeps their batches apart, so each frame gets
 * its own detections. (Run it in an ASan build; the gate makes the calls
 * overlap.) */
GST_START_TEST (test_shared_context_two_threads)
{
  const guint n_frames = 24;
  GMutex gate_lock;
  GCond gate;
  gboolean open = FALSE;
  PushJob jobs[2];
  GThread *threads[2];

  g_mutex_init (&gate_lock);
  g_cond_init (&gate);
  for (guint t = 0; t < 2; t++) {
    jobs[t] = (PushJob) {
      .harness = harness_new ("model-instance-id=threads-test batch-size=2"),
      .n_frames = n_frames, .first = t * 3, .gate_lock = &gate_lock,
      .gate = &gate, .open = &open,
    };
    gst_harness_set_src_caps (jobs[t].harness, caps_for_case (sequence[0]));
  }
  fail_unless_equals_int (model_cache_users ("threads-test"), 2);
  fail_unless_equals_int (model_cache_contexts ("threads-test"), 1);

  for (guint t = 0; t < 2; t++)
    threads[t] = g_thread_new ("pusher", push_frames, &jobs[t]);
  g_mutex_lock (&gate_lock);
  open = TRUE;
  g_cond_broadcast (&gate);
  g_mutex_unlock (&gate_lock);
  for (guint t = 0; t < 2; t++)
    g_thread_join (threads[t]);

  gchar **expected = unshared_detections (NULL, G_N_ELEMENTS (sequence));
  for (guint t = 0; t < 2; t++) {
    fail_unless_equals_int (jobs[t].failed_pushes, 0);
    fail_unless_equals_int (gst_harness_buffers_received (jobs[t].harness),
        n_frames);
    for (guint i = 0; i < n_frames; i++) {
      guint k = (jobs[t].first + i) % G_N_ELEMENTS (sequence);
      GstBuffer *out = gst_harness_pull (jobs[t].harness);
      check_detections (out, sequence[k]);
      gchar *got = detections_text (out);
      fail_unless_equals_string (got, expected[k]);
      g_free (got);
      gst_buffer_unref (out);
    }
    gst_harness_teardown (jobs[t].harness);
  }
  g_strfreev (expected);
  fail_unless_equals_int (model_cache_contexts ("threads-test"), 0);
  g_mutex_clear (&gate_lock);
  g_cond_clear (&gate);
}

GST_END_TEST;

GST_START_TEST (test_start_stop_cycles)
{
  GstElement *e = gst_element_factory_make ("ssfpndetect", NULL);
  g_object_set (e, "model", model_path, "model-instance-id", "cycles",
      "batch-size", 2, NULL);
  for (guint i = 0; i < 20; i++) {
    fail_unless (gst_element_set_state (e, GST_STATE_PAUSED)
        != GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int (model_cache_users ("cycles"), 1);
    fail_unless_equals_int (model_cache_contexts ("cycles"), 1);
    fail_unless (gst_element_set_state (e, GST_STATE_NULL)
        == GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (model_cache_users ("cycles"), 0);
    fail_unless_equals_int (model_cache_contexts ("cycles"), 0);
  }
  gst_object_unref (e);
}

GST_END_TEST;

static GstPadProbeReturn
count_buffers_with_metas (GstPad * pad, GstPadProbeInfo * info,
    gpointer user_data)
{
  guint *counts = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  counts[0]++;
  if (gst_buffer_get_video_region_of_interest_meta (buffer) != NULL)
    counts[1]++;
  return GST_PAD_PROBE_OK;
}

/* 500 frames through a real pipeline; under ASan this is the leak check. */
GST_START_TEST (test_pipeline_500_buffers)
{
  gchar *launch = g_strdup_printf ("videotestsrc num-buffers=500 "
      "pattern=ball ! video/x-raw,format=NV12,width=96,height=72 ! "
      "ssfpndetect name=detect model=\"%s\" batch-size=3 "
      "inference-interval=2 conf-threshold=0.05 ! fakesink name=sink",
      model_path);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (launch, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  g_free (launch);

  guint counts[2] = { 0, 0 };
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffers_with_metas,
      counts, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);

  play_to_eos (pipeline, 300);

  fail_unless_equals_int (counts[0], 500);
  fail_unless (counts[1] > 0, "no detections at all in 500 frames");
}

GST_END_TEST;

static Suite *
ssfpndetect_suite (void)
{
  Suite *s = suite_create ("ssfpndetect");
  TCase *tc = tcase_create ("general");

  tcase_add_unchecked_fixture (tc, load_fixtures, free_fixtures);
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_caps_every_format);
  tcase_add_test (tc, test_caps_template);
  tcase_add_test (tc, test_detections_match_reference);
  tcase_add_test (tc, test_roi_has_no_parent);
#ifdef HAVE_GST_ANALYTICS
  tcase_add_test (tc, test_analytics_meta);
#endif
  tcase_add_test (tc, test_class_filter_and_thresholds);
  tcase_add_test (tc, test_labels_file);
  tcase_add_test (tc, test_detection_survives_scaling);
  tcase_add_test (tc, test_kept_detection_not_given_to_foreign_region);
  tcase_add_test (tc, test_post_messages);
  tcase_add_test (tc, test_post_messages_bytes_segment);
  tcase_add_test (tc, test_property_defaults_and_ranges);
  tcase_add_test (tc, test_model_info_and_auto_device);
  tcase_add_test (tc, test_input_size_override);
  tcase_add_test (tc, test_error_missing_model);
  tcase_add_test (tc, test_error_corrupt_model);
  tcase_add_test (tc, test_error_unreadable_model);
  tcase_add_test (tc, test_error_unusable_device);
  tcase_add_test (tc, test_error_classes);
  tcase_add_test (tc, test_error_input_size);
  tcase_add_test (tc, test_error_labels);
  tcase_add_test (tc, test_error_context_memory);
  tcase_add_test (tc, test_error_elongated_frame);
  tcase_add_test (tc, test_sequence_fixture_differs);
  tcase_add_test (tc, test_inference_interval);
  tcase_add_test (tc, test_interval_restarts_on_caps);
  tcase_add_test (tc, test_batch_size);
  tcase_add_test (tc, test_batch_with_interval);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_latency_variable_frame_rate);
  tcase_add_test (tc, test_flush_discards_partial_batch);
  tcase_add_test (tc, test_drain_query_pushes_partial_batch);
  tcase_add_test (tc, test_allocation_counts_held_frames);
  tcase_add_test (tc, test_allocation_without_downstream_answer);
  tcase_add_test (tc, test_new_stream_restarts_interval);
  tcase_add_test (tc, test_model_info_notifies);
  tcase_add_test (tc, test_properties_refused_while_starting);
  tcase_add_test (tc, test_renegotiation_drains_batch);
  tcase_add_test (tc, test_shared_model_instances);
  tcase_add_test (tc, test_instance_ids_build_independently);
  tcase_add_test (tc, test_shared_context_in_pipeline);
  tcase_add_test (tc, test_shared_context_two_threads);
  tcase_add_test (tc, test_start_stop_cycles);
  tcase_add_test (tc, test_pipeline_500_buffers);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  SRunner *runner = srunner_create (ssfpndetect_suite ());
  srunner_run_all (runner, CK_NORMAL);
  int failed = srunner_ntests_failed (runner);
  int run = srunner_ntests_run (runner);
  srunner_free (runner);
  printf ("%d passed, %d failed\n", run - failed, failed);
  return failed == 0 ? 0 : 1;
}
