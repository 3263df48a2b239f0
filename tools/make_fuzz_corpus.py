#!/usr/bin/python3
"""Writes the seed corpus for tests/fuzz_loader.c: a tiny valid ssFPN model
(one stride-2 Conv, one Detect level, 2 classes) in the safetensors layout
of docs/model-format.md, and a few malformed variants of it, so the fuzzer
starts from inputs that reach deep into the parser and the model builder.

Usage: /usr/bin/python3 tools/make_fuzz_corpus.py [OUTPUT_DIR]
(default: tests/data/fuzz-corpus next to this script's repository root).
Output is deterministic; rerunning rewrites the same files."""

import json
import os
import struct
import sys

CONFIG = {
    "nc": 2, "depth_multiple": 1.0, "width_multiple": 1.0,
    "anchors": [[10, 13, 16, 30]],
    "backbone": [[-1, 1, "Conv", [8, 3, 2]]],
    "head": [[[0], 1, "Detect", ["nc", "anchors"]]],
}

SEED_FORM_CONFIG = {
    "nc": 1, "depth_multiple": 1.0, "width_multiple": 1.0,
    "anchors": [[10, 13]],
    "backbone": [[-1, 1, "Conv", [8, 3, 2]],
                 [-1, 1, "Conv", [8, 3, 2]],
                 [-1, 1, "Conv", [8, 3, 2]]],
    "head": [[[0, 1, 2], 1, "ssFPN", [8]],
             [[-1, 0], 1, "Concat", [1]],
             [[4], 1, "Detect", ["nc", "anchors"]]],
}


def pattern(count, first, step):
    """Values exactly representable in F16 and BF16."""
    return [first + step * (i % 13) for i in range(count)]


def conv_tensors(prefix, c2, c1, k):
    return [
        (prefix + ".conv.weight", [c2, c1, k, k],
         pattern(c2 * c1 * k * k, -0.375, 0.0625)),
        (prefix + ".bn.weight", [c2], pattern(c2, 0.5, 0.0625)),
        (prefix + ".bn.bias", [c2], pattern(c2, -0.25, 0.0625)),
        (prefix + ".bn.running_mean", [c2], pattern(c2, -0.125, 0.03125)),
        (prefix + ".bn.running_var", [c2], pattern(c2, 0.75, 0.0625)),
    ]


def tiny_tensors():
    return conv_tensors("model.0", 8, 3, 3) + [
        ("model.1.m.0.weight", [14, 8, 1, 1], pattern(14 * 8, -0.25, 0.03125)),
        ("model.1.m.0.bias", [14], pattern(14, -0.5, 0.0625)),
        ("model.1.anchors", [1, 2, 2], [5.0, 6.5, 8.0, 15.0]),
    ]


def tiny_metadata():
    return {
        "ssfpn.format": "1",
        "ssfpn.config": json.dumps(CONFIG),
        "ssfpn.names": json.dumps(["a", "b"]),
        "ssfpn.stride": json.dumps([2]),
        "ssfpn.imgsz": json.dumps([32, 32]),
    }


def seed_form_tensors():
    """The seed-form ssFPN neck over three tiny levels (nc 1, 1 anchor)."""
    tensors = (conv_tensors("model.0", 8, 3, 3) + conv_tensors("model.1", 8, 8, 3)
               + conv_tensors("model.2", 8, 8, 3))
    tensors += [
        ("model.3.conv.weight", [8, 24, 1, 3, 3], pattern(8 * 24 * 9, -0.25, 0.03125)),
        ("model.3.bn.weight", [8], pattern(8, 0.5, 0.0625)),
        ("model.3.bn.bias", [8], pattern(8, -0.25, 0.0625)),
        ("model.3.bn.running_mean", [8], pattern(8, 0.0, 0.03125)),
        ("model.3.bn.running_var", [8], pattern(8, 1.0, 0.0625)),
        ("model.5.m.0.weight", [6, 16, 1, 1], pattern(6 * 16, -0.25, 0.03125)),
        ("model.5.m.0.bias", [6], pattern(6, -0.5, 0.0625)),
        ("model.5.anchors", [1, 1, 2], [5.0, 6.5]),
    ]
    return tensors


