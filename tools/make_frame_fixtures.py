#!/usr/bin/python3
"""Writes the letterbox fixtures of tests/test_frame.c into tests/data/frames/.

Each fixture is a synthetic frame (random bytes, padding bytes included)
of one pixel format, with the network input a NumPy reference computes from
it, following the definition in engine/include/ssfpn/ssfpn-frame.h:
YOLOv5's letterbox geometry, OpenCV INTER_LINEAR sampling blended in float
without rounding to 8 bits, YUV converted to RGB (clamped) at source
resolution with nearest chroma upsampling. Box mappings are checked against
YOLOv5's scale_coords, reproduced here on float32 torch tensors.

For NAME the files are:
  NAME.fixture   GLib key file: frame parameters, geometry, boxes
  NAME.frame     the planes, each rows x stride bytes, at the listed offsets
  NAME.expected  float32 little-endian, (3, H, W)

Usage: /usr/bin/python3 tools/make_frame_fixtures.py [OUTPUT_DIR]
"""

import os
import sys

import numpy as np
import torch

PACKED = {
    # name: (bytes per pixel, offsets of R, G, B)
    "RGB": (3, (0, 1, 2)),
    "BGR": (3, (2, 1, 0)),
    "RGBA": (4, (0, 1, 2)),
    "BGRA": (4, (2, 1, 0)),
    "RGBx": (4, (0, 1, 2)),
    "BGRx": (4, (2, 1, 0)),
}

MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

# name, format, (width, height), extra stride bytes per plane, (W, H) of the
# network input, matrix, range
FIXTURES = [
    ("rgb-37x23-up", "RGB", (37, 23), (2,), (64, 64), "bt601", "full"),
    ("bgr-64x48-half", "BGR", (64, 48), (0,), (32, 32), "bt601", "full"),
    ("rgba-37x23-oddpad", "RGBA", (37, 23), (12,), (40, 32), "bt601", "full"),
    ("bgra-64x48-down", "BGRA", (64, 48), (8,), (48, 48), "bt601", "full"),
    ("rgbx-64x48-same", "RGBx", (64, 48), (0,), (64, 64), "bt601", "full"),
    ("bgrx-37x23-tall", "BGRx", (37, 23), (3,), (32, 48), "bt601", "full"),
    ("rgb-4x5-bankers", "RGB", (4, 5), (1,), (10, 20), "bt601", "full"),
    ("rgb-1x1", "RGB", (1, 1), (5,), (16, 16), "bt601", "full"),
    ("nv12-37x23-601-limited", "NV12", (37, 23), (3, 5), (48, 48),
     "bt601", "limited"),
    ("nv12-64x48-709-full", "NV12", (64, 48), (8, 8), (40, 32),
     "bt709", "full"),
    ("nv12-64x48-601-full-same", "NV12", (64, 48), (0, 0), (64, 64),
     "bt601", "full"),
    ("nv12-3x1-709-limited", "NV12", (3, 1), (1, 2), (24, 16),
     "bt709", "limited"),
    ("i420-37x23-709-limited", "I420", (37, 23), (0, 0, 0), (64, 64),
     "bt709", "limited"),
    ("i420-64x48-601-full", "I420", (64, 48), (6, 3, 1), (32, 32),
     "bt601", "full"),
    ("i420-37x23-601-limited-tall", "I420", (37, 23), (11, 5, 7), (32, 48),
     "bt601", "limited"),
    ("i420-1x1-709-full", "I420", (1, 1), (0, 0, 0), (8, 8), "bt709", "full"),
    # Portrait frames: padding left and right.
    ("rgba-23x37-side", "RGBA", (23, 37), (4,), (48, 40), "bt601", "full"),
    ("nv12-23x37-709-limited-side", "NV12", (23, 37), (1, 3), (32, 32),
     "bt709", "limited"),
    # Large enough for the C code's parallel path.
    ("i420-333x199-709-limited-big", "I420", (333, 199), (3, 9, 1),
     (160, 128), "bt709", "limited"),
]


