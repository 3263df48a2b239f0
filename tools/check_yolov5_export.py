"""The export path checked against the real YOLOv5 code (the `yolov5` package
from PyPI, v7.0).  Run by scripts/check-yolov5-export.sh inside a virtual
environment that has that package; not part of CI (it needs PyPI).

What it does, as a user would:
1. copies the installed yolov5 package into a "user checkout"
   (WORK/checkout/yolov5) and adds the ssFPN modules to it exactly as
   docs/models.md tells users to: the module classes appended to
   models/common.py, the parse_model lines patched into models/yolo.py;
2. builds models with YOLOv5's own parse_model, from its configurations
   (yolov5n, yolov5s) and from ours with either form of the ssFPN neck;
3. gives them seeded random weights, saves checkpoints as train.py does,
   exports them with tools/export.py (pickled YOLOv5 objects unpickled
   through the checkout), and compares `ssfpn run` with the PyTorch model's
   output (float64) on the same input, to the golden tolerances;
4. checks that models the format cannot hold are refused, naming the layer.
"""

import argparse
import copy
import datetime
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import torch
import torch.nn as nn

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import export  # noqa: E402
from ssfpn_ref.fixtures import synthetic_images  # noqa: E402
from ssfpn_ref.init import randomize_weights  # noqa: E402

# What docs/models.md tells users to append to models/common.py.
COMMON_PY_ADDITION = '''

# ---- ssFPN neck (arXiv 2208.11533), for ssfpn-gst's model format ----------
class ssFPN(nn.Module):
    # Seed form: one module over [P3, P4, P5]; P4, P5 upsampled to P3's size,
    # concatenated on channels, Conv3d (1,3,3) padding 1, BN3d, LeakyReLU,
    # average over the (zero-padded) depth of 3.
    def __init__(self, c1, c2):
        super().__init__()
        self.conv = nn.Conv3d(c1, c2, (1, 3, 3), stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(c2)
        self.act = nn.LeakyReLU(0.01)
        self.pool = nn.AvgPool3d((3, 1, 1))

    def forward(self, x):
        p3, p4, p5 = x
        p4 = nn.functional.interpolate(p4, scale_factor=2, mode='nearest')
        p5 = nn.functional.interpolate(p5, scale_factor=4, mode='nearest')
        x = torch.cat((p3, p4, p5), 1).unsqueeze(2)
        return self.pool(self.act(self.bn(self.conv(x)))).squeeze(2)


class Unsqueeze(nn.Module):
    # Official form: adds the scale axis, (N, C, H, W) -> (N, C, 1, H, W)
    def __init__(self, dim=2):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.unsqueeze(self.dim)


class Conv3D(nn.Module):
    # Official form: 3x3x3 Conv3d with bias over the scale stack, BN3d,
    # LeakyReLU, mean over the scale axis
    def __init__(self, c1, c2):
        super().__init__()
        self.conv3d = nn.Conv3d(c1, c2, 3, 1, 1, bias=True)
        self.batch3d = nn.BatchNorm3d(c2, eps=0.001)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.batch3d(self.conv3d(x))).mean(2)
'''

# What docs/models.md tells users to put in place of parse_model's Concat
# branch (models/yolo.py).
PARSE_MODEL_BRANCHES = '''\
elif m is Concat:  # dim 2 stacks the ssFPN scale sequence: channels stay
    c2 = ch[f[0]] if args and args[0] == 2 else sum(ch[x] for x in f)
elif m is ssFPN:
    c1, c2 = sum(ch[x] for x in f), args[0]
    if c2 != no:
        c2 = make_divisible(c2 * gw, 8)
    args = [c1, c2]
elif m is Conv3D:
    c1, c2 = ch[f], make_divisible(args[0] * gw, 8)
    args = [c1, c2]
'''
CONCAT_BRANCH = re.compile(r'^( +)elif m is Concat:\n +c2 = sum\(\[?ch\[x\] for x in f\]?\)\n',
                           re.M)

