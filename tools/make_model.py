#!/usr/bin/python3
"""Write an ssFPN model file with seeded random weights for a configuration.

Example: /usr/bin/python3 tools/make_model.py models/yolov5s-ssfpn.yaml \
             -o yolov5s-ssfpn.safetensors --seed 1
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssfpn_ref.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
