#!/usr/bin/python3
"""Checks of the PyTorch reference itself (not part of CI; needs Debian's
torch: /usr/bin/python3 tools/test_reference.py [--quick]).

- the seed ssFPN module equals the spec's closed form
  (f(x) + 2 LeakyReLU(BN(0))) / 3;
- the official Conv3D equals the 7-tap decomposition of docs/architecture.md;
- parse_model reproduces YOLOv5 v6.0's published layer and parameter counts;
- every models/*.yaml builds and runs at 640;
- model files round-trip (F32, F16, BF16), BatchNorm folding is exact,
  Contract and space_to_depth reorder as specified;
- flip_tta (test-time flips) equals its definition spelled out row by row;
- the checked-in fixtures, flips outputs included, agree with a fresh
  computation from their files.
"""

import argparse
import glob
import json
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import ssfpn_ref as R  # noqa: E402
from ssfpn_ref.cli import build_random_model, quantize_weights  # noqa: E402
from ssfpn_ref.fixtures import nms_json  # noqa: E402
from ssfpn_ref.augment import flip_tta  # noqa: E402

RESULTS = {'passed': 0, 'failed': 0}


def check(name, ok, detail=''):
    RESULTS['passed' if ok else 'failed'] += 1
    print(f'{"PASS" if ok else "FAIL"} {name}{": " + detail if detail else ""}',
          flush=True)


def randomize_bn(bn, g):
    with torch.no_grad():
        bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=g))
        bn.bias.copy_(torch.randn(bn.bias.shape, generator=g) * 0.3)
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.3)
        bn.running_var.copy_(0.5 + torch.rand(bn.running_var.shape, generator=g))


def bn_eval(x, bn):
    shape = [1, -1] + [1] * (x.dim() - 2)
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return (x - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape)


def test_seed_ssfpn_closed_form():
    g = torch.Generator().manual_seed(1)
    c3, c4, c5, c2 = 5, 7, 9, 6
    m = R.ssFPN(c3 + c4 + c5, c2).double().eval()
    with torch.no_grad():
        m.conv.weight.copy_(torch.randn(m.conv.weight.shape, generator=g) * 0.2)
    randomize_bn(m.bn, g)
    p3 = torch.randn((2, c3, 16, 12), generator=g, dtype=torch.float64)
    p4 = torch.randn((2, c4, 8, 6), generator=g, dtype=torch.float64)
    p5 = torch.randn((2, c5, 4, 3), generator=g, dtype=torch.float64)
    with torch.no_grad():
        got = m([p3, p4, p5])
        x = torch.cat((p3, p4.repeat_interleave(2, 2).repeat_interleave(2, 3),
                       p5.repeat_interleave(4, 2).repeat_interleave(4, 3)), 1)
        w2d = m.conv.weight[:, :, 0]                       # (c2, c1, 3, 3)
        f = F.leaky_relu(bn_eval(F.conv2d(x, w2d, padding=1), m.bn), 0.01)
        bn0 = F.leaky_relu(bn_eval(torch.zeros((1, c2, 1, 1), dtype=torch.float64),
                                   m.bn), 0.01)
        want = (f + 2 * bn0) / 3
    err = float((got - want).abs().max())
    check('seed ssFPN = (f(x) + 2 LReLU(BN(0))) / 3', got.shape == want.shape and err < 1e-12,
          f'shape {tuple(got.shape)}, max err {err:.3g}')
    check('seed ssFPN BatchNorm3d eps is 1e-5', m.bn.eps == 1e-5)