def encode(values, dtype):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    if dtype == "BF16":
        out = bytearray()
        for v in values:
            bits = struct.unpack("<I", struct.pack("<f", v))[0]
            assert bits & 0xffff == 0, "value not exact in bfloat16"
            out += struct.pack("<H", bits >> 16)
        return bytes(out)
    if dtype == "F64":
        return struct.pack("<%dd" % len(values), *values)
    raise ValueError(dtype)


def safetensors(tensors, metadata, dtype="F32", header_edit=None,
                header_length=None):
    """tensors: (name, shape, values); header_edit(header dict) may break it."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = bytearray()
    for name, shape, values in tensors:
        blob = encode(values, dtype)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if header_edit:
        header_edit(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    length = len(text) if header_length is None else header_length
    return struct.pack("<Q", length) + text + bytes(data)


def edited(edit):
    return safetensors(tiny_tensors(), tiny_metadata(), header_edit=edit)


def with_metadata(key, value):
    metadata = tiny_metadata()
    if value is None:
        del metadata[key]
    else:
        metadata[key] = value
    return safetensors(tiny_tensors(), metadata)


def without_tensor(name):
    return safetensors([t for t in tiny_tensors() if t[0] != name],
                       tiny_metadata())


def corpus():
    valid = safetensors(tiny_tensors(), tiny_metadata())
    seeds = {
        "valid-f32.safetensors": valid,
        "valid-f16.safetensors": safetensors(tiny_tensors(), tiny_metadata(), "F16"),
        "valid-bf16.safetensors": safetensors(tiny_tensors(), tiny_metadata(), "BF16"),
        "seed-form-ssfpn.safetensors": safetensors(
            seed_form_tensors(),
            dict(tiny_metadata(), **{
                "ssfpn.config": json.dumps(SEED_FORM_CONFIG),
                "ssfpn.names": json.dumps(["a"]),
                "ssfpn.stride": json.dumps([2]),
            })),
        "short.bin": valid[:5],
        "header-too-long.safetensors": safetensors(
            tiny_tensors(), tiny_metadata(), header_length=1 << 32),
        "truncated-data.safetensors": valid[:-4],
        "unknown-dtype.safetensors": safetensors(tiny_tensors(), tiny_metadata(), "F64"),
        "offsets-vs-shape.safetensors": edited(
            lambda h: h["model.0.conv.weight"].update(shape=[8, 3, 3, 2])),
        "overlap.safetensors": edited(
            lambda h: h["model.0.bn.bias"].update(
                data_offsets=h["model.0.bn.weight"]["data_offsets"])),
        "negative-dim.safetensors": edited(
            lambda h: h["model.0.bn.bias"].update(shape=[-8])),
        "rank9.safetensors": edited(
            lambda h: h["model.0.bn.bias"].update(shape=[1] * 8 + [8])),
        "metadata-number.safetensors": edited(
            lambda h: h["__metadata__"].update({"ssfpn.format": 1})),
        "missing-weight.safetensors": without_tensor("model.0.conv.weight"),
        "missing-anchors.safetensors": without_tensor("model.1.anchors"),
        "misshaped-detect.safetensors": safetensors(
            [t if t[0] != "model.1.m.0.weight" else
             (t[0], [12, 8, 1, 1], pattern(12 * 8, 0.0, 0.0625))
             for t in tiny_tensors()], tiny_metadata()),
        "unknown-module.safetensors": with_metadata(
            "ssfpn.config", json.dumps(CONFIG).replace('"Conv"', '"Conv9"')),
        "config-not-json.safetensors": with_metadata("ssfpn.config", "{nc: 2"),
        "names-count.safetensors": with_metadata(
            "ssfpn.names", json.dumps(["a", "b", "c"])),
        "no-metadata.safetensors": safetensors(tiny_tensors(), None),
    }
    # Raw JSON the json module cannot produce: a duplicate key.
    text = valid[8:8 + struct.unpack("<Q", valid[:8])[0]]
    entry = b'"model.0.bn.bias":'
    at = text.index(entry)
    end = text.index(b"}", at) + 1
    duplicated = text[:end] + b"," + text[at:end] + text[end:]
    seeds["duplicate-name.safetensors"] = (
        struct.pack("<Q", len(duplicated)) + duplicated
        + valid[8 + len(text):])
    return seeds


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "tests", "data", "fuzz-corpus")
    os.makedirs(out, exist_ok=True)
    seeds = corpus()
    for name, blob in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print("%d seeds, %d bytes in %s"
          % (len(seeds), sum(map(len, seeds.values())), out))


if __name__ == "__main__":
    main()
