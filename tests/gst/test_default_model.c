/* gst-check tests of the default model built into the engine: with the
 * "model" property left empty, ssfpndetect must find the ball of
 * videotestsrc pattern=ball as a circle, at the model's own input size and
 * at 416 and 320. The ball's true box is measured in each frame itself
 * (its bright pixels on the black background), so nothing here is a stored
 * answer. */
#include "buildconfig.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

#define FRAMES 40
#define WIDTH 640
#define HEIGHT 480
#define MIN_IOU 0.5

typedef struct
{
  double x1, y1, x2, y2;
} Box;

static double
iou (const Box * a, const Box * b)
{
  double w = MIN (a->x2, b->x2) - MAX (a->x1, b->x1);
  double h = MIN (a->y2, b->y2) - MAX (a->y1, b->y1);
  if (w <= 0 || h <= 0)
    return 0;
  double inter = w * h;
  return inter / ((a->x2 - a->x1) * (a->y2 - a->y1)
      + (b->x2 - b->x1) * (b->y2 - b->y1) - inter);
}

/* The box of the pixels brighter than mid-grey in the luma plane (the ball
 * is white on black, its anti-aliased rim half covered at 128). */
static gboolean
bright_box (GstBuffer * buffer, const GstVideoInfo * info, Box * box)
{
  GstVideoFrame frame;
  fail_unless (gst_video_frame_map (&frame, (GstVideoInfo *) info, buffer,
          GST_MAP_READ));
  const guint8 *pixels = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  gint x1 = G_MAXINT, y1 = G_MAXINT, x2 = -1, y2 = -1;
  for (gint y = 0; y < GST_VIDEO_FRAME_HEIGHT (&frame); y++)
    for (gint x = 0; x < GST_VIDEO_FRAME_WIDTH (&frame); x++)
      if (pixels[y * stride + x] >= 128) {
        x1 = MIN (x1, x);
        y1 = MIN (y1, y);
        x2 = MAX (x2, x);
        y2 = MAX (y2, y);
      }
  gst_video_frame_unmap (&frame);
  if (x2 < 0)
    return FALSE;
  *box = (Box) { x1, y1, x2 + 1, y2 + 1 };
  return TRUE;
}

/* The most confident detection of @label on the buffer; FALSE when none. */
static gboolean
best_detection (GstBuffer * buffer, const gchar * label, Box * box,
    double *confidence)
{
  gpointer state = NULL;
  GstMeta *meta;
  gboolean found = FALSE;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    if (roi->roi_type != g_quark_from_string (label))
      continue;
    double c = 0;
    fail_unless (gst_structure_get_double
        (gst_video_region_of_interest_meta_get_param (roi, "detection"),
            "confidence", &c));
    if (!found || c > *confidence) {
      *confidence = c;
      *box = (Box) { roi->x, roi->y, roi->x + roi->w, roi->y + roi->h };
      found = TRUE;
    }
  }
  return found;
}

/* Finds the ball as a circle in every frame; returns the sum of the
 * circles' confidences. */
static double
check_ball_found (guint input_size, const gchar * augment)
{
  gchar *description = g_strdup_printf ("videotestsrc pattern=ball "
      "num-buffers=%d ! video/x-raw,format=I420,width=%d,height=%d,"
      "framerate=30/1 ! ssfpndetect input-size=%u augment=%s", FRAMES, WIDTH,
      HEIGHT, input_size, augment);
  GstHarness *h = gst_harness_new_parse (description);
  gst_harness_play (h);

  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  double worst_iou = 1, worst_confidence = 1, confidence_sum = 0;
  for (gint i = 0; i < FRAMES; i++) {
    GstBuffer *buffer = gst_harness_pull (h);
    fail_unless (buffer != NULL, "frame %d missing", i);
    Box truth, found = { 0, 0, 0, 0 };
    double confidence = 0;
    fail_unless (bright_box (buffer, &info, &truth), "frame %d: no ball", i);
    fail_unless (best_detection (buffer, "circle", &found, &confidence),
        "input-size %u, frame %d: no circle found (ball at %.0f,%.0f-%.0f,%.0f)",
        input_size, i, truth.x1, truth.y1, truth.x2, truth.y2);
    double overlap = iou (&truth, &found);
    fail_unless (overlap >= MIN_IOU,
        "input-size %u, frame %d: circle %.0f,%.0f-%.0f,%.0f (%.2f) overlaps "
        "the ball %.0f,%.0f-%.0f,%.0f by IoU %.2f only", input_size, i,
        found.x1, found.y1, found.x2, found.y2, confidence, truth.x1, truth.y1,
        truth.x2, truth.y2, overlap);
    worst_iou = MIN (worst_iou, overlap);
    worst_confidence = MIN (worst_confidence, confidence);
    confidence_sum += confidence;
    gst_buffer_unref (buffer);
  }
  g_print ("input-size %u, augment %s: ball found as a circle in %d of %d "
      "frames, worst IoU %.3f, lowest confidence %.3f\n", input_size, augment,
      FRAMES, FRAMES, worst_iou, worst_confidence);
  gst_harness_teardown (h);
  g_free (description);
  return confidence_sum;
}

GST_START_TEST (test_ball_640)
{
  check_ball_found (0, "none");        /* 0: the model's own size, 640 */
}

GST_END_TEST;

GST_START_TEST (test_ball_416)
{
  check_ball_found (416, "none");
}

GST_END_TEST;

GST_START_TEST (test_ball_320)
{
  check_ball_found (320, "none");
}

GST_END_TEST;

/* augment=flips still finds the ball, and changes the confidences: the
 * property reaches the engine. */
GST_START_TEST (test_ball_640_flips)
{
  double plain = check_ball_found (0, "none");
  double flips = check_ball_found (0, "flips");
  fail_unless (fabs (flips - plain) > 1e-4 * FRAMES,
      "augment=flips gave the same confidences as none (%.6f)", flips);
}

GST_END_TEST;

/* The element reports which model it runs: the built-in one. */
GST_START_TEST (test_model_info_names_default)
{
  GstHarness *h = gst_harness_new_parse ("videotestsrc num-buffers=1 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! ssfpndetect name=d "
      "augment=flips");
  gst_harness_play (h);
  GstBuffer *buffer = gst_harness_pull (h);
  fail_unless (buffer != NULL);
  gst_buffer_unref (buffer);
  GstElement *detect = gst_bin_get_by_name (GST_BIN (h->element), "d");
  GstStructure *model_info = NULL;
  g_object_get (detect, "model-info", &model_info, NULL);
  fail_unless (model_info != NULL);
  const gchar *path = gst_structure_get_string (model_info, "model");
  fail_unless (path != NULL && g_str_has_prefix (path, "default"),
      "model-info model is %s", GST_STR_NULL (path));
  gint classes = 0;
  fail_unless (gst_structure_get_int (model_info, "num-classes", &classes));
  fail_unless_equals_int (classes, 6);
  fail_unless_equals_string (gst_structure_get_string (model_info, "augment"),
      "flips");
  gst_structure_free (model_info);
  gst_object_unref (detect);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
default_model_suite (void)
{
  Suite *s = suite_create ("default-model");
  TCase *tc = tcase_create ("ball");
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_ball_640);
  tcase_add_test (tc, test_ball_416);
  tcase_add_test (tc, test_ball_320);
  tcase_add_test (tc, test_ball_640_flips);
  tcase_add_test (tc, test_model_info_names_default);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (default_model);
