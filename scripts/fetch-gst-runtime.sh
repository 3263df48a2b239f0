#!/bin/sh
# Run HERE (Debian bookworm, the build machine), not on the GPU machine:
# downloads the Debian packages that a bare GPU image lacks to run this
# build and a GStreamer pipeline, into .gst-runtime/ (git-ignored), for
# scripts/gpu-check.sh to unpack there with `dpkg -x` (nothing can be
# fetched on that machine).
#
#   scripts/fetch-gst-runtime.sh [BUILD_DIR]      (default build)
#
# scripts/pack-gpu-carry.sh calls it and moves .gst-runtime/ into
# .gpu-carry/debs/.
#
# What is fetched: GStreamer's core with gst-launch-1.0 and
# gst-plugin-scanner, the base plugins (videotestsrc, appsrc, videoconvert,
# videoscale: what the tests and benchmarks use), DejaVu fonts with
# fontconfig's configuration (the overlay's text), and the package of
# every shared library that the build's programs, plugin and tests, and those
# GStreamer parts, load (found with ldd, mapped with dpkg -S): GLib,
# json-glib, oneDNN (libdnnl), libpng, libjpeg62-turbo, libgomp, ORC, cairo,
# pango and the rest. Left out: glibc, libgcc and libstdc++ (the GPU image's
# own are newer and must not be mixed with ours) and CUDA and cuDNN (the GPU
# image has them; they are not Debian packages here anyway).
set -eu
cd "$(dirname "$0")/.."

build=${1:-build}
dest=.gst-runtime
gst_plugins=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
gst_libexec=/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0

[ -d "$build" ] || { echo "no build directory $build: build first" >&2; exit 1; }
for tool in apt-get dpkg ldd; do
  command -v $tool >/dev/null || { echo "$tool not found: run this on Debian" >&2; exit 1; }
done

list=$(mktemp)
trap 'rm -f "$list"' EXIT

# The ELF files that will run on the GPU machine.
{
  find "$build" -type f \( -name '*.so' -o -name '*.so.*' -o -perm -u+x \) \
    ! -name '*.o' ! -name '*.a' ! -name '*.py' ! -name '*.sh' ! -name '*.json'
  echo /usr/bin/gst-launch-1.0
  echo /usr/bin/gst-inspect-1.0
  echo "$gst_libexec/gst-plugin-scanner"
  echo "$gst_plugins/libgstcoreelements.so"
  echo "$gst_plugins/libgstvideotestsrc.so"
  echo "$gst_plugins/libgstapp.so"
  echo "$gst_plugins/libgstvideoconvertscale.so"
} | while read -r file; do
  # Only dynamic ELF objects; ldd fails on anything else.
  ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u >"$list"

# A library's package, trying the path as given and its /usr twin (merged
# /usr: dpkg knows each file under one of them).
package_of () {
  for path in "$1" "$(readlink -f "$1")" "/usr$1" "${1#/usr}" \
              "/usr$(readlink -f "$1")"; do
    found=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$found" ] && { echo "$found"; return 0; }
  done
  return 1
}

packages="libgstreamer1.0-0 gstreamer1.0-tools gstreamer1.0-plugins-base \
libgstreamer-plugins-base1.0-0 fonts-dejavu-core fontconfig-config"
unknown=""
build_path=$(readlink -f "$build")
while read -r lib; do
  # The build's own libraries travel with the build.
  case $(readlink -f "$lib") in "$build_path"/*) continue ;; esac
  if pkg=$(package_of "$lib") && [ -n "$pkg" ]; then
    packages="$packages $pkg"
  else
    unknown="$unknown $lib"
  fi
done <"$list"

# glibc, libgcc, libstdc++ come from the GPU image.
packages=$(printf '%s\n' $packages | sort -u \
  | grep -v -x -e libc6 -e libgcc-s1 -e libstdc++6 -e libcrypt1)

mkdir -p "$dest"
rm -f "$dest"/*.deb
( cd "$dest" && apt-get download $packages )
echo "downloaded $(ls "$dest"/*.deb | wc -l) packages into $dest ($(du -sh "$dest" | cut -f1)):"
printf '  %s\n' $packages
# Not from Debian (CUDA, cuDNN): the GPU image provides them.
[ -z "$unknown" ] || echo "not from a Debian package (expected: CUDA, cuDNN):$unknown"
