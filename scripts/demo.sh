#!/bin/sh
# The main command: installs what it needs, builds, and runs the engine on a
# small ssFPN model shipped with the tests — its layer table, then a forward
# pass with detections. Safe to run twice.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh

[ -d build/meson-private ] || meson setup build >/dev/null
meson compile -C build >/dev/null

model=tests/data/ssfpn.safetensors
input=tests/data/ssfpn.input.npy
out=build/demo
mkdir -p "$out"

echo "== ssfpn info $model"
build/engine/ssfpn info "$model"

echo
echo "== ssfpn run $model --input $input"
build/engine/ssfpn run "$model" --input "$input" \
  --output "$out/output.npy" --detections "$out/detections.json"

echo
echo "raw output:  $out/output.npy"
echo "detections:  $out/detections.json"
python3 - "$out/detections.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    item = json.loads(line)
    dets = item["detections"]
    print(f"{item['image']}: {len(dets)} detections", end="")
    if dets:
        best = dets[0]
        print(f"; best {best['label']} {best['confidence']:.2f} at "
              f"{[round(v, 1) for v in best['box']]}", end="")
    print()
PY
