#!/bin/sh
# The GPU checks and benchmarks, for a machine with an NVIDIA GPU: the
# device tool's machine (bare image: CUDA 13, PyTorch 2.11 with cuDNN 9 in
# its pip packages, no GStreamer, no internet) or any workstation.
# Everything is built HERE and carried:
#
#   here, once:   scripts/test.sh  (builds build/ with CUDA where nvcc is)
#                 scripts/pack-gpu-carry.sh build   (-> .gpu-carry/)
#   device tool:  one call, its work cut to fit DEADLINE (default 330 s):
#     run(carry=[".gpu-carry"], timeout_s=400,
#         command="scripts/gpu-check.sh")
#   then give_back. After a fix (rebuild, pack again), a second call with
#   one stage and a short deadline, e.g.
#     run(carry=[".gpu-carry"], timeout_s=200,
#         command="DEADLINE=150 scripts/gpu-check.sh test")
#
# The device tool lends 15 minutes a session and each fresh machine costs
# 1-2 minutes to start (it goes back 30 s after a call; none starts with
# under 4 minutes left), so the default stage "all" does the checks in the
# order they matter and leaves out, with a line saying so, what would pass
# DEADLINE seconds from its start: about 8 minutes for the first call,
# which leaves about 3 for a second. Each step has its own time limit. What comes back in $OUT (else BUILD_DIR/gpu-check):
# gpu-check.log (everything printed), bench-MODEL.json, bench-compile.json
# and logs.tar.gz (every step's whole log, from /tmp/ssfpn-logs).
#
#   scripts/gpu-check.sh [BUILD_DIR] [STAGE]     (default: the carried build,
#                                                 unpacked in .gpu-carry/unpacked; all)
#   scripts/gpu-check.sh STAGE
#
# Steps, in the order "all" runs them (STAGE test, bench or gst runs its own):
#   test   the environment (every library the build loads is found, GPU,
#          driver, CUDA and cuDNN versions, cuDNN not older than the build's
#          headers); test-cuda, which must run (77 = no GPU = failure); the
#          rest of the test suite, in parallel; the engine cache (a second
#          start takes every engine from it)
#   bench  yolov5s and yolov5s-ssfpn (random weights, tools/make_model.py)
#          at 640: tools/bench_gpu.py (this engine's scopes A, B, C against
#          PyTorch eager FP16, batch 1, 8, 32)
#   gst    scripts/bench-gst.sh: 1080p NV12 through ssfpndetect device=cuda,
#          batch 1, 8, 32
#   then, in "all" and "test": compute-sanitizer memcheck over test-cuda
#          (eager, then graphs; one engine candidate per convolution); in
#          "all" and "bench": torch.compile max-autotune at batch 32 and
#          Nsight Compute's summary of one scope-A batch-1 run.
set -eu
cd "$(dirname "$0")/.."

carried=.gpu-carry
case ${1:-} in
  test|bench|gst|all) build= stage=$1 ;;
  *) build=${1:-} stage=${2:-all} ;;
esac
deadline=${DEADLINE:-330}
cuda=${CUDA_PATH:-/usr/local/cuda}
runtime=/tmp/ssfpn-runtime
logs=/tmp/ssfpn-logs
started=$(date +%s)
# A warm machine keeps /tmp: this call's logs only.
rm -rf "$logs"
mkdir -p "$logs"
# The test programs read English error messages, as under meson.
export LC_ALL=C.UTF-8

case $stage in
  test|bench|gst|all) ;;
  *) echo "unknown stage $stage (test, bench, gst, all)" >&2; exit 2 ;;
esac

# ---- the carried build and runtime --------------------------------------------

# Without BUILD_DIR the carried build, unpacked into a folder of its own
# (never over a build folder of the checkout), and again whenever the
# archive differs from the one unpacked: a warm machine keeps the last
# call's folder, which git ignores.
if [ -z "$build" ] && [ -f "$carried/build.tar.xz" ]; then
  build=$carried/unpacked
  stamp=$(cksum <"$carried/build.tar.xz")
  if [ "$(cat "$build/.carried" 2>/dev/null || true)" != "$stamp" ]; then
    rm -rf "$build" "$runtime"
    mkdir -p "$build"
    tar -xJf "$carried/build.tar.xz" -C "$build" \
      || { echo "cannot unpack $carried/build.tar.xz" >&2; exit 1; }
    echo "$stamp" >"$build/.carried"
  fi
