/* Reads ssfpndetect's metadata in a pad probe and prints one JSON line per
 * frame:
 *
 *   {"pts": 33333333, "detections": [{"label": "person", "label_id": 0,
 *    "confidence": 0.91, "x": 12, "y": 40, "w": 80, "h": 200,
 *    "box": [0.018, 0.111, 0.143, 0.667]}]}
 *
 * x, y, w, h are frame pixels (the GstVideoRegionOfInterestMeta); box is
 * x_min, y_min, x_max, y_max normalised to the frame (the "detection"
 * structure).
 *
 *   detect-json MODEL [VIDEO]
 *   detect-json MODEL --source "videotestsrc ! video/x-raw,..."
 *                     [--sink "ssfpnoverlay ! ... ! filesink ..."]
 *
 * MODEL is a .safetensors file, or "default" for the model built into the
 * engine. Without VIDEO or --source, a test pattern is used; without
 * --sink, the frames end in a fakesink.
 */
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>

/* @text as a JSON string (UTF-8 passes through; g_strescape's octal
 * escapes are not JSON), or null without a text. */
static void
append_json_string (GString *line, const gchar *text)
{
  if (text == NULL) {
    g_string_append (line, "null");
    return;
  }
  g_string_append_c (line, '"');
  for (const gchar *c = text; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\')
      g_string_append_printf (line, "\\%c", *c);
    else if ((guchar) *c < 0x20)
      g_string_append_printf (line, "\\u%04x", (guchar) *c);
    else
      g_string_append_c (line, *c);
  }
  g_string_append_c (line, '"');
}

static void
print_detection (GString *line, GstVideoRegionOfInterestMeta *roi)
{
  GstStructure *s = gst_video_region_of_interest_meta_get_param (roi,
                                                                 "detection");
  gint label_id = -1;
  gdouble confidence = 0, x_min = 0, y_min = 0, x_max = 0, y_max = 0;
  if (s != NULL)
    gst_structure_get (s, "label_id", G_TYPE_INT, &label_id,
                       "confidence", G_TYPE_DOUBLE, &confidence,
                       "x_min", G_TYPE_DOUBLE, &x_min,
                       "y_min", G_TYPE_DOUBLE, &y_min,
                       "x_max", G_TYPE_DOUBLE, &x_max,
                       "y_max", G_TYPE_DOUBLE, &y_max, NULL);

  g_string_append (line, "{\"label\": ");
  append_json_string (line, roi->roi_type != 0
                      ? g_quark_to_string (roi->roi_type) : NULL);
  g_string_append_printf (line,
                          ", \"label_id\": %d, "
                          "\"confidence\": %.4f, \"x\": %u, \"y\": %u, "
                          "\"w\": %u, \"h\": %u, "
                          "\"box\": [%.5f, %.5f, %.5f, %.5f]}",
                          label_id, confidence, roi->x, roi->y, roi->w,
                          roi->h, x_min, y_min, x_max, y_max);
}

static GstPadProbeReturn
on_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GString *line = g_string_new (NULL);
  gpointer state = NULL;
  GstMeta *meta;
  gboolean first = TRUE;

  g_string_append_printf (line, "{\"pts\": %" G_GUINT64_FORMAT
                          ", \"detections\": [", GST_BUFFER_PTS (buffer));
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    if (!first)
      g_string_append (line, ", ");
    print_detection (line, (GstVideoRegionOfInterestMeta *) meta);
    first = FALSE;
  }
  g_string_append (line, "]}");
  puts (line->str);
  g_string_free (line, TRUE);
  return GST_PAD_PROBE_OK;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 2) {
    fprintf (stderr, "usage: %s MODEL.safetensors|default [VIDEO | --source "
             "DESCRIPTION [--sink DESCRIPTION]]\n", argv[0]);
    return 2;
  }

  /* ssfpndetect's empty "model" is the built-in default model */
  gchar *model = g_str_equal (argv[1], "default") ? g_strdup ("")
      : g_strescape (argv[1], NULL);
  gchar *source;
  const gchar *sink = "fakesink";
  if (argc > 5 && g_str_equal (argv[4], "--sink"))
    sink = argv[5];
  if (argc > 3 && g_str_equal (argv[2], "--source"))
    source = g_strdup (argv[3]);
  else if (argc > 2)
    source = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! "
                              "videoconvert", argv[2]);
  else
    source = g_strdup ("videotestsrc num-buffers=30 pattern=ball ! "
                       "video/x-raw,format=NV12,width=320,height=240");
  gchar *description = g_strdup_printf ("%s ! ssfpndetect name=detect "
                                        "model=\"%s\" ! %s", source, model,
                                        sink);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (description, &error);
  g_free (description);
  g_free (source);
  g_free (model);
  /* A description GStreamer could half build (an unknown property, say)
   * gives a pipeline and an error: that is an error too. */
  if (pipeline == NULL || error != NULL) {
    fprintf (stderr, "error: %s\n", error ? error->message : "no pipeline");
    g_clear_error (&error);
    if (pipeline != NULL)
      gst_object_unref (pipeline);
    return 1;
  }

  GstElement *detect = gst_bin_get_by_name (GST_BIN (pipeline), "detect");
  GstPad *src = gst_element_get_static_pad (detect, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, NULL, NULL);
  gst_object_unref (src);
  gst_object_unref (detect);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int status = 0;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    gchar *debug = NULL;
    gst_message_parse_error (msg, &error, &debug);
    fprintf (stderr, "error: %s\n", error->message);
    g_error_free (error);
    g_free (debug);
    status = 1;
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return status;
}
