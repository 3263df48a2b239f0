#!/usr/bin/python3
"""Write the golden fixtures the engine's tests compare against.

For each case: <case>.safetensors (model file), <case>.input.npy (float32
(N, 3, H, W) in [0, 1]), <case>.output.npy (float32 (N, A, 5+nc): the raw
output computed in float64 by the PyTorch reference from the weights exactly
as stored in the file, then cast), <case>.output-flips.npy (the same for
the four test-time flips, ssfpn_ref/augment.py), <case>.nms.json (YOLOv5
v6.0 non_max_suppression of that output), and an index
tests/data/fixtures.json.
Deterministic: the same command writes the same bytes.

Usage: /usr/bin/python3 tools/make_fixtures.py [--out tests/data] [--only CASE...]
"""

import argparse
import copy
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ssfpn_ref.cli import build_random_model, quantize_weights  # noqa: E402
from ssfpn_ref.config import load_config, parse_config_text  # noqa: E402
from ssfpn_ref.fixtures import (synthetic_images, candidate_count,  # noqa: E402
                                nms_json, nms_margins, margins_ok)
from ssfpn_ref.model_file import write_model_file, load_model  # noqa: E402
from ssfpn_ref.augment import flip_tta  # noqa: E402
from ssfpn_ref.modules import DEFAULT_BN_EPS  # noqa: E402
from ssfpn_ref.fuse import fuse  # noqa: E402

MODELS = os.path.join(os.path.dirname(HERE), 'models')
CONF, IOU, MAX_DET = 0.25, 0.45, 300
# What tests/test_network.c allows an fp32 engine: box columns relative to
# max(|expected|, 1 px), probability columns absolute.
TOL_BOX_REL, TOL_PROB = 1e-4, 1e-4
# A seed is used only when PyTorch's own float32 error is this far inside.
ERROR_HEADROOM = 4

# YOLOv5 v5.0-style network (Focus stem, BottleneckCSP, SPP).
CSP_CONFIG = """
nc: 3
depth_multiple: 0.33
width_multiple: 0.03125
anchors:
  - [10,13, 16,30, 33,23]
  - [30,61, 62,45, 59,119]
  - [116,90, 156,198, 373,326]
backbone:
  [[-1, 1, Focus, [64, 3]],
   [-1, 1, Conv, [128, 3, 2]],
   [-1, 3, BottleneckCSP, [128]],
   [-1, 1, Conv, [256, 3, 2]],
   [-1, 9, BottleneckCSP, [256]],
   [-1, 1, Conv, [512, 3, 2]],
   [-1, 9, BottleneckCSP, [512]],
   [-1, 1, Conv, [1024, 3, 2]],
   [-1, 1, SPP, [1024, [5, 9, 13]]],
   [-1, 3, BottleneckCSP, [1024, False]],
  ]
head:
  [[-1, 1, Conv, [512, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 6], 1, Concat, [1]],
   [-1, 3, BottleneckCSP, [512, False]],
   [-1, 1, Conv, [256, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 4], 1, Concat, [1]],
   [-1, 3, BottleneckCSP, [256, False]],
   [-1, 1, Conv, [256, 3, 2]],
   [[-1, 14], 1, Concat, [1]],
   [-1, 3, BottleneckCSP, [512, False]],
   [-1, 1, Conv, [512, 3, 2]],
   [[-1, 10], 1, Concat, [1]],
   [-1, 3, BottleneckCSP, [1024, False]],
   [[17, 20, 23], 1, Detect, [nc, anchors]],
  ]
"""


class NoSafeMargins(Exception):
    """This seed gives no fixture whose NMS result is robust to rounding."""


def from_models(name, nc, width, activation=None):
    cfg = load_config(os.path.join(MODELS, name + '.yaml'))
    cfg.update(nc=nc, width_multiple=width, depth_multiple=0.33)
    if activation:
        cfg['activation'] = activation
    return cfg


