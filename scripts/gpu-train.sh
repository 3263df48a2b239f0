#!/bin/sh
# One slice of a training run on a machine with an NVIDIA GPU, sized for the
# device tool's commands (10 minutes each, a fresh machine after 30 s idle):
# the scenes are rendered there with every core (a pure function of their
# seed, so each slice on the same image renders the same ones again),
# training runs for MINUTES and stops cleanly after the epoch that passes
# them, and the run folder (last.pt, metrics, model files, log) comes back
# in $OUT as a tar archive cut in 15 MiB parts (the device tool returns no
# file over 16 MiB, and last.pt is about 23 MB), written when the slice
# ends, also when it is stopped with SIGTERM or SIGINT, plus train.log to
# read. The whole slice keeps within SLICE_S seconds (default 540, under
# the 10-minute limit: a SIGKILL there would lose the slice): training gets
# what rendering left, less a margin for an epoch that runs over, and is
# stopped with SIGTERM at SLICE_S; the last epoch's last.pt survives that
# (it is written aside and renamed). Set SLICE_S below the call's
# timeout_s, and below the device time left when a call came before. Carry the unpacked folder in the next call and it
# resumes where it stopped: the schedule (warm-up, cosine over EPOCHS) is
# the whole run's, not a slice's.
#
#   device tool:  run(carry=["build-train/gpu-run"], timeout_s=600,
#                     command="scripts/gpu-train.sh")
#   here, after:  mkdir -p build-train/gpu-run
#                 cat FILES_AT/run.tar.part-* | tar -x -C build-train/gpu-run
#                 (then carry it again; validate on val-fullsize, 300 scenes of
#                 seed 11 at 640, rendered once: scripts/train-default.sh data)
#                 build/engine/ssfpn eval build-train/gpu-run/model-f16.safetensors \
#                     build-train/data/val-fullsize        (choose on val, report on test)
#
# The machine needs torch with CUDA, torchvision, numpy, Pillow and PyYAML
# (the device tool's image has them all). On a CPU the same script runs too
# (DEVICE=cpu), which is how its plumbing was checked; see
# docs/default-model.md, "Training on a GPU".
#
# Settings (environment): RUN (build-train/gpu-run), CFG
# (models/yolov5n-ssfpn.yaml), INIT (the model file the run starts from:
# the committed default; "none" trains from scratch; ignored when RUN holds
# last.pt), EPOCHS (40), MINUTES (6, at most), SLICE_S (540), TRAIN_COUNT (16000), TRAIN_SEED (21:
# scenes no earlier run saw), VAL_COUNT (300) and VAL_SEED (11: the
# validation set of docs/default-model.md), IMG (640), BATCH (64, an
# optimiser step each), LR0 (0.002 from INIT, 0.01 from scratch),
# WARMUP_EPOCHS (0.5 from INIT, 3 from scratch), CLOSE_MOSAIC (2), SEED (23),
# WORKERS (cores - 2), DEVICE (auto), DATA (/tmp/ssfpn-gpu-data: outside
# the working tree, so it never travels).
set -eu
cd "$(dirname "$0")/.."

run=${RUN:-build-train/gpu-run}
cfg=${CFG:-models/yolov5n-ssfpn.yaml}
init=${INIT:-models/default/yolov5n-ssfpn-shapes-f16.safetensors}
epochs=${EPOCHS:-40}
minutes=${MINUTES:-6}
slice_s=${SLICE_S:-540}
train_count=${TRAIN_COUNT:-16000}
train_seed=${TRAIN_SEED:-21}
val_count=${VAL_COUNT:-300}
val_seed=${VAL_SEED:-11}
img=${IMG:-640}
batch=${BATCH:-64}
close_mosaic=${CLOSE_MOSAIC:-2}
seed=${SEED:-23}
device=${DEVICE:-auto}
data=${DATA:-/tmp/ssfpn-gpu-data}
cores=$(nproc)
workers=${WORKERS:-$(( cores > 3 ? cores - 2 : 1 ))}
if [ "$init" = none ]; then
  lr0=${LR0:-0.01}; warmup_epochs=${WARMUP_EPOCHS:-3}
else
  lr0=${LR0:-0.002}; warmup_epochs=${WARMUP_EPOCHS:-0.5}
fi
# Debian's python3-torch on the development machine; elsewhere the first
# python3 that has torch.
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import torch, torchvision, PIL, yaml' >/dev/null 2>&1 || py=python3
"$py" -c 'import torch, torchvision, PIL, yaml' || {
  echo "gpu-train: $py lacks one of torch, torchvision, Pillow, PyYAML" >&2
  exit 1
}
export PYTHONUNBUFFERED=1
mkdir -p "$run"
# With $OUT the run trains in a folder of its own, packed into $OUT at the
# end (send_back).
if [ -n "${OUT:-}" ]; then
  rm -rf /tmp/ssfpn-gpu-run
  mkdir -p /tmp/ssfpn-gpu-run
  cp -r "$run/." /tmp/ssfpn-gpu-run/
  run=/tmp/ssfpn-gpu-run
  send_back () {
    rm -f "$OUT"/run.tar.part-*
    tar -cf - -C "$run" . | split -b 15M - "$OUT/run.tar.part-"
    cp "$run/train.log" "$OUT/" 2>/dev/null || true
  }
  trap send_back EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
fi
log=$run/train.log

# A set is complete when it holds COUNT labels; a partial one (a slice
# killed while rendering) is rendered again from scratch.
render () {  # DIR COUNT SEED
  if [ "$(find "$1/labels" -name '*.txt' 2>/dev/null | wc -l)" -ne "$2" ]; then
    rm -rf "$1"
    "$py" tools/make_dataset.py "$1" --count "$2" --seed "$3" --size "$img" \
      --workers "$cores"
  fi
}

started=$(date +%s)
render "$data/train" "$train_count" "$train_seed"
render "$data/val" "$val_count" "$val_seed"
echo "gpu-train: scenes ready in $(( $(date +%s) - started )) s" | tee -a "$log"

set -- --cfg "$cfg" --data "$data/train" --val "$data/val" --out "$run" \
  --img "$img" --epochs "$epochs" --batch "$batch" --nominal-batch "$batch" \
  --workers "$workers" --device "$device" --seed "$seed" --lr0 "$lr0" \
  --warmup-epochs "$warmup_epochs" --close-mosaic "$close_mosaic" \
  --val-every 1
if [ -f "$run/last.pt" ]; then
  set -- "$@" --resume
elif [ "$init" != none ]; then
  set -- "$@" --init-weights "$init"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | tee -a "$log"
fi
# The time left to train: SLICE_S less what has gone, 30 s to pack the run
# and 120 s for the epoch that passes --max-minutes.
left=$(( started + slice_s - $(date +%s) - 30 ))
minutes=$(awk -v m="$minutes" -v l="$left" 'BEGIN { t = (l - 120) / 60; if (t < m) m = t; if (m < 0.1) m = 0.1; printf "%.2f", m }')
[ "$left" -gt 60 ] || { echo "gpu-train: only $left s left of SLICE_S $slice_s after rendering" >&2; exit 1; }
echo "gpu-train: training for at most $minutes min, stopped at $left s" | tee -a "$log"
set -- "$@" --max-minutes "$minutes"
status=0
timeout -k 10 "$left" "$py" tools/train.py "$@" 2>&1 | tee -a "$log" || status=1
# tee hides train.py's status: the log's last line says whether it ended.
tail -n 1 "$log" | grep -q '"model_files"' || status=1

echo "gpu-train: $(( $(date +%s) - started )) s in all, run in $run" >&2
exit $status
