#!/usr/bin/python3
"""Checks of the training tools that grow a trained network by a P2 level
(meson test suite 'tools'; needs Debian's torch in /usr/bin/python3, skips
with 77 without it):

- tools/graft_p2.py copies every trained tensor of a yolov5n-ssfpn into
  yolov5n-ssfpn-p2 (layers 0-33 in place, Detect levels one up, anchors
  included), gives the new P2 Detect level the stride-4 objectness prior,
  and refuses a file of another network or other classes;
- the trainer's --freeze N / --freeze-levels L,... keep those layers'
  weights and BatchNorm statistics bit for bit through real optimiser
  steps while the grafted branch learns, and refuse bad level lists;
- tools/export.py finds a checkpoint's training input size in the run's
  opt.yaml when the checkpoint has no 'opt' (YOLOv5 v5.0-v6.1);
- the trainer's data refuses a label whose class the model lacks.

  /usr/bin/python3 tools/test_training.py
"""

import math
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print('SKIP: torch is not importable by this Python (apt install python3-torch)')
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from ssfpn_ref import write_model_file  # noqa: E402
from ssfpn_ref.model_file import load_model  # noqa: E402
from ssfpn_train.trainer import CLASS_NAMES, build_model  # noqa: E402

SSFPN_CFG = os.path.join(ROOT, 'models', 'yolov5n-ssfpn.yaml')
P2_CFG = os.path.join(ROOT, 'models', 'yolov5n-ssfpn-p2.yaml')
BASELINE_CFG = os.path.join(ROOT, 'models', 'yolov5n.yaml')
OLD_DETECT, NEW_DETECT, BRANCH = 34, 38, range(34, 38)

RESULTS = {'passed': 0, 'failed': 0}


def check(name, ok, detail=''):
    RESULTS['passed' if ok else 'failed'] += 1
    print(f'{"PASS" if ok else "FAIL"} {name}{": " + detail if detail else ""}',
          flush=True)


def trained_looking(cfg, names, seed):
    """A network of cfg whose BatchNorm statistics and weights are not the
    fresh ones, so that a copy of the wrong tensor shows."""
    torch.manual_seed(seed)
    model = build_model(cfg, len(names), names)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not key.endswith('anchors'):
                value.add_(torch.randn_like(value) * 0.05)
                if key.endswith('running_var'):
                    value.abs_().add_(0.5)
    return model.eval()


def run(args):
    return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def layer_of(key):
    return int(key.split('.')[1])


