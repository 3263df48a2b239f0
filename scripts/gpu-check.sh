#!/bin/sh
# The GPU checks and benchmarks, for a machine with an NVIDIA GPU: the
# device tool's machine (bare image: CUDA 13, PyTorch 2.11 with cuDNN 9 in
# its pip packages, meson and ninja, no GStreamer, no internet) or any
# workstation. Everything is built HERE and carried:
#
#   here, once:   meson setup build-cuda && ninja -C build-cuda -j2
#                 scripts/fetch-gst-runtime.sh build-cuda   (-> .gst-runtime/)
#   device tool:  three calls, each well inside the 10-minute limit:
#     run(carry=["build-cuda", ".gst-runtime"], timeout_s=600,
#         command="scripts/gpu-check.sh build-cuda test")
#     run(carry=["build-cuda", ".gst-runtime"], timeout_s=600,
#         command="scripts/gpu-check.sh build-cuda bench")
#     run(carry=["build-cuda", ".gst-runtime"], timeout_s=600,
#         command="scripts/gpu-check.sh build-cuda gst")
#   (or STAGE "all" on a workstation). Each stage writes one log,
#   STAGE.log (and bench the raw numbers, bench-MODEL.json), to $OUT (the
#   device tool's output folder, which returns at most 8 files) when set,
#   else to BUILD_DIR/gpu-check; longer logs stay in /tmp/ssfpn-logs.
#
# Stages:
#   test   GPU, driver, CUDA and cuDNN versions; the whole test suite, where
#          test-cuda must really run (77 = no GPU = failure);
#          compute-sanitizer memcheck over test-cuda (graphs and eager); the
#          engine cache: a second start must take every engine from it.
#   bench  yolov5s and yolov5s-ssfpn (random weights, tools/make_model.py)
#          at 640: tools/bench_gpu.py (this engine's scopes A, B, C against
#          PyTorch eager FP16 and torch.compile max-autotune, batch 1, 8, 32)
#          and Nsight Compute's summary of one scope-A batch-1 run.
#   gst    scripts/bench-gst.sh: 1080p NV12 through ssfpndetect device=cuda,
#          batch 1, 8, 32.
set -eu
cd "$(dirname "$0")/.."

build=${1:-build-cuda}
stage=${2:-all}
cuda=${CUDA_PATH:-/usr/local/cuda}
out=${OUT:-$build/gpu-check}
runtime=/tmp/ssfpn-runtime
logs=/tmp/ssfpn-logs
mkdir -p "$out" "$logs"

# ---- environment -----------------------------------------------------------

# cuDNN: $CUDNN_LIB, the toolkit's, or the one inside PyTorch's pip packages
# (nvidia.cudnn is a namespace package: __path__, not __file__).
cudnn_lib=${CUDNN_LIB:-}
if [ -z "$cudnn_lib" ] && ! ls "$cuda"/lib64/libcudnn.so.9* >/dev/null 2>&1; then
  cudnn_lib=$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
fi
libs=""
for dir in "$cuda/lib64" "$cuda/lib" $cudnn_lib; do
  [ -d "$dir" ] && libs="$libs${libs:+:}$dir"
done

