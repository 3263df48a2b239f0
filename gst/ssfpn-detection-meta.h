/* ssfpndetect: detections as buffer metadata and as bus messages.
 *
 * Each detection becomes one GstVideoRegionOfInterestMeta (roi_type = the
 * label's quark; x, y, w, h in frame pixels; a process-wide unique id)
 * carrying a GstStructure "detection":
 *
 *   label_id (int), confidence (double),
 *   x_min, y_min, x_max, y_max (double, normalised to the frame)
 *
 * When built against GStreamer >= 1.24, an analytics object-detection
 * mtd (GstAnalyticsODMtd) is added as well and the structure gets its id
 * in "analytics_id" (uint).
 */
#ifndef SSFPN_DETECTION_META_H
#define SSFPN_DETECTION_META_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* The detection's box in whole frame pixels, as the ROI meta carries it. */
void ssfpn_detection_pixel_box (double x_min, double y_min, double x_max,
                                double y_max, int frame_width,
                                int frame_height, guint *x, guint *y,
                                guint *w, guint *h);

/* Adds the metas for @detections (SsfpnFrameDetection) to the writable
 * @buffer. @labels has one quark per class id. */
void ssfpn_detection_meta_attach (GstBuffer *buffer, int frame_width,
                                  int frame_height, const GArray *detections,
                                  const GQuark *labels, int n_labels);

/* The structure of a per-frame element message:
 *
 *   ssfpndetect, timestamp=(guint64), stream-time=(guint64),
 *   running-time=(guint64), duration=(guint64), inferred=(boolean),
 *   width=(int), height=(int), detections=(GstValueList of "detection"
 *   structures as above, plus label=(string) and x, y, w, h=(uint) pixels)
 */
GstStructure *ssfpn_detection_message_structure (const GArray *detections,
                                                 int frame_width,
                                                 int frame_height,
                                                 const GQuark *labels,
                                                 int n_labels);

G_END_DECLS

#endif /* SSFPN_DETECTION_META_H */
