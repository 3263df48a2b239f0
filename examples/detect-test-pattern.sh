#!/bin/sh
# No video at hand: a test pattern in NV12 straight into ssfpndetect (no
# videoconvert needed for RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420).
#
#   examples/detect-test-pattern.sh [MODEL.safetensors]
#
# Without MODEL the built-in default model runs; it finds the ball as a
# circle.
set -eu

# No model property at all for the built-in one: gst-launch would read an
# empty "model=" as taking the next word for its value.
if [ $# -ge 1 ] && [ -n "$1" ]; then
  set -- model="$1"
else
  set --
fi

exec gst-launch-1.0 -m \
  videotestsrc num-buffers=60 pattern=ball ! \
  video/x-raw,format=NV12,width=640,height=360,framerate=30/1 ! \
  ssfpndetect "$@" post-messages=true ! fakesink