def test_graft(tmp):
    source = os.path.join(tmp, 'ssfpn.safetensors')
    grafted = os.path.join(tmp, 'graft.safetensors')
    write_model_file(source, trained_looking(SSFPN_CFG, CLASS_NAMES, 1), CLASS_NAMES,
                     (256, 256), 'F32')
    r = run([os.path.join(HERE, 'graft_p2.py'), source, grafted])
    check('graft_p2.py runs', r.returncode == 0, (r.stdout + r.stderr).strip()[-300:])
    if r.returncode != 0:
        return None
    old = load_model(source).state_dict()
    new = load_model(grafted).state_dict()
    wrong = []
    for key, value in old.items():
        if key.endswith('num_batches_tracked'):
            continue
        if layer_of(key) < OLD_DETECT:
            target = key
        elif key.endswith('anchors'):
            if not torch.equal(new[f'model.{NEW_DETECT}.anchors'][1:], value):
                wrong.append(key)
            continue
        else:
            parts = key.split('.')
            parts[1], parts[3] = str(NEW_DETECT), str(int(parts[3]) + 1)
            target = '.'.join(parts)
        if not torch.equal(new[target], value):
            wrong.append(f'{key} -> {target}')
    check('graft_p2.py copies every trained tensor to its place', not wrong,
          f'differing: {wrong[:3]}')

    p2_anchors = new[f'model.{NEW_DETECT}.anchors'][0].flatten().tolist()
    # yolov5n-ssfpn-p2.yaml's P2 anchors in pixels, stored in stride units
    check('the P2 anchors are the configuration\'s',
          p2_anchors == [a / 4 for a in (5, 6, 8, 15, 16, 11)], str(p2_anchors))
    model = load_model(grafted)
    detect = model.model[-1]
    check('the grafted network has four Detect levels at strides 4-32',
          detect.nl == 4 and detect.stride.tolist() == [4, 8, 16, 32],
          f'{detect.nl} levels, strides {detect.stride.tolist()}')
    obj_bias = detect.m[0].bias.view(detect.na, -1)[:, 4]
    prior = math.log(8 / (640 / 4) ** 2)
    # The convolution's own initial bias is within 1/sqrt(fan in) of zero.
    bound = 1 / math.sqrt(detect.m[0].weight[0].numel())
    check('the P2 Detect level starts from the stride-4 objectness prior',
          bool((obj_bias - prior).abs().max() <= bound),
          f'biases {obj_bias.tolist()}, prior {prior:.3f}')

    wrong_classes = os.path.join(tmp, 'three-classes.safetensors')
    names = ['a', 'b', 'c']
    write_model_file(wrong_classes, trained_looking(SSFPN_CFG, names, 2), names,
                     (256, 256), 'F32')
    r = run([os.path.join(HERE, 'graft_p2.py'), wrong_classes,
             os.path.join(tmp, 'never.safetensors')])
    check('graft_p2.py refuses other classes',
          r.returncode != 0 and 'expected the classes' in r.stderr
          and not os.path.exists(os.path.join(tmp, 'never.safetensors')), r.stderr.strip())
    baseline = os.path.join(tmp, 'baseline.safetensors')
    write_model_file(baseline, trained_looking(BASELINE_CFG, CLASS_NAMES, 3), CLASS_NAMES,
                     (256, 256), 'F32')
    r = run([os.path.join(HERE, 'graft_p2.py'), baseline,
             os.path.join(tmp, 'never.safetensors')])
    check('graft_p2.py refuses a network without the ssFPN neck',
          r.returncode != 0 and 'expected a yolov5n-ssfpn network' in r.stderr,
          r.stderr.strip())
    r = run([os.path.join(HERE, 'graft_p2.py'), os.path.join(tmp, 'missing.safetensors'),
             os.path.join(tmp, 'never.safetensors')])
    check('graft_p2.py names a missing file',
          r.returncode != 0 and 'missing.safetensors' in r.stderr, r.stderr.strip())
    return grafted


def train_args(data, out, grafted, levels):
    return [os.path.join(HERE, 'train.py'), '--cfg', P2_CFG, '--data', data,
            '--out', out, '--img', '128', '--epochs', '1', '--batch', '2',
            '--nominal-batch', '2', '--max-iterations', '3', '--workers', '0',
            '--threads', '2', '--init-weights', grafted,
            '--freeze', str(OLD_DETECT), '--freeze-levels', levels]