def test_conv3d_seven_taps():
    g = torch.Generator().manual_seed(2)
    c, c2 = 6, 5
    m = R.Conv3D(c, c2).double().eval()
    with torch.no_grad():
        m.conv3d.weight.copy_(torch.randn(m.conv3d.weight.shape, generator=g) * 0.2)
        m.conv3d.bias.copy_(torch.randn(m.conv3d.bias.shape, generator=g) * 0.2)
    randomize_bn(m.batch3d, g)
    levels = [torch.randn((2, c, 10, 14), generator=g, dtype=torch.float64)
              for _ in range(3)]
    with torch.no_grad():
        got = m(torch.stack(levels, 2))
        # Folded form: per output depth d, the taps k with 0 <= d + k - 1 <= 2
        # (7 of 9), each a 3x3 conv2d; BN folded; LReLU; scale 1/3; summed.
        scale = m.batch3d.weight / (m.batch3d.running_var + m.batch3d.eps).sqrt()
        w = m.conv3d.weight * scale.view(-1, 1, 1, 1, 1)
        b = (m.conv3d.bias - m.batch3d.running_mean) * scale + m.batch3d.bias
        want = 0
        taps = 0
        for d in range(3):
            acc = b.view(1, -1, 1, 1)
            for k in range(3):
                src = d + k - 1
                if 0 <= src <= 2:
                    acc = acc + F.conv2d(levels[src], w[:, :, k], padding=1)
                    taps += 1
            want = want + F.leaky_relu(acc, 0.01) / 3
    err = float((got - want).abs().max())
    check('Conv3D = 7-tap decomposition with folded BN', taps == 7 and err < 1e-12,
          f'{taps} taps, max err {err:.3g}')
    check('Conv3D BatchNorm3d eps is 0.001, conv has bias',
          m.batch3d.eps == 0.001 and m.conv3d.bias is not None)


# YOLOv5 v6.0's published model summaries, nc=80, at 640 (model_info: layers =
# every module, parameters before fusing; after Model.fuse()).
PUBLISHED = {
    'yolov5n': {'layers': 270, 'params': 1872157, 'fused_layers': 213,
                'fused_params': 1867405},
    'yolov5s': {'layers': 270, 'params': 7235389, 'fused_layers': 213,
                'fused_params': 7225885},
    'yolov5m': {'fused_layers': 290, 'fused_params': 21172173},
    'yolov5l': {'fused_layers': 367, 'fused_params': 46533693},
    'yolov5x': {'fused_layers': 444, 'fused_params': 86705005},
}


def test_published_counts():
    for name, want in PUBLISHED.items():
        model = R.Model(R.load_config(os.path.join(ROOT, 'models', name + '.yaml'))).eval()
        fused = R.fuse(model)
        got = {'layers': model.layer_count(), 'params': model.parameter_count(),
               'fused_layers': fused.layer_count(),
               'fused_params': fused.parameter_count()}
        bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        check(f'{name} matches YOLOv5 v6.0 summary', not bad,
              f'{got}' + (f' mismatches (got, want) {bad}' if bad else ''))


