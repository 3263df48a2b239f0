#!/bin/sh
# The export path (tools/export.py) checked against the real YOLOv5 code:
# the `yolov5` package from PyPI (v7.0) in a virtual environment on top of
# Debian's torch, installed --no-deps with only the packages its
# `import yolov5.models.yolo` needs.  Builds YOLOv5 models (its own
# configurations and ours with either ssFPN neck), saves checkpoints as
# train.py does, exports them and compares `ssfpn run` with PyTorch.
# Needs PyPI, so it is not part of CI.
# Usage: scripts/check-yolov5-export.sh [extra options of tools/check_yolov5_export.py]
set -eu
cd "$(dirname "$0")/.."
venv=build/yolov5-venv
scripts/install-deps.sh --tests   # Debian's torch, python3-venv

if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# Pinned: newer releases of these need numpy >= 1.25 / 2.0, and Debian
# bookworm's torch comes with numpy 1.24.  Everything else the import needs
# (torch, numpy, yaml, PIL, requests, psutil) is Debian's.
if ! "$venv/bin/python" -c 'import yolov5.models.yolo' >/dev/null 2>&1; then
  "$venv/bin/pip" install --quiet --no-deps \
    yolov5==7.0.14 ultralytics==8.4.190 opencv-python-headless==4.10.0.84 \
    pandas==2.0.3 pytz tqdm matplotlib==3.8.4 packaging cycler kiwisolver \
    seaborn==0.13.2
fi

ssfpn=${SSFPN:-}
if [ -z "$ssfpn" ]; then
  if [ -x build/engine/ssfpn ]; then
    ssfpn=build/engine/ssfpn
  else
    [ -d build-export ] || meson setup build-export -Dcuda=disabled -Dgst=disabled >/dev/null
    ninja -C build-export -j2 engine/ssfpn >/dev/null
    ssfpn=build-export/engine/ssfpn
  fi
fi

exec "$venv/bin/python" tools/check_yolov5_export.py --ssfpn "$ssfpn" \
  --json build/yolov5-check/results.json "$@"
