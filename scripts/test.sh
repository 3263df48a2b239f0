#!/bin/sh
# The test command: installs what it needs, builds, and runs every suite —
# once plainly, once under AddressSanitizer + UndefinedBehaviorSanitizer, and
# the loader's fuzzer for a bounded time. Safe to run twice.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh --tests

jobs=$(nproc)

echo "== build and test (debugoptimized)"
[ -d build/meson-private ] || meson setup build
meson compile -C build -j "$jobs"
meson test -C build --print-errorlogs --num-processes 1

echo "== build and test under ASan + UBSan"
[ -d build-asan/meson-private ] || \
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
meson compile -C build-asan -j "$jobs"
meson test -C build-asan --print-errorlogs --num-processes 1

echo "== fuzz the model loader (bounded)"
[ -d build-fuzz/meson-private ] || \
  CC=clang meson setup build-fuzz -Dfuzzing=true \
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