def test_freeze(tmp, grafted):
    data = os.path.join(tmp, 'data')
    r = run([os.path.join(HERE, 'make_dataset.py'), data, '--count', '6', '--seed', '5',
             '--size', '128', '--workers', '1'])
    check('make_dataset.py writes a small dataset', r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return
    out = os.path.join(tmp, 'run')
    r = run(train_args(data, out, grafted, '1,2,3'))
    check('train.py --freeze 34 --freeze-levels 1,2,3 runs', r.returncode == 0,
          (r.stdout + r.stderr).strip()[-400:])
    if r.returncode != 0:
        return
    start = load_model(grafted).state_dict()
    trained = torch.load(os.path.join(out, 'last.pt'), map_location='cpu')['model']
    frozen_keys = [k for k in start if layer_of(k) < OLD_DETECT
                   or any(k.startswith(f'model.{NEW_DETECT}.m.{level}.') for level in (1, 2, 3))]
    moved = [k for k in frozen_keys if not torch.equal(trained[k], start[k])]
    bn_stats = [k for k in frozen_keys if 'running_' in k]
    check('frozen layers and levels keep their weights and BatchNorm statistics',
          not moved and bn_stats, f'changed: {moved[:3]}; {len(bn_stats)} BN statistics')
    # Three warm-up steps at a learning rate near zero: a tensor with small
    # gradients may keep its float32 value, a whole layer may not.
    learning = [prefix for prefix in [f'model.{i}.' for i in BRANCH]
                + [f'model.{NEW_DETECT}.m.0.'] if any(k.startswith(prefix) for k in start)]
    still = [prefix for prefix in learning
             if all(torch.equal(trained[k], start[k]) for k in start if k.startswith(prefix))]
    check('every layer of the P2 branch and its Detect level learns',
          len(learning) == 3 and not still, f'layers {learning}, unchanged: {still}')

    for levels, message in (('4', 'level 4 outside 0..3'),
                            ('1,x', 'not a list of level numbers')):
        r = run(train_args(data, os.path.join(tmp, 'bad'), grafted, levels))
        check(f'train.py refuses --freeze-levels {levels}',
              r.returncode != 0 and message in r.stderr, r.stderr.strip()[-200:])


def test_export_input_size(tmp):
    """tools/export.py takes the training size from the checkpoint's opt
    (YOLOv5 v6.2+), else from the run's opt.yaml (v5.0-v6.1 keep it only
    there), else 640."""
    import export
    weights = os.path.join(tmp, 'run', 'weights', 'best.pt')
    os.makedirs(os.path.dirname(weights))
    check('export size from ckpt opt',
          export.imgsz_from_checkpoint({'opt': {'imgsz': 1280}}, weights) == [1280, 1280])
    check('export size without opt.yaml: 640',
          export.imgsz_from_checkpoint({'model': None}, weights) == [640, 640])
    with open(os.path.join(tmp, 'run', 'opt.yaml'), 'w') as f:
        f.write('weights: yolov5s.pt\nimgsz: 320\nepochs: 300\n')
    check('export size from the run\'s opt.yaml (v6.0)',
          export.imgsz_from_checkpoint({'model': None}, weights) == [320, 320])
    with open(os.path.join(tmp, 'run', 'opt.yaml'), 'w') as f:
        f.write('img_size:\n- 416\n- 416\n')
    check('export size from the run\'s opt.yaml (v5.0 img_size)',
          export.imgsz_from_checkpoint({'model': None}, weights) == [416, 416])


def test_label_classes(tmp):
    """A label of a class the model lacks is refused by name when the data
    is loaded (YOLOv5 asserts it too), not deep inside the loss."""
    from PIL import Image
    from ssfpn_train.data import YoloDataset
    root = os.path.join(tmp, 'classes')
    os.makedirs(os.path.join(root, 'images'))
    os.makedirs(os.path.join(root, 'labels'))
    Image.new('RGB', (32, 32)).save(os.path.join(root, 'images', 'a.png'))
    with open(os.path.join(root, 'labels', 'a.txt'), 'w') as f:
        f.write('7 0.5 0.5 0.1 0.1\n')
    dataset = YoloDataset(root, 32)
    try:
        dataset.check_classes(6)
        refused = ''
    except ValueError as e:
        refused = str(e)
    check('a label of class 7 for 6 classes is refused by file',
          'a.txt: class 7 is not one of the model\'s 6 classes' in refused, refused)


def main():
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix='ssfpn-test-training-') as tmp:
        test_export_input_size(tmp)
        test_label_classes(tmp)
        grafted = test_graft(tmp)
        if grafted:
            test_freeze(tmp, grafted)
    print(f'{RESULTS["passed"]} passed, {RESULTS["failed"]} failed')
    return 1 if RESULTS['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
