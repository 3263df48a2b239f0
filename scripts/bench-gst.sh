#!/bin/sh
# Frames per second of a GStreamer pipeline of 1080p NV12 frames through
# ssfpndetect:
#
#   videotestsrc num-buffers=N ! video/x-raw,format=NV12,width=1920,height=1080
#     ! ssfpndetect model=MODEL device=DEVICE batch-size=B ! fakesink sync=false
#
#   scripts/bench-gst.sh MODEL [DEVICE] [BATCHES] [FRAMES]
#     DEVICE   default cuda; BATCHES default "1 8 32"; FRAMES default 2000
#
# Each batch size runs three times: an untimed short run (it fills the
# engine cache), then a short run (warm-up: plan, first allocations) whose
# time is subtracted from the long one, so the figure is the steady rate:
# (FRAMES - WARM) / (t_long - t_short).
# videotestsrc's pattern is drawn once per run (pattern=solid-color with
# is-live=false costs almost nothing per frame), so the source is not the
# bottleneck. Needs gst-launch-1.0 and the plugin (GST_PLUGIN_PATH) on the
# environment; scripts/gpu-check.sh sets that up on the GPU machine.
set -eu

model=${1:?usage: scripts/bench-gst.sh MODEL [DEVICE] [BATCHES] [FRAMES]}
device=${2:-cuda}
batches=${3:-1 8 32}
frames=${4:-2000}
warm=$((frames / 10))
launch=${GST_LAUNCH:-gst-launch-1.0}

now () { date +%s.%N; }

run () { # frames batch
  "$launch" -q videotestsrc num-buffers="$1" pattern=solid-color \
      foreground-color=0xff808080 \
    ! video/x-raw,format=NV12,width=1920,height=1080,framerate=0/1 \
    ! ssfpndetect model="$model" device="$device" batch-size="$2" \
    ! fakesink sync=false >/dev/null
}

echo "| batch | frames | seconds | frames/s |"
echo "| ---: | ---: | ---: | ---: |"
for batch in $batches; do
  # Untimed: a cold engine cache would make the short run choose the
  # engines and the long one read them, and the difference would hide it.
  run "$warm" "$batch"
  t0=$(now); run "$warm" "$batch"; t1=$(now)
  run "$frames" "$batch"; t2=$(now)
  awk -v b="$batch" -v n="$frames" -v w="$warm" -v s="$t1" -v a="$t0" -v e="$t2" \
    'BEGIN { long = e - s; short = s - a; steady = long - short;
             # Too few frames for the difference to mean anything: the
             # whole long run, start-up included, marked with a *.
             if (steady <= 0) printf "| %d | %d | %.2f | %.0f* |\n", b, n, long, n / long;
             else printf "| %d | %d | %.2f | %.0f |\n", b, n, long, (n - w) / steady }'
done
echo
echo "frames/s: (frames - warm-up frames) / (long run - short run), so start-up"
echo "(model load, plan, engine choice) is not counted; * = too few frames for"
echo "that, the whole run's rate instead. Device $device, model $model."
