#!/bin/sh
# Installs the Debian packages the build and the demo need; with --tests,
# also what the test suite needs beyond them (clang for the loader's
# fuzzer; Debian's torch for the training tools' test, which skips without
# it). Safe to run again:
# packages already present are skipped. Runs apt as root, or via sudo.
#
#   scripts/install-deps.sh [--tests]
set -eu

# Engine: GLib, json-glib, oneDNN, libpng, libjpeg. Plugin: GStreamer 1.22,
# gst-check, videotestsrc, the tools; Cairo and Pango for the overlay.
# Demo: NumPy and PIL render the synthetic scenes.
packages="build-essential meson ninja-build pkg-config python3
python3-numpy python3-pil
libglib2.0-dev libjson-glib-dev libdnnl-dev libpng-dev libjpeg-dev
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-tools libcairo2-dev libpango1.0-dev fonts-dejavu-core"
case "${1:-}" in
  # Tests: clang for libFuzzer; torch for the training tools.
  # python3-venv: the checks against PyPI packages (check-*.sh).
  --tests) packages="$packages clang libclang-rt-dev python3-torch python3-torchvision python3-yaml python3-venv" ;;
  "") ;;
  *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1; then
  as_root="sudo"
else
  echo "install-deps: need root or sudo to install:$missing" >&2
  exit 1
fi
echo "install-deps: installing$missing"
$as_root apt-get update -qq
# shellcheck disable=SC2086
# env: sudo's env_reset would drop a variable set in front of it.
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
