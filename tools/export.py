#!/usr/bin/python3
"""Export a trained YOLOv5 / ssFPN model to an ssFPN model file
(/work/shared/spec/model-format.md).

Two inputs are accepted:

- a YOLOv5 training checkpoint (v5.0 to v7.0): a .pt whose 'ema' or 'model'
  entry is the pickled model.  Unpickling imports the user's YOLOv5 code, so
  the checkout the model was trained with goes on the Python path with
  --yolov5 PATH.  Configuration, class names and strides come from the model
  object, the input size from the checkpoint's training options.
- a state_dict (a .pt holding a plain dict of tensors, or a .safetensors)
  plus its configuration (--cfg, YAML or JSON).

Every layer is checked against what the format can express (module types,
activations, BatchNorm epsilons, convolution and pooling hyperparameters,
tensor names and shapes) and refused with a message naming the layer.  With
--check the written file is run by `ssfpn run` on a random input and
compared with the PyTorch model's output, computed in float64, to the
golden tests' tolerances.

Usage:
  /usr/bin/python3 tools/export.py best.pt --yolov5 ~/yolov5 -o model.safetensors [--check]
  /usr/bin/python3 tools/export.py weights.safetensors --cfg yolov5s-ssfpn.yaml \\
      --names names.yaml -o model.safetensors
"""

import argparse
import copy
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ssfpn_ref.config import load_config  # noqa: E402
from ssfpn_ref.model import Model  # noqa: E402
from ssfpn_ref.model_file import (write_model_file, round_to_dtype,  # noqa: E402
                                  _decode)
from ssfpn_ref.modules import DEFAULT_BN_EPS  # noqa: E402
from ssfpn_ref.fixtures import synthetic_images  # noqa: E402

# Module names a configuration may use (model-format.md), and the Python
# class name a built layer of each has.
SUPPORTED_MODULES = ('Conv', 'Focus', 'Bottleneck', 'C3', 'BottleneckCSP', 'SPP',
                     'SPPF', 'nn.Upsample', 'Concat', 'space_to_depth',
                     'Contract', 'Detect', 'ssFPN', 'Unsqueeze', 'Conv3D')
CLASS_OF_MODULE = {name: name.split('.')[-1] for name in SUPPORTED_MODULES}

# The format's Conv activations, by the class name of the activation module.
ACTIVATION_CLASSES = ('SiLU', 'LeakyReLU', 'ReLU', 'Hardswish')
# YOLOv5 v7.0 configurations name the activation as Python code.
YOLOV5_ACTIVATION_CODE = {'nn.SiLU()': 'SiLU', 'nn.LeakyReLU(0.1)': 'LeakyReLU',
                          'nn.ReLU()': 'ReLU', 'nn.Hardswish()': 'Hardswish'}
CONFIG_KEYS = ('nc', 'depth_multiple', 'width_multiple', 'anchors', 'backbone',
               'head')

# Golden-test tolerances (tests/test_network.c).
BOX_REL_TOLERANCE = 1e-4
PROB_ABS_TOLERANCE = 1e-4


class ExportError(Exception):
    """A model the format cannot hold, or an input that cannot be read."""


# ---------------------------------------------------------------- reading

def torch_load(path):
    # torch >= 2.6 defaults to weights_only=True, which refuses model objects.
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except TypeError:
        return torch.load(path, map_location='cpu')


def load_checkpoint(path, yolov5_path):
    """The object stored in a .pt, unpickled with the user's YOLOv5 code."""
    if yolov5_path:
        if not os.path.isdir(yolov5_path):
            raise ExportError(f'--yolov5 {yolov5_path}: not a directory')
        sys.path.insert(0, os.path.abspath(yolov5_path))
    try:
        return torch_load(path)
    except ModuleNotFoundError as e:
        raise ExportError(
            f'{path}: unpickling the model needs the Python module {e.name!r}; '
            'pass --yolov5 PATH, the YOLOv5 checkout the model was trained '
            'with') from e
    except AttributeError as e:
        raise ExportError(
            f'{path}: unpickling failed ({e}); the YOLOv5 checkout on the path '
            'lacks a class the model uses (for ssFPN models: add the ssFPN '
            'modules to its models/common.py, see docs/models.md)') from e


