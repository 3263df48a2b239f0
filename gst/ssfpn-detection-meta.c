/* ssfpndetect: detections as buffer metadata and as bus messages. */
#include "buildconfig.h"

#include "ssfpn-detection-meta.h"
#include "ssfpn-inference.h"
#include "ssfpn-params-keeper.h"

#include <gst/video/video.h>
#include <math.h>

#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

/* ROI ids are unique within the process, across elements and frames. */
static gint next_roi_id = 1;

void
ssfpn_detection_pixel_box (double x_min, double y_min, double x_max,
                           double y_max, int frame_width, int frame_height,
                           guint *x, guint *y, guint *w, guint *h)
{
  /* Round the corners, not the size, so that adjacent boxes stay adjacent. */
  long left = lround (x_min * frame_width);
  long top = lround (y_min * frame_height);
  long right = lround (x_max * frame_width);
  long bottom = lround (y_max * frame_height);
  left = CLAMP (left, 0, frame_width);
  top = CLAMP (top, 0, frame_height);
  right = CLAMP (right, left, frame_width);
  bottom = CLAMP (bottom, top, frame_height);
  *x = (guint) left;
  *y = (guint) top;
  *w = (guint) (right - left);
  *h = (guint) (bottom - top);
}

static GQuark
label_quark (const GQuark *labels, int n_labels, int class_id)
{
  if (class_id >= 0 && class_id < n_labels)
    return labels[class_id];
  g_autofree char *name = g_strdup_printf ("class-%d", class_id);
  return g_quark_from_string (name);
}

static GstStructure *
detection_structure (const SsfpnFrameDetection *d)
{
  return gst_structure_new ("detection",
                            "label_id", G_TYPE_INT, d->class_id,
                            "confidence", G_TYPE_DOUBLE, d->confidence,
                            "x_min", G_TYPE_DOUBLE, d->x_min,
                            "y_min", G_TYPE_DOUBLE, d->y_min,
                            "x_max", G_TYPE_DOUBLE, d->x_max,
                            "y_max", G_TYPE_DOUBLE, d->y_max, NULL);
}

void
ssfpn_detection_meta_attach (GstBuffer *buffer, int frame_width,
                             int frame_height, const GArray *detections,
                             const GQuark *labels, int n_labels)
{
#ifdef HAVE_GST_ANALYTICS
  /* One relation meta a buffer: join the one an upstream analyser left. */
  GstAnalyticsRelationMeta *relations = NULL;
  if (detections->len > 0) {
    relations = gst_buffer_get_analytics_relation_meta (buffer);
    if (relations == NULL)
      relations = gst_buffer_add_analytics_relation_meta (buffer);
  }
#endif

  g_autofree GstVideoRegionOfInterestMeta **rois =
      g_new (GstVideoRegionOfInterestMeta *, MAX (detections->len, 1));
  for (guint i = 0; i < detections->len; i++) {
    const SsfpnFrameDetection *d =
        &g_array_index (detections, SsfpnFrameDetection, i);
    guint x, y, w, h;
    ssfpn_detection_pixel_box (d->x_min, d->y_min, d->x_max, d->y_max,
                               frame_width, frame_height, &x, &y, &w, &h);
    GQuark label = label_quark (labels, n_labels, d->class_id);

    GstVideoRegionOfInterestMeta *roi =
        gst_buffer_add_video_region_of_interest_meta_id (buffer, label, x, y,
                                                         w, h);
    roi->id = g_atomic_int_add (&next_roi_id, 1);
    roi->parent_id = -1;       /* a top-level region; GStreamer sets 0 */
    GstStructure *params = detection_structure (d);

#ifdef HAVE_GST_ANALYTICS
    GstAnalyticsODMtd od;
    if (relations != NULL
        && gst_analytics_relation_meta_add_od_mtd (relations, label, x, y, w,
                                                   h, d->confidence, &od))
      gst_structure_set (params, "analytics_id", G_TYPE_UINT, od.id, NULL);
#endif

    gst_video_region_of_interest_meta_add_param (roi, params);
    rois[i] = roi;
  }
  /* After the regions, so that scaling elements restore their params. */
  ssfpn_params_keeper_attach (buffer, rois, detections->len);
}

GstStructure *
ssfpn_detection_message_structure (const GArray *detections, int frame_width,
                                   int frame_height, const GQuark *labels,
                                   int n_labels)
{
  GValue list = G_VALUE_INIT;
  gst_value_list_init (&list, detections->len);
  for (guint i = 0; i < detections->len; i++) {
    const SsfpnFrameDetection *d =
        &g_array_index (detections, SsfpnFrameDetection, i);
    guint x, y, w, h;
    ssfpn_detection_pixel_box (d->x_min, d->y_min, d->x_max, d->y_max,
                               frame_width, frame_height, &x, &y, &w, &h);
    GstStructure *s = detection_structure (d);
    gst_structure_set (s,
                       "label", G_TYPE_STRING,
                       g_quark_to_string (label_quark (labels, n_labels,
                                                       d->class_id)),
                       "x", G_TYPE_UINT, x, "y", G_TYPE_UINT, y,
                       "w", G_TYPE_UINT, w, "h", G_TYPE_UINT, h, NULL);
    GValue item = G_VALUE_INIT;
    g_value_init (&item, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&item, s);
    gst_value_list_append_and_take_value (&list, &item);
  }

  GstStructure *message = gst_structure_new ("ssfpndetect",
                                             "width", G_TYPE_INT, frame_width,
                                             "height", G_TYPE_INT,
                                             frame_height, NULL);
  gst_structure_take_value (message, "detections", &list);
  return message;
}