def contract_config():
    """Baseline with a Contract stem, a Conv repeated twice (number 6 x
    0.33 -> 2: nn.Sequential naming model.2.0, model.2.1) and a standalone
    Bottleneck with its residual add."""
    cfg = from_models('yolov5n', 4, 0.03125)
    bb = cfg['backbone']
    bb[0] = [-1, 1, 'Contract', [2]]
    bb[2] = [-1, 6, 'Conv', [128, 3, 1]]
    bb[4] = [-1, 1, 'Bottleneck', [256]]
    return cfg


def contract4_config():
    """Baseline whose stem is a Contract of gain 4 (16x the channels at a
    quarter of the size) and a stride-1 Conv, so the levels keep strides
    8, 16 and 32."""
    cfg = from_models('yolov5n', 4, 0.03125)
    bb = cfg['backbone']
    bb[0] = [-1, 1, 'Contract', [4]]
    bb[1] = [-1, 1, 'Conv', [128, 3, 1]]
    return cfg


# name: (config, input (N, H, W), weight dtype, bn_eps, what it covers)
CASES = {
    'baseline': (lambda: from_models('yolov5n', 4, 0.0625), (1, 128, 128), 'F32', None,
                 'YOLOv5 v6.0: Conv 6x6 stem, C3, SPPF, Upsample, Concat, Detect'),
    'ssfpn': (lambda: from_models('yolov5n-ssfpn', 3, 0.0625), (1, 128, 128), 'F32', None,
              'official ssFPN: Unsqueeze, Concat [2], Conv3D, Upsample x4'),
    'ssfpn-seed': (lambda: from_models('yolov5n-ssfpn-seed', 6, 0.0625), (1, 128, 128),
                   'F32', None, 'seed ssFPN module over [P3, P4, P5]'),
    'spd': (lambda: from_models('yolov5n-spd', 5, 0.0625), (1, 128, 128), 'F32', None,
            'SPD-Conv: stride-1 Conv + space_to_depth'),
    'csp': (lambda: parse_config_text(CSP_CONFIG), (1, 64, 64), 'F32', None,
            'v5.0-like: Focus, BottleneckCSP (LeakyReLU 0.1, BN over concat), SPP'),
    'leaky': (lambda: from_models('yolov5n', 4, 0.03125, 'LeakyReLU'), (1, 64, 64), 'F32',
              None, 'model-wide activation LeakyReLU(0.1)'),
    'hardswish': (lambda: from_models('yolov5n', 4, 0.03125, 'Hardswish'), (1, 64, 64),
                  'F32', None, 'model-wide activation Hardswish'),
    'nonsquare': (lambda: from_models('yolov5n-ssfpn', 4, 0.03125), (1, 96, 128), 'F32',
                  None, 'official ssFPN, input 96x128 (H x W)'),
    'batch2': (lambda: from_models('yolov5n-ssfpn', 3, 0.0625), (2, 64, 96), 'F32',
               None, 'official ssFPN, batch of 2, input 64x96'),
    'f16': (lambda: from_models('yolov5n-ssfpn', 4, 0.03125), (1, 64, 64), 'F16', None,
            'official ssFPN, every tensor stored as F16'),
    'bf16': (lambda: from_models('yolov5n', 4, 0.03125), (1, 64, 64), 'BF16', None,
             'baseline, every tensor stored as BF16'),
    'contract': (contract_config, (1, 64, 64), 'F32', None,
                 'Contract stem, repeated Conv (model.2.0/.1), standalone Bottleneck'),
    'contract4': (contract4_config, (1, 64, 64), 'F32', None,
                  'Contract of gain 4 as the stem'),
    'bneps': (lambda: from_models('yolov5n', 4, 0.03125), (1, 64, 64), 'F32', 1e-5,
              'ssfpn.bn_eps = 1e-05 in the metadata'),
    'ssfpn-p2': (lambda: from_models('yolov5n-ssfpn-p2', 3, 0.03125), (1, 64, 64), 'F32',
                 None, 'official ssFPN with a stride-4 (P2) level: four Detect levels'),
}