def read_safetensors_state(path):
    """name -> float tensor from a .safetensors state_dict (integer entries
    such as num_batches_tracked are skipped)."""
    with open(path, 'rb') as f:
        blob = f.read()
    if len(blob) < 8:
        raise ExportError(f'{path}: shorter than a safetensors header')
    (n,) = struct.unpack('<Q', blob[:8])
    if n > len(blob) - 8:
        raise ExportError(f'{path}: header length {n} exceeds the file')
    try:
        header = json.loads(blob[8:8 + n].decode('utf-8'))
    except ValueError as e:
        raise ExportError(f'{path}: header is not JSON: {e}') from e
    data = blob[8 + n:]
    header.pop('__metadata__', None)
    state = {}
    for name, info in header.items():
        dtype, shape = info['dtype'], info['shape']
        begin, end = info['data_offsets']
        if not 0 <= begin <= end <= len(data):
            raise ExportError(f'{path}: tensor {name}: data_offsets outside the file')
        raw = data[begin:end]
        if dtype in ('F32', 'F16', 'BF16'):
            state[name] = _decode(raw, dtype, shape)
        elif dtype == 'F64':
            state[name] = torch.from_numpy(
                np.frombuffer(raw, dtype='<f8').reshape(shape).copy())
        elif name.endswith('num_batches_tracked'):
            continue
        else:
            raise ExportError(f'{path}: tensor {name} has dtype {dtype}; '
                              'expected a floating-point dtype')
    return state


def load_state_dict_file(path):
    if path.endswith('.safetensors'):
        return read_safetensors_state(path)
    obj = torch_load(path)
    for key in ('state_dict', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or \
            not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ExportError(f'{path}: not a state_dict (a dict of tensors)')
    return obj


def load_names(text, nc):
    """Class names: a comma-separated list, or a YAML/JSON file with a
    'names' list or {index: name} mapping (a YOLOv5 data.yaml), or one
    name a line."""
    if os.path.isfile(text):
        with open(text, encoding='utf-8') as f:
            content = f.read()
        try:
            import yaml
            data = yaml.safe_load(content)
        except Exception:  # a plain text file need not be valid YAML
            data = None
        if isinstance(data, dict) and 'names' in data:
            data = data['names']
        if not isinstance(data, (list, dict)):
            data = [line.strip() for line in content.splitlines() if line.strip()]
        names = data
    else:
        names = [s.strip() for s in text.split(',')]
    return normalise_names(names, nc, f'--names {text}')


def normalise_names(names, nc, source):
    """YOLOv5 v7.0 stores {index: name}, older versions a list."""
    if isinstance(names, dict):
        try:
            names = [names[i] for i in range(len(names))]
        except KeyError as e:
            raise ExportError(f'{source}: class names are not indexed 0..{len(names) - 1}') from e
    names = [str(n) for n in names]
    if len(names) != nc:
        raise ExportError(f'{source}: {len(names)} class names for nc={nc}; '
                          'give the right ones with --names')
    return names


def parse_size(text):
    parts = [int(p) for p in str(text).replace('x', ',').split(',') if p]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f'bad size {text!r}; use S or H,W')
    return parts


def size_from_options(opt):
    """'imgsz' (v6.0+) or 'img_size' = [train, test] (v5.0) of a training
    options mapping, as [S, S]; None when absent."""
    size = opt.get('imgsz', opt.get('img_size')) if opt else None
    if isinstance(size, (list, tuple)):
        size = size[0] if size else None
    return [int(size), int(size)] if size else None


def imgsz_from_checkpoint(ckpt, weights_path):
    """The training input size: ckpt['opt'] (saved in checkpoints from
    YOLOv5 v6.2 on), else the run's opt.yaml beside weights/ (what v5.0 to
    v6.1 write, and what their --resume reads), else 640 with a warning."""
    opt = ckpt.get('opt') if isinstance(ckpt, dict) else None
    if opt is not None and not isinstance(opt, dict):
        opt = vars(opt)
    size = size_from_options(opt)
    if size is None:
        run = os.path.dirname(os.path.dirname(os.path.abspath(weights_path)))
        opt_yaml = os.path.join(run, 'opt.yaml')
        if os.path.isfile(opt_yaml):
            import yaml
            with open(opt_yaml) as f:
                size = size_from_options(yaml.safe_load(f))
    if size is None:
        print(f'export: {weights_path}: no training input size in the '
              'checkpoint or its run\'s opt.yaml; writing 640 (give '
              '--imgsz if it was trained at another size)', file=sys.stderr)
        size = [640, 640]
    return size


