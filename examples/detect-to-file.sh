#!/bin/sh
# Video file in, video file out: frames pass through ssfpndetect (pixels
# untouched, detections attached as metadata and posted on the bus) and are
# encoded again. Batches of four frames, the network run on every second
# frame.
#
#   examples/detect-to-file.sh MODEL.safetensors IN.mp4 OUT.mp4
set -eu
model=${1:?usage: $0 MODEL.safetensors IN OUT.mp4}
input=${2:?usage: $0 MODEL.safetensors IN OUT.mp4}
output=${3:?usage: $0 MODEL.safetensors IN OUT.mp4}

exec gst-launch-1.0 -m \
  filesrc location="$input" ! decodebin ! videoconvert ! \
  ssfpndetect model="$model" batch-size=4 inference-interval=2 \
    post-messages=true ! \
  videoconvert ! avenc_mpeg4 bitrate=4000000 ! mp4mux ! \
  filesink location="$output"
