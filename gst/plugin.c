/* GStreamer ssFPN plugin: registers the ssfpndetect and ssfpnoverlay
 * elements.
 *
 * This library is free software; you can redistribute it and/or modify it
 * under the terms of the GNU Lesser General Public License as published by
 * the Free Software Foundation; either version 2.1 of the License, or (at
 * your option) any later version.
 */
#include "buildconfig.h"

#include "gstssfpndetect.h"
#include "gstssfpnoverlay.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  return GST_ELEMENT_REGISTER (ssfpndetect, plugin)
      && GST_ELEMENT_REGISTER (ssfpnoverlay, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, ssfpn,
                   "Object detection with YOLOv5-family ssFPN models",
                   plugin_init, SSFPN_VERSION, "LGPL", GST_PACKAGE_NAME,
                   GST_PACKAGE_ORIGIN)
