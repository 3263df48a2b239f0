#!/bin/sh
# The default model, end to end: synthetic train/val/test sets with fixed
# seeds, yolov5n-ssfpn and the yolov5n baseline trained with the same recipe
# and budget, F16 model files exported, and (when the engine has `eval`)
# both evaluated on the held-out test set.  From the repository root:
#
#   scripts/train-default.sh [data|train|continue|refine|polish|fullsize|extend|export|eval|all]  (default all)
#   scripts/train-default.sh install    (the ssFPN model becomes the default)
#
# `train` gives both models the same short budget (the comparison in
# docs/default-model.md); `continue` trains the ssFPN model further, from
# the EMA weights of that run with a fresh warm-up and cosine schedule, into
# WORK/runs/yolov5n-ssfpn-long; `refine` trains that one again on twice the
# scenes (REFINE_COUNT), with a lower learning rate and its last epochs
# without mosaic, into WORK/runs/yolov5n-ssfpn-refine; `polish` trains the
# refined one again on new scenes (POLISH_COUNT of seed 4), with a lower
# learning rate still, into WORK/runs/yolov5n-ssfpn-polish; `fullsize`
# trains the polished one on whole scenes at the test's size (640x640, so
# it meets objects up to 60% of 640 px, which 320 scenes cannot hold),
# into WORK/runs/yolov5n-ssfpn-fullsize; `extend` trains the full-size one
# again on new 640 scenes (EXTEND_COUNT of seed 14), into
# WORK/runs/yolov5n-ssfpn-extend: the last of these runs that exists
# becomes the default model.
#
# Settings (environment), defaults = the run that made the committed model
# (docs/default-model.md): WORK (build-train, git-ignored), TRAIN_COUNT
# (8000), VAL_COUNT (300), TEST_COUNT (1000), TRAIN_IMG (320: the training
# and validation scenes are rendered at this size and trained on whole;
# the network is fully convolutional, so at 640 it meets objects of the
# same pixel sizes), TEST_IMG (640: the held-out scenes and the input size
# written into the model files), EPOCHS (8), WARMUP_EPOCHS (1), BATCH (16),
# NOMINAL_BATCH (16: an optimiser step every batch; YOLOv5's 64 makes a
# quarter of the steps, too few for a budget this short), OPTIMIZER (SGD),
# WORKERS (1), THREADS (torch CPU threads, 0 = all cores), MAX_MINUTES (0 =
# no limit: stop each model cleanly after the epoch that passes it; run the
# script again to resume from WORK/runs/*/last.pt, which is how a run fits a
# machine lent for 10-minute commands).  SSFPN (build/engine/ssfpn) is the
# engine used for `info` and `eval`; PYTHON picks the interpreter (default:
# the first with torch, PIL, yaml).  CONTINUE_EPOCHS (24) and
# CONTINUE_SEED (1: new augmentations, not a replay of the first run's)
# set the `continue` stage; REFINE_COUNT (16000 scenes, seed 1: the first
# 8000 are the training set's), REFINE_EPOCHS (8), REFINE_LR0 (0.005),
# REFINE_WARMUP_EPOCHS (0.5), REFINE_CLOSE_MOSAIC (2: epochs at the end on
# whole scenes at their own pixel sizes) and REFINE_SEED (5) the `refine`
# stage, which starts from the exported F16 model file of `continue`;
# POLISH_COUNT (16000 scenes of seed 4, none of them seen before),
# POLISH_EPOCHS (5), POLISH_LR0 (0.003), POLISH_WARMUP_EPOCHS (0.3),
# POLISH_CLOSE_MOSAIC (2) and POLISH_SEED (6) the `polish` stage, which
# starts from the exported F16 model file of `refine` (to polish the
# committed default without the earlier runs, copy
# models/default/yolov5n-ssfpn-shapes-f16.safetensors to
# WORK/runs/export/yolov5n-ssfpn-refine-shapes-f16.safetensors).
# FULLSIZE_COUNT (6000 scenes of seed 10 at TEST_IMG, validated on
# FULLSIZE_VAL_COUNT (300) of seed 11 at TEST_IMG), FULLSIZE_EPOCHS (3),
# FULLSIZE_LR0 (0.003), FULLSIZE_WARMUP_EPOCHS (0.2),
# FULLSIZE_CLOSE_MOSAIC (1) and FULLSIZE_SEED (7) the `fullsize` stage,
# which starts from the exported F16 model file of `polish` (likewise: copy
# the committed default to WORK/runs/export/yolov5n-ssfpn-polish-shapes-f16.safetensors).
# EXTEND_COUNT (8000 scenes of seed 14 at TEST_IMG, validated on the same
# 300 as `fullsize`), EXTEND_EPOCHS (3), EXTEND_LR0 (0.002),
# EXTEND_WARMUP_EPOCHS (0.2), EXTEND_CLOSE_MOSAIC (1) and EXTEND_SEED (8)
# the `extend` stage, which starts from the exported F16 model file of
# `fullsize` (to extend the committed default without the earlier runs,
# copy it to WORK/runs/export/yolov5n-ssfpn-fullsize-shapes-f16.safetensors).
#
# Measured time on the 2-core development machine (no GPU): data 1.5 min
# (about 4 min more for each 16000-scene set of refine and polish),
# yolov5n-ssfpn 5.5 min an epoch, yolov5n 3.3 min an epoch (2 threads, one
# augmentation worker, the machine otherwise idle), so about 70 minutes for
# both models, 126 minutes for the 24 epochs of `continue` and 178 for the
# 8 epochs of `refine` (on a slower day of the same machine type, 21 min an
# epoch of 16000 scenes), 114 for the 5 epochs of `polish`, 83 for the 3
# of `fullsize` (3.3 min more of data for its 6300 scenes at 640), 107 for
# the 3 of `extend` (4 min more of data for its 8000 scenes at 640); each
# `eval` of the test set at 640 takes 20-60 s.
# A GPU machine runs the same recipe (mixed precision) far faster; larger
# budgets (EPOCHS, CONTINUE_EPOCHS, REFINE_EPOCHS, TRAIN_COUNT) should then
# improve the figures.
set -eu
cd "$(dirname "$0")/.."

