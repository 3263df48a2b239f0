#!/bin/sh
# `ssfpn detect`: usage and image errors, the JSON lines, the options, image
# decoding (every PNG colour type, interlaced, 16-bit; baseline, progressive,
# grey and CMYK JPEG) and the numbers: on images whose letterbox is exact
# (no resize, or an exact 2x2 average), detect must give what `ssfpn run`
# gives on the same pixels written as .npy, boxes mapped back to the image.
#
# Images: tests/data/images from tools/make_test_images.py; model: the ssfpn
# fixture from tools/make_fixtures.py.
#
# Usage: test_detect.sh PATH/TO/ssfpn   (env SSFPN_TEST_DATA: tests/data)
# Exit 0 pass, 1 fail, 77 skip (no fixture model or images: the checks that
# need none still run, and a failure among them still fails).

SSFPN=${1:?usage: test_detect.sh PATH/TO/ssfpn}
DATA=${SSFPN_TEST_DATA:-$(dirname "$0")/data}
IMAGES=$DATA/images
PYTHON=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/test-detect.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
. "$(dirname "$0")/cli_checks.sh"

# check DESCRIPTION HELPER-COMMAND ARGS...: runs a check of the helper below.
check () {
  what=$1; shift
  if "$PYTHON" "$work/helper.py" "$@" 2>"$work/check-err"; then
    pass
  else
    fail "$what: $(tail -c 500 "$work/check-err")"
  fi
}

cat >"$work/helper.py" <<'EOF'
"""Checks for test_detect.sh, standard library only."""
import array, json, struct, sys, zlib