BOX_TOL, PROB_TOL = export.BOX_REL_TOLERANCE, export.PROB_ABS_TOLERANCE


def make_checkout(work):
    """A copy of the installed yolov5 package with the ssFPN additions."""
    spec = importlib.util.find_spec('yolov5')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('the yolov5 package is not installed')
    source = list(spec.submodule_search_locations)[0]
    checkout = os.path.join(work, 'checkout')
    shutil.rmtree(checkout, ignore_errors=True)
    shutil.copytree(source, os.path.join(checkout, 'yolov5'),
                    ignore=shutil.ignore_patterns('__pycache__'))
    common = os.path.join(checkout, 'yolov5', 'models', 'common.py')
    with open(common, 'a', encoding='utf-8') as f:
        f.write(COMMON_PY_ADDITION)
    yolo = os.path.join(checkout, 'yolov5', 'models', 'yolo.py')
    with open(yolo, encoding='utf-8') as f:
        text = f.read()
    match = CONCAT_BRANCH.search(text)
    if match is None:
        raise SystemExit(f'{yolo}: parse_model\'s Concat branch not found; '
                         'the documented patch does not apply to this version')
    indent = match.group(1)
    branches = ''.join(indent + line + '\n' if line else '\n'
                       for line in PARSE_MODEL_BRANCHES.splitlines())
    text = text[:match.start()] + branches + text[match.end():]
    with open(yolo, 'w', encoding='utf-8') as f:
        f.write(text)
    return checkout, source


def load_yolo(checkout):
    sys.path.insert(0, checkout)
    import yolov5.models.yolo as yolo
    if not os.path.abspath(yolo.__file__).startswith(os.path.abspath(checkout)):
        raise SystemExit(f'imported {yolo.__file__}, not the patched checkout')
    return yolo


def read_yaml(path):
    import yaml
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def build(yolo, cfg):
    """A YOLOv5 DetectionModel built by YOLOv5's own parse_model."""
    yolo.Conv.default_act = nn.SiLU()  # v7.0 sets it globally per build
    model = yolo.DetectionModel(copy.deepcopy(cfg), ch=3)
    yolo.Conv.default_act = nn.SiLU()
    return model


def well_conditioned_weights(model, x, first_seed, tries=6):
    """Seeded random weights, BatchNorm calibrated on images including x;
    like make_fixtures.py, a seed is taken only where PyTorch's own float32
    error on x is well inside the tolerances (else no float32 engine could
    be held to them).  Returns (seed, PyTorch float32 errors)."""
    best = None
    for seed in range(first_seed, first_seed + tries):
        torch.manual_seed(seed)
        sample = torch.cat((x, synthetic_images(3, x.shape[2], x.shape[3], seed + 500)))
        randomize_weights(model, seed=seed, sample=sample.float())
        model.eval()
        half = copy.deepcopy(model).half()
        exact = export.torch_output(half, x, 'F16')
        err = export.compare_outputs(export.torch_output(half, x, 'F16', torch.float32),
                                     exact)
        if best is None or err[0] < best[1][0]:
            best = (seed, err)
        if err[0] * 2 <= BOX_TOL and err[1] * 2 <= PROB_TOL:
            return seed, err
    seed, err = best
    torch.manual_seed(seed)
    randomize_weights(model, seed=seed, sample=torch.cat(
        (x, synthetic_images(3, x.shape[2], x.shape[3], seed + 500))).float())
    return seed, err


def save_checkpoint(path, model, imgsz, ema=None, names=None):
    """As YOLOv5's train.py saves one (v6.0 - v7.0)."""
    m = copy.deepcopy(model)
    if names is not None:
        m.names = names
    ckpt = {'epoch': 0, 'best_fitness': None, 'model': m.half(),
            'ema': None if ema is None else copy.deepcopy(ema).half(),
            'updates': None, 'optimizer': None,
            'opt': {'imgsz': imgsz, 'epochs': 1, 'batch_size': 16},
            'git': None, 'date': datetime.datetime.now().isoformat()}
    torch.save(ckpt, path)