def plane_shapes(fmt, width, height):
    """(rows, minimum row bytes) of each plane."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    if fmt in PACKED:
        return [(height, width * PACKED[fmt][0])]
    if fmt == "NV12":
        return [(height, width), (ch, 2 * cw)]
    if fmt == "I420":
        return [(height, width), (ch, cw), (ch, cw)]
    raise ValueError(fmt)


def yuv_to_rgb(y, u, v, matrix, colour_range):
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    y, u, v = (a.astype(np.float64) for a in (y, u, v))
    if colour_range == "limited":
        luma = (y - 16.0) * 255.0 / 219.0
        cb = (u - 128.0) * 255.0 / 224.0
        cr = (v - 128.0) * 255.0 / 224.0
    else:
        luma, cb, cr = y, u - 128.0, v - 128.0
    r = luma + 2.0 * (1.0 - kr) * cr
    g = luma - 2.0 * kb * (1.0 - kb) / kg * cb - 2.0 * kr * (1.0 - kr) / kg * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 255.0)


def frame_to_rgb(fmt, width, height, planes, matrix, colour_range):
    """The frame as (height, width, 3) float64 RGB in 8-bit units."""
    if fmt in PACKED:
        bpp, offsets = PACKED[fmt]
        pixels = planes[0][:, :width * bpp].reshape(height, width, bpp)
        return pixels[:, :, list(offsets)].astype(np.float64)
    luma = planes[0][:, :width]
    cw = (width + 1) // 2
    if fmt == "NV12":
        u = planes[1][:, 0:2 * cw:2]
        v = planes[1][:, 1:2 * cw:2]
    else:
        u = planes[1][:, :cw]
        v = planes[2][:, :cw]
    # Nearest upsampling: luma (x, y) takes chroma (x // 2, y // 2).
    rows = np.arange(height) // 2
    cols = np.arange(width) // 2
    u = u[rows][:, cols]
    v = v[rows][:, cols]
    return yuv_to_rgb(luma, u, v, matrix, colour_range)


def letterbox_geometry(width, height, input_w, input_h):
    """YOLOv5 letterbox(auto=False, scaleFill=False, scaleup=True)."""
    r = min(input_h / height, input_w / width)
    new_w, new_h = int(round(width * r)), int(round(height * r))
    dw, dh = (input_w - new_w) / 2, (input_h - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    assert top + new_h + bottom == input_h and left + new_w + right == input_w
    return r, new_w, new_h, left, top


def linear_taps(src_size, dst_size):
    """OpenCV INTER_LINEAR taps: half-pixel centres, clamped at the edges."""
    pos = (np.arange(dst_size, dtype=np.float64) + 0.5) * (src_size / dst_size) - 0.5
    i0 = np.floor(pos).astype(np.int64)
    w1 = pos - i0
    low = i0 < 0
    i0[low], w1[low] = 0, 0.0
    high = i0 >= src_size - 1
    i0[high], w1[high] = src_size - 1, 0.0
    i1 = np.minimum(i0 + 1, src_size - 1)
    return i0, i1, w1


def letterbox_reference(rgb, input_w, input_h):
    height, width, _ = rgb.shape
    _, new_w, new_h, left, top = letterbox_geometry(width, height, input_w, input_h)
    x0, x1, wx = linear_taps(width, new_w)
    y0, y1, wy = linear_taps(height, new_h)
    wx, wy = wx[None, :, None], wy[:, None, None]
    top_row = (1 - wx) * rgb[y0][:, x0] + wx * rgb[y0][:, x1]
    bottom_row = (1 - wx) * rgb[y1][:, x0] + wx * rgb[y1][:, x1]
    resized = (1 - wy) * top_row + wy * bottom_row
    out = np.full((input_h, input_w, 3), 114.0)
    out[top:top + new_h, left:left + new_w] = resized
    return (out / 255.0).transpose(2, 0, 1).astype(np.float32)


def scale_coords(input_shape, boxes, frame_shape):
    """YOLOv5 utils.general.scale_coords on a float32 tensor, clipped."""
    gain = min(input_shape[0] / frame_shape[0], input_shape[1] / frame_shape[1])
    pad = ((input_shape[1] - frame_shape[1] * gain) / 2,
           (input_shape[0] - frame_shape[0] * gain) / 2)
    coords = torch.tensor(boxes, dtype=torch.float32).clone()
    coords[:, [0, 2]] -= pad[0]
    coords[:, [1, 3]] -= pad[1]
    coords[:, :4] /= gain
    coords[:, [0, 2]] = coords[:, [0, 2]].clamp(0, frame_shape[1])
    coords[:, [1, 3]] = coords[:, [1, 3]].clamp(0, frame_shape[0])
    return coords.numpy()


def number_list(values):
    return ";".join(repr(float(v)) if isinstance(v, float) else str(v)
                    for v in values) + ";"


def write_fixture(out_dir, index, spec):
    name, fmt, (width, height), extra, (input_w, input_h), matrix, crange = spec
    rng = np.random.default_rng(1000 + index)

    planes, strides, offsets, blob = [], [], [], bytearray()
    for (rows, row_bytes), pad in zip(plane_shapes(fmt, width, height), extra):
        stride = row_bytes + pad
        plane = rng.integers(0, 256, size=(rows, stride), dtype=np.uint8)
        planes.append(plane)
        strides.append(stride)
        offsets.append(len(blob))
        blob += plane.tobytes()

    rgb = frame_to_rgb(fmt, width, height, planes, matrix, crange)
    expected = letterbox_reference(rgb, input_w, input_h)
    r, new_w, new_h, left, top = letterbox_geometry(width, height, input_w, input_h)

    # Boxes in network-input pixels, some reaching into and past the padding.
    boxes = rng.uniform(-8.0, 8.0 + max(input_w, input_h), size=(6, 4))
    boxes = np.stack([np.minimum(boxes[:, 0], boxes[:, 2]),
                      np.minimum(boxes[:, 1], boxes[:, 3]),
                      np.maximum(boxes[:, 0], boxes[:, 2]),
                      np.maximum(boxes[:, 1], boxes[:, 3])], axis=1)
    boxes = boxes.astype(np.float32)
    mapped = scale_coords((input_h, input_w), boxes, (height, width))

    with open(os.path.join(out_dir, name + ".frame"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(out_dir, name + ".expected"), "wb") as f:
        f.write(expected.astype("<f4").tobytes())
    with open(os.path.join(out_dir, name + ".fixture"), "w") as f:
        f.write("# Generated by tools/make_frame_fixtures.py; do not edit.\n")
        f.write("[frame]\n")
        f.write(f"format={fmt}\nwidth={width}\nheight={height}\n")
        f.write(f"matrix={matrix}\nrange={crange}\n")
        f.write(f"strides={number_list(strides)}\n")
        f.write(f"offsets={number_list(offsets)}\n")
        f.write(f"size={len(blob)}\n")
        f.write("[letterbox]\n")
        f.write(f"input_width={input_w}\ninput_height={input_h}\n")
        f.write(f"resized_width={new_w}\nresized_height={new_h}\n")
        f.write(f"left={left}\ntop={top}\n")
        pad_x = (input_w - width * r) / 2
        pad_y = (input_h - height * r) / 2
        f.write(f"scale={r!r}\npad_x={pad_x!r}\npad_y={pad_y!r}\n")
        f.write("[boxes]\n")
        f.write(f"input={number_list(boxes.ravel().tolist())}\n")
        f.write(f"frame={number_list(mapped.ravel().tolist())}\n")
    return name


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "tests", "data", "frames")
    os.makedirs(out_dir, exist_ok=True)
    for index, spec in enumerate(FIXTURES):
        print(write_fixture(out_dir, index, spec))


if __name__ == "__main__":
    main()