def test_all_models(quick):
    paths = sorted(glob.glob(os.path.join(ROOT, 'models', '*.yaml')))
    check('models/*.yaml: 21 configurations', len(paths) == 21, str(len(paths)))
    print(f'{"model":<24} {"layers":>6} {"params":>10} {"GFLOPs":>7}  output at 640')
    for path in paths:
        name = os.path.basename(path)[:-5]
        model = R.Model(R.load_config(path)).eval()
        size = 256 if quick else 640
        with torch.no_grad():
            out = model(torch.zeros((1, 3, size, size)))[0]
        # Three anchors a cell on every Detect level (P3-P5; P2 too for -p2)
        strides = (4, 8, 16, 32) if name.endswith('-p2') else (8, 16, 32)
        rows = 3 * sum((size // s) ** 2 for s in strides)
        ok = tuple(out.shape) == (1, rows, 85) and bool(torch.isfinite(out).all())
        flops = 2 * conv_macs(model, 640) / 1e9
        print(f'{name:<24} {model.layer_count():>6} {model.parameter_count():>10} '
              f'{flops:>7.1f}  {tuple(out.shape)}')
        check(f'{name} builds and runs at {size}', ok, str(tuple(out.shape)))


def conv_macs(model, size):
    """Multiply-accumulates of every convolution at size x size."""
    total = [0]

    def hook(m, inputs, output):
        total[0] += output.numel() * m.weight[0].numel()
    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    with torch.no_grad():
        model(torch.zeros((1, 3, size, size)))
    for h in hs:
        h.remove()
    return total[0]


def test_round_trip():
    cfg = R.load_config(os.path.join(ROOT, 'models', 'yolov5n-ssfpn.yaml'))
    cfg.update(nc=3, width_multiple=0.0625)
    x = torch.rand((1, 3, 64, 96), generator=torch.Generator().manual_seed(3))
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ('F32', 'F16', 'BF16'):
            model = quantize_weights(build_random_model(cfg, seed=5, calib_size=(64, 96)),
                                     dtype).double()
            path = os.path.join(tmp, f'm-{dtype}.safetensors')
            R.write_model_file(path, model, ['a', 'b', 'c'], (64, 96), dtype)
            tensors, dtypes, meta = R.read_model_file(path)
            state = R.model_file.model_tensors(model)
            exact = set(tensors) == set(state) and all(
                torch.equal(tensors[k].double(), state[k].double()) for k in state)
            loaded = R.load_model(path, torch.float64)
            with torch.no_grad():
                diff = float((loaded(x.double())[0] - model(x.double())[0]).abs().max())
            check(f'{dtype} model file round trip', exact and diff == 0.0
                  and set(dtypes.values()) == {dtype} and meta['stride'] == [8, 16, 32]
                  and meta['imgsz'] == [64, 96] and meta['names'] == ['a', 'b', 'c'],
                  f'tensors exact {exact}, output diff {diff:.3g}')
            with open(path, 'rb') as f:
                n = int.from_bytes(f.read(8), 'little')
                header = json.loads(f.read(n))
            check(f'{dtype} header: aligned, no num_batches_tracked, metadata strings',
                  n % 8 == 0 and not any('num_batches' in k for k in header)
                  and all(isinstance(v, str) for v in header['__metadata__'].values()))


def test_fuse_exact():
    cfg = R.load_config(os.path.join(ROOT, 'models', 'yolov5n-spd.yaml'))
    cfg.update(nc=4, width_multiple=0.0625)
    model = build_random_model(cfg, seed=7, calib_size=(64, 64)).double()
    x = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(4),
                   dtype=torch.float64)
    with torch.no_grad():
        want = model(x)[0]
        err = float(((R.fuse(model)(x)[0] - want).abs()
                     / want.abs().clamp_min(1.0)).max())
    check('BatchNorm folding is exact in float64', err < 1e-10,
          f'max relative err {err:.3g}')


def test_reorderings():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).view(2, 3, 4, 6)
    got = R.Contract(2)(x)
    want = torch.empty((2, 12, 2, 3), dtype=torch.float64)
    for sy in range(2):
        for sx in range(2):
            for c in range(3):
                want[:, (sy * 2 + sx) * 3 + c] = x[:, c, sy::2, sx::2]
    check('Contract channel order (row phase, column phase, c)', torch.equal(got, want))
    got = R.space_to_depth()(x)
    want = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2],
                      x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], 1)
    check('space_to_depth = Focus order', torch.equal(got, want))
    check('make_divisible rounds up to 8',
          [R.make_divisible(v) for v in (8, 8.5, 16, 20, 0.0625 * 64)] == [8, 16, 16, 24, 8])


def test_detect_decode():
    cfg = R.load_config(os.path.join(ROOT, 'models', 'yolov5n.yaml'))
    cfg.update(nc=2, width_multiple=0.0625)
    model = build_random_model(cfg, seed=9, calib_size=(64, 64)).double()
    x = torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(5),
                   dtype=torch.float64)
    with torch.no_grad():
        out, raw = model(x)
    det = model.model[-1]
    rows = []
    for i, r in enumerate(raw):          # (1, na, ny, nx, no) logits
        s = float(det.stride[i])
        for a in range(det.na):
            for yy in range(r.shape[2]):
                for xx in range(r.shape[3]):
                    v = r[0, a, yy, xx].sigmoid()
                    cx = (v[0] * 2 - 0.5 + xx) * s
                    cy = (v[1] * 2 - 0.5 + yy) * s
                    w = (v[2] * 2) ** 2 * det.anchors[i, a, 0] * s
                    h = (v[3] * 2) ** 2 * det.anchors[i, a, 1] * s
                    rows.append(torch.cat((torch.stack((cx, cy, w, h)), v[4:])))
    want = torch.stack(rows).unsqueeze(0)
    err = float((out - want).abs().max())
    check('Detect decode and row order (level, anchor, row, column)',
          out.shape == want.shape and err < 1e-9, f'max err {err:.3g}')
    anchors_px = (det.anchors * det.stride.view(-1, 1, 1).double()).tolist()
    check('Detect anchors stored in stride units',
          anchors_px == [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                         [[116, 90], [156, 198], [373, 326]]])


