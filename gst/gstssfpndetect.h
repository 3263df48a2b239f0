/* GStreamer ssFPN object detector
 *
 * This library is free software; you can redistribute it and/or modify it
 * under the terms of the GNU Lesser General Public License as published by
 * the Free Software Foundation; either version 2.1 of the License, or (at
 * your option) any later version.
 */
#ifndef GST_SSFPN_DETECT_H
#define GST_SSFPN_DETECT_H

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_SSFPN_DETECT (gst_ssfpn_detect_get_type ())
G_DECLARE_FINAL_TYPE (GstSsfpnDetect, gst_ssfpn_detect, GST, SSFPN_DETECT,
                      GstBaseTransform)

/**
 * GstSsfpnPrecision:
 * @GST_SSFPN_PRECISION_AUTO: fp32 on the CPU, fp16 on a GPU
 * @GST_SSFPN_PRECISION_FP32: 32-bit floating point
 * @GST_SSFPN_PRECISION_FP16: 16-bit floating point (GPU)
 */
typedef enum {
  GST_SSFPN_PRECISION_AUTO,
  GST_SSFPN_PRECISION_FP32,
  GST_SSFPN_PRECISION_FP16,
} GstSsfpnPrecision;

#define GST_TYPE_SSFPN_PRECISION (gst_ssfpn_precision_get_type ())
GType gst_ssfpn_precision_get_type (void);

/**
 * GstSsfpnAugment:
 * @GST_SSFPN_AUGMENT_NONE: one pass of the network per frame
 * @GST_SSFPN_AUGMENT_FLIPS: the frame and its three mirror images, the four
 *   outputs averaged (four passes per frame)
 */
typedef enum {
  GST_SSFPN_AUGMENT_NONE,
  GST_SSFPN_AUGMENT_FLIPS,
} GstSsfpnAugment;

#define GST_TYPE_SSFPN_AUGMENT (gst_ssfpn_augment_get_type ())
GType gst_ssfpn_augment_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (ssfpndetect);

G_END_DECLS

#endif /* GST_SSFPN_DETECT_H */
