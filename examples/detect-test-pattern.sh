#!/bin/sh
# No video at hand: a test pattern in NV12 straight into ssfpndetect (no
# videoconvert needed for RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420).
#
#   examples/detect-test-pattern.sh [MODEL.safetensors]
#
# Without MODEL the built-in default model runs; it finds the ball as a
# circle.
set -eu
model=${1:-}

exec gst-launch-1.0 -m \
  videotestsrc num-buffers=60 pattern=ball ! \
  video/x-raw,format=NV12,width=640,height=360,framerate=30/1 ! \
  ssfpndetect model="$model" post-messages=true ! fakesink