# ------------------------------------------------------------- checking

def layer_of(name):
    """'model.12.cv1.conv' -> 'layer 12 (model.12.cv1.conv)'."""
    parts = name.split('.')
    if len(parts) > 1 and parts[0] == 'model' and parts[1].isdigit():
        return f'layer {parts[1]} ({name})'
    return name


def layer_class_name(layer):
    """Class name of a layer; a layer repeated n > 1 times by parse_model is
    an nn.Sequential of n modules of one class."""
    if type(layer) is nn.Sequential and len(layer) > 0:
        kinds = {type(m).__name__ for m in layer}
        if len(kinds) == 1:
            return kinds.pop()
    return type(layer).__name__


def layer_type(layer):
    return getattr(layer, 'type', None) or \
        f'{type(layer).__module__}.{type(layer).__name__}'


def check_layers(layers):
    """Every layer of the model object must be a module the format knows."""
    supported = ', '.join(SUPPORTED_MODULES)
    known = set(CLASS_OF_MODULE.values())
    for pos, layer in enumerate(layers):
        index = getattr(layer, 'i', pos)
        if layer_class_name(layer) not in known:
            raise ExportError(f'layer {index}: module {layer_type(layer)} is not '
                              f'supported by the ssFPN model format; supported: '
                              f'{supported}')


def check_config_modules(cfg, layers=None):
    """Every configuration layer must name a module the format knows (and,
    given the built layers, the module that was built)."""
    supported = ', '.join(SUPPORTED_MODULES)
    rows = list(cfg['backbone']) + list(cfg['head'])
    if layers is not None and len(rows) != len(layers):
        raise ExportError(f'the configuration has {len(rows)} layers but the '
                          f'model has {len(layers)}')
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ExportError(f'configuration layer {i}: expected [from, number, '
                              f'module, args], got {row!r}')
        module = row[2]
        if module not in SUPPORTED_MODULES:
            raise ExportError(f'configuration layer {i}: module {module!r} is not '
                              f'supported by the ssFPN model format; supported: '
                              f'{supported}')
        if layers is not None and layer_class_name(layers[i]) != CLASS_OF_MODULE[module]:
            raise ExportError(f'layer {i}: the configuration names {module} but '
                              f'the model has {layer_type(layers[i])}')


def activation_name(act):
    """The format's name of a Conv activation module, or None."""
    kind = type(act).__name__
    if kind not in ACTIVATION_CLASSES:
        return None
    if kind == 'LeakyReLU' and abs(getattr(act, 'negative_slope', 0.0) - 0.1) > 1e-9:
        return None
    return kind


def describe(act):
    if type(act).__name__ == 'LeakyReLU':
        return f'LeakyReLU({act.negative_slope})'
    return type(act).__name__


def model_activation(model):
    """The one activation of every Conv; mixed ones are refused."""
    found = None
    for name, m in model.named_modules():
        if type(m).__name__ != 'Conv':
            continue
        act = getattr(m, 'act', None)
        kind = activation_name(act)
        if kind is None:
            raise ExportError(f'{layer_of(name)}: Conv activation {describe(act)} '
                              f'is not supported; the format has SiLU, '
                              f'LeakyReLU(0.1), ReLU, Hardswish')
        if found is None:
            found = (kind, name)
        elif kind != found[0]:
            raise ExportError(f'{layer_of(name)}: Conv activation {kind} differs '
                              f'from {found[0]} in {layer_of(found[1])}; the '
                              f'format has one activation for every Conv')
    return found[0] if found else 'SiLU'


def config_activation(cfg):
    value = cfg.get('activation')
    if value is None:
        return 'SiLU'
    if value in ACTIVATION_CLASSES:
        return value
    code = str(value).replace(' ', '').replace('inplace=True', '').replace(',)', ')')
    if code in YOLOV5_ACTIVATION_CODE:
        return YOLOV5_ACTIVATION_CODE[code]
    raise ExportError(f'configuration activation {value!r} is not supported; '
                      f'the format has {", ".join(ACTIVATION_CLASSES)} '
                      '(LeakyReLU with slope 0.1)')


