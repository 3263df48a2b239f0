#!/bin/sh
# The test command: installs what it needs, builds, and runs every suite —
# once plainly, once under AddressSanitizer + UndefinedBehaviorSanitizer, and
# the loader's fuzzer for a bounded time. Safe to run twice.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh --tests

jobs=$(nproc)
# Where nvcc is installed (CI has it), the CUDA backend must compile: a
# backend that auto-detection quietly left out would pass untested.
cuda=""
[ -x "${CUDA_PATH:-/usr/local/cuda}/bin/nvcc" ] && cuda="-Dcuda=enabled"

echo "== build and test (debugoptimized)"
# shellcheck disable=SC2086 # $cuda is one option or none
scripts/meson-setup-once.sh build $cuda
meson compile -C build -j "$jobs"
meson test -C build --print-errorlogs --num-processes 1

echo "== build and test under ASan + UBSan"
# shellcheck disable=SC2086
scripts/meson-setup-once.sh build-asan $cuda -Db_sanitize=address,undefined \
  -Db_lundef=false
meson compile -C build-asan -j "$jobs"
meson test -C build-asan --print-errorlogs --num-processes 1

echo "== fuzz the model loader (bounded)"
CC=clang scripts/meson-setup-once.sh build-fuzz -Dfuzzing=true \
  -Db_sanitize=address,undefined -Db_lundef=false
meson compile -C build-fuzz -j "$jobs"
meson test -C build-fuzz --suite fuzz --print-errorlogs

# One closing line over the three runs (meson writes testlog.json per run).
python3 - build build-asan build-fuzz <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for build in sys.argv[1:]:
    for line in open(f"{build}/meson-logs/testlog.json"):
        result = json.loads(line)["result"]
        key = "OK" if result in ("OK", "EXPECTEDFAIL") else \
            "SKIP" if result == "SKIP" else "FAIL"
        counts[key] += 1
print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