# GStreamer and the Debian libraries carried in .gst-runtime/: unpacked
# apart from /, and only the sonames this system lacks are put on the path
# (its own glibc-era libraries are newer and stay in charge).
if [ -d .gst-runtime ] && [ ! -d "$runtime/lib" ]; then
  mkdir -p "$runtime/root" "$runtime/lib"
  for deb in .gst-runtime/*.deb; do dpkg -x "$deb" "$runtime/root"; done
  for lib in "$runtime"/root/usr/lib/x86_64-linux-gnu/*.so.* \
             "$runtime"/root/lib/x86_64-linux-gnu/*.so.*; do
    [ -e "$lib" ] || continue
    name=$(basename "$lib")
    ldconfig -p | grep -q "[[:space:]]$name[[:space:]]" \
      || ln -sf "$lib" "$runtime/lib/$name"
  done
fi
if [ -d "$runtime/lib" ]; then
  libs="$libs:$runtime/lib"
  export GST_PLUGIN_SYSTEM_PATH="$runtime/root/usr/lib/x86_64-linux-gnu/gstreamer-1.0"
  export GST_PLUGIN_SCANNER="$runtime/root/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner"
  export GST_LAUNCH="$runtime/root/usr/bin/gst-launch-1.0"
fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GST_PLUGIN_PATH="$PWD/$build/gst"
export GST_REGISTRY="$runtime/registry.bin"
export PATH="$cuda/bin:$PATH"

# The build was configured elsewhere: its absolute source path must exist.
source_dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' \
  "$build/meson-info/meson-info.json")
if [ "$source_dir" != "$PWD" ] && [ ! -e "$source_dir" ]; then
  mkdir -p "$(dirname "$source_dir")"
  ln -s "$PWD" "$source_dir"
fi
grep -q "HAVE_CUDA 1" "$build/buildconfig.h" || {
  echo "$build was configured without CUDA (HAVE_CUDA 0)" >&2; exit 1; }
ssfpn="$PWD/$build/engine/ssfpn"

# ---- stages ------------------------------------------------------------------

# run_test NAME COMMAND...: one line per test; the log in $logs.
run_test () {
  name=$1
  shift
  status=0
  "$@" >"$logs/$name.txt" 2>&1 || status=$?
  case $status in
    0) result=ok ;;
    77) result=SKIP ;;
    *) result="FAIL ($status)"; failures="$failures $name"
       tail -20 "$logs/$name.txt" | sed 's/^/    /' ;;
  esac
  echo "$name: $result -- $(tail -1 "$logs/$name.txt")"
}

stage_test () {
  echo "== GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv | tee "$logs/gpu.txt" || { echo "no nvidia-smi: no GPU here" >&2; exit 1; }
  { nvcc --version | tail -1; echo "cuDNN from: ${cudnn_lib:-$cuda}";
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'; } \
    | tee -a "$logs/gpu.txt" || true

  echo "== test suite (each program run directly: the carried build's meson"
  echo "   may differ from this machine's)"
  export SSFPN_TEST_DATA="$PWD/tests/data" SSFPN_CLI="$ssfpn"
  failures=""
  for t in "$build"/tests/test-*; do
    [ -x "$t" ] && [ -f "$t" ] && run_test "$(basename "$t")" "$t"
  done
  run_test cli sh tests/test_cli.sh "$ssfpn"
  run_test detect sh tests/test_detect.sh "$ssfpn"
  # The element's tests: our plugin and the carried base plugins only.
  for t in "$build"/tests/gst/test-*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    GST_PLUGIN_SYSTEM_PATH_1_0= GST_REGISTRY_FORK=no \
      GST_PLUGIN_PATH_1_0="$PWD/$build/gst:${GST_PLUGIN_SYSTEM_PATH:-}" \
      GST_REGISTRY_1_0="$runtime/registry-$(basename "$t").bin" \
      run_test "$(basename "$t")" "$t"
  done
  [ -z "$failures" ] || echo "FAILED:$failures (logs in $logs)"

  echo "== test-cuda (must run, not skip)"
  status=0
  XDG_CACHE_HOME=/tmp/ssfpn-test-cache \
    "$build/tests/test-cuda" >"$logs/test-cuda-again.txt" 2>&1 || status=$?
  tail -60 "$logs/test-cuda-again.txt"
  if [ "$status" -ne 0 ]; then
    [ "$status" -eq 77 ] && echo "test-cuda skipped: the GPU does not work here" >&2
    exit 1
  fi

  echo "== engine cache: the second start must take every engine from it"
  model=tests/data/baseline.safetensors
  rm -rf /tmp/ssfpn-cache-check
  for start in first second; do
    t0=$(date +%s.%N)
    XDG_CACHE_HOME=/tmp/ssfpn-cache-check G_MESSAGES_DEBUG=ssfpn-cuda \
      "$ssfpn" bench "$model" --device cuda --batch 1 --iterations 1 \
      --warmup 0 --size 640 >"$logs/cache-$start.txt" 2>&1
    t1=$(date +%s.%N)
    counts=$(sed -n 's/.* \([0-9][0-9]*\) of \([0-9][0-9]*\) convolutions took.*/\1 \2/p' \
      "$logs/cache-$start.txt" | tail -1)
    echo "$start start: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s," \
      "engines from the cache (of all): ${counts:-none reported}"
  done
  set -- $counts
  [ $# -eq 2 ] && [ "$1" -gt 0 ] && [ "$1" -eq "$2" ] \
    || { echo "the second start did not take every engine from the cache" >&2; exit 1; }

  echo "== compute-sanitizer memcheck"
  if command -v compute-sanitizer >/dev/null 2>&1; then
    # Eager runs too, so the sanitizer sees every kernel launch by itself.
    SSFPN_TEST_DATA="$PWD/tests/data" SSFPN_CUDA_GRAPH=0 SSFPN_CUDA_CACHE=0 \
      compute-sanitizer --tool memcheck --error-exitcode 1 --leak-check full \
      "$build/tests/test-cuda" >"$logs/memcheck.txt" 2>&1 \
      || { tail -50 "$logs/memcheck.txt"; exit 1; }
    SSFPN_TEST_DATA="$PWD/tests/data" SSFPN_CUDA_CACHE=0 \
      compute-sanitizer --tool memcheck --error-exitcode 1 \
      "$build/tests/test-cuda" >"$logs/memcheck-graph.txt" 2>&1 \
      || { tail -50 "$logs/memcheck-graph.txt"; exit 1; }
    tail -3 "$logs/memcheck.txt"
    tail -3 "$logs/memcheck-graph.txt"
  else
    echo "compute-sanitizer not found in $cuda/bin: memcheck NOT run"
  fi
}

