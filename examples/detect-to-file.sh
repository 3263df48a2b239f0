#!/bin/sh
# Video file in, video file out: frames pass through ssfpndetect (pixels
# untouched, detections attached as metadata and posted on the bus) and are
# encoded again. Batches of four frames, the network run on every second
# frame.
#
#   examples/detect-to-file.sh MODEL.safetensors IN.mp4 OUT.mp4
set -eu
# MPEG-4 encoding and most decoders are FFmpeg's, not in install-deps.sh.
gst-inspect-1.0 avenc_mpeg4 >/dev/null 2>&1 || {
  echo "$0: needs avenc_mpeg4: apt-get install gstreamer1.0-libav" >&2
  exit 1
}
model=${1:?usage: $0 MODEL.safetensors IN OUT.mp4}
input=${2:?usage: $0 MODEL.safetensors IN OUT.mp4}
output=${3:?usage: $0 MODEL.safetensors IN OUT.mp4}

exec gst-launch-1.0 -m \
  filesrc location="$input" ! decodebin ! videoconvert ! \
  ssfpndetect model="$model" batch-size=4 inference-interval=2 \
    post-messages=true ! \
  videoconvert ! avenc_mpeg4 bitrate=4000000 ! mp4mux ! \
  filesink location="$output"