fi
build=${build:-build}
out=${OUT:-$build/gpu-check}
[ -f "$build/buildconfig.h" ] || {
  echo "no build in $build: run scripts/pack-gpu-carry.sh here and carry .gpu-carry" >&2; exit 1; }
grep -q "HAVE_CUDA 1" "$build/buildconfig.h" || {
  echo "$build was configured without CUDA (HAVE_CUDA 0)" >&2; exit 1; }
mkdir -p "$out"

# The build was configured elsewhere: its absolute source path must exist
# (test programs find tests/data through it).
source_dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' \
  "$build/meson-info/meson-info.json")
if [ "$source_dir" != "$PWD" ] && [ ! -e "$source_dir" ]; then
  mkdir -p "$(dirname "$source_dir")"
  ln -s "$PWD" "$source_dir"
fi

# cuDNN and the CUDA libraries: $CUDNN_LIB, the toolkit's, then every lib
# folder of PyTorch's nvidia pip packages (cuDNN in nvidia/cudnn/lib; with
# CUDA 13 the runtime and cuBLAS in nvidia/cu13/lib). nvidia is a namespace
# package: __path__, not __file__.
libs=""
for dir in ${CUDNN_LIB:-} "$cuda/lib64" "$cuda/lib" $(python3 -c '
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
for root in nvidia.__path__:
    for lib in sorted(glob.glob(os.path.join(root, "*", "lib"))):
        print(lib)' 2>/dev/null); do
  [ -d "$dir" ] && libs="$libs${libs:+:}$dir"
done

# GStreamer and the Debian libraries: unpacked apart from /, and only the
# sonames this system lacks go on the path (its own glibc-era libraries are
# newer and stay in charge). Only the plugins the tests and benchmarks use
# are registered: the others would warn about libraries not carried.
debs=$carried/debs
[ -d "$debs" ] || debs=.gst-runtime
if [ -d "$debs" ] && [ ! -d "$runtime/lib" ]; then
  mkdir -p "$runtime/root" "$runtime/lib" "$runtime/plugins"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$runtime/root"; done
  for lib in "$runtime"/root/usr/lib/x86_64-linux-gnu/*.so.* \
             "$runtime"/root/lib/x86_64-linux-gnu/*.so.*; do
    [ -e "$lib" ] || continue
    name=$(basename "$lib")
    ldconfig -p | grep -q "[[:space:]]$name[[:space:]]" \
      || ln -sf "$lib" "$runtime/lib/$name"
  done
  for plugin in coreelements videotestsrc app videoconvertscale; do
    ln -sf "$runtime/root/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgst$plugin.so" \
      "$runtime/plugins/"
  done
  # The overlay's text: the carried DejaVu fonts.
  cat >"$runtime/fonts.conf" <<EOF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>$runtime/root/usr/share/fonts</dir>
  <cachedir>$runtime/fontconfig-cache</cachedir>
</fontconfig>
EOF
fi
if [ -d "$runtime/lib" ]; then
  libs="$libs:$runtime/lib"
  export GST_PLUGIN_SYSTEM_PATH="$runtime/plugins"
  export GST_PLUGIN_SCANNER="$runtime/root/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner"
  export GST_LAUNCH="$runtime/root/usr/bin/gst-launch-1.0"
  export FONTCONFIG_FILE="$runtime/fonts.conf"
fi
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GST_PLUGIN_PATH="$PWD/$build/gst"
export GST_REGISTRY="$runtime/registry.bin"
export PATH="$cuda/bin:$PATH"
export PYTHONUNBUFFERED=1
ssfpn="$PWD/$build/engine/ssfpn"

# ---- helpers --------------------------------------------------------------------

left () { echo $(( started + deadline - $(date +%s) )); }

# fits SECONDS WHAT: whether WHAT, which needs about SECONDS, fits before
# the deadline; says so when it does not.
fits () {
  if [ "$(left)" -ge "$1" ]; then return 0; fi
  echo "-- $2: NOT run ($1 s needed, $(left) s left of DEADLINE $deadline)"
  return 1
}

# limit SECONDS: SECONDS, or what is left before the deadline if less.
limit () { l=$(left); [ "$l" -lt 1 ] && l=1; [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }

# ---- steps ------------------------------------------------------------------------
# Each returns 1 on a failure by itself: set -e does not reach into a
# function called where its status is tested.

step_environment () {
  echo "== environment"
  missing=$(for f in "$ssfpn" "$build"/engine/libssfpn.so* "$build"/gst/libgstssfpn.so \
                     "$build"/tests/test-cuda; do
              ldd "$f" | sed -n "s|^[[:space:]]*\([^ ]*\) => not found|$(basename "$f"): \1|p"
            done)
  if [ -n "$missing" ]; then
    echo "libraries not found (LD_LIBRARY_PATH=$LD_LIBRARY_PATH):"
    echo "$missing"
    return 1
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv,noheader || { echo "no nvidia-smi: no GPU here"; return 1; }
  nvcc --version | tail -1 || true
  if [ -f "$carried/build-info.txt" ]; then sed 's/^/built: /' "$carried/build-info.txt"; fi
  cudnn_path=$(ldd "$ssfpn" | sed -n 's/.*libcudnn.so.9 => \([^ ]*\).*/\1/p')
  echo "cuDNN loaded from: $cudnn_path"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' || true
  # cuDNN 9 runs programs built against an older 9.x, not always a newer.
  built=$(sed -n 's/^cudnn 9\.\([0-9]*\).*/\1/p' "$carried/build-info.txt" 2>/dev/null || true)
  here=$(python3 -c 'import torch; print(torch.backends.cudnn.version() // 100 % 100)' 2>/dev/null || true)
  if [ -n "$built" ] && [ -n "$here" ] && [ "$here" -lt "$built" ]; then
    echo "WARNING: built against cuDNN 9.$built, PyTorch's cuDNN here is 9.$here:" \
         "an error naming a missing cuDNN feature may come from that"
  fi
}