def test_flip_tta():
    """augment.flip_tta against the definition spelled out row by row: the
    anchor at cell (y, x) averages the views' rows at the mirror cell, box
    centre mirrored back."""
    cfg = R.load_config(os.path.join(ROOT, 'models', 'yolov5n-ssfpn.yaml'))
    cfg.update(nc=2, width_multiple=0.0625)
    model = build_random_model(cfg, seed=11, calib_size=(64, 96)).double()
    x = torch.rand((2, 3, 64, 96), generator=torch.Generator().manual_seed(6),
                   dtype=torch.float64)
    det = model.model[-1]
    h, w = x.shape[2:]
    with torch.no_grad():
        views = [model(x.flip(3) if fx else x)[0] for fx in (False, True)]
        views = [[v, model(v_in.flip(2))[0]] for v, v_in in
                 zip(views, (x, x.flip(3)))]
    want = torch.zeros_like(views[0][0])
    row = 0
    for s in det.stride.tolist():
        ny, nx = h // int(s), w // int(s)
        for a in range(det.na):
            for yy in range(ny):
                for xx in range(nx):
                    acc = 0
                    for fx in (0, 1):
                        for fy in (0, 1):
                            src = row - (a * ny + yy) * nx - xx + a * ny * nx \
                                + (ny - 1 - yy if fy else yy) * nx \
                                + (nx - 1 - xx if fx else xx)
                            r = views[fx][fy][:, src].clone()
                            if fx:
                                r[:, 0] = w - r[:, 0]
                            if fy:
                                r[:, 1] = h - r[:, 1]
                            acc = acc + r
                    want[:, row] = acc / 4
                    row += 1
    err = float((flip_tta(model, x) - want).abs().max())
    check('flip_tta: mirror cells, mirrored centres, averaged (batch 2, 64x96)',
          err < 1e-9, f'max err {err:.3g}')


def test_fixtures():
    data = os.path.join(ROOT, 'tests', 'data')
    index_path = os.path.join(data, 'fixtures.json')
    if not os.path.exists(index_path):
        print('SKIP fixtures: tests/data/fixtures.json not found')
        return
    with open(index_path) as f:
        index = json.load(f)
    for case in index['cases']:
        model = R.load_model(os.path.join(data, case['model']), torch.float64)
        x = torch.from_numpy(np.load(os.path.join(data, case['input'])))
        stored = torch.from_numpy(np.load(os.path.join(data, case['output'])))
        with torch.no_grad():
            out = model(x.double())[0].to(torch.float32)
        same_out = torch.equal(out, stored)
        with open(os.path.join(data, case['nms'])) as f:
            nms = json.load(f)
        fresh = nms_json(stored, model.names, case['conf'], case['iou'],
                         case['agnostic'], case['max_det'])
        dets = sum(len(i['detections']) for i in nms['images'])
        check(f'fixture {case["name"]}: output and NMS reproduce',
              same_out and fresh == nms and x.dtype == torch.float32
              and float(x.min()) >= 0 and float(x.max()) <= 1 and dets > 0,
              f'{dets} detections')
        flips = torch.from_numpy(np.load(os.path.join(data, case['output_flips'])))
        check(f'fixture {case["name"]}: flips output reproduces',
              torch.equal(flip_tta(model, x.double()).to(torch.float32), flips))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='run the models at 256, not 640')
    args = p.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    test_seed_ssfpn_closed_form()
    test_conv3d_seven_taps()
    test_reorderings()
    test_detect_decode()
    test_flip_tta()
    test_fuse_exact()
    test_round_trip()
    test_fixtures()
    test_published_counts()
    test_all_models(args.quick)
    print(f'{RESULTS["passed"]} passed, {RESULTS["failed"]} failed')
    return 1 if RESULTS['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