stage=${1:-all}
work=${WORK:-build-train}
train_count=${TRAIN_COUNT:-8000}
val_count=${VAL_COUNT:-300}
test_count=${TEST_COUNT:-1000}
train_img=${TRAIN_IMG:-320}
test_img=${TEST_IMG:-640}
epochs=${EPOCHS:-8}
warmup_epochs=${WARMUP_EPOCHS:-1}
batch=${BATCH:-16}
nominal_batch=${NOMINAL_BATCH:-16}
optimizer=${OPTIMIZER:-SGD}
threads=${THREADS:-0}
max_minutes=${MAX_MINUTES:-0}
ssfpn=${SSFPN:-build/engine/ssfpn}
# Debian's python3-torch here; the GPU machine's own python3 holds torch 2.x.
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import torch, PIL, yaml' >/dev/null 2>&1 || py=python3
cores=$(nproc)
workers=${WORKERS:-1}
data=$work/data
runs=$work/runs
continue_epochs=${CONTINUE_EPOCHS:-24}
continue_seed=${CONTINUE_SEED:-1}
refine_count=${REFINE_COUNT:-16000}
refine_epochs=${REFINE_EPOCHS:-8}
refine_lr0=${REFINE_LR0:-0.005}
refine_warmup_epochs=${REFINE_WARMUP_EPOCHS:-0.5}
refine_close_mosaic=${REFINE_CLOSE_MOSAIC:-2}
refine_seed=${REFINE_SEED:-5}
polish_count=${POLISH_COUNT:-16000}
polish_epochs=${POLISH_EPOCHS:-5}
polish_lr0=${POLISH_LR0:-0.003}
polish_warmup_epochs=${POLISH_WARMUP_EPOCHS:-0.3}
polish_close_mosaic=${POLISH_CLOSE_MOSAIC:-2}
polish_seed=${POLISH_SEED:-6}
fullsize_count=${FULLSIZE_COUNT:-6000}
fullsize_val_count=${FULLSIZE_VAL_COUNT:-300}
fullsize_epochs=${FULLSIZE_EPOCHS:-3}
fullsize_lr0=${FULLSIZE_LR0:-0.003}
fullsize_warmup_epochs=${FULLSIZE_WARMUP_EPOCHS:-0.2}
fullsize_close_mosaic=${FULLSIZE_CLOSE_MOSAIC:-1}
fullsize_seed=${FULLSIZE_SEED:-7}
extend_count=${EXTEND_COUNT:-8000}
extend_epochs=${EXTEND_EPOCHS:-3}
extend_lr0=${EXTEND_LR0:-0.002}
extend_warmup_epochs=${EXTEND_WARMUP_EPOCHS:-0.2}
extend_close_mosaic=${EXTEND_CLOSE_MOSAIC:-1}
extend_seed=${EXTEND_SEED:-8}
models="yolov5n-ssfpn yolov5n"
long=yolov5n-ssfpn-long
refine=yolov5n-ssfpn-refine
polish=yolov5n-ssfpn-polish
fullsize=yolov5n-ssfpn-fullsize
extend=yolov5n-ssfpn-extend
# The input size and validation set of the run being trained: the stages
# before `fullsize` train at TRAIN_IMG and validate on val.
img=$train_img
val_set=val

