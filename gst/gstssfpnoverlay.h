/* GStreamer overlay of ssFPN detections
 *
 * This library is free software; you can redistribute it and/or modify it
 * under the terms of the GNU Lesser General Public License as published by
 * the Free Software Foundation; either version 2.1 of the License, or (at
 * your option) any later version.
 */
#ifndef GST_SSFPN_OVERLAY_H
#define GST_SSFPN_OVERLAY_H

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_SSFPN_OVERLAY (gst_ssfpn_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstSsfpnOverlay, gst_ssfpn_overlay, GST, SSFPN_OVERLAY,
                      GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (ssfpnoverlay);

G_END_DECLS

#endif /* GST_SSFPN_OVERLAY_H */
