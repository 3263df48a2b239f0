#!/bin/sh
# The main command: installs what it needs, builds, renders a short clip of
# synthetic scenes (tools/make_dataset.py: the world the default model was
# trained on, with a seed it never saw) and runs a real GStreamer pipeline
# through the plugin with the built-in default model:
#
#   multifilesrc (JPEG scenes) ! jpegdec ! videoconvert (NV12)
#       ! ssfpndetect ! ssfpnoverlay ! tee
#       ├─ jpegenc ! avimux ! filesink      (annotated video)
#       └─ videorate (1 fps) ! pngenc ! multifilesink   (a few frames)
#
# An application reading the detection metadata in a pad probe
# (examples/detect-json.c) writes one JSON line per frame. Safe to run twice.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# Quiet when it works; the whole log when it does not.
mkdir -p build-logs
if ! { scripts/meson-setup-once.sh build && meson compile -C build; } \
    >build-logs/demo-build.log 2>&1; then
  cat build-logs/demo-build.log >&2
  echo "demo: the build failed (log above, also in build-logs/demo-build.log)" >&2
  exit 1
fi

model=default
out=build/demo
scenes=24
rm -rf "$out"
mkdir -p "$out"
export GST_PLUGIN_PATH="$PWD/build/gst"

echo "== the clip: $scenes synthetic scenes, 640x480 (seed 11)"
# Debian's interpreter: it has NumPy and PIL (install-deps.sh).
/usr/bin/python3 tools/make_dataset.py "$out/scenes" --count "$scenes" \
  --seed 11 --size 640,480 --workers "$(nproc)" >/dev/null

echo "== the model: build/engine/ssfpn info $model"
build/engine/ssfpn info "$model" >"$out/model-info.txt"
head -7 "$out/model-info.txt"

echo
echo "== the pipeline: scenes ! ssfpndetect ! ssfpnoverlay ! (video, PNG frames)"
start=$(date +%s.%N)
build/examples/detect-json "$model" \
  --source "multifilesrc location=$out/scenes/images/%06d.jpg \
      stop-index=$((scenes - 1)) caps=image/jpeg,framerate=2/1 \
    ! jpegdec ! videoconvert ! video/x-raw,format=NV12" \
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
