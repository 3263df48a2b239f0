#!/bin/sh
# The `ssfpn` command: exit statuses, error messages, and on a fixture model
# (tests/data/<case>.safetensors from tools/make_fixtures.py) `info`,
# `info --json`, `run`, `run --detections` and `eval` end to end.
#
# Usage: test_cli.sh PATH/TO/ssfpn   (env SSFPN_TEST_DATA: tests/data)
# Exit 0 pass, 1 fail, 77 skip (no fixture model: the checks that need none
# still run, and a failure among them still fails).

SSFPN=${1:?usage: test_cli.sh PATH/TO/ssfpn}
DATA=${SSFPN_TEST_DATA:-$(dirname "$0")/data}
PYTHON=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/test-cli.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
. "$(dirname "$0")/cli_checks.sh"

# ---- no model needed ----------------------------------------------------

expect 2 "no command" -- "$SSFPN"
expect 0 "--help" -- "$SSFPN" --help
grep -q "bench" "$work/out" && pass || fail "--help does not list the commands"
expect 2 "unknown command" -- "$SSFPN" frobnicate
stderr_has "frobnicate" "unknown command"

for cmd in info run bench; do
  expect 0 "$cmd --help" -- "$SSFPN" $cmd --help
  grep -q -- "--device" "$work/out" && pass || fail "$cmd --help lacks --device"
  expect 2 "$cmd without MODEL" -- "$SSFPN" $cmd
  stderr_has "MODEL is missing" "$cmd without MODEL"
  expect 2 "$cmd with an unknown option" -- "$SSFPN" $cmd model --no-such-option
  expect 2 "$cmd --device gpu" -- "$SSFPN" $cmd model --device gpu
  stderr_has "--device gpu" "$cmd --device gpu"
  expect 2 "$cmd --device cuda:1024" -- "$SSFPN" $cmd model --device cuda:1024
  stderr_has "below 1024" "$cmd --device cuda:1024"
  expect 2 "$cmd --precision fp64" -- "$SSFPN" $cmd model --precision fp64
  expect 2 "$cmd --augment mirror" -- "$SSFPN" $cmd model --augment mirror
  stderr_has "--augment mirror is not none or flips" "$cmd --augment mirror"
  expect 2 "$cmd --threads -1" -- "$SSFPN" $cmd model --threads -1
  expect 2 "$cmd --threads 100000" -- "$SSFPN" $cmd model --threads 100000
  stderr_has "between 0 (all cores) and 1024" "$cmd --threads 100000"
done

expect 2 "run without --input" -- "$SSFPN" run model --output "$work/o.npy"
stderr_has "--input" "run without --input"
expect 2 "run without --output" -- "$SSFPN" run model --input "$work/i.npy"
expect 2 "run --conf 1.5" -- "$SSFPN" run model --input a --output b --conf 1.5
expect 2 "run --iou -0.1" -- "$SSFPN" run model --input a --output b --iou -0.1
expect 2 "run --max-det 0" -- "$SSFPN" run model --input a --output b --max-det 0
expect 2 "run --classes x" -- "$SSFPN" run model --input a --output b --classes x
expect 2 "bench --batch 0" -- "$SSFPN" bench model --batch 0
expect 2 "bench --batch 1,,8" -- "$SSFPN" bench model --batch 1,,8
expect 2 "bench --iterations 0" -- "$SSFPN" bench model --iterations 0
expect 2 "bench --size abc" -- "$SSFPN" bench model --size abc
expect 2 "two models" -- "$SSFPN" info a b

missing="$work/no-such-dir/missing-model.safetensors"
for cmd in info bench; do
  expect 1 "$cmd on a missing model" -- "$SSFPN" $cmd "$missing"
  stderr_has "ssfpn: " "$cmd on a missing model"
  stderr_has "$missing" "$cmd on a missing model"
done
# The default model is compiled in: six shapes at 640x640.
expect 0 "default model" -- "$SSFPN" info default
stdout_has "imgsz       640x640" "default model"
stdout_has "classes     6: circle, square, triangle, star, hexagon, cross" "default model"

# A float64 (1, 3, 32, 32) .npy file, as NumPy writes one: 10-byte prefix,
# a 118-byte header (octal 166), 24576 bytes of data.
{
  printf '\223NUMPY\001\000\166\000'
  printf "%-117s\n" "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 32, 32), }"
  head -c 24576 /dev/zero
} >"$work/float64.npy"
expect 1 "run on a float64 input" -- \
  "$SSFPN" run "$missing" --input "$work/float64.npy" --output "$work/o.npy"
