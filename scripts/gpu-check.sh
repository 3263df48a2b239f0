#!/bin/sh
# The GPU checks, to run on a machine with an NVIDIA GPU (the device tool of
# DEVELOPERS.md or any workstation), from the repository root:
#
#   scripts/gpu-check.sh [BUILD_DIR]      (default build-cuda)
#
# BUILD_DIR may be carried over already built (its CUDA part needs cuDNN 9
# and the CUDA 13 runtime at run time: found through $CUDA_PATH,
# /usr/local/cuda or $CUDNN_LIB, put on LD_LIBRARY_PATH here). Otherwise it
# is configured and built, which needs nvcc. Then:
#   1. the whole test suite; test-cuda must really run (77 = no GPU = fail);
#   2. compute-sanitizer memcheck over test-cuda (when the toolkit has it);
#   3. `ssfpn bench --device cuda` in fp16 and fp32 on the largest fixture.
# Exits non-zero on the first failure; results go to $OUT when set (the
# device tool's output folder), else to BUILD_DIR/gpu-check.
set -eu
cd "$(dirname "$0")/.."

build=${1:-build-cuda}
cuda=${CUDA_PATH:-/usr/local/cuda}
out=${OUT:-$build/gpu-check}
mkdir -p "$out"

for dir in "$cuda/lib64" "$cuda/lib" ${CUDNN_LIB:-}; do
  [ -d "$dir" ] && LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH
export PATH="$cuda/bin:$PATH"

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
  --format=csv | tee "$out/gpu.txt" || { echo "no nvidia-smi: no GPU here" >&2; exit 1; }

echo "== build ($build)"
if [ ! -d "$build/meson-private" ]; then
  meson setup "$build" -Dcuda=enabled -Dgst=auto
fi
grep -q "HAVE_CUDA 1" "$build/buildconfig.h" || {
  echo "$build was configured without CUDA (HAVE_CUDA 0)" >&2; exit 1; }
if command -v ninja >/dev/null 2>&1 && command -v nvcc >/dev/null 2>&1; then
  ninja -C "$build"
fi

echo "== test suite"
meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 1 \
  2>&1 | tee "$out/tests.txt"

echo "== test-cuda (must run, not skip)"
status=0
"$build/tests/test-cuda" >"$out/test-cuda.txt" 2>&1 || status=$?
cat "$out/test-cuda.txt"
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 77 ] && echo "test-cuda skipped: the GPU does not work here" >&2
  exit 1
fi

echo "== compute-sanitizer memcheck"
if command -v compute-sanitizer >/dev/null 2>&1; then
  # Eager runs too, so the sanitizer sees every kernel launch by itself.
  SSFPN_CUDA_GRAPH=0 compute-sanitizer --tool memcheck --error-exitcode 1 \
    --leak-check full "$build/tests/test-cuda" >"$out/memcheck.txt" 2>&1 \
    || { tail -50 "$out/memcheck.txt"; exit 1; }
  compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$build/tests/test-cuda" >"$out/memcheck-graph.txt" 2>&1 \
    || { tail -50 "$out/memcheck-graph.txt"; exit 1; }
  tail -3 "$out/memcheck.txt"
else
  echo "compute-sanitizer not found in $cuda/bin: memcheck NOT run" \
    | tee "$out/memcheck.txt"
fi

echo "== bench"
model=$(ls -S tests/data/*.safetensors 2>/dev/null | head -1 || true)
[ -n "${SSFPN_BENCH_MODEL:-}" ] && model=$SSFPN_BENCH_MODEL
if [ -z "$model" ]; then
  echo "no model to bench (set SSFPN_BENCH_MODEL)" >&2
  exit 1
fi
for precision in fp16 fp32; do
  "$build/engine/ssfpn" bench "$model" --device cuda --precision "$precision" \
    --batch 1,8,32 --size 640 --json >"$out/bench-$precision.json"
  cat "$out/bench-$precision.json"
done
echo "== GPU checks passed"
