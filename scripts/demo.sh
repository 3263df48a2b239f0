#!/bin/sh
# The main command: installs what it needs, builds, and runs a real
# GStreamer pipeline through `ssfpndetect`: a test pattern in NV12 goes
# through the detector, and an application reading the detection metadata in
# a pad probe writes one JSON line per frame. Safe to run twice.
#
# Until the default model of a later issue is trained, the model is a small
# ssFPN network with random weights shipped with the tests, so its
# detections are not meaningful objects: the demo shows the mechanics.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh

[ -d build/meson-private ] || meson setup build >/dev/null
meson compile -C build >/dev/null

model=tests/data/ssfpn.safetensors
out=build/demo
frames=120
mkdir -p "$out"
export GST_PLUGIN_PATH="$PWD/build/gst"

echo "== the model: build/engine/ssfpn info $model"
build/engine/ssfpn info "$model" | head -7

echo
echo "== the pipeline: videotestsrc (NV12 640x480) ! ssfpndetect ! fakesink"
start=$(date +%s.%N)
build/examples/detect-json "$model" --source "videotestsrc num-buffers=$frames \
  pattern=ball ! video/x-raw,format=NV12,width=640,height=480" \
  > "$out/detections.jsonl"
end=$(date +%s.%N)

python3 - "$out/detections.jsonl" "$start" "$end" <<'PY'
import json, sys
path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
frames = [json.loads(line) for line in open(path) if line.strip()]
dets = sum(len(f["detections"]) for f in frames)
print(f"detections:  {path} (one JSON line per frame)")
print(f"summary:     {len(frames)} frames, {dets} detections, "
      f"{len(frames) / (end - start):.1f} frames/s (CPU, whole pipeline)")
PY
