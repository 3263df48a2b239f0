#!/usr/bin/python3
"""Convert a YOLOv5 YAML model configuration to the JSON that a model file
embeds as ssfpn.config (model-format.md).

Usage: /usr/bin/python3 tools/yaml2json.py models/yolov5s-ssfpn.yaml [-o out.json]
                        [--nc N] [--activation SiLU|LeakyReLU|ReLU|Hardswish]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssfpn_ref.config import load_config  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description='YOLOv5 YAML configuration -> JSON')
    p.add_argument('config')
    p.add_argument('-o', '--output', help='write here instead of stdout')
    p.add_argument('--nc', type=int, help='override the number of classes')
    p.add_argument('--activation', choices=['SiLU', 'LeakyReLU', 'ReLU', 'Hardswish'])
    p.add_argument('--pretty', action='store_true', help='indent the JSON')
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.nc is not None:
        cfg['nc'] = args.nc
    if args.activation:
        cfg['activation'] = args.activation
    text = json.dumps(cfg, indent=1 if args.pretty else None,
                      separators=None if args.pretty else (',', ':'))
    if args.output:
        with open(args.output, 'w') as f:
            f.write(text + '\n')
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
