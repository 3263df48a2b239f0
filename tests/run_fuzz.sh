#!/bin/sh
# Runs a libFuzzer target for a bounded time. New inputs go to a scratch
# corpus and crash artifacts to a folder, both in the build tree, so the
# checked-in seed corpus is only read.
#
# usage: run_fuzz.sh FUZZER SEED_DIR SCRATCH_DIR SECONDS
set -eu

if [ $# -ne 4 ]; then
  echo "usage: $0 FUZZER SEED_DIR SCRATCH_DIR SECONDS" >&2
  exit 2
fi
fuzzer=$1
seeds=$2
scratch=$3
seconds=$4

mkdir -p "$scratch/corpus" "$scratch/artifacts"
# The first corpus folder is the one libFuzzer writes to.
exec "$fuzzer" \
  -max_total_time="$seconds" \
  -timeout=30 \
  -rss_limit_mb=2048 \
  -max_len=32768 \
  -print_final_stats=1 \
  -artifact_prefix="$scratch/artifacts/" \
  "$scratch/corpus" "$seeds"
