#!/usr/bin/python3
"""Write the small images tests/test_detect.sh runs `ssfpn detect` on.

Every picture comes from the ssfpn fixture's input (tests/data/ssfpn.input.npy,
tools/make_fixtures.py), quantised to 8 bits, so the fixture model finds
objects in them. PNG files are written here with the standard library only
(zlib), every row with filter 0, so the test can read the plain ones back
without a PNG library. JPEG files need Pillow (Debian python3-pil); each is
written with a PNG twin holding the pixels Pillow's libjpeg decodes from it.

  ssfpn-128.png        RGB 128x128, the model's input size: no resize, no pad
  wide-128x96.png      RGB 128x96 (W x H): no resize, 16 rows of pad above
  color-*.png          one 100x72 picture of at most 216 colours as rgb8,
                       rgba8, rgb16, palette (with tRNS) and Adam7-interlaced
                       rgb8: all decode to the same RGB
  grey-*.png           one 100x72 picture of 16 grey levels as rgb8, grey8,
                       grey4, grey+alpha8 and grey16
  jpeg-*.jpg + .png    baseline YCbCr, progressive, grey and CMYK (Adobe)
                       JPEGs, each with its decoded twin
  thin-1x300.png       1 x 300 pixels: too thin to letterbox

Deterministic: the same command writes the same bytes. Run it again
whenever tools/make_fixtures.py rewrites ssfpn.input.npy.

Usage: /usr/bin/python3 tools/make_test_images.py [--out tests/data/images]
"""

import argparse
import array
import ast
import io
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), 'tests', 'data')


def read_fixture_rgb(path):
    """ssfpn.input.npy (1, 3, H, W) float32 as rows of (r, g, b) bytes."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x93NUMPY\x01\x00', path + ': not a .npy v1.0 file'
    n = int.from_bytes(data[8:10], 'little')
    header = ast.literal_eval(data[10:10 + n].decode('latin1'))
    assert header['descr'] == '<f4' and not header['fortran_order'], header
    _, c, h, w = header['shape']
    values = array.array('f')
    values.frombytes(data[10 + n:])
    q = [min(255, max(0, round(v * 255))) for v in values]
    return [[tuple(q[(k * h + y) * w + x] for k in range(3)) for x in range(w)]
            for y in range(h)]


def crop(picture, x0, y0, w, h):
    return [row[x0:x0 + w] for row in picture[y0:y0 + h]]


# ---- PNG -------------------------------------------------------------------

def png_chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff))


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b''.join(struct.pack('>H', s) for s in samples)
    # 1, 2 or 4 bits: big-endian bit order inside each byte.
    per_byte = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        byte = 0
        for j, s in enumerate(samples[i:i + per_byte]):
            byte |= s << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
         (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]  # x0, y0, dx, dy


def png_bytes(rows, color_type, depth, interlaced=False, palette=None,
              trns=None):
    """rows: lists of per-pixel sample tuples (the colour type's channels)."""
    h, w = len(rows), len(rows[0])

    def scanlines(pixels):
        return b''.join(b'\0' + pack_row([s for p in row for s in p], depth)
                        for row in pixels)

    if interlaced:
        raw = b''
        for x0, y0, dx, dy in ADAM7:
            sub = [row[x0::dx] for row in rows[y0::dy]]
            if sub and sub[0]:
                raw += scanlines(sub)
    else:
        raw = scanlines(rows)
    out = b'\x89PNG\r\n\x1a\n'
    out += png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, color_type,
                                          0, 0, 1 if interlaced else 0))
    if palette is not None:
        out += png_chunk(b'PLTE', b''.join(bytes(c) for c in palette))
    if trns is not None:
        out += png_chunk(b'tRNS', trns)
    out += png_chunk(b'IDAT', zlib.compress(raw, 9))
    return out + png_chunk(b'IEND', b'')


def rgb8_png(picture):
    return png_bytes(picture, 2, 8)