make_set() {  # name count seed size
  if [ -f "$data/$1/data.yaml" ] && \
     [ "$(ls "$data/$1/images" | wc -l)" -eq "$2" ]; then
    echo "== $data/$1: present ($2 images)"
    return
  fi
  echo "== $data/$1: $2 images, seed $3, $4x$4"
  rm -rf "$data/$1"
  "$py" tools/make_dataset.py "$data/$1" --count "$2" --seed "$3" \
    --size "$4" --workers "$cores"
}

stage_data() {
  make_set train "$train_count" 1 "$train_img"
  make_set val "$val_count" 2 "$train_img"
  make_set test "$test_count" 3 "$test_img"  # held out: never seen in training
  make_set train-refine "$refine_count" 1 "$train_img"
  make_set train-polish "$polish_count" 4 "$train_img"
  make_set train-fullsize "$fullsize_count" 10 "$test_img"
  make_set val-fullsize "$fullsize_val_count" 11 "$test_img"
  make_set train-extend "$extend_count" 14 "$test_img"
}

train_one() {  # config out epochs seed train-set warm-up [train.py options...]
  cfg=$1 out=$2 n=$3 seed=$4 set=$5 warm=$6
  shift 6
  resume=
  [ -f "$out/last.pt" ] && resume=--resume
  echo "== train $cfg -> $out $resume"
  "$py" tools/train.py --cfg "models/$cfg.yaml" --data "$data/$set" \
    --val "$data/$val_set" --out "$out" --img "$img" --export-size "$test_img" \
    --epochs "$n" --warmup-epochs "$warm" --batch "$batch" \
    --nominal-batch "$nominal_batch" \
    --optimizer "$optimizer" --workers "$workers" --threads "$threads" \
    --cache --seed "$seed" --val-every 2 --max-minutes "$max_minutes" $resume "$@"
}

stage_train() {
  for name in $models; do
    train_one "$name" "$runs/$name" "$epochs" 0 train "$warmup_epochs"
  done
}

stage_continue() {
  [ -f "$runs/yolov5n-ssfpn/last.pt" ] || {
    echo "no $runs/yolov5n-ssfpn/last.pt: run the train stage first" >&2; exit 1; }
  train_one yolov5n-ssfpn "$runs/$long" "$continue_epochs" "$continue_seed" \
    train "$warmup_epochs" --init-weights "$runs/yolov5n-ssfpn/last.pt"
}

