#!/bin/sh
# Builds and tests the project against a newer GStreamer than bookworm's
# 1.22: Debian trixie (GStreamer 1.26) in a chroot, so that the parts
# compiled only from 1.24 on (the analytics relation meta) are built and
# tested too. Not part of scripts/test.sh: it needs root, the network to
# deb.debian.org and about 1.5 GB. Safe to run twice (the chroot and its
# packages are kept).
#
#   scripts/test-gst-newer.sh [CHROOT_DIR]     (default /var/tmp/ssfpn-trixie)
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
root=${1:-/var/tmp/ssfpn-trixie}

if [ "$(id -u)" -ne 0 ]; then
  echo "test-gst-newer: needs root (debootstrap, chroot, mounts)" >&2
  exit 1
fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null 2>&1 || apt-get install -y -qq debootstrap
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian
fi

mkdir -p "$root/src"
cleanup() {
  for m in src dev proc; do
    mountpoint -q "$root/$m" && umount "$root/$m"
  done
}
trap cleanup EXIT INT TERM
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
mountpoint -q "$root/src" || mount --bind "$src" "$root/src"

# The project's own dependencies, plus gst-plugins-bad's analytics library
# (GStreamer >= 1.24 only).
chroot "$root" /bin/sh -eu -c "
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
  cd /src
  scripts/install-deps.sh
  dpkg-query -W -f='\${Status}' libgstreamer-plugins-bad1.0-dev 2>/dev/null \
    | grep -q 'install ok installed' \
    || apt-get install -y -qq --no-install-recommends libgstreamer-plugins-bad1.0-dev
  echo \"== GStreamer \$(pkg-config --modversion gstreamer-1.0), analytics \$(pkg-config --modversion gstreamer-analytics-1.0)\"
  scripts/meson-setup-once.sh build-trixie
  grep -q '#define HAVE_GST_ANALYTICS' build-trixie/buildconfig.h \
    || { echo 'test-gst-newer: the analytics meta was not enabled' >&2; exit 1; }
  meson compile -C build-trixie
  meson test -C build-trixie --print-errorlogs --num-processes 1
"