def model_bn_eps(model):
    """The one epsilon of every BatchNorm2d; differing ones are refused."""
    found = None
    for name, m in model.named_modules():
        if not isinstance(m, nn.BatchNorm2d):
            continue
        if found is None:
            found = (m.eps, name)
        elif abs(m.eps - found[0]) > 1e-12 * max(1.0, found[0]):
            raise ExportError(f'{layer_of(name)}: BatchNorm2d eps {m.eps:g} differs '
                              f'from {found[0]:g} in {layer_of(found[1])}; the '
                              f'format has one bn_eps')
    return found[0] if found else DEFAULT_BN_EPS


def clean_config(cfg, activation):
    """The configuration as the format stores it: its keys only, YOLOv5's
    extras ('ch', v7.0's activation code) left out."""
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ExportError(f'the configuration lacks {", ".join(missing)}')
    out = {k: copy.deepcopy(cfg[k]) for k in CONFIG_KEYS}
    if activation != 'SiLU':
        out['activation'] = activation
    return out


def _same(a, b):
    return tuple(a) == tuple(b) if isinstance(a, (tuple, list)) else a == b


# Hyperparameters to compare per torch.nn module type.
HYPERPARAMETERS = {
    'Conv2d': ('in_channels', 'out_channels', 'kernel_size', 'stride', 'padding',
               'dilation', 'groups', 'padding_mode'),
    'Conv3d': ('in_channels', 'out_channels', 'kernel_size', 'stride', 'padding',
               'dilation', 'groups', 'padding_mode'),
    'BatchNorm3d': ('num_features',),
    'BatchNorm2d': ('num_features',),
    'MaxPool2d': ('kernel_size', 'stride', 'padding', 'dilation', 'ceil_mode'),
    'AvgPool3d': ('kernel_size', 'stride', 'padding'),
    'Upsample': ('mode',),
}


def compare_structure(model, reference):
    """model (the user's) must compute what reference (built from the
    configuration by the format's rules) computes: same modules at the same
    paths with the same hyperparameters, same tensors."""
    for name, ref in reference.named_modules():
        if not name:
            continue
        try:
            mine = model.get_submodule(name)
        except AttributeError:
            raise ExportError(f'{layer_of(name)}: the model has no module here, '
                              f'the format expects {type(ref).__name__}') from None
        kind, my_kind = type(ref).__name__, type(mine).__name__
        if kind == 'Conv' and 'bn' not in mine._modules:
            raise ExportError(f'{layer_of(name)}: Conv without BatchNorm: the '
                              'model was fused; export the unfused training '
                              'checkpoint')
        if my_kind != kind:
            raise ExportError(f'{layer_of(name)}: the model has {my_kind}, the '
                              f'format expects {kind}')
        for attr in HYPERPARAMETERS.get(kind, ()):
            if not _same(getattr(mine, attr), getattr(ref, attr)):
                raise ExportError(f'{layer_of(name)}: {kind}.{attr} is '
                                  f'{getattr(mine, attr)}, the format expects '
                                  f'{getattr(ref, attr)}')
        if kind in ('Conv2d', 'Conv3d') and \
                (mine.bias is None) != (ref.bias is None):
            raise ExportError(f'{layer_of(name)}: {kind} bias is '
                              f'{"absent" if mine.bias is None else "present"}, '
                              'the format expects the opposite')
        if kind == 'BatchNorm3d' and abs(mine.eps - ref.eps) > 1e-12:
            raise ExportError(f'{layer_of(name)}: BatchNorm3d eps {mine.eps:g}; '
                              f'the format fixes {ref.eps:g} for this module')
        if kind == 'LeakyReLU' and abs(mine.negative_slope - ref.negative_slope) > 1e-12:
            raise ExportError(f'{layer_of(name)}: LeakyReLU slope '
                              f'{mine.negative_slope:g}, the format expects '
                              f'{ref.negative_slope:g}')
        if kind == 'Upsample':
            scale = mine.scale_factor
            if mine.size is not None or scale is None or \
                    float(scale) != float(ref.scale_factor):
                raise ExportError(f'{layer_of(name)}: Upsample with size '
                                  f'{mine.size}, scale {scale}; the format '
                                  f'expects scale {ref.scale_factor}')
        for attr in ('add', 'd', 'gain', 'dim', 'nc', 'na', 'nl'):
            if hasattr(ref, attr) and not isinstance(getattr(ref, attr), nn.Module) \
                    and getattr(mine, attr, None) != getattr(ref, attr):
                raise ExportError(f'{layer_of(name)}: {kind}.{attr} is '
                                  f'{getattr(mine, attr, None)}, the format expects '
                                  f'{getattr(ref, attr)}')
    compare_tensors(exported_state(model.state_dict()), reference.state_dict())


