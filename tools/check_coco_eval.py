#!/usr/bin/env python3
"""Checks `ssfpn eval` against pycocotools on the same predictions.

Generates small YOLO-format datasets of random images, runs `ssfpn eval
--json --dump-predictions P --dump-ground-truth G` on each, feeds P and G to
pycocotools' COCOeval (bbox) and compares every figure: AP@[.5:.95], AP50,
AP75, AP small / medium / large and AP@[.5:.95] and AP50 per class. Fails
when any differs by more than the tolerance (1e-3).

Cases: random labels (the random-weight model's detections barely match,
so AP is near 0: this checks the bookkeeping), and labels made from the
model's own detections on the same images plus box noise, missed objects
and wrong classes (AP from near 1 down), so the arithmetic is checked where
the figures are not trivial.

Needs numpy and pycocotools (scripts/check-coco-eval.sh makes a virtual
environment with them). Usage:
  check_coco_eval.py --ssfpn build/engine/ssfpn --work build/coco-eval-check
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

TOLERANCE = 1e-3
SUMMARY_KEYS = ["ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"]


def write_png(path, pixels):
    """8-bit RGB PNG, no filtering; pixels is (h, w, 3) uint8."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def random_image(rng):
    """Blocky colour noise plus a few flat rectangles: enough structure for
    a random network to give varied scores."""
    height, width = (int(v) for v in rng.integers(64, 321, size=2))
    cells = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)[:height, :width].copy()
    for _ in range(int(rng.integers(0, 6))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, size=2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, size=2))
        image[y0:y1 + 1, x0:x1 + 1] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return image


def write_labels(path, rows):
    with open(path, "w") as f:
        for class_id, cx, cy, w, h in rows:
            f.write(f"{class_id} {cx:.9f} {cy:.9f} {w:.9f} {h:.9f}\n")


def random_labels(rng, width, height, nc):
    """0 to 12 boxes from 3 px to the whole image, log-uniform sizes so
    that all three COCO area ranges occur."""
    rows = []
    for _ in range(int(rng.integers(0, 13))):
        w = float(np.exp(rng.uniform(np.log(3), np.log(width))))
        h = float(np.clip(w * rng.uniform(0.5, 2.0), 2, height))
        cx = rng.uniform(0, width)
        cy = rng.uniform(0, height)
        rows.append((int(rng.integers(0, nc)), cx / width, cy / height, w / width, h / height))
    return rows


def make_random_dataset(folder, rng, n_images, nc):
    os.makedirs(os.path.join(folder, "images"))
    os.makedirs(os.path.join(folder, "labels"))
    for i in range(n_images):
        image = random_image(rng)
        height, width, _ = image.shape
        write_png(os.path.join(folder, "images", f"im{i:04d}.png"), image)
        rows = random_labels(rng, width, height, nc)
        if rows or rng.uniform() < 0.5:  # some images have no label file at all
            write_labels(os.path.join(folder, "labels", f"im{i:04d}.txt"), rows)


def make_close_dataset(folder, source, ground_truth, predictions, rng, noise, nc, clean):
    """Same images as @source; labels are the model's own best detections
    (about 5 an image, the best over the whole set, so that they also rank
    first across images) moved by @noise (relative to the box size), some
    dropped, some with the wrong class, plus a few objects the model never
    finds; when @clean, none of that: AP close to 1."""
    os.makedirs(os.path.join(folder, "labels"))
    shutil.copytree(os.path.join(source, "images"), os.path.join(folder, "images"))
    scores = sorted((p["score"] for p in predictions), reverse=True)
    threshold = scores[min(len(scores), 5 * len(ground_truth["images"])) - 1]
    by_image = {}
    for p in predictions:
        if p["score"] >= threshold:
            by_image.setdefault(p["image_id"], []).append(p)
    for im in ground_truth["images"]:
        width, height = im["width"], im["height"]
        rows = []
        for p in by_image.get(im["id"], []):
            if not clean and rng.uniform() < 0.1:
                continue  # a detection that is not an object: a FP
            x, y, w, h = p["bbox"]
            w *= float(np.exp(rng.normal(0, noise)))
            h *= float(np.exp(rng.normal(0, noise)))
            cx = x + p["bbox"][2] / 2 + rng.normal(0, noise) * w
            cy = y + p["bbox"][3] / 2 + rng.normal(0, noise) * h
            class_id = p["category_id"]
            if not clean and rng.uniform() < 0.1:
                class_id = int(rng.integers(0, nc))
            # YOLO labels are normalised to [0, 1]; ssfpn eval, like
            # YOLOv5, refuses a value outside.
            w, h = min(w, width), min(h, height)
            cx, cy = float(np.clip(cx, 0, width)), float(np.clip(cy, 0, height))
            rows.append((class_id, cx / width, cy / height, w / width, h / height))
        if not clean:
            rows += random_labels(rng, width, height, nc)[:int(rng.integers(0, 3))]
        stem = os.path.splitext(im["file_name"])[0]
        write_labels(os.path.join(folder, "labels", stem + ".txt"), rows)


