"""Model files (model-format.md): safetensors container written and read here.

Layout: 8-byte little-endian header length N, N bytes of JSON (padded with
spaces to a multiple of 8 so the data area is aligned), the tensor bytes.
"""

import json
import os
import struct

import numpy as np
import torch

from .config import config_to_json
from .model import Model
from .modules import DEFAULT_BN_EPS

FORMAT_VERSION = '1'
DTYPE_SIZES = {'F32': 4, 'F16': 2, 'BF16': 2}


def tensor_bytes(t, dtype):
    """Little-endian bytes of tensor t converted to dtype (round to nearest)."""
    t = t.detach().cpu().contiguous()
    if dtype == 'F32':
        return t.to(torch.float32).numpy().astype('<f4').tobytes()
    if dtype == 'F16':
        return t.to(torch.float16).numpy().astype('<f2').tobytes()
    if dtype == 'BF16':
        raw = t.to(torch.bfloat16).view(torch.int16).numpy()
        return raw.astype('<i2').tobytes()
    raise ValueError(f'unknown dtype {dtype!r}; expected F32, F16 or BF16')


def round_to_dtype(t, dtype):
    """t after a round trip through dtype, in t's own dtype."""
    if dtype == 'F32':
        return t.to(torch.float32).to(t.dtype)
    if dtype == 'F16':
        return t.to(torch.float16).to(t.dtype)
    if dtype == 'BF16':
        return t.to(torch.bfloat16).to(t.dtype)
    raise ValueError(f'unknown dtype {dtype!r}')


def model_tensors(model):
    """The state_dict the file stores: num_batches_tracked (int64, not a
    model-file dtype) is left out."""
    return {k: v for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def build_metadata(model, names, imgsz, bn_eps=None, extra=None):
    nc = model.yaml['nc']
    if len(names) != nc:
        raise ValueError(f'{len(names)} class names for nc={nc}')
    meta = {
        'ssfpn.format': FORMAT_VERSION,
        'ssfpn.config': config_to_json(model.yaml),
        'ssfpn.names': json.dumps(list(names)),
        'ssfpn.stride': json.dumps([int(s) for s in model.stride.tolist()]),
        'ssfpn.imgsz': json.dumps([int(imgsz[0]), int(imgsz[1])]),
    }
    if bn_eps is not None:
        meta['ssfpn.bn_eps'] = json.dumps(float(bn_eps))
    if extra:
        meta.update({str(k): str(v) for k, v in extra.items()})
    return meta


def write_safetensors(path, tensors, metadata, dtype='F32'):
    """tensors: name -> torch.Tensor; dtype: one name or name -> dtype."""
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        dt = dtype if isinstance(dtype, str) else dtype.get(name, 'F32')
        data = tensor_bytes(t, dt)
        header[name] = {'dtype': dt, 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    tmp = os.fspath(path) + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def write_model_file(path, model, names=None, imgsz=(640, 640), dtype='F32',
                     bn_eps=None, extra_metadata=None):
    if names is None:
        names = [f'class{i}' for i in range(model.yaml['nc'])]
    if bn_eps is None and model.bn_eps != DEFAULT_BN_EPS:
        bn_eps = model.bn_eps
    meta = build_metadata(model, names, imgsz, bn_eps, extra_metadata)
    write_safetensors(path, model_tensors(model), meta, dtype)


def _decode(raw, dtype, shape):
    if dtype == 'F32':
        a = np.frombuffer(raw, dtype='<f4').astype(np.float32)
    elif dtype == 'F16':
        a = np.frombuffer(raw, dtype='<f2').astype(np.float32)
    elif dtype == 'BF16':
        bits = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
        a = bits.view(np.float32)
    else:
        raise ValueError(f'unknown dtype {dtype!r}')
    return torch.from_numpy(a.reshape(shape).copy())


def read_safetensors(path):
    """Returns (tensors name -> float32 torch.Tensor, dtypes, metadata)."""
    with open(path, 'rb') as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f'{path}: shorter than the 8-byte header length')
    (n,) = struct.unpack('<Q', blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f'{path}: header length {n} exceeds the file')
    header = json.loads(blob[8:8 + n].decode('utf-8'))
    data = blob[8 + n:]
    metadata = header.pop('__metadata__', {}) or {}
    tensors, dtypes = {}, {}
    for name, info in header.items():
        dt, shape = info['dtype'], info['shape']
        begin, end = info['data_offsets']
        count = int(np.prod(shape)) if shape else 1
        if dt not in DTYPE_SIZES:
            raise ValueError(f'{path}: tensor {name}: unknown dtype {dt}')
        if not 0 <= begin <= end <= len(data) or \
                end - begin != count * DTYPE_SIZES[dt]:
            raise ValueError(f'{path}: tensor {name}: bad data_offsets')
        tensors[name] = _decode(data[begin:end], dt, shape)
        dtypes[name] = dt
    return tensors, dtypes, metadata


def read_model_file(path):
    """Returns (tensors, dtypes, metadata with JSON values decoded)."""
    tensors, dtypes, meta = read_safetensors(path)
    if meta.get('ssfpn.format') != FORMAT_VERSION:
        raise ValueError(f'{path}: ssfpn.format is {meta.get("ssfpn.format")!r}, '
                         f'expected {FORMAT_VERSION!r}')
    decoded = {
        'config': json.loads(meta['ssfpn.config']),
        'names': json.loads(meta['ssfpn.names']),
        'stride': json.loads(meta['ssfpn.stride']),
        'imgsz': json.loads(meta['ssfpn.imgsz']),
        'bn_eps': json.loads(meta.get('ssfpn.bn_eps', str(DEFAULT_BN_EPS))),
    }
    return tensors, dtypes, decoded


def load_model(path, dtype=torch.float32):
    """A Model in eval mode with the file's weights (converted to dtype)."""
    tensors, _, meta = read_model_file(path)
    model = Model(meta['config'], bn_eps=meta['bn_eps'])
    expected = model_tensors(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected)
                        - {k for k in tensors if k.endswith('num_batches_tracked')})
    if missing or unexpected:
        raise ValueError(f'{path}: missing tensors {missing[:5]}, '
                         f'unexpected tensors {unexpected[:5]}')
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise ValueError(f'{path}: tensor {k} has shape '
                             f'{tuple(tensors[k].shape)}, expected {tuple(v.shape)}')
    model.load_state_dict({k: tensors[k] for k in expected}, strict=False)
    if [int(s) for s in model.stride.tolist()] != [int(s) for s in meta['stride']]:
        raise ValueError(f'{path}: ssfpn.stride {meta["stride"]} disagrees with '
                         f'the configuration {model.stride.tolist()}')
    model.names = meta['names']
    model.imgsz = meta['imgsz']
    return model.to(dtype).eval()
