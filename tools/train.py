#!/usr/bin/python3
"""Train a YOLOv5/ssFPN model of models/*.yaml on a synthetic-shapes
dataset (tools/make_dataset.py) and write its EMA weights as model files.

Example (the CPU smoke test of docs/default-model.md):
  /usr/bin/python3 tools/train.py --cfg models/yolov5n-ssfpn.yaml \
      --data data/smoke --out runs/smoke --img 320 --epochs 20 --batch 16
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssfpn_train.trainer import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