def file_name(case):
    return re.sub(r'[^A-Za-z0-9_.-]+', '-', case).strip('-')


def run_export(args, checkout, weights, output, extra=()):
    cmd = [sys.executable, os.path.join(TOOLS, 'export.py'), weights, '-o', output,
           '--yolov5', checkout, '--ssfpn', args.ssfpn, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


class Results:
    def __init__(self):
        self.rows, self.failures, self.failed_cases = [], [], set()

    def fail(self, name, why):
        self.failures.append(f'{name}: {why}')
        self.failed_cases.add(name)
        print(f'FAIL {name}: {why}', flush=True)


def positive_case(args, yolo, checkout, results, name, cfg, dtype='F32',
                  ema=False, names=None, state_dict=False, seed=0, strict=True):
    """strict: held to the golden tolerances (narrow networks, as the golden
    fixtures are).  Otherwise (full-width networks, where PyTorch's own
    float32 run misses them on random weights): the engine must be within
    twice PyTorch's float32 error, the criterion export.py --check falls
    back to."""
    work = args.work
    model = build(yolo, cfg)
    h, w = args.size
    x = synthetic_images(1, h, w, 1000 + seed).float()
    used_seed, torch_err = well_conditioned_weights(model, x, seed * 10,
                                                    tries=6 if strict else 1)
    pt = os.path.join(work, f'{file_name(name)}.pt')
    out = os.path.join(work, f'{file_name(name)}.safetensors')
    extra = ['--dtype', dtype, '--check', '--check-size', f'{h},{w}',
             '--seed', str(1000 + seed)]
    weights_model = model
    if state_dict:
        torch.save(copy.deepcopy(model).half().state_dict(), pt)
        cfg_path = os.path.join(work, f'{file_name(name)}.yaml')
        with open(cfg_path, 'w', encoding='utf-8') as f:
            json.dump(cfg, f)
        extra += ['--cfg', cfg_path]
    elif ema:
        # 'model' and 'ema' differ, as after training; 'ema' is the one
        # YOLOv5's attempt_load (and the exporter) uses.
        other = copy.deepcopy(model)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.01)
        save_checkpoint(pt, other, h, ema=model, names=names)
    else:
        save_checkpoint(pt, model, h, names=names)

    proc = run_export(args, checkout, pt, out, extra)
    if proc.returncode != 0 or not proc.stdout.strip():
        results.fail(name, f'export.py exit {proc.returncode}: {proc.stderr.strip()}')
        return
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    # Our own comparison, from the in-memory model (weights as saved: half).
    saved = copy.deepcopy(weights_model).half()
    expected = export.torch_output(saved, x, dtype)
    got = export.run_ssfpn(args.ssfpn, out, x)
    box, prob = export.compare_outputs(got, expected)
    if ema:
        from ssfpn_ref.model_file import read_model_file
        tensors, _, _ = read_model_file(out)
        ref = saved.float().state_dict()
        if any(not torch.equal(tensors[k], ref[k].float()) for k in tensors):
            results.fail(name, 'the file does not hold ckpt[\'ema\']\'s weights')
    # The golden tolerances hold only where PyTorch's own float32 run is well
    # inside them (the rule make_fixtures.py picks seeds by).
    strict = strict and torch_err[0] * 2 <= BOX_TOL and torch_err[1] * 2 <= PROB_TOL
    if strict:
        ok = box < BOX_TOL and prob < PROB_TOL
    else:
        ok = box <= max(BOX_TOL, 2 * torch_err[0]) and \
            prob <= max(PROB_TOL, 2 * torch_err[1])
    results.rows.append({
        'case': name, 'dtype': dtype, 'parameters': report['parameters'],
        'seed': used_seed, 'input': list(x.shape), 'box_rel_error': box,
        'prob_abs_error': prob, 'torch_fp32_box_rel_error': torch_err[0],
        'torch_fp32_prob_abs_error': torch_err[1],
        'export_check': report.get('check'), 'activation': report['activation'],
        'criterion': 'golden' if strict else 'within 2x PyTorch fp32', 'passed': ok})
    print(f'{"ok  " if ok else "FAIL"} {name:<30} {"golden" if strict else "2x fp32"} {dtype} params {report["parameters"]:>9} '
          f'box rel {box:.2e}  prob {prob:.2e}  (PyTorch fp32: {torch_err[0]:.2e}, '
          f'{torch_err[1]:.2e})', flush=True)
    if not ok:
        results.fail(name, f'errors {box:.3g} / {prob:.3g} over the limits')
    check = report.get('check', {})
    if not (check.get('passed') if strict else check.get('within_torch_fp32_error')):
        results.fail(name, f'export.py --check: {report.get("check")}')