step_test_cuda () {
  echo "== test-cuda (must run, not skip)"
  status=0
  SSFPN_TEST_DATA="$PWD/tests/data" XDG_CACHE_HOME=/tmp/ssfpn-test-cache \
    timeout -k 10 "$(limit 180)" "$build/tests/test-cuda" >"$logs/test-cuda.txt" 2>&1 || status=$?
  tail -40 "$logs/test-cuda.txt"
  case $status in
    0) echo "test-cuda: ok" ;;
    77) echo "test-cuda skipped: the GPU does not work here"; return 1 ;;
    124) echo "test-cuda: timed out"; return 1 ;;
    *) echo "test-cuda: FAILED ($status)"; return 1 ;;
  esac
}

# One test program in the background: its log and exit status in $logs.
start_test () { # NAME COMMAND...
  name=$1
  shift
  ( status=0
    timeout -k 10 "$(limit 240)" "$@" >"$logs/$name.txt" 2>&1 || status=$?
    echo "$status" >"$logs/$name.status" ) &
  names="$names $name"
}

step_suite () {
  echo "== the rest of the test suite, in parallel (each program run directly:"
  echo "   the carried build's meson may differ from this machine's)"
  export SSFPN_TEST_DATA="$PWD/tests/data" SSFPN_CLI="$ssfpn" LC_ALL=C.UTF-8
  names=""
  for t in "$build"/tests/test-*; do
    if [ -x "$t" ] && [ -f "$t" ] && [ "$(basename "$t")" != test-cuda ]; then
      start_test "$(basename "$t")" "$t"
    fi
  done
  start_test cli sh tests/test_cli.sh "$ssfpn"
  start_test detect sh tests/test_detect.sh "$ssfpn"
  # The element's tests: our plugin and the carried base plugins only.
  for t in "$build"/tests/gst/test-*; do
    if [ -x "$t" ] && [ -f "$t" ]; then
      GST_PLUGIN_SYSTEM_PATH_1_0= GST_REGISTRY_FORK=no \
        GST_PLUGIN_PATH_1_0="$PWD/$build/gst:${GST_PLUGIN_SYSTEM_PATH:-}" \
        GST_REGISTRY_1_0="$runtime/registry-$(basename "$t").bin" \
        start_test "$(basename "$t")" "$t"
    fi
  done
  wait
  failures=""
  for name in $names; do
    status=$(cat "$logs/$name.status")
    case $status in
      0) result=ok ;;
      77) result=SKIP ;;
      124) result="TIMED OUT"; failures="$failures $name" ;;
      *) result="FAIL ($status)"; failures="$failures $name" ;;
    esac
    echo "$name: $result -- $(tail -1 "$logs/$name.txt")"
    case $result in
      ok|SKIP) ;;
      *) tail -20 "$logs/$name.txt" | sed 's/^/    /' ;;
    esac
  done
  [ -z "$failures" ] || { echo "FAILED:$failures"; return 1; }
}