def exported_state(state):
    """The tensors a model file stores: num_batches_tracked and YOLOv5
    v5.0's anchor_grid buffer (anchors x stride, derived) left out."""
    return {k: v for k, v in state.items()
            if not k.endswith('num_batches_tracked')
            and not k.endswith('.anchor_grid')}


def compare_tensors(state, reference_state):
    expected = exported_state(reference_state)
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing:
        raise ExportError(f'{layer_of(missing[0])}: tensor {missing[0]} is missing '
                          f'({len(missing)} missing in all)')
    if extra:
        raise ExportError(f'{layer_of(extra[0])}: tensor {extra[0]} is not part of '
                          f'the configuration ({len(extra)} unexpected in all)')
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ExportError(f'{layer_of(k)}: tensor {k} has shape '
                              f'{tuple(state[k].shape)}, the configuration gives '
                              f'{tuple(v.shape)}')


def build_reference(cfg, bn_eps):
    try:
        return Model(cfg, bn_eps=bn_eps).eval()
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ExportError(f'the configuration cannot be built: {e}') from e


# ---------------------------------------------------------------- export

class Exported:
    """What the file holds, and the PyTorch model to check it against."""

    def __init__(self, reference, names, imgsz, bn_eps, activation, torch_model):
        self.reference = reference      # ssfpn_ref Model with the weights
        self.names = names
        self.imgsz = imgsz
        self.bn_eps = bn_eps
        self.activation = activation
        self.torch_model = torch_model  # the model the output must match


def from_checkpoint(ckpt, args):
    if isinstance(ckpt, nn.Module):
        model, source = ckpt, 'the pickled model'
    else:
        model = ckpt.get('ema') if ckpt.get('ema') is not None else ckpt.get('model')
        source = "ckpt['ema']" if ckpt.get('ema') is not None else "ckpt['model']"
    if not isinstance(model, nn.Module):
        raise ExportError(f'{args.weights}: no model object under \'ema\' or '
                          '\'model\'; for a state_dict give --cfg')
    model = model.float().eval()
    layers = getattr(model, 'model', None)
    if not isinstance(layers, nn.Sequential):
        raise ExportError(f'{args.weights}: {source} is a {type(model).__name__} '
                          'without a YOLOv5 layer list (model.model)')
    check_layers(layers)
    if args.cfg:
        cfg = load_config(args.cfg)
    elif isinstance(getattr(model, 'yaml', None), dict):
        cfg = copy.deepcopy(model.yaml)
    else:
        raise ExportError(f'{args.weights}: the model has no .yaml configuration; '
                          'give it with --cfg')
    check_config_modules(cfg, layers)
    activation = model_activation(model)
    bn_eps = model_bn_eps(model)
    clean = clean_config(cfg, activation)
    reference = build_reference(clean, bn_eps)
    compare_structure(model, reference)
    reference.load_state_dict(exported_state(model.state_dict()), strict=False)

    stride = [int(s) for s in getattr(model, 'stride', reference.stride).tolist()]
    if stride != [int(s) for s in reference.stride.tolist()]:
        raise ExportError(f'model.stride {stride} disagrees with the '
                          f'configuration\'s {reference.stride.tolist()}')
    nc = clean['nc']
    if args.names:
        names = load_names(args.names, nc)
    elif getattr(model, 'names', None) is not None:
        names = normalise_names(model.names, nc, 'model.names')
    else:
        names = [f'class{i}' for i in range(nc)]
    imgsz = args.imgsz or imgsz_from_checkpoint(ckpt, args.weights)
    return Exported(reference, names, imgsz, bn_eps, activation, model)


def from_state_dict(state, args):
    cfg = load_config(args.cfg)
    check_config_modules(cfg)
    activation = config_activation(cfg)
    bn_eps = args.bn_eps if args.bn_eps is not None else DEFAULT_BN_EPS
    clean = clean_config(cfg, activation)
    reference = build_reference(clean, bn_eps)
    state = {k: v.float() for k, v in state.items() if v.is_floating_point()}
    compare_tensors(exported_state(state), reference.state_dict())
    reference.load_state_dict(exported_state(state), strict=False)
    names = load_names(args.names, clean['nc']) if args.names else \
        normalise_names(cfg.get('names', [f'class{i}' for i in range(clean['nc'])]),
                        clean['nc'], 'the configuration\'s names')
    imgsz = args.imgsz or [640, 640]
    return Exported(reference, names, imgsz, bn_eps, activation, reference)