def read_png_rgb8(path):
    """A plain PNG as tools/make_test_images.py writes it: 8-bit RGB, not
    interlaced, every row filter 0. Returns (width, height, bytes)."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', path
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = ihdr
    assert (depth, colour, interlace) == (8, 2, 0), (path, ihdr)
    raw = zlib.decompress(idat)
    rows = [raw[y * (3 * w + 1):(y + 1) * (3 * w + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows), path + ': a row is filtered'
    return w, h, b''.join(r[1:] for r in rows)

def write_npy(path, shape, values):
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % \
        ''.join('%d, ' % d for d in shape)
    text = text.ljust(117) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + len(text).to_bytes(2, 'little') + text.encode())
        f.write(array.array('f', values).tobytes())

def cmd_letterbox_npy(png, npy, height, width):
    """The network input for @png at height x width where the letterbox is
    exact: the same size (padding only) or exactly half (2x2 averages)."""
    w, h, pixels = read_png_rgb8(png)
    height, width = int(height), int(width)
    r = min(height / h, width / w)
    assert r in (1.0, 0.5), r
    nw, nh = round(w * r), round(h * r)
    left, top = round((width - nw) / 2 - 0.1), round((height - nh) / 2 - 0.1)
    f = int(1 / r)
    values = []
    for c in range(3):
        for y in range(height):
            for x in range(width):
                sx, sy = x - left, y - top
                if 0 <= sx < nw and 0 <= sy < nh:
                    v = sum(pixels[((sy * f + j) * w + sx * f + i) * 3 + c]
                            for j in range(f) for i in range(f)) / (f * f)
                else:
                    v = 114
                values.append(v / 255)
    write_npy(npy, (1, 3, height, width), values)
    print(r, (width - w * r) / 2, (height - h * r) / 2, w, h)

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

def same_detections(a, b, what):
    assert len(a) == len(b), (what, len(a), len(b))
    for d, e in zip(a, b):
        assert d == e, (what, d, e)

def cmd_format(out, names, conf, least, *images):
    """One line per image in order, with the contract's keys and sane
    values; each image has at least @least detections."""
    names = names.split(',')
    got = lines(out)
    assert [g['image'] for g in got] == list(images), [g['image'] for g in got]
    for g in got:
        assert sorted(g) == ['detections', 'height', 'image', 'width'], sorted(g)
        w, h = g['width'], g['height']
        assert w > 0 and h > 0
        assert len(g['detections']) >= int(least), g['image'] + ': too few detections'
        last = 1.0
        for d in g['detections']:
            assert sorted(d) == ['box', 'class_id', 'confidence', 'label'], d
            assert names[d['class_id']] == d['label'], d
            assert float(conf) < d['confidence'] <= last, d
            last = d['confidence']
            x1, y1, x2, y2 = d['box']
            assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h, (w, h, d)

def cmd_size(out, image, width, height):
    g, = lines(out)
    assert (g['image'], g['width'], g['height']) == (image, int(width), int(height)), g

def cmd_same(out):
    """Every line has the detections of the first one, which has some."""
    got = lines(out)
    assert got[0]['detections'], got[0]['image'] + ': no detections'
    for g in got[1:]:
        same_detections(g['detections'], got[0]['detections'],
                        g['image'] + ' vs ' + got[0]['image'])

def cmd_filtered(out, ref, conf, classes, max_det):
    """@out is @ref's detections with confidence > conf, in classes, first
    max_det: what raising --conf, --classes and --max-det must give with
    per-class NMS."""
    keep = [int(c) for c in classes.split(',')] if classes != '-' else None
    assert len(lines(out)) == len(lines(ref))
    changed = False
    for g, r in zip(lines(out), lines(ref)):
        want = [d for d in r['detections'] if d['confidence'] > float(conf)
                and (keep is None or d['class_id'] in keep)][:int(max_det)]
        changed = changed or len(want) < len(r['detections'])
        same_detections(g['detections'], want, g['image'])
    assert changed, 'the option changed nothing'

def cmd_mapped(out, ref, geometry, tolerance):
    """detect's boxes are run's, less the padding, over the gain, clipped
    to the image; classes and confidences are identical."""
    gain, pad_x, pad_y, w, h = [float(v) for v in open(geometry).read().split()]
    g, = lines(out)
    r, = lines(ref)
    assert (g['width'], g['height']) == (w, h), (g['width'], g['height'], w, h)
    assert len(g['detections']) == len(r['detections']) > 0, \
        (len(g['detections']), len(r['detections']))
    for d, e in zip(g['detections'], r['detections']):
        assert (d['class_id'], d['label'], d['confidence']) == \
            (e['class_id'], e['label'], e['confidence']), (d, e)
        x1, y1, x2, y2 = e['box']
        want = [min(max((x1 - pad_x) / gain, 0), w), min(max((y1 - pad_y) / gain, 0), h),
                min(max((x2 - pad_x) / gain, 0), w), min(max((y2 - pad_y) / gain, 0), h)]
        assert all(abs(a - b) <= float(tolerance) for a, b in zip(d['box'], want)), \
            (d['box'], want)

globals()['cmd_' + sys.argv[1].replace('-', '_')](*sys.argv[2:])
EOF

# ---- no model needed ----------------------------------------------------

expect 0 "detect --help" -- "$SSFPN" detect --help
grep -q -- "--size" "$work/out" && grep -q -- "--device" "$work/out" \
  && grep -q -- "--classes" "$work/out" && pass || fail "detect --help lacks options"
expect 2 "detect without MODEL" -- "$SSFPN" detect
stderr_has "MODEL is missing" "detect without MODEL"
expect 2 "detect without IMAGE" -- "$SSFPN" detect model
stderr_has "no IMAGE given" "detect without IMAGE"
expect 2 "detect --conf 1.5" -- "$SSFPN" detect model a.png --conf 1.5
stderr_has "--conf 1.5" "detect --conf 1.5"
expect 2 "detect --iou -0.1" -- "$SSFPN" detect model a.png --iou -0.1
expect 2 "detect --max-det 0" -- "$SSFPN" detect model a.png --max-det 0
expect 2 "detect --classes x" -- "$SSFPN" detect model a.png --classes x
expect 2 "detect --size abc" -- "$SSFPN" detect model a.png --size abc
expect 2 "detect --size 64x" -- "$SSFPN" detect model a.png --size 64x
expect 2 "detect --device gpu" -- "$SSFPN" detect model a.png --device gpu
expect 2 "detect with an unknown option" -- "$SSFPN" detect model a.png --frobnicate
missing="$work/no-such-dir/missing-model.safetensors"
expect 1 "detect on a missing model" -- "$SSFPN" detect "$missing" a.png
stderr_has "$missing" "detect on a missing model"
[ -s "$work/out" ] && fail "missing model: wrote to stdout" || pass

# ---- on the fixture model -----------------------------------------------

model=$DATA/ssfpn.safetensors
if [ ! -f "$model" ] || [ ! -f "$IMAGES/ssfpn-128.png" ]; then
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  echo "SKIP: no $model or $IMAGES; run tools/make_fixtures.py and" \
       "tools/make_test_images.py" >&2
  exit 77
fi
names=person,car,bicycle
detect () { "$SSFPN" detect "$model" --device cpu "$@"; }

# -- image errors: exit 1, the path and the problem on one line; the other
# images are still done.
printf 'hello, not an image\n' >"$work/text.png"
expect 1 "a text file" -- detect "$work/text.png"
stderr_has "$work/text.png: not a PNG or JPEG image" "a text file"
[ -s "$work/out" ] && fail "a text file: wrote to stdout" || pass

: >"$work/empty.jpg"
expect 1 "an empty file" -- detect "$work/empty.jpg"
stderr_has "$work/empty.jpg: empty file" "an empty file"

printf 'GIF89a\001\000\001\000\000\000\000;' >"$work/tiny.gif"
expect 1 "a GIF" -- detect "$work/tiny.gif"
stderr_has "$work/tiny.gif: GIF images are not supported" "a GIF"

expect 1 "a missing image" -- detect "$work/missing.png"
stderr_has "$work/missing.png: cannot open: " "a missing image"

head -c 5000 "$IMAGES/ssfpn-128.png" >"$work/cut.png"
expect 1 "a truncated PNG" -- detect "$work/cut.png"
stderr_has "$work/cut.png: truncated PNG" "a truncated PNG"

# Cut after the pixel data: IEND is missing.
size=$(wc -c <"$IMAGES/ssfpn-128.png")
head -c $((size - 12)) "$IMAGES/ssfpn-128.png" >"$work/no-iend.png"
expect 1 "a PNG without IEND" -- detect "$work/no-iend.png"
stderr_has "$work/no-iend.png: truncated PNG" "a PNG without IEND"

# One byte of the IHDR changed: its CRC no longer matches.
{ head -c 20 "$IMAGES/ssfpn-128.png"; printf '\377'
  tail -c +22 "$IMAGES/ssfpn-128.png"; } >"$work/crc.png"
expect 1 "a PNG with a bad CRC" -- detect "$work/crc.png"
stderr_has "$work/crc.png: corrupt or unsupported PNG: " "a PNG with a bad CRC"

head -c 1500 "$IMAGES/jpeg-baseline.jpg" >"$work/cut.jpg"
expect 1 "a truncated JPEG" -- detect "$work/cut.jpg"
stderr_has "$work/cut.jpg: truncated JPEG" "a truncated JPEG"

{ head -c 2 "$IMAGES/jpeg-baseline.jpg"; printf '\377\376\000'; } >"$work/bad.jpg"
expect 1 "a corrupt JPEG" -- detect "$work/bad.jpg"
grep -q -F "$work/bad.jpg: " "$work/err" && pass || fail "corrupt JPEG: $(cat "$work/err")"

expect 1 "an image too thin to letterbox" -- detect "$IMAGES/thin-1x300.png"
stderr_has "$IMAGES/thin-1x300.png: " "an image too thin to letterbox"

expect 1 "a bad image between good ones" -- \
  detect "$IMAGES/ssfpn-128.png" "$work/text.png" "$IMAGES/wide-128x96.png"
stderr_has "$work/text.png: not a PNG or JPEG image" "a bad image between good ones"
check "the good images around a bad one" format "$work/out" $names 0.25 0 \
  "$IMAGES/ssfpn-128.png" "$IMAGES/wide-128x96.png"

# -- --size must suit the model.
expect 2 "detect --size 100" -- detect "$IMAGES/ssfpn-128.png" --size 100
stderr_has "largest stride 32" "detect --size 100"

# -- the JSON lines, on images of several sizes and formats. Thresholds
# stay low where detections are needed, so that the test does not depend
# on how confident a regenerated fixture model happens to be.
all="$IMAGES/ssfpn-128.png $IMAGES/wide-128x96.png $IMAGES/color-rgb8.png $IMAGES/jpeg-cmyk.jpg"
many="--conf 0.01 --max-det 100000"
# shellcheck disable=SC2086
expect 0 "detect on four images" -- detect $all $many && \
  check "the JSON lines" format "$work/out" $names 0.01 1 $all
cp "$work/out" "$work/base.json"
expect 0 "detect on a CMYK JPEG" -- detect "$IMAGES/jpeg-cmyk.jpg" && \
  check "CMYK JPEG size" size "$work/out" "$IMAGES/jpeg-cmyk.jpg" 100 72

# -- decoding: each family decodes to the same pixels, so to the same
# detections; each JPEG to what Pillow's libjpeg decoded (its PNG twin). A
# low threshold gives many detections to compare.
for family in "color-rgb8 color-rgba8 color-rgb16 color-palette color-interlaced" \
              "grey-rgb8 grey-grey8 grey-grey4 grey-greyalpha8 grey-grey16" \
              "jpeg-baseline.png jpeg-baseline.jpg" \
              "jpeg-progressive.png jpeg-progressive.jpg" \
              "jpeg-grey.png jpeg-grey.jpg"; do
  files=
  for f in $family; do
    case $f in *.*) ;; *) f=$f.png ;; esac
    files="$files $IMAGES/$f"
  done
  # shellcheck disable=SC2086
  expect 0 "detect on $family" -- detect $files --conf 0.001 && \
    check "decoding $family" same "$work/out"
done

# The format comes from the bytes: a JPEG named .png is still a JPEG.
cp "$IMAGES/jpeg-baseline.jpg" "$work/jpeg-named.png"
expect 0 "a JPEG named .png" -- detect "$IMAGES/jpeg-baseline.png" "$work/jpeg-named.png" --conf 0.001 && \
  check "a JPEG named .png" same "$work/out"

# -- options: raising --conf, --classes and --max-det keep a part of the
# low-threshold result (per-class NMS: a box is only suppressed by a better
# one of its class). The defaults are --conf 0.25 --max-det 300.
# shellcheck disable=SC2086
expect 0 "the defaults" -- detect $all && {
  check "the defaults" format "$work/out" $names 0.25 0 $all
  check "the defaults" filtered "$work/out" "$work/base.json" 0.25 - 300
}
# shellcheck disable=SC2086
expect 0 "--conf 0.3" -- detect $all --conf 0.3 --max-det 100000 && \
  check "--conf 0.3" filtered "$work/out" "$work/base.json" 0.3 - 100000
# shellcheck disable=SC2086
expect 0 "--classes 0,2" -- detect $all $many --classes 0,2 && \
  check "--classes 0,2" filtered "$work/out" "$work/base.json" 0.01 0,2 100000
# shellcheck disable=SC2086
expect 0 "--max-det 1" -- detect $all --conf 0.01 --max-det 1 && \
  check "--max-det 1" filtered "$work/out" "$work/base.json" 0.01 - 1

# -- numbers: detect against run on the same network input.
# compare NAME IMAGE SIZE TOLERANCE [OPTIONS]: SIZE is HxW.
compare () {
  name=$1; image=$2; size=$3; tolerance=$4; shift 4
  h=${size%x*}; w=${size#*x}
  if ! "$PYTHON" "$work/helper.py" letterbox-npy "$image" "$work/$name.npy" "$h" "$w" \
      >"$work/$name.geometry" 2>"$work/check-err"; then
    fail "$name: cannot make the input: $(tail -c 300 "$work/check-err")"
    return
  fi
  expect 0 "$name: run" -- "$SSFPN" run "$model" --device cpu --input "$work/$name.npy" \
    --output "$work/$name.out.npy" --detections "$work/$name.run.json" "$@" || return
  expect 0 "$name: detect" -- detect "$image" --size "$size" "$@" || return
  check "$name: detect vs run" mapped "$work/out" "$work/$name.run.json" \
    "$work/$name.geometry" "$tolerance"
}
# The model's size: the input is the image itself, boxes only clipped.
compare same-size "$IMAGES/ssfpn-128.png" 128x128 0 --conf 0.01
compare same-size-agnostic "$IMAGES/ssfpn-128.png" 128x128 0 --conf 0.01 --agnostic
compare same-size-iou "$IMAGES/ssfpn-128.png" 128x128 0 --conf 0.01 --iou 0.2
# Padding only: 16 rows above and below.
compare padded "$IMAGES/wide-128x96.png" 128x128 1e-3 --conf 0.01
# Half size, square and HxW (then 32 columns of padding on each side).
compare half "$IMAGES/ssfpn-128.png" 64x64 1e-3 --conf 0.01
compare half-padded "$IMAGES/ssfpn-128.png" 64x128 1e-3 --conf 0.01
compare half-wide "$IMAGES/wide-128x96.png" 64x64 1e-3 --conf 0.01

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
