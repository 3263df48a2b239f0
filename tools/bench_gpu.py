#!/usr/bin/env python3
"""Side by side on one GPU, same weights, same input size: this engine
(`ssfpn bench --device cuda --precision fp16 --json`), PyTorch eager FP16
and torch.compile(mode="max-autotune"), per batch size.

PyTorch runs the reference model of tools/ssfpn_ref loaded from the same
model file, BatchNorm folded, .half(), channels_last, with
torch.backends.cudnn.benchmark on, under torch.inference_mode(). Each
batch is timed with CUDA events around every run (same warm-up and
iterations on every side), on a device-resident input: the same scope as
the engine's scope A. The engine's scopes B and C are listed beside.

Prints one markdown table (and, with --json FILE, the raw numbers).

Usage (on the GPU machine, python3 with PyTorch):
  python3 tools/bench_gpu.py MODEL [--ssfpn build/engine/ssfpn]
      [--size 640] [--batch 1,8,32] [--iterations 100] [--warmup 20]
      [--no-compile] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssfpn_ref.fuse import fuse  # noqa: E402
from ssfpn_ref.model_file import load_model  # noqa: E402


def percentile(sorted_values, q):
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def time_module(module, batch, size, iterations, warmup):
    """Median and p99 ms of module(x)[0] on a device-resident fp16 batch."""
    x = torch.rand((batch, 3, size[0], size[1]), device='cuda',
                   generator=torch.Generator(device='cuda').manual_seed(0))
    x = x.half().contiguous(memory_format=torch.channels_last)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        torch.cuda.synchronize()
        for i in range(iterations):
            starts[i].record()
            module(x)
            ends[i].record()
        torch.cuda.synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    median = percentile(times, 0.5)
    return {'median_ms': median, 'p99_ms': percentile(times, 0.99),
            'images_per_s': batch * 1000.0 / median}


def first_output(model):
    """The network's decoded output alone, as the engine's scope A."""
    def forward(x):
        return model(x)[0]
    return forward


def run_engine(args, size):
    command = [args.ssfpn, 'bench', args.model, '--device', 'cuda',
               '--precision', 'fp16', '--json', '--batch', args.batch,
               '--size', f'{size[0]}x{size[1]}',
               '--iterations', str(args.iterations),
               '--warmup', str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        # The engine's own message says why: without it another GPU call
        # would be needed to learn it.
        sys.stderr.write(done.stderr)
        raise SystemExit(f'{" ".join(command)}: exit status {done.returncode}')
    return json.loads(done.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('model', help='model file (safetensors, model-format.md)')
    p.add_argument('--ssfpn', default='build/engine/ssfpn',
                   help='the ssfpn program to run')
    p.add_argument('--size', default='640', help='input S or HxW')
    p.add_argument('--batch', default='1,8,32')
    p.add_argument('--iterations', type=int, default=100)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--no-compile', action='store_true',
                   help='leave torch.compile out (it takes minutes)')
    p.add_argument('--json', metavar='FILE', help='also write the numbers here')
    args = p.parse_args(argv)

    if not torch.cuda.is_available():
        p.error('PyTorch sees no CUDA device')
    parts = [int(v) for v in args.size.replace('x', ',').split(',')]
    size = (parts * 2)[:2] if len(parts) == 1 else parts
    batches = [int(b) for b in args.batch.split(',') if b]

    engine = run_engine(args, size)
    by_batch = {r['batch']: r for r in engine['results']}

    torch.backends.cudnn.benchmark = True
    model = fuse(load_model(args.model, torch.float32)).cuda().half()
    model = model.to(memory_format=torch.channels_last).eval()
    eager = first_output(model)
    compiled = None
    if not args.no_compile:
        compiled = torch.compile(eager, mode='max-autotune')

    rows = []
    for batch in batches:
        row = {'batch': batch, 'eager': time_module(eager, batch, size,
                                                    args.iterations, args.warmup)}
        if compiled is not None:
            row['compile'] = time_module(compiled, batch, size,
                                         args.iterations, args.warmup)
        row['ssfpn'] = by_batch[batch]['scopes']
        rows.append(row)

    props = torch.cuda.get_device_properties(0)
    print(f'Model `{os.path.basename(args.model)}`, {size[0]}x{size[1]}, FP16, '
          f'{props.name}, PyTorch {torch.__version__} (CUDA {torch.version.cuda}, '
          f'cuDNN {torch.backends.cudnn.version()}); {args.iterations} timed runs '
          f'after {args.warmup} warm-up runs; median ms per batch.')
    print()
    print('| batch | ssfpn A ms | ssfpn B ms | ssfpn C ms | eager ms | compile ms '
          '| eager / A | compile / A | C images/s |')
    print('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for r in rows:
        a, b, c = (r['ssfpn'][s]['median_ms'] for s in 'ABC')
        e = r['eager']['median_ms']
        k = r['compile']['median_ms'] if 'compile' in r else float('nan')
        print(f"| {r['batch']} | {a:.3f} | {b:.3f} | {c:.3f} | {e:.3f} | {k:.3f} "
              f"| {e / a:.2f} | {k / a:.2f} | {r['batch'] * 1000.0 / c:.0f} |")
    print()
    print('A: network only (device-resident input); B: plus decode and NMS; '
          'C: 1920x1080 NV12 frames in host memory to detections in host memory. '
          'eager and compile time the same scope as A.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'model': args.model, 'gpu': props.name,
                       'torch': torch.__version__, 'size': size,
                       'engine': engine, 'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
