"""make-model: build a configuration with seeded random weights and write a
model file.  Run as `python3 tools/make_model.py` or, with tools/ on
PYTHONPATH, `python3 -m ssfpn_ref`."""

import argparse
import json
import sys

import torch

from .config import load_config
from .model import Model
from .model_file import write_model_file, round_to_dtype
from .modules import DEFAULT_BN_EPS
from .init import randomize_weights
from .fixtures import synthetic_images


def build_random_model(cfg, seed=0, bn_eps=DEFAULT_BN_EPS, calib_size=(256, 256),
                       detect_obj_bias=None, detect_cls_bias=None, sample=None):
    """A Model of cfg with seeded random weights, in eval mode.  sample: the
    BatchNorm calibration batch (default: four seeded synthetic images of
    calib_size)."""
    torch.manual_seed(seed)
    model = Model(cfg, bn_eps=bn_eps)
    if sample is None:
        sample = synthetic_images(4, calib_size[0], calib_size[1], seed + 1)
    randomize_weights(model, seed=seed, sample=sample,
                      detect_obj_bias=detect_obj_bias,
                      detect_cls_bias=detect_cls_bias)
    return model.eval()


def quantize_weights(model, dtype):
    """Round every parameter and buffer to what a file of dtype stores, so
    the in-memory model equals the model file."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(round_to_dtype(t, dtype))
    return model


def _size(text):
    parts = [int(p) for p in text.replace('x', ',').split(',')]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f'bad size {text!r}; use S or H,W')
    return parts


def main(argv=None):
    p = argparse.ArgumentParser(
        prog='make_model.py',
        description='Build a YOLOv5/ssFPN configuration with seeded random '
                    'weights and write an ssFPN model file.')
    p.add_argument('config', help='configuration, YAML or JSON')
    p.add_argument('-o', '--output', required=True, help='model file to write')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--dtype', choices=['F32', 'F16', 'BF16'], default='F32')
    p.add_argument('--imgsz', type=_size, default=[640, 640],
                   help='training input size stored in the file: S or H,W')
    p.add_argument('--calib-size', type=_size, default=None,
                   help='input size of the BatchNorm calibration pass '
                        '(default: imgsz capped at 256)')
    p.add_argument('--nc', type=int, help='override the number of classes')
    p.add_argument('--names', help='comma-separated class names')
    p.add_argument('--activation', choices=['SiLU', 'LeakyReLU', 'ReLU', 'Hardswish'],
                   help='set the configuration\'s "activation" key')
    p.add_argument('--bn-eps', type=float, default=DEFAULT_BN_EPS)
    p.add_argument('--obj-bias', type=float, default=None,
                   help='objectness logit bias (default: YOLOv5\'s prior)')
    p.add_argument('--summary', action='store_true', help='print the layer table')
    args = p.parse_args(argv)

    cfg = load_config(args.config)
    if args.nc is not None:
        cfg['nc'] = args.nc
    if args.activation:
        cfg['activation'] = args.activation
    names = args.names.split(',') if args.names else \
        [f'class{i}' for i in range(cfg['nc'])]
    if len(names) != cfg['nc']:
        p.error(f'{len(names)} names given for nc={cfg["nc"]}')
    calib = args.calib_size or [min(s, 256) for s in args.imgsz]

    model = build_random_model(cfg, args.seed, args.bn_eps, calib, args.obj_bias)
    quantize_weights(model, args.dtype)
    bn_eps = args.bn_eps if args.bn_eps != DEFAULT_BN_EPS else None
    write_model_file(args.output, model, names, args.imgsz, args.dtype, bn_eps)
    if args.summary:
        for i, f, n, np_, t, a in model.summary():
            print(f'{i:>3} {str(f):>18} {n:>3} {np_:>10}  {t:<16} {a}')
    print(json.dumps({'output': args.output, 'layers': model.layer_count(),
                      'parameters': model.parameter_count(),
                      'stride': [int(s) for s in model.stride.tolist()],
                      'dtype': args.dtype}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
