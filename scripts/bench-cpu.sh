#!/bin/sh
# CPU benchmark for docs/performance.md: the engine and the PyTorch reference
# (Debian's python3-torch) on the same model files, same threads, side by
# side in one run. Models get seeded random weights (speed does not depend
# on the values). Usage: scripts/bench-cpu.sh [threads] [iterations]
set -eu
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
iterations=${2:-20}
models=build/bench-models
mkdir -p "$models"
[ -x build/engine/ssfpn ] || { meson setup build >/dev/null 2>&1 || true; meson compile -C build >/dev/null; }

for name in yolov5n yolov5n-ssfpn yolov5s-ssfpn; do
  [ -f "$models/$name.safetensors" ] || \
    /usr/bin/python3 tools/make_model.py "models/$name.yaml" --seed 1 \
      --imgsz 640 -o "$models/$name.safetensors" >/dev/null
done

for size in 320 640; do
  for name in yolov5n yolov5n-ssfpn yolov5s-ssfpn; do
    echo "### $name, ${size}x${size}"
    echo
    python3 tools/bench_compare.py "$models/$name.safetensors" \
      --ssfpn build/engine/ssfpn --batch 1 --size "$size" \
      --threads "$threads" --iterations "$iterations" --warmup 3
    echo
  done
done
