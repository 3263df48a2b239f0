"""Reference PyTorch implementation of the ssFPN model format.

Builds any configuration of /work/shared/spec/model-format.md with YOLOv5
v6.0 semantics and state_dict names, reads and writes model files, and
provides YOLOv5's non_max_suppression.  It is the oracle the C engine is
tested against; it favours clarity over speed.
"""

from .modules import (Conv, Focus, Bottleneck, C3, BottleneckCSP, SPP, SPPF,
                      Concat, space_to_depth, Contract, ssFPN, Unsqueeze,
                      Conv3D, Detect)
from .model import Model, parse_model, make_divisible
from .config import load_config
from .model_file import write_model_file, read_model_file, load_model
from .init import randomize_weights
from .nms import non_max_suppression
from .fuse import fuse

__all__ = [
    'Conv', 'Focus', 'Bottleneck', 'C3', 'BottleneckCSP', 'SPP', 'SPPF',
    'Concat', 'space_to_depth', 'Contract', 'ssFPN', 'Unsqueeze', 'Conv3D',
    'Detect', 'Model', 'parse_model', 'make_divisible', 'load_config',
    'write_model_file', 'read_model_file', 'load_model', 'randomize_weights',
    'non_max_suppression', 'fuse',
]