def write(exported, path, dtype):
    bn_eps = exported.bn_eps if exported.bn_eps != DEFAULT_BN_EPS else None
    write_model_file(path, exported.reference, exported.names, exported.imgsz,
                     dtype, bn_eps)


# ----------------------------------------------------------------- check

def find_ssfpn(explicit):
    candidates = [explicit, os.environ.get('SSFPN')]
    root = os.path.dirname(HERE)
    candidates += [os.path.join(root, d, 'engine', 'ssfpn')
                   for d in ('build', 'build-export')]
    candidates.append(shutil.which('ssfpn'))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise ExportError('no ssfpn command found: give --ssfpn PATH or set SSFPN '
                      '(build it with meson and ninja, see README.md)')


def torch_output(model, x, dtype, precision=torch.float64):
    """model(x)[0] computed in precision, with the weights rounded as the
    file stores them; YOLOv5's cached Detect grids are dropped so they are
    rebuilt in that precision."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(round_to_dtype(t, dtype))
    model = model.to(precision)
    for m in model.modules():
        if type(m).__name__ in ('Detect',):
            for attr in ('grid', 'anchor_grid'):
                if isinstance(getattr(m, attr, None), list):
                    setattr(m, attr, [torch.empty(0) for _ in range(m.nl)])
        if isinstance(m, nn.Upsample) and not hasattr(m, 'recompute_scale_factor'):
            m.recompute_scale_factor = None  # pickled by torch < 1.11
    with torch.no_grad():
        out = model(x.to(precision))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.numpy()


def compare_outputs(got, expected):
    """(max box relative error with a 1 px floor, max probability error)."""
    if got.shape != expected.shape:
        raise ExportError(f'ssfpn output shape {got.shape} differs from '
                          f'PyTorch\'s {expected.shape}')
    got = got.astype(np.float64)
    box_rel = np.abs(got[..., :4] - expected[..., :4]) / \
        np.maximum(np.abs(expected[..., :4]), 1.0)
    prob_abs = np.abs(got[..., 4:] - expected[..., 4:])
    return float(box_rel.max()), float(prob_abs.max())


def run_ssfpn(ssfpn, model_path, x):
    with tempfile.TemporaryDirectory(prefix='ssfpn-export-') as tmp:
        inp, out = os.path.join(tmp, 'input.npy'), os.path.join(tmp, 'output.npy')
        np.save(inp, x.numpy().astype('<f4'))
        proc = subprocess.run([ssfpn, 'run', model_path, '--input', inp,
                               '--output', out, '--device', 'cpu'],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ExportError(f'ssfpn run {model_path} failed: '
                              f'{proc.stderr.strip() or proc.stdout.strip()}')
        return np.load(out)


def check_size(size, stride):
    """size rounded up to a multiple of the largest stride."""
    s = max(stride)
    return [-(-v // s) * s for v in size]


def check_model_file(exported, path, dtype, ssfpn, size, batch, seed):
    """Compare `ssfpn run` with PyTorch on synthetic images (shapes and
    gradients rather than uniform noise, which drives a trained network far
    outside its BatchNorm statistics).  PyTorch's own float32 error is
    reported beside the engine's, to tell a badly conditioned network from
    a wrong export."""
    stride = [int(s) for s in exported.reference.stride.tolist()]
    h, w = check_size(size, stride)
    x = synthetic_images(batch, h, w, seed).float()
    expected = torch_output(exported.torch_model, x, dtype)
    got = run_ssfpn(ssfpn, path, x)
    box_rel, prob_abs = compare_outputs(got, expected)
    torch_box, torch_prob = compare_outputs(
        torch_output(exported.torch_model, x, dtype, torch.float32), expected)
    passed = box_rel < BOX_REL_TOLERANCE and prob_abs < PROB_ABS_TOLERANCE
    # Where PyTorch's own float32 run misses the tolerances, the network is
    # too sensitive to rounding on this input for them to mean anything; the
    # engine must then be as close as float32 PyTorch is.
    like_torch = box_rel <= max(BOX_REL_TOLERANCE, 2 * torch_box) and \
        prob_abs <= max(PROB_ABS_TOLERANCE, 2 * torch_prob)
    return {'input': [batch, 3, h, w], 'box_rel_error': box_rel,
            'prob_abs_error': prob_abs, 'torch_fp32_box_rel_error': torch_box,
            'torch_fp32_prob_abs_error': torch_prob, 'passed': passed,
            'within_torch_fp32_error': like_torch}


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='export.py',
        description='Export a YOLOv5 / ssFPN checkpoint or state_dict to an '
                    'ssFPN model file.')
    p.add_argument('weights', help='YOLOv5 training checkpoint (.pt), or a '
                                   'state_dict (.pt or .safetensors) with --cfg')
    p.add_argument('-o', '--output', required=True, help='model file to write')
    p.add_argument('--yolov5', metavar='PATH',
                   help='the YOLOv5 checkout the checkpoint was trained with '
                        '(put on the Python path to unpickle the model)')
    p.add_argument('--cfg', help='model configuration (YAML or JSON); required '
                                 'for a state_dict, overrides the checkpoint\'s')
    p.add_argument('--names', help='class names: a,b,c or a file (YOLOv5 '
                                   'data.yaml, JSON, or one name a line)')
    p.add_argument('--imgsz', type=parse_size,
                   help='training input size S or H,W (default: the '
                        'checkpoint\'s opt imgsz, else 640)')
    p.add_argument('--dtype', choices=['F32', 'F16'], default='F32')
    p.add_argument('--bn-eps', type=float,
                   help='BatchNorm2d epsilon of a state_dict (default 0.001, '
                        'YOLOv5\'s); a checkpoint\'s comes from its modules')
    p.add_argument('--check', action='store_true',
                   help='run `ssfpn run` on the written file and compare with '
                        'the PyTorch model')
    p.add_argument('--check-size', type=parse_size, default=[256, 256],
                   help='input size for --check, S or H,W (default 256)')
    p.add_argument('--check-batch', type=int, default=1)
    p.add_argument('--seed', type=int, default=0, help='seed of the --check input')
    p.add_argument('--ssfpn', help='the ssfpn command (default: $SSFPN, '
                                   'build/engine/ssfpn, PATH)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.weights.endswith('.safetensors'):
            if not args.cfg:
                raise ExportError(f'{args.weights}: a state_dict needs --cfg')
            exported = from_state_dict(read_safetensors_state(args.weights), args)
        else:
            ckpt = load_checkpoint(args.weights, args.yolov5)
            is_state = isinstance(ckpt, dict) and ckpt and \
                all(isinstance(v, torch.Tensor) for v in ckpt.values())
            if is_state or (isinstance(ckpt, dict) and
                            isinstance(ckpt.get('state_dict'), dict)):
                if not args.cfg:
                    raise ExportError(f'{args.weights}: a state_dict needs --cfg')
                exported = from_state_dict(load_state_dict_file(args.weights), args)
            else:
                exported = from_checkpoint(ckpt, args)
        write(exported, args.output, args.dtype)
        report = {
            'output': args.output, 'dtype': args.dtype,
            'parameters': exported.reference.parameter_count(),
            'nc': len(exported.names),
            'stride': [int(s) for s in exported.reference.stride.tolist()],
            'imgsz': exported.imgsz, 'bn_eps': exported.bn_eps,
            'activation': exported.activation,
        }
        if args.check:
            report['check'] = check_model_file(
                exported, args.output, args.dtype, find_ssfpn(args.ssfpn),
                args.check_size, args.check_batch, args.seed)
    except ExportError as e:
        print(f'export.py: {e}', file=sys.stderr)
        return 1
    print(json.dumps(report))
    check = report.get('check')
    if check and not check['passed']:
        level = 'warning' if check['within_torch_fp32_error'] else 'error'
        print(f'export.py: {level}: {args.output}: ssfpn output differs from '
              f'PyTorch\'s (float64) by {check["box_rel_error"]:.3g} (boxes, '
              f'relative) and {check["prob_abs_error"]:.3g} (probabilities); '
              f'limits {BOX_REL_TOLERANCE:g}, {PROB_ABS_TOLERANCE:g}; PyTorch\'s '
              f'own float32 errors: {check["torch_fp32_box_rel_error"]:.3g}, '
              f'{check["torch_fp32_prob_abs_error"]:.3g}', file=sys.stderr)
        return 0 if check['within_torch_fp32_error'] else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
