#!/usr/bin/python3
"""Writes the fixtures of tests/gst/test_ssfpndetect.c into tests/data/element/.

A small official-form ssFPN model with seeded random weights (64x64 input,
three classes), and synthetic frames of several pixel formats and sizes with
the detections the PyTorch reference finds in them through the same
letterbox the element uses (the NumPy letterbox of make_frame_fixtures.py,
which follows engine/include/ssfpn/ssfpn-frame.h), YOLOv5 v6.0
non_max_suppression, and scale_coords back to frame pixels.

The model's objectness bias is shifted until every NMS decision on every
frame is clear of its threshold (as make_fixtures.py does), so an fp32
engine within rounding must find exactly these detections.

Files:
  element.safetensors  the model
  NAME.frame           the frame's planes, tightly packed (rows x row bytes)
  cases.json           per frame: format, size, matrix, range, detections
                       (class_id, confidence, box [x1, y1, x2, y2] in frame
                       pixels), plus thresholds and tolerances

Usage: /usr/bin/python3 tools/make_element_fixtures.py [OUTPUT_DIR]
"""

import copy
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from make_frame_fixtures import (plane_shapes, frame_to_rgb,  # noqa: E402
                                 letterbox_reference, scale_coords)
from ssfpn_ref.cli import build_random_model  # noqa: E402
from ssfpn_ref.config import load_config  # noqa: E402
from ssfpn_ref.fixtures import candidate_count, nms_margins, margins_ok  # noqa: E402
from ssfpn_ref.model_file import write_model_file, load_model  # noqa: E402
from ssfpn_ref.nms import non_max_suppression  # noqa: E402

MODELS = os.path.join(os.path.dirname(HERE), 'models')
INPUT = (64, 64)  # H, W
NAMES = ['person', 'car', 'dog']
CONF, IOU, MAX_DET = 0.25, 0.45, 300

# name, format, (width, height), matrix, range
FRAMES = [
    ('rgb-97x61', 'RGB', (97, 61), 'bt601', 'full'),
    ('bgrx-64x48', 'BGRx', (64, 48), 'bt601', 'full'),
    ('nv12-97x61-601-limited', 'NV12', (97, 61), 'bt601', 'limited'),
    ('i420-48x80-709-full', 'I420', (48, 80), 'bt709', 'full'),
] + [(f'seq-{i}', 'RGB', (80, 60), 'bt601', 'full') for i in range(8)]


def synthetic_planes(fmt, width, height, rng):
    """Blocks of colour over a gradient with noise: structure a network
    responds to. YUV frames get the same treatment per plane."""
    planes = []
    for rows, row_bytes in plane_shapes(fmt, width, height):
        base = np.add.outer(np.linspace(0, 120, rows), np.linspace(0, 100, row_bytes))
        plane = base + rng.integers(0, 40, size=(rows, row_bytes))
        for _ in range(4):
            y0, x0 = rng.integers(0, rows), rng.integers(0, row_bytes)
            y1 = min(rows, y0 + rng.integers(2, max(3, rows // 2)))
            x1 = min(row_bytes, x0 + rng.integers(2, max(3, row_bytes // 2)))
            plane[y0:y1, x0:x1] = rng.integers(0, 256)
        planes.append(np.clip(plane, 0, 255).astype(np.uint8))
    return planes


def shift_objectness(model, base, delta, wh_delta=0.0):
    det = model.model[-1]
    with torch.no_grad():
        for mi, b0 in zip(det.m, base):
            mi.bias.copy_(b0)
            mi.bias.view(det.na, -1)[:, 4] += delta
            mi.bias.view(det.na, -1)[:, 2:4] += wh_delta


def forward64(model, x):
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(x.double())[0]


def main(argv):
    out_dir = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(HERE), 'tests', 'data', 'element')
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)

    frames = []
    for name, fmt, (w, h), matrix, colour_range in FRAMES:
        planes = synthetic_planes(fmt, w, h, rng)
        rgb = frame_to_rgb(fmt, w, h, planes, matrix, colour_range)
        letterboxed = letterbox_reference(rgb, INPUT[1], INPUT[0])
        frames.append((name, fmt, w, h, matrix, colour_range, planes, letterboxed))
    x = torch.from_numpy(np.stack([f[7] for f in frames]))

    cfg = load_config(os.path.join(MODELS, 'yolov5n-ssfpn.yaml'))
    cfg.update(nc=len(NAMES), width_multiple=0.0625, depth_multiple=0.33)
    model = build_random_model(cfg, seed=11, calib_size=INPUT, detect_obj_bias=0.0,
                               detect_cls_bias=1.0, sample=x)
    base = [mi.bias.detach().clone() for mi in model.model[-1].m]

    # Objectness shift giving at least 4 candidates on every frame.
    lo, hi = -30.0, 30.0
    for _ in range(40):
        mid = (lo + hi) / 2
        shift_objectness(model, base, mid)
        out = forward64(model, x)
        if min(candidate_count(out[i:i + 1], CONF) for i in range(len(out))) < 4:
            lo = mid
        else:
            hi = mid
    delta = (lo + hi) / 2

    model_path = os.path.join(out_dir, 'element.safetensors')
    for attempt in range(80):
        step = 0.0 if attempt == 0 else 0.0173 * ((attempt + 1) // 2) * \
            (1 if attempt % 2 else -1)
        shift_objectness(model, base, delta + step, 0.0071 * (attempt // 2))
        write_model_file(model_path, model, NAMES, INPUT, 'F32')
        stored = load_model(model_path, torch.float64)
        with torch.no_grad():
            out32 = stored(x.double())[0].to(torch.float32)
        if margins_ok(nms_margins(out32, CONF, IOU, agnostic=False)):
            break
    else:
        raise RuntimeError('no objectness shift with safe NMS margins')

    dets = non_max_suppression(out32, CONF, IOU, max_det=MAX_DET)
    cases = []
    for (name, fmt, w, h, matrix, colour_range, planes, _), d in zip(frames, dets):
        with open(os.path.join(out_dir, name + '.frame'), 'wb') as f:
            for plane in planes:
                f.write(plane.tobytes())
        boxes = scale_coords(INPUT, d[:, :4].tolist(), (h, w)) if len(d) else []
        cases.append({
            'name': name, 'format': fmt, 'width': w, 'height': h,
            'matrix': matrix, 'range': colour_range,
            'detections': [{
                'class_id': int(r[5]), 'label': NAMES[int(r[5])],
                'confidence': float(r[4]),
                'box': [float(v) for v in box],
            } for r, box in zip(d, boxes)],
        })
        print(f'{name:<24} {fmt:<5} {w}x{h} detections {len(d)}')

    index = {
        'generator': 'tools/make_element_fixtures.py',
        'model': 'element.safetensors',
        'input_size': list(INPUT),
        'conf': CONF, 'iou': IOU, 'max_det': MAX_DET,
        # fp32 engine against float64 reference, boxes scaled up by 1/gain
        'tolerance': {'box_px': 0.05, 'confidence': 1e-3},
        'cases': cases,
    }
    with open(os.path.join(out_dir, 'cases.json'), 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