def run_ssfpn(ssfpn, model, dataset, extra, dumps):
    """Runs `ssfpn eval`; the dumps go to @dumps-predictions.json and
    @dumps-ground-truth.json."""
    predictions = dumps + "-predictions.json"
    ground_truth = dumps + "-ground-truth.json"
    command = [ssfpn, "eval", model, dataset, "--json", "--device", "cpu",
               "--dump-predictions", predictions, "--dump-ground-truth", ground_truth] + extra
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    with open(predictions) as f:
        preds = json.load(f)
    with open(ground_truth) as f:
        gt = json.load(f)
    return json.loads(done.stdout), gt, predictions, ground_truth


def run_pycocotools(ground_truth_path, predictions_path, nc):
    """The same figures from pycocotools; per class from precision[t, r, k,
    area all, maxDets 100] as summarize() averages them."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(ground_truth_path)
        coco_dt = coco_gt.loadRes(predictions_path)
        evaluation = COCOeval(coco_gt, coco_dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    figures = {"ap": stats[0], "ap50": stats[1], "ap75": stats[2],
               "ap_small": stats[3], "ap_medium": stats[4], "ap_large": stats[5]}
    precision = evaluation.eval["precision"]
    cat_ids = evaluation.params.catIds
    for c in range(nc):
        k = cat_ids.index(c)
        for name, p in (("ap", precision[:, :, k, 0, -1]), ("ap50", precision[0, :, k, 0, -1])):
            valid = p[p > -1]
            figures[f"class{c}_{name}"] = float(valid.mean()) if valid.size else -1.0
    return figures


def ours(result):
    figures = {key: result[key] for key in SUMMARY_KEYS}
    for c in result["classes"]:
        figures[f"class{c['class_id']}_ap"] = c["ap"]
        figures[f"class{c['class_id']}_ap50"] = c["ap50"]
    return figures


def compare(name, result, gt_path, pred_path, nc, n_preds):
    expected = run_pycocotools(gt_path, pred_path, nc)
    got = ours(result)
    worst = 0.0
    bad = []
    for key, value in expected.items():
        diff = abs(got[key] - value)
        worst = max(worst, diff)
        if not diff <= TOLERANCE:
            bad.append(f"{key}: ssfpn {got[key]:.6f}, pycocotools {value:.6f}")
    print(f"{name:<22} {result['images']:3d} images {result['instances']:4d} instances "
          f"{n_preds:6d} detections  AP {got['ap']:.4f} AP50 {got['ap50']:.4f} "
          f"APs {got['ap_small']:.4f} APm {got['ap_medium']:.4f} APl {got['ap_large']:.4f}  "
          f"max |diff| {worst:.2e}")
    for line in bad:
        print(f"  MISMATCH {line}")
    return worst, not bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ssfpn", required=True, help="the ssfpn executable")
    parser.add_argument("--model", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "baseline.safetensors"))
    parser.add_argument("--work", required=True, help="scratch folder (emptied)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    rng = np.random.default_rng(args.seed)
    with open(args.model, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    nc = json.loads(header["__metadata__"]["ssfpn.config"])["nc"]

    worst = 0.0
    all_ok = True
    random_dir = os.path.join(args.work, "random")
    make_random_dataset(random_dir, rng, args.images, nc)
    cases = [("random labels", random_dir, [])]
    first = run_ssfpn(args.ssfpn, args.model, random_dir, [], os.path.join(args.work, "case0"))
    _, gt, pred_path, _ = first
    with open(pred_path) as f:
        base_predictions = json.load(f)
    for noise, clean in ((0.0, True), (0.0, False), (0.03, False), (0.1, False), (0.3, False)):
        folder = os.path.join(args.work, f"close-{noise}{'-clean' if clean else ''}")
        make_close_dataset(folder, random_dir, gt, base_predictions, rng, noise, nc, clean)
        cases.append((f"own detections ~{noise}{' only' if clean else ''}", folder, []))
    # Another input size and batching: other detections, same checks.
    cases.append(("random, size 160, b3", random_dir, ["--size", "160", "--batch", "3"]))

    for index, (name, folder, extra) in enumerate(cases):
        if index == 0:
            result, gt, pred_path, gt_path = first
        else:
            result, gt, pred_path, gt_path = run_ssfpn(
                args.ssfpn, args.model, folder, extra, os.path.join(args.work, f"case{index}"))
        with open(pred_path) as f:
            n_preds = len(json.load(f))
        if n_preds == 0:
            sys.exit(f"{name}: the model found nothing; pycocotools cannot load "
                     "an empty result list")
        case_worst, ok = compare(name, result, gt_path, pred_path, nc, n_preds)
        worst = max(worst, case_worst)
        all_ok = all_ok and ok

    print(f"max |ssfpn - pycocotools| over all figures: {worst:.3e} "
          f"(tolerance {TOLERANCE:g})")
    if not all_ok:
        print("FAILED")
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
