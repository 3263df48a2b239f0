#!/usr/bin/python3
"""Time the PyTorch reference on the CPU for a model file (same weights the
engine loads), to run side by side with `ssfpn bench`.

Prints one JSON object: per batch size the median and p99 latency in ms and
images/s.  Times the network only (model(x)[0] in eval mode, no NMS).

Usage: /usr/bin/python3 tools/bench_torch.py MODEL [--size S|H,W] [--batch 1,8]
                        [--threads N] [--iterations N] [--warmup N] [--fuse]
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssfpn_ref.model_file import load_model  # noqa: E402
from ssfpn_ref.fuse import fuse  # noqa: E402


def percentile(sorted_values, q):
    if not sorted_values:
        return float('nan')
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def bench(model, batch, h, w, iterations, warmup):
    x = torch.rand((batch, 3, h, w), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    median = percentile(times, 0.5)
    return {'batch': batch, 'median_ms': median, 'p99_ms': percentile(times, 0.99),
            'min_ms': times[0], 'images_per_s': batch * 1000.0 / median,
            'iterations': iterations}


def main(argv=None):
    p = argparse.ArgumentParser(description='Time the PyTorch reference on the CPU.')
    p.add_argument('model', help='model file (safetensors, model-format.md)')
    p.add_argument('--size', help="input size S or H,W (default: the model's imgsz)")
    p.add_argument('--batch', default='1', help='comma-separated batch sizes')
    p.add_argument('--threads', type=int, default=0,
                   help='torch threads (default: torch\'s own choice)')
    p.add_argument('--iterations', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--json', action='store_true',
                   help='accepted for symmetry with `ssfpn bench`; the output is always JSON')
    p.add_argument('--fuse', action='store_true',
                   help='fold BatchNorm into the convolutions first, as YOLOv5 does')
    args = p.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, torch.float32)
    if args.fuse:
        model = fuse(model)
    if args.size:
        parts = [int(v) for v in args.size.replace('x', ',').split(',')]
        h, w = (parts * 2)[:2] if len(parts) == 1 else parts
    else:
        h, w = model.imgsz
    stride = int(max(model.stride.tolist()))
    if h % stride or w % stride:
        p.error(f'size {h}x{w} is not a multiple of the largest stride {stride}')
    batches = [int(b) for b in args.batch.split(',') if b]
    results = [bench(model, b, h, w, args.iterations, args.warmup) for b in batches]
    print(json.dumps({
        'engine': 'pytorch-reference', 'torch': torch.__version__,
        'model': args.model, 'device': 'cpu', 'precision': 'fp32',
        'threads': torch.get_num_threads(), 'fused': args.fuse,
        'size': [h, w], 'warmup': args.warmup, 'results': results,
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main())
