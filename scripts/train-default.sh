#!/bin/sh
# The default model, end to end: synthetic train/val/test sets with fixed
# seeds, yolov5n-ssfpn and the yolov5n baseline trained with the same recipe
# and budget, F16 model files exported, and (when the engine has `eval`)
# both evaluated on the held-out test set.  From the repository root:
#
#   scripts/train-default.sh [data|train|export|eval|all]     (default all)
#
# Settings (environment): WORK (build-train, git-ignored), TRAIN_COUNT
# (8000), VAL_COUNT (500), TEST_COUNT (1000), IMG (640), EPOCHS (40),
# BATCH (64), OPTIMIZER (SGD), WORKERS (cores - 1, at most 16),
# MAX_MINUTES (0 = no limit: stop each model cleanly after the epoch
# that passes it; run the script again to resume from WORK/runs/*/last.pt,
# which is how a run fits a machine lent for 10-minute commands).
# SSFPN (build/engine/ssfpn) is the engine used for `info` and `eval`;
# PYTHON picks the interpreter (default: the first with torch, PIL, yaml).
#
# Expected time.  Data: about 0.05 s an image a core (~1 min for the three
# sets on 16 cores).  Training is bound by the augmentation workers (mosaic
# in PIL, ~25-40 ms a 640x640 sample a core, measured on the 2-core
# development machine), so a 16-core GPU machine feeds roughly 400-600
# images/s: 8000 images x 40 epochs = 320k samples, about 10-15 minutes a
# model on one H100, both models 20-30 minutes (an estimate, not measured
# yet).  On the 2-core CPU of the development machine, yolov5n-ssfpn at
# --img 320, batch 16 ran 1.2-2.3 s an iteration (measured, smoke test of
# docs/default-model.md), so the full recipe there would take weeks:
# train on a GPU.
set -eu
cd "$(dirname "$0")/.."

stage=${1:-all}
work=${WORK:-build-train}
train_count=${TRAIN_COUNT:-8000}
val_count=${VAL_COUNT:-500}
test_count=${TEST_COUNT:-1000}
img=${IMG:-640}
epochs=${EPOCHS:-40}
batch=${BATCH:-64}
optimizer=${OPTIMIZER:-SGD}
max_minutes=${MAX_MINUTES:-0}
ssfpn=${SSFPN:-build/engine/ssfpn}
# Debian's python3-torch here; the GPU machine's own python3 holds torch 2.x.
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import torch, PIL, yaml' >/dev/null 2>&1 || py=python3
cores=$(nproc)
workers=${WORKERS:-$(( cores > 17 ? 16 : (cores > 1 ? cores - 1 : 1) ))}
data=$work/data
runs=$work/runs
models="yolov5n-ssfpn yolov5n"

make_set() {  # name count seed
  if [ -f "$data/$1/data.yaml" ] && \
     [ "$(ls "$data/$1/images" | wc -l)" -eq "$2" ]; then
    echo "== $data/$1: present ($2 images)"
    return
  fi
  echo "== $data/$1: $2 images, seed $3"
  rm -rf "$data/$1"
  "$py" tools/make_dataset.py "$data/$1" --count "$2" --seed "$3" \
    --size "$img" --workers "$cores"
}

stage_data() {
  make_set train "$train_count" 1
  make_set val "$val_count" 2
  make_set test "$test_count" 3  # held out: never seen in training
}

stage_train() {
  for name in $models; do
    out=$runs/$name
    resume=
    [ -f "$out/last.pt" ] && resume=--resume
    echo "== train $name -> $out $resume"
    "$py" tools/train.py --cfg "models/$name.yaml" --data "$data/train" \
      --val "$data/val" --out "$out" --img "$img" --epochs "$epochs" \
      --batch "$batch" --optimizer "$optimizer" --workers "$workers" \
      --cache --seed 0 --val-every 5 --max-minutes "$max_minutes" $resume
  done
}

stage_export() {
  mkdir -p "$runs/export"
  for name in $models; do
    cp "$runs/$name/model-f16.safetensors" "$runs/export/$name-shapes-f16.safetensors"
    echo "== $runs/export/$name-shapes-f16.safetensors"
    [ -x "$ssfpn" ] && "$ssfpn" info "$runs/export/$name-shapes-f16.safetensors" | tail -3
  done
}

stage_eval() {
  [ -x "$ssfpn" ] || { echo "no $ssfpn: build the engine first (README)" >&2; exit 1; }
  for name in $models; do
    for size in 640 416 320; do
      echo "== eval $name at $size on $data/test"
      "$ssfpn" eval "$runs/export/$name-shapes-f16.safetensors" "$data/test" \
        --size "$size" --json | tee "$runs/export/$name-test-$size.json"
    done
  done
}

case $stage in
  data) stage_data ;;
  train) stage_train ;;
  export) stage_export ;;
  eval) stage_eval ;;
  all) stage_data; stage_train; stage_export; stage_eval ;;
  *) echo "usage: $0 [data|train|export|eval|all]" >&2; exit 2 ;;
esac