def color_family(picture):
    """At most 216 colours (6 levels a channel) in five encodings."""
    levels = [0, 51, 102, 153, 204, 255]
    q = [[tuple(levels[round(c / 51)] for c in p) for p in row] for row in picture]
    alpha = [[(p + (x * 255 // max(1, len(row) - 1),)) for x, p in enumerate(row)]
             for row in q]
    colours = sorted({p for row in q for p in row})
    index = {c: i for i, c in enumerate(colours)}
    return {
        'color-rgb8.png': rgb8_png(q),
        'color-rgba8.png': png_bytes(alpha, 6, 8),
        'color-rgb16.png': png_bytes([[tuple(c * 257 for c in p) for p in row]
                                      for row in q], 2, 16),
        'color-palette.png': png_bytes([[(index[p],) for p in row] for row in q],
                                       3, 8, palette=colours,
                                       trns=bytes(range(0, 256, 3))[:len(colours)]),
        'color-interlaced.png': png_bytes(q, 2, 8, interlaced=True),
    }


def grey_family(picture):
    """16 grey levels (multiples of 17, which 4-bit samples expand to)."""
    g = [[round((p[0] + p[1] + p[2]) / 3 / 17) for p in row] for row in picture]
    return {
        'grey-rgb8.png': rgb8_png([[(v * 17,) * 3 for v in row] for row in g]),
        'grey-grey8.png': png_bytes([[(v * 17,) for v in row] for row in g], 0, 8),
        'grey-grey4.png': png_bytes([[(v,) for v in row] for row in g], 0, 4),
        'grey-greyalpha8.png': png_bytes([[(v * 17, 255 - v) for v in row]
                                          for row in g], 4, 8),
        'grey-grey16.png': png_bytes([[(v * 17 * 257,) for v in row] for row in g],
                                     0, 16),
    }


# ---- JPEG (Pillow) ---------------------------------------------------------

def jpeg_family(picture):
    from PIL import Image

    h, w = len(picture), len(picture[0])
    rgb = Image.frombytes('RGB', (w, h), bytes(s for row in picture
                                              for p in row for s in p))
    images = {
        'jpeg-baseline': (rgb, {}),
        'jpeg-progressive': (rgb, {'progressive': True}),
        'jpeg-grey': (rgb.convert('L'), {}),
        'jpeg-cmyk': (rgb.convert('CMYK'), {}),
    }
    out = {}
    for name, (image, options) in images.items():
        buffer = io.BytesIO()
        image.save(buffer, 'JPEG', quality=90, **options)
        data = buffer.getvalue()
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        if decoded.mode == 'CMYK':
            # Pillow's CMYK to RGB is 255 - min(255, c + k), not the
            # product rule ssfpn uses: no exact twin, only the JPEG.
            out[name + '.jpg'] = data
            continue
        pixels = decoded.convert('RGB').tobytes()
        rows = [[tuple(pixels[(y * w + x) * 3:(y * w + x) * 3 + 3])
                 for x in range(w)] for y in range(h)]
        out[name + '.jpg'] = data
        out[name + '.png'] = rgb8_png(rows)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=os.path.join(DATA, 'images'))
    parser.add_argument('--fixture', default=os.path.join(DATA, 'ssfpn.input.npy'))
    args = parser.parse_args()

    picture = read_fixture_rgb(args.fixture)
    assert len(picture) == 128 and len(picture[0]) == 128, 'expected 128x128'
    files = {
        'ssfpn-128.png': rgb8_png(picture),
        'wide-128x96.png': rgb8_png(crop(picture, 0, 16, 128, 96)),
        'thin-1x300.png': rgb8_png([[(y % 256, 0, 0)] for y in range(300)]),
    }
    scene = crop(picture, 14, 28, 100, 72)
    files.update(color_family(scene))
    files.update(grey_family(scene))
    files.update(jpeg_family(scene))

    os.makedirs(args.out, exist_ok=True)
    for name, data in sorted(files.items()):
        with open(os.path.join(args.out, name), 'wb') as f:
            f.write(data)
        print(f'{name:<24} {len(data):>6} bytes')


if __name__ == '__main__':
    main()