# Extra NMS results for one case: (suffix, agnostic, max_det).
EXTRA_NMS = {'baseline': [('agnostic', True, MAX_DET), ('maxdet5', False, 5)],
             'batch2': [('agnostic', True, MAX_DET)]}

LABELS = ['person', 'car', 'bicycle', 'dog', 'cat', 'bus']


def detect_biases(model):
    return [mi.bias for mi in model.model[-1].m]


def shift_objectness(model, base, delta, wh_delta=0.0):
    """Detect biases = base + delta on objectness (+ wh_delta on w, h)."""
    det = model.model[-1]
    with torch.no_grad():
        for b, b0 in zip(detect_biases(model), base):
            b.copy_(b0)
            b.view(det.na, -1)[:, 4] += delta
            b.view(det.na, -1)[:, 2:4] += wh_delta


def tame_box_logits(model, factor=0.5):
    """Scale the Detect weights of x, y, w, h down so boxes keep sane sizes:
    a box a fraction of a pixel wide has an IoU no fp32 engine can be held
    to."""
    det = model.model[-1]
    with torch.no_grad():
        for mi in det.m:
            mi.weight.view(det.na, det.no, -1)[:, :4] *= factor


def forward64(model, x):
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return m(x.double())[0]


def calibrate_objectness(model, x, target):
    """Objectness shift giving about `target` NMS candidates on each image
    of x (at least that many on the image with the fewest)."""
    base = [b.detach().clone() for b in detect_biases(model)]
    lo, hi = -30.0, 30.0
    for _ in range(40):
        mid = (lo + hi) / 2
        shift_objectness(model, base, mid)
        out = forward64(model, x)
        if min(candidate_count(out[i:i + 1], CONF) for i in range(len(out))) < target:
            lo = mid
        else:
            hi = mid
    shift_objectness(model, base, 0.0)
    return base, (lo + hi) / 2


def float32_error(model_path, x, expected):
    """Largest float32 error on this model: box columns relative to
    max(|expected|, 1 px), box columns in pixels, probability columns; over
    PyTorch's own order and the BatchNorm-folded model the engine computes."""
    plain = load_model(model_path, torch.float32)
    folded = fuse(plain)
    err = {'box_rel': 0.0, 'box_px': 0.0, 'prob': 0.0}
    with torch.no_grad():
        for m in (plain, folded):
            got = m(x)[0].double()
            d = (got - expected).abs()
            err['box_rel'] = max(err['box_rel'], float(
                (d[..., :4] / expected[..., :4].abs().clamp_min(1.0)).max()))
            err['box_px'] = max(err['box_px'], float(d[..., :4].max()))
            err['prob'] = max(err['prob'], float(d[..., 4:].max()))
    return err


def flips_tolerance(model_path, x, expected):
    """Tolerances for the flip-augmented output (tests/test_network.c):
    the plain ones, or ERROR_HEADROOM times PyTorch's own float32 error on
    it where that is larger, since the fixture's margins were chosen on the
    unflipped input only and a mirrored view can round worse."""
    plain = load_model(model_path, torch.float32)
    box_rel, prob = 0.0, 0.0
    for m in (plain, fuse(plain)):
        d = (flip_tta(m, x).double() - expected).abs()
        box_rel = max(box_rel, float(
            (d[..., :4] / expected[..., :4].abs().clamp_min(1.0)).max()))
        prob = max(prob, float(d[..., 4:].max()))
    return {'box_rel': max(TOL_BOX_REL, ERROR_HEADROOM * box_rel),
            'prob_abs': max(TOL_PROB, ERROR_HEADROOM * prob)}


def write_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype='<f4'), allow_pickle=False)