step_cache () {
  echo "== engine cache: the second start must take every engine from it"
  model=tests/data/baseline.safetensors
  rm -rf /tmp/ssfpn-cache-check
  counts=""
  for start in first second; do
    t0=$(date +%s.%N)
    XDG_CACHE_HOME=/tmp/ssfpn-cache-check G_MESSAGES_DEBUG=ssfpn-cuda \
      timeout -k 10 "$(limit 90)" "$ssfpn" bench "$model" --device cuda --batch 1 \
      --iterations 1 --warmup 0 --size 640 >"$logs/cache-$start.txt" 2>&1 \
      || { tail -20 "$logs/cache-$start.txt"; echo "ssfpn bench FAILED"; return 1; }
    t1=$(date +%s.%N)
    counts=$(sed -n 's/.* \([0-9][0-9]*\) of \([0-9][0-9]*\) convolutions took.*/\1 \2/p' \
      "$logs/cache-$start.txt" | tail -1)
    echo "$start start: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s," \
      "engines from the cache (of all): ${counts:-none reported}"
  done
  set -- $counts
  [ $# -eq 2 ] && [ "$1" -gt 0 ] && [ "$1" -eq "$2" ] \
    || { echo "the second start did not take every engine from the cache"; return 1; }
}

step_memcheck () {
  echo "== compute-sanitizer memcheck over test-cuda"
  command -v compute-sanitizer >/dev/null 2>&1 \
    || { echo "compute-sanitizer not found in $cuda/bin: memcheck NOT run"; return 0; }
  # Eager first, so the sanitizer sees every kernel launch by itself; one
  # engine candidate per convolution, or tuning under the sanitizer would
  # take most of the time.
  for mode in eager graphs; do
    fits 60 "memcheck ($mode)" || return 0
    graph=0; [ $mode = graphs ] && graph=1
    leak=""; [ $mode = eager ] && leak="--leak-check full"
    status=0
    SSFPN_TEST_DATA="$PWD/tests/data" SSFPN_CUDA_GRAPH=$graph SSFPN_CUDA_CACHE=0 \
      SSFPN_CUDA_TUNE=1 timeout -k 10 "$(limit 180)" \
      compute-sanitizer --tool memcheck --error-exitcode 1 $leak \
      "$build/tests/test-cuda" >"$logs/memcheck-$mode.txt" 2>&1 || status=$?
    tail -3 "$logs/memcheck-$mode.txt"
    case $status in
      0) echo "memcheck ($mode): clean" ;;
      124) echo "memcheck ($mode): timed out before the end (no error up to there)" ;;
      *) tail -40 "$logs/memcheck-$mode.txt"; echo "memcheck ($mode): FAILED ($status)"; return 1 ;;
    esac
  done
}

make_models () {
  mkdir -p /tmp/ssfpn-models
  for name in yolov5s yolov5s-ssfpn; do
    [ -f "/tmp/ssfpn-models/$name.safetensors" ] \
      || python3 tools/make_model.py "models/$name.yaml" \
           -o "/tmp/ssfpn-models/$name.safetensors" --seed 1 >/dev/null \
      || { echo "tools/make_model.py failed for $name"; return 1; }
  done
}

step_bench () {
  make_models || return 1
  export XDG_CACHE_HOME=/tmp/ssfpn-bench-cache
  for name in yolov5s-ssfpn yolov5s; do
    fits 150 "bench $name" || return 0
    echo "== bench $name"
    status=0
    timeout -k 10 "$(limit 200)" python3 tools/bench_gpu.py \
      "/tmp/ssfpn-models/$name.safetensors" --ssfpn "$ssfpn" --size 640 \
      --batch 1,8,32 --no-compile --json "$out/bench-$name.json" || status=$?
    case $status in
      0) ;;
      124|137) echo "bench $name: cut off at its time limit"; return 1 ;;
      *) echo "bench $name FAILED ($status)"; return 1 ;;
    esac
  done
}