# A run of yolov5n-ssfpn that starts from the exported F16 model file of an
# earlier one (made by that one's stage, then export).
train_from_export() {  # from stage out epochs seed train-set warm-up lr0 close-mosaic
  start=$runs/export/$1-shapes-f16.safetensors
  [ -f "$start" ] || {
    echo "no $start: run the $2 and export stages first" >&2; exit 1; }
  train_one yolov5n-ssfpn "$runs/$3" "$4" "$5" "$6" "$7" \
    --init-weights "$start" --lr0 "$8" --close-mosaic "$9"
}

stage_refine() {
  train_from_export "$long" continue "$refine" "$refine_epochs" \
    "$refine_seed" train-refine "$refine_warmup_epochs" "$refine_lr0" \
    "$refine_close_mosaic"
}

stage_polish() {
  train_from_export "$refine" refine "$polish" "$polish_epochs" \
    "$polish_seed" train-polish "$polish_warmup_epochs" "$polish_lr0" \
    "$polish_close_mosaic"
}

# train_from_export on 640 scenes at input TEST_IMG, validated at 640.
train_at_test_size() {  # the arguments of train_from_export
  img=$test_img val_set=val-fullsize
  train_from_export "$@"
  img=$train_img val_set=val
}

stage_fullsize() {
  train_at_test_size "$polish" polish "$fullsize" "$fullsize_epochs" \
    "$fullsize_seed" train-fullsize "$fullsize_warmup_epochs" "$fullsize_lr0" \
    "$fullsize_close_mosaic"
}

stage_extend() {
  train_at_test_size "$fullsize" fullsize "$extend" "$extend_epochs" \
    "$extend_seed" train-extend "$extend_warmup_epochs" "$extend_lr0" \
    "$extend_close_mosaic"
}

# The runs that exist: the long, refined, polished, full-size and extended
# ones once their stages made them.
trained_models() {
  for name in $models $long $refine $polish $fullsize $extend; do
    [ -f "$runs/$name/model-f16.safetensors" ] && echo "$name"
  done
  return 0
}

stage_export() {
  mkdir -p "$runs/export"
  for name in $(trained_models); do
    cp "$runs/$name/model-f16.safetensors" "$runs/export/$name-shapes-f16.safetensors"
    echo "== $runs/export/$name-shapes-f16.safetensors"
    [ -x "$ssfpn" ] && "$ssfpn" info "$runs/export/$name-shapes-f16.safetensors" | tail -3
  done
}

stage_eval() {
  [ -x "$ssfpn" ] || { echo "no $ssfpn: build the engine first (README)" >&2; exit 1; }
  for name in $(trained_models); do
    for size in 640 416 320; do
      echo "== eval $name at $size on $data/test"
      "$ssfpn" eval "$runs/export/$name-shapes-f16.safetensors" "$data/test" \
        --size "$size" --json | tee "$runs/export/$name-test-$size.json"
    done
  done
}

# The ssFPN model (the last of the long, refined, polished, full-size and
# extended runs that exists) becomes the one compiled into the library
# (engine/data/).
stage_install() {
  name=yolov5n-ssfpn
  for run in $long $refine $polish $fullsize $extend; do
    [ -f "$runs/export/$run-shapes-f16.safetensors" ] && name=$run
  done
  cp "$runs/export/$name-shapes-f16.safetensors" \
    models/default/yolov5n-ssfpn-shapes-f16.safetensors
  echo "== $name"
  echo "== models/default/yolov5n-ssfpn-shapes-f16.safetensors (rebuild to embed it)"
}

case $stage in
  data) stage_data ;;
  train) stage_train ;;
  continue) stage_continue ;;
  refine) stage_refine ;;
  polish) stage_polish ;;
  fullsize) stage_fullsize ;;
  extend) stage_extend ;;
  export) stage_export ;;
  eval) stage_eval ;;
  install) stage_install ;;
  all) stage_data; stage_train; stage_continue; stage_export; stage_refine
       stage_export; stage_polish; stage_export; stage_fullsize; stage_export
       stage_extend; stage_export; stage_eval ;;
  *) echo "usage: $0 [data|train|continue|refine|polish|fullsize|extend|export|eval|install|all]" >&2; exit 2 ;;
esac
