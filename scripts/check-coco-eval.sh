#!/bin/sh
# `ssfpn eval` against pycocotools, from the repository root:
#
#   scripts/check-coco-eval.sh [BUILD_DIR]      (default build)
#
# Builds the `ssfpn` command in BUILD_DIR (configuring it if needed), makes a
# virtual environment BUILD_DIR/coco-eval-venv with pycocotools and numpy
# from PyPI (first run only; Debian's python3, nothing else from the
# system; install-deps.sh --tests brings python3-venv), then runs tools/check_coco_eval.py: random datasets and
# predictions of tests/data/baseline.safetensors, every figure compared
# within 1e-3. Scratch files go to BUILD_DIR/coco-eval-check. Extra
# arguments go to the Python script (--seed N, --images N, --model FILE).
set -eu
cd "$(dirname "$0")/.."

build=${1:-build}
[ $# -gt 0 ] && shift
venv=$build/coco-eval-venv
scripts/install-deps.sh --tests

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build"
fi
ninja -C "$build" engine/ssfpn

if [ ! -x "$venv/bin/python" ] \
   || ! "$venv/bin/python" -c "import pycocotools, numpy" 2>/dev/null; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet pycocotools numpy
fi

exec "$venv/bin/python" tools/check_coco_eval.py --ssfpn "$build/engine/ssfpn" \
  --work "$build/coco-eval-check" "$@"
