#!/bin/sh
# The main command: installs what it needs, builds, and runs a real
# GStreamer pipeline through the plugin:
#
#   videotestsrc (NV12) ! ssfpndetect ! ssfpnoverlay ! tee
#       ├─ jpegenc ! avimux ! filesink      (annotated video)
#       └─ videorate (1 fps) ! pngenc ! multifilesink   (a few frames)
#
# An application reading the detection metadata in a pad probe
# (examples/detect-json.c) writes one JSON line per frame. Safe to run twice.
#
# Until the project's trained default model lands, the model is a small
# ssFPN network with random weights shipped with the tests: the boxes show
# the mechanics, not real objects.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh

[ -d build/meson-private ] || meson setup build >/dev/null
meson compile -C build >/dev/null

model=tests/data/ssfpn.safetensors
out=build/demo
frames=120
rm -rf "$out"
mkdir -p "$out"
export GST_PLUGIN_PATH="$PWD/build/gst"

echo "== the model: build/engine/ssfpn info $model"
build/engine/ssfpn info "$model" | head -7

echo
echo "== the pipeline: videotestsrc ! ssfpndetect ! ssfpnoverlay ! (video, PNG frames)"
start=$(date +%s.%N)
build/examples/detect-json "$model" \
  --source "videotestsrc num-buffers=$frames pattern=ball \
    ! video/x-raw,format=NV12,width=640,height=480,framerate=30/1" \
  --sink "ssfpnoverlay ! tee name=t \
    t. ! queue ! videoconvert ! jpegenc ! avimux ! filesink location=$out/annotated.avi \
    t. ! queue ! videorate drop-only=true max-rate=1 ! videoconvert ! pngenc \
       ! multifilesink location=$out/frame-%02d.png" \
  > "$out/detections.jsonl"
end=$(date +%s.%N)

python3 - "$out" "$start" "$end" <<'PY'
import glob, json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
frames = [json.loads(line) for line in open(f"{out}/detections.jsonl") if line.strip()]
dets = sum(len(f["detections"]) for f in frames)
pngs = sorted(glob.glob(f"{out}/frame-*.png"))
print(f"video:       {out}/annotated.avi (Motion JPEG)")
print(f"frames:      {', '.join(pngs)}")
print(f"detections:  {out}/detections.jsonl (one JSON line per frame)")
print(f"summary:     {len(frames)} frames, {dets} detections, "
      f"{len(frames) / (end - start):.1f} frames/s (CPU, whole pipeline)")
PY