make_models () {
  mkdir -p /tmp/ssfpn-models
  for name in yolov5s yolov5s-ssfpn; do
    [ -f "/tmp/ssfpn-models/$name.safetensors" ] \
      || python3 tools/make_model.py "models/$name.yaml" \
           -o "/tmp/ssfpn-models/$name.safetensors" --seed 1 >/dev/null
  done
}

stage_bench () {
  make_models
  export XDG_CACHE_HOME=/tmp/ssfpn-bench-cache
  for name in yolov5s yolov5s-ssfpn; do
    echo "== bench $name"
    PYTHONUNBUFFERED=1 python3 tools/bench_gpu.py \
      "/tmp/ssfpn-models/$name.safetensors" --ssfpn "$ssfpn" --size 640 \
      --batch 1,8,32 --json "$out/bench-$name.json"
  done
  echo "== Nsight Compute: scope A, batch 1, yolov5s-ssfpn"
  if command -v ncu >/dev/null 2>&1; then
    SSFPN_CUDA_GRAPH=0 timeout 240 ncu --target-processes all \
      --print-summary per-kernel --launch-skip 200 --launch-count 200 \
      "$ssfpn" bench /tmp/ssfpn-models/yolov5s-ssfpn.safetensors \
      --device cuda --precision fp16 --batch 1 --iterations 3 --warmup 1 \
      >"$logs/ncu.txt" 2>&1 || echo "ncu did not finish"
    tail -60 "$logs/ncu.txt"
  fi
}

stage_gst () {
  make_models
  export XDG_CACHE_HOME=/tmp/ssfpn-bench-cache
  [ -n "${GST_LAUNCH:-}" ] || { echo "no .gst-runtime carried: run scripts/fetch-gst-runtime.sh here first" >&2; exit 1; }
  echo "== GStreamer: 1080p NV12 -> ssfpndetect device=cuda -> fakesink"
  "$GST_LAUNCH" --version | head -1
  scripts/bench-gst.sh /tmp/ssfpn-models/yolov5s-ssfpn.safetensors cuda \
    "1 8 32" 3000
}

# One stage, its output also in $out/STAGE.log; the exit status is the
# stage's.
run_stage () {
  status_file=$logs/status-$1
  echo 1 >"$status_file"
  { "stage_$1" && echo 0 >"$status_file"; } 2>&1 | tee "$out/$1.log"
  [ "$(cat "$status_file")" -eq 0 ] || { echo "== $1: FAILED"; exit 1; }
  echo "== $1: done"
}

case $stage in
  test|bench|gst) run_stage "$stage" ;;
  all) run_stage test; run_stage bench; run_stage gst ;;
  *) echo "unknown stage $stage (test, bench, gst, all)" >&2; exit 2 ;;
esac
