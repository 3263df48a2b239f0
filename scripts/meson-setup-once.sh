#!/bin/sh
# Configures a meson build folder unless it is configured already:
#
#   scripts/meson-setup-once.sh DIR [MESON-SETUP-OPTION...]
#
# Meson makes DIR/meson-private when setup begins but writes coredata.dat
# only when it succeeds, so a folder without it is what an interrupted or
# failed setup left: it is removed and set up afresh, rather than failing
# every later `meson compile`.
set -eu
dir=${1:?usage: meson-setup-once.sh DIR [OPTION...]}
shift
[ -f "$dir/meson-private/coredata.dat" ] && exit 0
rm -rf "$dir"
exec meson setup "$dir" "$@"
