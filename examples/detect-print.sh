#!/bin/sh
# Detections of every frame of a video file, printed from the bus by
# gst-launch-1.0 -m (one "ssfpndetect" element message per frame).
#
#   examples/detect-print.sh MODEL.safetensors VIDEO
#
# From the build tree, let GStreamer find the plugin first:
#   export GST_PLUGIN_PATH=$PWD/build/gst
set -eu
model=${1:?usage: $0 MODEL.safetensors VIDEO}
video=${2:?usage: $0 MODEL.safetensors VIDEO}

exec gst-launch-1.0 -m \
  filesrc location="$video" ! decodebin ! videoconvert ! \
  ssfpndetect model="$model" post-messages=true ! \
  fakesink sync=false
