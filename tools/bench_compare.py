#!/usr/bin/env python3
"""Times the engine against the PyTorch reference on the same model file.

Runs `ssfpn bench MODEL --json` and tools/bench_torch.py (the reference
model in PyTorch, eval mode, no autograd) with the same threads, input size,
batch sizes, iterations and warm-up, one batch size at a time and the two
back to back so that both see the same machine state, and prints a markdown
table for docs/performance.md with the ratio torch time / ssfpn time (above
1: the engine is faster).

Example:
  python3 tools/bench_compare.py yolov5s-ssfpn.safetensors \\
      --ssfpn build/engine/ssfpn --batch 1,8 --threads 2

bench_torch.py is called as
  /usr/bin/python3 tools/bench_torch.py MODEL --batch B --size HxW \\
      --iterations N --warmup W --threads T --json
and must print one JSON object with, per batch size, the median and p99
latency in ms: {"results": [{"batch": B, "median_ms": .., "p99_ms": ..}]}
(the same numbers nested under "network", as `ssfpn bench` writes them, are
read as well).
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def find_ssfpn():
    if os.environ.get("SSFPN"):
        return os.environ["SSFPN"]
    built = sorted(glob.glob(os.path.join(ROOT, "build*", "engine", "ssfpn")),
                   key=os.path.getmtime, reverse=True)
    if built:
        return built[0]
    return shutil.which("ssfpn")


def run_json(command):
    """Runs @command and returns its stdout parsed as one JSON object."""
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False)
    except OSError as e:
        sys.exit(f"bench_compare: cannot run {command[0]}: {e}")
    if done.returncode != 0:
        sys.exit(f"bench_compare: {' '.join(command)} failed "
                 f"(exit {done.returncode}): {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"bench_compare: {command[0]} did not print JSON ({e}): "
                 f"{done.stdout[:200]!r}")


def batch_timing(report, batch, who):
    """(median_ms, p99_ms) for @batch from a bench report."""
    for r in report.get("results", []):
        if r.get("batch") == batch:
            t = r.get("network", r)
            return float(t["median_ms"]), float(t["p99_ms"])
    sys.exit(f"bench_compare: {who} reported no result for batch {batch}")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="model file (model-format.md)")
    p.add_argument("--ssfpn", default=find_ssfpn(),
                   help="the ssfpn command (default: newest build*/engine/ssfpn)")
    p.add_argument("--torch-python", default="/usr/bin/python3",
                   help="Python with torch for bench_torch.py (default %(default)s)")
    p.add_argument("--bench-torch", default=os.path.join(HERE, "bench_torch.py"))
    p.add_argument("--batch", default="1,8", help="batch sizes (default %(default)s)")
    p.add_argument("--size", help="S or HxW (default: the model's imgsz)")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads for both (default: all cores, %(default)s)")
    args = p.parse_args(argv)

    if not args.ssfpn:
        sys.exit("bench_compare: no ssfpn command found; pass --ssfpn")
    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        sys.exit(f"bench_compare: --batch {args.batch} is not a list such as 1,8")
    if args.threads < 1:
        sys.exit("bench_compare: --threads must be at least 1 "
                 "(both sides need the same explicit count)")

    common = ["--iterations", str(args.iterations), "--warmup", str(args.warmup),
              "--threads", str(args.threads), "--json"]
    if args.size:
        common += ["--size", args.size]

    rows = []
    size = None
    for batch in batches:
        ours = run_json([args.ssfpn, "bench", args.model, "--device", "cpu",
                         "--precision", "fp32", "--batch", str(batch)] + common)
        size = ours.get("size", size)
        if not args.size and size:
            # The reference gets the size the engine resolved from imgsz.
            common += ["--size", f"{size[0]}x{size[1]}"]
            args.size = f"{size[0]}x{size[1]}"
        # The peer as YOLOv5 deploys it: Conv and BatchNorm fused.
        theirs = run_json([args.torch_python, args.bench_torch, args.model,
                           "--fuse", "--batch", str(batch)] + common)
        o_med, o_p99 = batch_timing(ours, batch, "ssfpn bench")
        t_med, t_p99 = batch_timing(theirs, batch, "bench_torch.py")
        nms = next(r for r in ours["results"] if r["batch"] == batch)
        rows.append((batch, o_med, o_p99, t_med, t_p99,
                     nms["postprocess_per_image"]["median_ms"]))

    print(f"Model `{os.path.basename(args.model)}`, input "
          f"{size[0]}x{size[1]}, {args.threads} threads, CPU fp32, "
          f"{args.iterations} timed runs after {args.warmup} warm-up runs; "
          f"{cpu_name()}, {datetime.date.today().isoformat()}.")
    print()
    print("| batch | ssfpn median ms | ssfpn p99 ms | ssfpn images/s "
          "| PyTorch median ms | PyTorch p99 ms | PyTorch images/s "
          "| ratio (PyTorch / ssfpn) | ssfpn NMS ms/image |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch, o_med, o_p99, t_med, t_p99, nms_ms in rows:
        print(f"| {batch} | {o_med:.2f} | {o_p99:.2f} | {batch / o_med * 1e3:.1f} "
              f"| {t_med:.2f} | {t_p99:.2f} | {batch / t_med * 1e3:.1f} "
              f"| {t_med / o_med:.2f} | {nms_ms:.3f} |")
    print()
    print("Latency is per batch (median over the timed runs). Pre-processing "
          "is not included on either side.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
