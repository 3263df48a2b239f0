#!/bin/sh
# Run HERE (Debian bookworm, the build machine) before a GPU session: packs
# what scripts/gpu-check.sh needs on the device tool's machine into
# .gpu-carry/ (git-ignored), the one path to name in the call's carry:
#
#   .gpu-carry/build.tar.xz    the CUDA build's programs, libraries, plugin
#                              and tests, without object files (the build
#                              folder itself is too large to carry)
#   .gpu-carry/build-info.txt  the build folder's name, the CUDA and cuDNN
#                              versions it was compiled against
#   .gpu-carry/debs/           GStreamer's runtime and the Debian libraries
#                              the build loads (scripts/fetch-gst-runtime.sh)
#
#   scripts/pack-gpu-carry.sh [BUILD_DIR]     (default build; needs HAVE_CUDA 1)
#
# Then one device-tool call (the header of scripts/gpu-check.sh). It fails
# when the working tree and .gpu-carry/ together pass the 64 MiB that a
# call carries.
set -eu
cd "$(dirname "$0")/.."

build=${1:-build}
cuda=${CUDA_PATH:-/usr/local/cuda}
dest=.gpu-carry
limit=$((64 * 1024 * 1024))

[ -f "$build/buildconfig.h" ] || { echo "no build in $build: build first" >&2; exit 1; }
grep -q "HAVE_CUDA 1" "$build/buildconfig.h" || {
  echo "$build was configured without CUDA: set it up with -Dcuda=enabled" >&2; exit 1; }
ninja -C "$build" >/dev/null

rm -rf "$dest"
mkdir -p "$dest"

# Everything a test or a benchmark runs or reads (the libraries' soname
# links too), not what only rebuilds:
# object folders (*.p), the generated GResource source, logs, meson's state
# (meson-info stays: gpu-check.sh reads the source path from it).
list=$(mktemp)
trap 'rm -f "$list"' EXIT
( cd "$build" && find . \( -type f -o -type l \) ! -path '*.p/*' ! -path './meson-private/*' \
    ! -path './meson-logs/*' ! -path './.venv*' ! -name '*.c' ! -name '*.a' \
    ! -name '*.bin' ! -name 'build.ninja' ! -name '.ninja_*' \
    ! -name 'compile_commands.json' | sort ) >"$list"
# One command, not a pipe: sh has no pipefail, and a failed tar must fail.
XZ_OPT="-6 -T0" tar -C "$build" -cJf "$dest/build.tar.xz" -T "$list"

version () { # HEADER MACRO
  sed -n "s/^#define $2[[:space:]]*\([0-9]*\)[[:space:]]*$/\1/p" "$cuda/include/$1" | head -1
}
{
  echo "build $build"
  echo "cudnn $(version cudnn_version.h CUDNN_MAJOR).$(version cudnn_version.h CUDNN_MINOR).$(version cudnn_version.h CUDNN_PATCHLEVEL)"
  echo "cudart $(version cuda_runtime_api.h CUDART_VERSION)"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
} >"$dest/build-info.txt"

scripts/fetch-gst-runtime.sh "$build" >/dev/null
mv .gst-runtime "$dest/debs"

tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -cb "$dest" | tail -1 | cut -f1)
echo "$dest: $(du -sh "$dest" | cut -f1) ($(du -h "$dest/build.tar.xz" | cut -f1) build, $(ls "$dest"/debs/*.deb | wc -l) packages);" \
  "with the working tree $(( (tree + carry) / 1048576 )) MiB of the 64 MiB a call carries"
[ $((tree + carry)) -le $limit ] || { echo "too large to carry" >&2; exit 1; }
cat "$dest/build-info.txt"