stderr_has "float64.npy: dtype <f8 (float64); expected <f4 (float32)" "float64 input"
[ -e "$work/o.npy" ] && fail "float64 input: an output was written" || pass

head -c 1000 "$work/float64.npy" >"$work/short.npy"
expect 1 "run on a truncated input" -- \
  "$SSFPN" run "$missing" --input "$work/short.npy" --output "$work/o.npy"
stderr_has "short.npy" "truncated input"

# ---- on a fixture model -------------------------------------------------

# The fixture case with the smallest input keeps the test quick.
case_name=
smallest=
for model in "$DATA"/*.safetensors; do
  [ -f "$model" ] || continue
  base=${model%.safetensors}
  [ -f "$base.input.npy" ] && [ -f "$base.output.npy" ] && [ -f "$base.nms.json" ] || continue
  size=$(wc -c <"$base.input.npy")
  if [ -z "$smallest" ] || [ "$size" -lt "$smallest" ]; then
    smallest=$size
    case_name=$base
  fi
done

if [ -z "$case_name" ]; then
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  echo "SKIP: no fixture model (<case>.safetensors with .input.npy, .output.npy," \
       ".nms.json) in $DATA; run tools/make_fixtures.py" >&2
  exit 77
fi
model="$case_name.safetensors"
echo "fixture: $model"

expect 0 "info" -- "$SSFPN" info "$model" && {
  grep -q "Detect" "$work/out" && grep -q "module" "$work/out" \
    && grep -q "parameters" "$work/out" && grep -q "GFLOPs" "$work/out" \
    && pass || fail "info: no layer table: $(head -c 500 "$work/out")"
}

# info --json parses, and agrees with the fixture index where it can.
expect 0 "info --json" -- "$SSFPN" info "$model" --json && {
  if "$PYTHON" - "$work/out" "$DATA/fixtures.json" "$(basename "$model")" <<'EOF'
import json, os, sys
info = json.load(open(sys.argv[1]))
for key in ("layers", "parameters", "gflops", "names", "strides", "imgsz"):
    assert key in info, "no " + key
layer = info["layers"][-1]
for key in ("index", "from", "repeats", "module", "args", "output"):
    assert key in layer, "layer without " + key
assert layer["module"] == "Detect", layer
if os.path.exists(sys.argv[2]):
    cases = [c for c in json.load(open(sys.argv[2]))["cases"]
             if c["model"] == sys.argv[3]]
    if cases:
        c = cases[0]
        assert len(info["layers"]) == c["layers"], (len(info["layers"]), c["layers"])
        assert info["parameters"] == c["parameters"], (info["parameters"], c["parameters"])
        assert info["strides"] == c["stride"], (info["strides"], c["stride"])
        assert len(info["names"]) == c["nc"]
EOF
  then pass; else fail "info --json: not the expected JSON"; fi
}

# run: the output has the shape and (loosely) the values of the fixture's
# reference output; the detections are one JSON object per batch item with
# the reference's classes.
expect 0 "run" -- "$SSFPN" run "$model" --input "$case_name.input.npy" \
  --output "$work/out.npy" --detections "$work/det.json" && {
  if TESTS_DIR=$(dirname "$0") "$PYTHON" - "$work/out.npy" "$case_name.output.npy" "$work/det.json" \
      "$case_name.nms.json" <<'EOF'
import json, math, os, sys
sys.path.insert(0, os.environ["TESTS_DIR"])
from npy_load import load_npy

shape, got = load_npy(sys.argv[1])
ref_shape, ref = load_npy(sys.argv[2])
assert shape == ref_shape, ("output shape", shape, ref_shape)
assert all(math.isfinite(v) for v in got), "non-finite output"
columns = shape[2]
worst = 0.0
for i in range(0, len(got), 97):  # a sample of the values
    tol = 0.05 if i % columns < 4 else 1e-3
    worst = max(worst, abs(got[i] - ref[i]) / tol)
assert worst <= 1.0, "output differs from the reference (%.3g x tolerance)" % worst

lines = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
ref = json.load(open(sys.argv[4]))["images"]
assert len(lines) == shape[0] == len(ref), (len(lines), shape[0], len(ref))
for i, (line, r) in enumerate(zip(lines, ref)):
    for key in ("image", "width", "height", "detections"):
        assert key in line, "detections without " + key
    assert "[%d]" % i in line["image"], line["image"]
    dets, rdets = line["detections"], r["detections"]
    assert len(dets) == len(rdets), ("image", i, len(dets), len(rdets))
    for d, rd in zip(dets, rdets):
        assert d["class_id"] == rd["class_id"] and d["label"] == rd["label"], (d, rd)
        assert abs(d["confidence"] - rd["confidence"]) < 1e-3, (d, rd)
        assert all(abs(a - b) < 0.05 for a, b in zip(d["box"], rd["box"])), (d, rd)
EOF
  then pass; else fail "run: output or detections differ from the fixture"; fi
}

# run --augment flips: the reference's four-flip average (tools/ssfpn_ref/
# augment.py, <case>.output-flips.npy), which is not the plain output.
expect 0 "run --augment flips" -- "$SSFPN" run "$model" --augment flips \
  --input "$case_name.input.npy" --output "$work/flips.npy" && {
  if TESTS_DIR=$(dirname "$0") "$PYTHON" - "$work/flips.npy" \
      "$case_name.output-flips.npy" "$case_name.output.npy" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["TESTS_DIR"])
from npy_load import load_npy

shape, got = load_npy(sys.argv[1])
ref_shape, ref = load_npy(sys.argv[2])
_, plain = load_npy(sys.argv[3])
assert shape == ref_shape, ("output shape", shape, ref_shape)
columns = shape[2]
def worst(a, b):
    return max(abs(x - y) / (0.05 if i % columns < 4 else 1e-3)
               for i, (x, y) in enumerate(zip(a, b)))
assert worst(got, ref) <= 1.0, "flips output differs from the reference"
assert worst(plain, ref) > 1.0, "the fixture's flips output is the plain one"
EOF
  then pass; else fail "run --augment flips: output differs from the fixture"; fi
}

# The same input cut to the wrong channel count.
"$PYTHON" - "$case_name.input.npy" "$work/c4.npy" <<'EOF' && {
import ast, sys
data = open(sys.argv[1], "rb").read()
n = int.from_bytes(data[8:10], "little")
header = ast.literal_eval(data[10:10 + n].decode("latin1"))
b, c, h, w = header["shape"]
text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, %d, %d), }" % (h, w)
text = text.ljust(117) + "\n"
out = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
open(sys.argv[2], "wb").write(out + bytes(4 * 4 * h * w))
EOF
  expect 1 "run on a 4-channel input" -- \
    "$SSFPN" run "$model" --input "$work/c4.npy" --output "$work/o4.npy"
  stderr_has "4 channels" "4-channel input"
}

# Over the engine's largest batch is a usage error, found before any timing.
expect 2 "bench --batch 5000" -- "$SSFPN" bench "$model" --batch 1,5000 --iterations 1 --warmup 0
stderr_has "--batch 5000 is more than the engine takes (4096)" "bench --batch 5000"
expect 2 "eval --batch 5000" -- "$SSFPN" eval "$model" "$work" --batch 5000
stderr_has "--batch 5000 is not between 1 and 4096" "eval --batch 5000"

expect 0 "bench --json" -- "$SSFPN" bench "$model" --iterations 2 --warmup 1 --json && {
  "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); r=d["results"][0]; assert r["batch"] == 1 and r["network"]["median_ms"] > 0 and r["network"]["p99_ms"] >= r["network"]["median_ms"]; assert [x["batch"] for x in d["results"]] == [1, 8, 32], "default batches"; assert all(x["scopes"]["P"]["median_ms"] > 0 for x in d["results"]), "scope P"; assert "letterbox" in d["scope_names"]["P"]' <"$work/out" \
    && pass || fail "bench --json: $(head -c 300 "$work/out")"
}

# ---- eval, end to end ---------------------------------------------------
# A YOLO-format dataset labelled with the model's own confident detections:
# evaluation must then find them (AP50 near 1); the same images with labels
# moved away must score near 0.
mkdir -p "$work/set/images" "$work/set/labels" "$work/far/images" "$work/far/labels"
for img in ssfpn-128.png wide-128x96.png color-rgb8.png; do
  cp "$DATA/images/$img" "$work/set/images/$img"
  cp "$DATA/images/$img" "$work/far/images/$img"
done
if "$SSFPN" detect "$model" "$work"/set/images/*.png --conf 0.4 >"$work/det.jsonl" 2>"$work/err" \
  && "$PYTHON" - "$work/det.jsonl" "$work" <<'EOF'
import json, os, sys
total = 0
for line in open(sys.argv[1]):
    item = json.loads(line)
    w, h = item["width"], item["height"]
    stem = os.path.splitext(os.path.basename(item["image"]))[0]
    near, far = [], []
    for d in item["detections"]:
        x1, y1, x2, y2 = d["box"]
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        near.append(f"{d['class_id']} {cx} {cy} {bw} {bh}")
        # a tiny box in a far corner: no prediction overlaps it
        far.append(f"{d['class_id']} 0.995 0.995 0.005 0.005")
        total += 1
    open(f"{sys.argv[2]}/set/labels/{stem}.txt", "w").write("\n".join(near) + "\n")
    open(f"{sys.argv[2]}/far/labels/{stem}.txt", "w").write("\n".join(far) + "\n")
assert total > 0, "no confident detections to label with"
EOF
then pass; else fail "eval: making the dataset: $(head -c 300 "$work/err")"; fi

expect 0 "eval --json" -- "$SSFPN" eval "$model" "$work/set" --json && {
  "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); assert d["ap50"] >= 0.9 and 0 < d["ap"] <= 1, d' <"$work/out" \
    && pass || fail "eval on self-labelled images: $(head -c 400 "$work/out")"
}
expect 0 "eval --json, labels moved away" -- "$SSFPN" eval "$model" "$work/far" --json && {
  "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); assert 0 <= d["ap50"] < 0.1, d' <"$work/out" \
    && pass || fail "eval on moved labels: $(head -c 400 "$work/out")"
}
# val.py's multi-label NMS by default: at conf 0.001 some boxes pass for
# more than one class, so --single-label (detect.py's NMS) keeps fewer.
expect 0 "eval --json --single-label" -- "$SSFPN" eval "$model" "$work/set" --json --single-label && {
  cp "$work/out" "$work/single.json"
  "$SSFPN" eval "$model" "$work/set" --json >"$work/multi.json" 2>"$work/err"
  "$PYTHON" - "$work/single.json" "$work/multi.json" <<'EOF' && pass || fail "eval --single-label: $(head -c 400 "$work/single.json")"
import json, sys
single, multi = (json.load(open(p)) for p in sys.argv[1:])
count = lambda d: sum(c["detections"] for c in d["classes"])
assert single["multi_label"] is False and multi["multi_label"] is True, (single, multi)
assert count(multi) > count(single), (count(multi), count(single))
EOF
}
# Right boxes, every label of the next class: the class-aware AP50 falls
# near 0, while --class-agnostic (one class, NMS across classes) still
# finds every box.
mkdir -p "$work/renamed/images" "$work/renamed/labels"
cp "$work"/set/images/* "$work/renamed/images/"
ncls=$("$SSFPN" info "$model" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["nc"])')
for f in "$work"/set/labels/*.txt; do
  awk -v n="$ncls" 'NF == 5 { $1 = ($1 + 1) % n; print }' "$f" >"$work/renamed/labels/$(basename "$f")"
done
expect 0 "eval --json --class-agnostic" -- "$SSFPN" eval "$model" "$work/renamed" --json --class-agnostic && {
  cp "$work/out" "$work/agnostic.json"
  "$SSFPN" eval "$model" "$work/renamed" --json --single-label >"$work/aware.json" 2>"$work/err"
  "$PYTHON" - "$work/agnostic.json" "$work/aware.json" <<'EOF' && pass || fail "eval --class-agnostic: $(head -c 400 "$work/agnostic.json")"
import json, sys
agnostic, aware = (json.load(open(p)) for p in sys.argv[1:])
assert agnostic["class_agnostic"] is True and aware["class_agnostic"] is False
assert agnostic["multi_label"] is False
assert [c["label"] for c in agnostic["classes"]] == ["object"], agnostic["classes"]
assert agnostic["classes"][0]["instances"] == sum(c["instances"] for c in aware["classes"])
assert agnostic["ap50"] >= 0.9 and aware["ap50"] < 0.1, (agnostic["ap50"], aware["ap50"])
EOF
}
expect 2 "eval --single-label --class-agnostic" -- "$SSFPN" eval "$model" "$work/set" --single-label --class-agnostic
stderr_has "exclude each other" "eval --single-label --class-agnostic"
expect 1 "eval on a missing dataset" -- "$SSFPN" eval "$model" "$work/no-such-set"
stderr_has "no-such-set" "eval on a missing dataset"
# An image the input cannot take is named, not the first of its batch.
mkdir -p "$work/thin/images" "$work/thin/labels"
cp "$DATA/images/ssfpn-128.png" "$work/thin/images/a-fine.png"
cp "$DATA/images/thin-1x300.png" "$work/thin/images/b-thin.png"
: >"$work/thin/labels/a-fine.txt"
: >"$work/thin/labels/b-thin.txt"
expect 1 "eval --batch 2, one image too thin" -- "$SSFPN" eval "$model" "$work/thin" --batch 2
stderr_has "b-thin.png: " "eval --batch 2, one image too thin"
if grep -q "a-fine" "$work/err"; then
  fail "eval --batch 2 blames the fine image: $(cat "$work/err")"
else pass; fi


# ---- limits, odd names and failed writes --------------------------------

expect 0 "eval --max-det 2147483647" -- "$SSFPN" eval "$model" "$work/set" --max-det 2147483647 --json
expect 2 "bench --iterations 2000000" -- "$SSFPN" bench "$model" --iterations 2000000
stderr_has "at most 1000000" "bench --iterations 2000000"
expect 2 "detect --classes beyond the model" -- "$SSFPN" detect "$model" "$work/set/images/ssfpn-128.png" --classes 0,99
stderr_has "--classes: 99 is not a class of this model" "detect --classes 0,99"
expect 2 "run --classes beyond the model" -- "$SSFPN" run "$model" --input "$case_name.input.npy" --output "$work/c.npy" --classes 99
stderr_has "--classes: 99 is not a class" "run --classes 99"

# A batch the engine cannot take is blamed on the file (a sparse file: only
# the shape matters).
"$PYTHON" - "$work/big.npy" <<'EOF'
import sys
text = "{'descr': '<f4', 'fortran_order': False, 'shape': (4097, 3, 32, 32), }"
text += " " * (63 - (10 + len(text)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode())
    f.truncate(f.tell() + 4097 * 3 * 32 * 32 * 4)
EOF
expect 1 "run on a batch of 4097" -- "$SSFPN" run "$model" --input "$work/big.npy" --output "$work/big-out.npy"
stderr_has "big.npy: shape (4097, 3, 32, 32): a batch of 4097 is more than the engine takes (4096)" "run on a batch of 4097"
rm -f "$work/big.npy"

# "--" ends the options, also before a name that starts with '-'.
cp "$model" "$work/-m.safetensors"
expect 0 "info -- -m.safetensors" -- sh -c 'cd "$1" && "$2" info -- -m.safetensors' sh "$work" "$SSFPN"

# File names that are not UTF-8 still give valid JSON.
bad=$(printf 'bad\377.png')
cp "$work/set/images/ssfpn-128.png" "$work/$bad"
expect 0 "detect on a non-UTF-8 name" -- "$SSFPN" detect "$model" "$work/$bad" && {
  "$PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.buffer.read().decode("utf-8")); assert d["image"].endswith("bad\ufffd.png"), d["image"]' <"$work/out" \
    && pass || fail "detect on a non-UTF-8 name: not UTF-8 JSON: $(head -c 200 "$work/out")"
}

# Labels must be normalised; a folder named like an image is skipped.
mkdir -p "$work/pixels/images/folder.png" "$work/pixels/labels"
cp "$work/set/images/ssfpn-128.png" "$work/pixels/images/a.png"
echo "0 0.5 0.5 0.2 0.2" >"$work/pixels/labels/a.txt"
expect 0 "eval skips a folder named folder.png" -- "$SSFPN" eval "$model" "$work/pixels" --json && {
  "$PYTHON" -c 'import json,sys; assert json.load(sys.stdin)["images"] == 1' <"$work/out" \
    && pass || fail "eval counted the folder: $(head -c 300 "$work/out")"
}
echo "0 64 48 20 20" >"$work/pixels/labels/a.txt"
expect 1 "eval on labels in pixels" -- "$SSFPN" eval "$model" "$work/pixels"
stderr_has "a.txt:1: cx 64 is not normalised to [0, 1]" "eval on labels in pixels"

if [ -w /dev/full ]; then
  # Output that cannot be written is an error, whatever writes it.
  for cmd in "info $model" "info $model --json" \
             "detect $model $work/set/images/ssfpn-128.png" \
             "eval $model $work/set --json" \
             "eval $model $work/set --dump-predictions /dev/full"; do
    # shellcheck disable=SC2086 # each entry is a command line
    "$SSFPN" $cmd >/dev/full 2>"$work/err"
    rc=$?
    if [ "$rc" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] \
        && grep -q "No space left on device" "$work/err"; then
      pass
    else
      fail "$cmd to a full disk: exit $rc, $(head -c 300 "$work/err")"
    fi
  done
  "$SSFPN" run "$model" --input "$case_name.input.npy" --output "$work/d.npy" \
    --detections - >/dev/full 2>"$work/err"
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q "stdout: cannot write: No space left on device" "$work/err"; then
    pass
  else
    fail "run --detections - to a full disk: exit $rc, $(cat "$work/err")"
  fi
  # A failed write removes a half-written file, not the device it named.
  ln -s /dev/full "$work/full.npy"
  expect 1 "run --output to a full device" -- "$SSFPN" run "$model" --input "$case_name.input.npy" --output "$work/full.npy"
  [ -L "$work/full.npy" ] && pass || fail "run --output removed the link to /dev/full"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