def refused_case(args, yolo, checkout, results, name, cfg, expect, mutate=None):
    """The exporter must refuse this model with a message matching expect."""
    model = build(yolo, cfg)
    if mutate:
        mutate(model)
    pt = os.path.join(args.work, f'{file_name(name)}.pt')
    save_checkpoint(pt, model, 256)
    proc = run_export(args, checkout, pt,
                      os.path.join(args.work, f'{file_name(name)}.safetensors'))
    message = proc.stderr.strip()
    ok = proc.returncode == 1 and re.search(expect, message) is not None
    results.rows.append({'case': name, 'refused': proc.returncode == 1,
                         'message': message, 'passed': ok})
    print(f'{"ok  " if ok else "FAIL"} {name:<28} refused: {message}', flush=True)
    if not ok:
        results.fail(name, f'expected a refusal matching {expect!r}, got exit '
                           f'{proc.returncode}: {message}')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work', default=os.path.join(ROOT, 'build', 'yolov5-check'))
    p.add_argument('--ssfpn', default=None)
    p.add_argument('--size', type=export.parse_size, default=[256, 256])
    p.add_argument('--json', help='write the results here')
    args = p.parse_args()
    args.ssfpn = export.find_ssfpn(args.ssfpn)
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    checkout, source = make_checkout(args.work)
    yolo = load_yolo(checkout)
    import yolov5
    print(f'yolov5 {getattr(yolov5, "__version__", "?")} from {source}; torch '
          f'{torch.__version__}; ssfpn {args.ssfpn}', flush=True)

    models = os.path.join(ROOT, 'models')
    hub = os.path.join(checkout, 'yolov5', 'models')
    v5n = read_yaml(os.path.join(hub, 'yolov5n.yaml'))
    v5s = read_yaml(os.path.join(hub, 'yolov5s.yaml'))
    official = read_yaml(os.path.join(models, 'yolov5s-ssfpn.yaml'))
    seed_form = read_yaml(os.path.join(models, 'yolov5s-ssfpn-seed.yaml'))
    leaky = read_yaml(os.path.join(models, 'yolov5n-ssfpn.yaml'))
    leaky['activation'] = 'nn.LeakyReLU(0.1)'  # v7.0's configuration key
    names26 = {i: f'class{i}' for i in range(26)}
    official26 = dict(official, nc=26)

    def narrow(cfg, width=0.125):
        return dict(copy.deepcopy(cfg), width_multiple=width)

    results = Results()
    # Narrow variants, held to the golden tolerances.
    positive_case(args, yolo, checkout, results, 'yolov5n narrow', narrow(v5n, 0.0625),
                  seed=11, names={i: f'coco{i}' for i in range(80)})
    positive_case(args, yolo, checkout, results, 'yolov5s narrow (ema)', narrow(v5s),
                  ema=True, seed=12, names=[f'coco{i}' for i in range(80)])
    positive_case(args, yolo, checkout, results, 'yolov5s-ssfpn narrow', narrow(official26),
                  seed=13, names=names26)
    positive_case(args, yolo, checkout, results, 'yolov5s-ssfpn narrow F16',
                  narrow(official26), dtype='F16', seed=13, names=names26)
    positive_case(args, yolo, checkout, results, 'yolov5s-ssfpn-seed narrow',
                  narrow(seed_form), seed=14)
    positive_case(args, yolo, checkout, results, 'yolov5n-ssfpn LeakyReLU narrow',
                  narrow(leaky, 0.0625), seed=15)
    positive_case(args, yolo, checkout, results, 'yolov5n-ssfpn state_dict narrow',
                  narrow(read_yaml(os.path.join(models, 'yolov5n-ssfpn.yaml')), 0.0625),
                  state_dict=True, seed=16)
    # The configurations as they are.
    positive_case(args, yolo, checkout, results, 'yolov5n', v5n, seed=1, strict=False,
                  names={i: f'coco{i}' for i in range(80)})
    positive_case(args, yolo, checkout, results, 'yolov5s (ema)', v5s, ema=True, seed=2,
                  strict=False, names=[f'coco{i}' for i in range(80)])
    positive_case(args, yolo, checkout, results, 'yolov5s-ssfpn', official26, seed=3,
                  strict=False, names=names26)
    positive_case(args, yolo, checkout, results, 'yolov5s-ssfpn-seed', seed_form, seed=4,
                  strict=False)
    positive_case(args, yolo, checkout, results, 'yolov5n-ssfpn LeakyReLU', leaky, seed=5,
                  strict=False)
    positive_case(args, yolo, checkout, results, 'yolov5n-ssfpn state_dict F16',
                  read_yaml(os.path.join(models, 'yolov5n-ssfpn.yaml')),
                  dtype='F16', state_dict=True, seed=6, strict=False)

    ghost = read_yaml(os.path.join(hub, 'hub', 'yolov5s-ghost.yaml'))
    refused_case(args, yolo, checkout, results, 'refuse GhostConv', ghost,
                 r'^export\.py: layer 1: module \S*GhostConv is not supported by '
                 r'the ssFPN model format; supported: Conv, ')
    csp = copy.deepcopy(v5n)
    csp['backbone'][2] = [-1, 1, 'BottleneckCSP', [128]]
    refused_case(args, yolo, checkout, results, 'refuse v7 BottleneckCSP', csp,
                 r'layer 2 \(model\.2\.act\): the model has SiLU, the format '
                 r'expects LeakyReLU')

    def mixed_act(model):
        model.model[4].cv2.act = nn.ReLU()
    refused_case(args, yolo, checkout, results, 'refuse mixed activation', v5n,
                 r'layer 4 \(model\.4\.cv2\): Conv activation ReLU differs from SiLU',
                 mixed_act)

    def mixed_eps(model):
        model.model[7].bn.eps = 1e-5
    refused_case(args, yolo, checkout, results, 'refuse mixed bn eps', v5n,
                 r'layer 7 \(model\.7\.bn\): BatchNorm2d eps 1e-05 differs from 0\.001',
                 mixed_eps)

    info = subprocess.run([args.ssfpn, 'info', os.path.join(args.work, 'yolov5s-ssfpn.safetensors')],
                          capture_output=True, text=True)
    if info.returncode != 0:
        results.fail('ssfpn info', info.stderr.strip())
    else:
        print('\n'.join(info.stdout.splitlines()[-6:]))

    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'results': results.rows, 'failures': results.failures}, f, indent=1)
    cases = {r['case'] for r in results.rows} | results.failed_cases
    print(f'{len(cases - results.failed_cases)} passed, '
          f'{len(results.failed_cases)} failed')
    return 1 if results.failures else 0


if __name__ == '__main__':
    sys.exit(main())