step_gst () {
  make_models || return 1
  export XDG_CACHE_HOME=/tmp/ssfpn-bench-cache
  [ -n "${GST_LAUNCH:-}" ] || { echo "no GStreamer runtime carried: run scripts/pack-gpu-carry.sh here"; return 1; }
  fits 120 "GStreamer pipeline" || return 0
  echo "== GStreamer: 1080p NV12 -> ssfpndetect device=cuda -> fakesink"
  "$GST_LAUNCH" --version | head -1
  timeout -k 10 "$(limit 150)" scripts/bench-gst.sh \
    /tmp/ssfpn-models/yolov5s-ssfpn.safetensors cuda "1 8 32" 3000 \
    || { echo "the pipeline benchmark FAILED"; return 1; }
}

step_compile () {
  make_models || return 1
  export XDG_CACHE_HOME=/tmp/ssfpn-bench-cache
  fits 120 "torch.compile max-autotune, batch 32" || return 0
  echo "== torch.compile max-autotune, batch 32, yolov5s-ssfpn (cut off at the deadline)"
  status=0
  timeout -k 10 "$(limit 300)" python3 tools/bench_gpu.py \
    /tmp/ssfpn-models/yolov5s-ssfpn.safetensors --ssfpn "$ssfpn" --size 640 \
    --batch 32 --json "$out/bench-compile.json" >"$logs/compile.txt" 2>&1 || status=$?
  tail -12 "$logs/compile.txt"
  case $status in
    0) ;;
    124|137) echo "torch.compile did not finish before the deadline" ;;
    *) echo "torch.compile benchmark FAILED ($status)"; return 1 ;;
  esac
}

step_ncu () {
  make_models || return 1
  command -v ncu >/dev/null 2>&1 || { echo "ncu not found: Nsight Compute NOT run"; return 0; }
  fits 60 "Nsight Compute" || return 0
  echo "== Nsight Compute: scope A, batch 1, yolov5s-ssfpn"
  # --clock-control none: the clocks the benchmarks ran at, and the only
  # setting seen working on these machines.
  status=0
  SSFPN_CUDA_GRAPH=0 XDG_CACHE_HOME=/tmp/ssfpn-bench-cache timeout -k 10 "$(limit 120)" \
    ncu --clock-control none --target-processes all --print-summary per-kernel \
    --launch-skip 200 --launch-count 200 \
    "$ssfpn" bench /tmp/ssfpn-models/yolov5s-ssfpn.safetensors \
    --device cuda --precision fp16 --batch 1 --iterations 3 --warmup 1 \
    >"$logs/ncu.txt" 2>&1 || status=$?
  tail -60 "$logs/ncu.txt"
  case $status in
    0) ;;
    124|137) echo "ncu did not finish before the deadline" ;;
    *) echo "ncu FAILED ($status)"; return 1 ;;
  esac
}

# ---- the stages ----------------------------------------------------------------

main () {
  case $stage in
    test) steps="environment test_cuda suite cache memcheck" ;;
    bench) steps="environment bench compile ncu" ;;
    gst) steps="environment gst" ;;
    all) steps="environment test_cuda suite cache bench gst memcheck compile ncu" ;;
  esac
  failed=""
  for step in $steps; do
    # A step's failure is reported and the next steps still run, except
    # after the environment, which all others need.
    if ! "step_$step"; then
      failed="$failed $step"
      [ "$step" = environment ] && break
    fi
  done
  echo "== $(( $(date +%s) - started )) s in all; logs in $logs (and $out/logs.tar.gz)"
  [ -z "$failed" ] || { echo "== FAILED:$failed"; return 1; }
  echo "== $stage: every step passed"
}

pack_logs () { tar -czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null || true; }
trap pack_logs EXIT

echo 1 >"$logs/status"
{ main && echo 0 >"$logs/status"; } 2>&1 | tee "$out/gpu-check.log"
exit "$(cat "$logs/status")"
