#!/usr/bin/env python3
"""Start a yolov5n-ssfpn-p2 network from a trained yolov5n-ssfpn model file.

models/yolov5n-ssfpn-p2.yaml repeats yolov5n-ssfpn.yaml's layers 0-33 index
for index and adds a stride-4 branch (34-37) and a fourth Detect level.  The
trained layers are copied; the Detect convolutions and anchors of P3, P4, P5
move one level up; the new branch and the P2 Detect convolution keep the
trainer's initialisation (YOLOv5's objectness and class bias priors).  The
result is an F32 model file for tools/train.py --init-weights.

  /usr/bin/python3 tools/graft_p2.py models/default/yolov5n-ssfpn-shapes-f16.safetensors \\
      build-train/runs/p2/graft-f32.safetensors
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from ssfpn_ref import write_model_file  # noqa: E402
from ssfpn_ref.model_file import load_model  # noqa: E402
from ssfpn_train.trainer import CLASS_NAMES, build_model  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
P2_CONFIG = os.path.join(HERE, '..', 'models', 'yolov5n-ssfpn-p2.yaml')
OLD_DETECT, NEW_DETECT = 34, 38


def graft(old_model):
    if len(old_model.model) != OLD_DETECT + 1:
        sys.exit(f'expected a yolov5n-ssfpn network (Detect at layer {OLD_DETECT})')
    if list(old_model.names) != CLASS_NAMES:
        sys.exit(f'expected the classes {CLASS_NAMES}, found {list(old_model.names)}')
    new_model = build_model(P2_CONFIG, len(CLASS_NAMES), CLASS_NAMES)
    old = old_model.state_dict()
    new = new_model.state_dict()
    copied = 0
    for key, value in old.items():
        layer = int(key.split('.')[1])
        if layer < OLD_DETECT:
            target = key
        elif key == f'model.{OLD_DETECT}.anchors':
            new[f'model.{NEW_DETECT}.anchors'][1:] = value
            copied += 1
            continue
        else:  # model.34.m.L.weight -> model.38.m.(L+1).weight
            parts = key.split('.')
            parts[1] = str(NEW_DETECT)
            parts[3] = str(int(parts[3]) + 1)
            target = '.'.join(parts)
        if new[target].shape != value.shape:
            sys.exit(f'{key} -> {target}: shape {tuple(value.shape)} against '
                     f'{tuple(new[target].shape)}')
        new[target] = value.clone()
        copied += 1
    new_model.load_state_dict(new)
    return new_model.eval(), copied, len(new)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('source', help='a yolov5n-ssfpn model file with the six shape classes')
    p.add_argument('output', help='the yolov5n-ssfpn-p2 model file to write (F32)')
    args = p.parse_args()
    try:
        old_model = load_model(args.source)
    except (OSError, ValueError) as e:
        sys.exit(str(e))
    new_model, copied, total = graft(old_model.float())
    # The grafted network must give the old one's P3-P5 outputs unchanged.
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        old_raw = old_model(x)[1]
        new_raw = new_model(x)[1]
    for level, (a, b) in enumerate(zip(old_raw, new_raw[1:])):
        err = (a - b).abs().max().item()
        if err > 1e-4:
            sys.exit(f'level {level}: grafted output differs by {err}')
    write_model_file(args.output, new_model, CLASS_NAMES, tuple(old_model.imgsz), 'F32',
                     extra_metadata={'training': f'tools/graft_p2.py from {args.source}'})
    print(f'{args.output}: {copied} of {total} tensors from {args.source}; '
          f'P3-P5 outputs identical, P2 initialised')
    return 0


if __name__ == '__main__':
    sys.exit(main())