def make_case(name, out_dir, seed):
    make_cfg, (n, h, w), dtype, bn_eps, covers = CASES[name]
    cfg = make_cfg()
    nc = cfg['nc']
    names = LABELS[:nc]
    x = synthetic_images(n, h, w, seed=1000 + seed)
    # BatchNorm statistics from a batch that includes the fixture input, so
    # that its activations stay O(1) all the way to Detect.
    calib = torch.cat((x, synthetic_images(8 - n, h, w, seed=2000 + seed)))

    model = build_random_model(cfg, seed=seed, bn_eps=bn_eps or DEFAULT_BN_EPS,
                               calib_size=(h, w), detect_obj_bias=0.0,
                               detect_cls_bias=1.0, sample=calib)
    tame_box_logits(model)

    rows = sum(model.model[-1].na * (h // int(s)) * (w // int(s))
               for s in model.stride.tolist())
    target = max(6, round(0.03 * rows))
    base, delta = calibrate_objectness(model, x, target)

    model_path = os.path.join(out_dir, f'{name}.safetensors')
    # Nudge the shift until no NMS decision sits within rounding distance of
    # its threshold, judged on the model exactly as the file stores it.  The
    # objectness shift moves scores; a small change of the w, h biases moves
    # the IoUs of pairs that stay candidates.
    for attempt in range(40):
        step = 0.0 if attempt == 0 else 0.0173 * ((attempt + 1) // 2) * \
            (1 if attempt % 2 else -1)
        shift_objectness(model, base, delta + step, 0.0071 * (attempt // 2))
        quantized = quantize_weights(copy.deepcopy(model), dtype)
        write_model_file(model_path, quantized, names, (h, w), dtype, bn_eps)
        stored = load_model(model_path, torch.float64)
        with torch.no_grad():
            expected = stored(x.double())[0]
        out32 = expected.to(torch.float32)
        err = float32_error(model_path, x, expected)
        if err['box_rel'] * ERROR_HEADROOM > TOL_BOX_REL or \
                err['prob'] * ERROR_HEADROOM > TOL_PROB:
            raise NoSafeMargins(f'seed {seed}: float32 error {err} too close to '
                                f'the tolerance')
        # Decisions must stay put for any output within tolerance.
        tol_box = TOL_BOX_REL * max(1.0, float(expected[..., :4].abs().max()))
        limits = dict(conf_margin=2 * TOL_PROB, gap_margin=2 * TOL_PROB)
        margins = nms_margins(out32, CONF, IOU, False, box_error=tol_box)
        ok = margins_ok(margins, **limits) and all(
            margins_ok(nms_margins(out32, CONF, IOU, a, box_error=tol_box), **limits)
            for _, a, _ in EXTRA_NMS.get(name, []))
        if os.environ.get('FIXTURES_DEBUG'):
            print(name, attempt, margins, limits, file=sys.stderr)
        if ok:
            break
    else:
        raise NoSafeMargins(f'seed {seed}: no Detect bias shift with safe NMS margins')

    write_npy(os.path.join(out_dir, f'{name}.input.npy'), x.numpy())
    write_npy(os.path.join(out_dir, f'{name}.output.npy'), out32.numpy())
    flips = flip_tta(stored, x.double())
    write_npy(os.path.join(out_dir, f'{name}.output-flips.npy'),
              flips.to(torch.float32).numpy())
    nms_files = []
    primary = nms_json(out32, names, CONF, IOU, False, MAX_DET)
    with open(os.path.join(out_dir, f'{name}.nms.json'), 'w') as f:
        json.dump(primary, f, indent=1)
        f.write('\n')
    for suffix, agnostic, max_det in EXTRA_NMS.get(name, []):
        fname = f'{name}.nms-{suffix}.json'
        with open(os.path.join(out_dir, fname), 'w') as f:
            json.dump(nms_json(out32, names, CONF, IOU, agnostic, max_det), f, indent=1)
            f.write('\n')
        nms_files.append({'file': fname, 'conf': CONF, 'iou': IOU,
                          'agnostic': agnostic, 'max_det': max_det})

    det = stored.model[-1]
    return {
        'name': name,
        'covers': covers,
        'model': f'{name}.safetensors',
        'input': f'{name}.input.npy',
        'output': f'{name}.output.npy',
        'output_flips': f'{name}.output-flips.npy',
        'nms': f'{name}.nms.json',
        'conf': CONF, 'iou': IOU, 'agnostic': False, 'max_det': MAX_DET,
        'extra_nms': nms_files,
        'dtype': dtype,
        'bn_eps': bn_eps if bn_eps is not None else DEFAULT_BN_EPS,
        'input_shape': [n, 3, h, w],
        'output_shape': list(out32.shape),
        'nc': nc, 'na': det.na,
        'stride': [int(s) for s in stored.stride.tolist()],
        'layers': len(stored.model),
        'parameters': stored.parameter_count(),
        'seed': seed,
        'candidates': [img['candidates'] for img in primary['images']],
        'detections': [len(img['detections']) for img in primary['images']],
        'nms_margins': margins,
        'torch_float32_error': err,
        'tolerance': {'box_rel': TOL_BOX_REL, 'prob_abs': TOL_PROB,
                      'nms_box_px': tol_box},
        'flips_tolerance': flips_tolerance(model_path, x, flips),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.path.join(os.path.dirname(HERE), 'tests', 'data'))
    p.add_argument('--only', nargs='*', choices=list(CASES),
                   help='regenerate these cases only (the index keeps the others)')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    index_path = os.path.join(args.out, 'fixtures.json')
    old = {}
    if args.only and os.path.exists(index_path):
        with open(index_path) as f:
            old = {c['name']: c for c in json.load(f)['cases']}
    cases = []
    for seed, name in enumerate(CASES):
        if args.only and name not in args.only:
            if name in old:
                cases.append(old[name])
            continue
        # Random networks differ in how far rounding errors grow; when one
        # leaves no safe NMS margins, the next seed is taken.
        for trial in range(20):
            try:
                entry = make_case(name, args.out, seed + 100 * trial)
                break
            except NoSafeMargins as e:
                print(f'{name}: {e}; trying another seed', file=sys.stderr)
        else:
            raise SystemExit(f'{name}: no seed gave safe NMS margins')
        cases.append(entry)
        print(f'{name:<11} {entry["dtype"]:<4} in {entry["input_shape"]} out '
              f'{entry["output_shape"]} params {entry["parameters"]} candidates '
              f'{entry["candidates"]} detections {entry["detections"]} f32 err '
              f'{entry["torch_float32_error"]}', flush=True)

    index = {
        'format': 1,
        'generator': 'tools/make_fixtures.py (see docs/fixtures.md)',
        'output_definition': 'raw model output (N, A, 5+nc) as in '
                             'shared/spec/model-format.md, computed in float64 by '
                             'tools/ssfpn_ref from the weights as stored, cast to float32',
        'nms_definition': 'YOLOv5 v6.0 non_max_suppression: obj > conf, score = '
                          'obj*cls, best class only, score > conf, class offset 4096 '
                          'unless agnostic, torchvision.ops.nms, max_det; '
                          'detections sorted by confidence, descending',
        'tolerance_notes': 'for an fp32 engine (tests/test_network.c): columns 0-3 '
                           'within tolerance.box_rel relative to max(|expected|, 1 px), '
                           'columns 4.. within tolerance.prob_abs. Each case was kept '
                           'only if PyTorch float32, plain and BatchNorm-folded, stays '
                           '%dx inside (torch_float32_error). nms_margins: distance of '
                           'the NMS decisions from their thresholds (iou_slack: IoU '
                           'distance less the most a box error of tolerance.nms_box_px '
                           'can move it); the Detect biases were nudged until the '
                           'objectness and score margins exceed 2x prob_abs and '
                           'iou_slack is positive, so an engine within tolerance gives '
                           'the same detections (count, classes, order). fp16 compute '
                           'needs about 1e-2 relative and may change NMS decisions.'
                           % ERROR_HEADROOM,
        'cases': cases,
    }
    with open(index_path, 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
