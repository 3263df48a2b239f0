#!/usr/bin/python3
"""Generates the NMS fixtures in tests/data/nms/.

Each case is a random raw model output for one image, <case>.npy (float32,
rows x (5 + nc)), and <case>.json with the options and the detections that
YOLOv5 v6.0's non_max_suppression (detect.py's single label, or val.py's
multi_label where a case sets it) returns for it, computed here with
PyTorch and torchvision.ops.nms. The C implementation (engine/src/nms.c)
must reproduce them exactly.

Thresholds are float32 values so that the float comparisons of the C code
and the double ones of torchvision mean the same thing. Cases are drawn so
that no two candidate scores tie (tie order is unspecified in torch.sort).

Run with the system Python that has torch: /usr/bin/python3 tools/make_nms_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssfpn_ref.nms import non_max_suppression  # noqa: E402


def yolov5_nms(x, conf_thres, iou_thres, classes, agnostic, max_det,
               multi_label):
    """YOLOv5 v6.0 non_max_suppression for one image."""
    return non_max_suppression(x[None], conf_thres, iou_thres, classes,
                               agnostic, max_det, multi_label)[0]


def f32(value):
    return float(np.float32(value))


def random_output(rng, rows, nc, size, clusters=0, box_scale=0.2,
                  confident=False):
    """Rows like a decoded Detect output: boxes in pixels of a size x size
    input, objectness and class probabilities in (0, 1)."""
    out = np.empty((rows, 5 + nc), dtype=np.float32)
    if clusters:
        centres = rng.uniform(0, size, (clusters, 2))
        pick = rng.integers(0, clusters, rows)
        out[:, 0:2] = centres[pick] + rng.normal(0, size * 0.01, (rows, 2))
        base = rng.uniform(size * 0.05, size * box_scale, (clusters, 2))
        out[:, 2:4] = base[pick] * rng.uniform(0.85, 1.15, (rows, 2))
    else:
        out[:, 0:2] = rng.uniform(0, size, (rows, 2))
        out[:, 2:4] = rng.uniform(2, size * box_scale, (rows, 2))
    if confident:
        out[:, 4] = rng.beta(4.0, 1.0, rows)
        out[:, 5:] = rng.beta(1.0, 1.0, (rows, nc))
    else:
        out[:, 4] = rng.beta(0.6, 1.2, rows)
        out[:, 5:] = rng.beta(0.5, 2.0, (rows, nc))
    return out


def has_score_ties(out, conf, multi_label):
    """True when two classes of a candidate row, or two candidates, share a
    score: the class or the order would then depend on tie-breaking."""
    x = torch.from_numpy(out)
    x = x[x[:, 4] > conf]
    scores = x[:, 5:] * x[:, 4:5]
    if multi_label:
        kept = scores[scores > conf]
        return kept.unique().numel() != kept.numel()
    if scores.shape[1] > 1:
        top2 = scores.topk(2, 1).values
        if bool((top2[:, 0] == top2[:, 1]).any()):
            return True
    best = scores.max(1).values
    best = best[best > conf]
    return best.unique().numel() != best.numel()


CASES = [
    # name, rows, nc, options, generator keywords
    ("few_boxes", 12, 3, {}, {"clusters": 4, "confident": True}),
    ("single_class", 300, 1, {}, {"clusters": 20}),
    ("coco_80", 400, 80, {}, {"clusters": 30}),
    ("many_overlapping", 3000, 3, {"iou": 0.5}, {"clusters": 12, "box_scale": 0.4}),
    ("agnostic", 800, 3, {"agnostic": True}, {"clusters": 25}),
    ("class_filter", 800, 5, {"classes": [0, 3]}, {"clusters": 25}),
    ("max_det_small", 1500, 3, {"max_det": 7, "conf": 0.1}, {"clusters": 40}),
    ("low_conf", 1000, 4, {"conf": 0.001, "iou": 0.6}, {"clusters": 50}),
    ("tight_iou", 1000, 2, {"iou": 0.1}, {"clusters": 30}),
    ("multi_label", 1000, 4, {"conf": 0.001, "iou": 0.6, "multi_label": True},
     {"clusters": 50}),
    ("multi_label_filter", 600, 5, {"conf": 0.05, "classes": [1, 4],
                                    "multi_label": True}, {"clusters": 25}),
    ("multi_label_max_det", 1500, 3, {"conf": 0.001, "max_det": 40,
                                      "multi_label": True}, {"clusters": 40}),
]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
    outdir = os.path.join(root, "tests", "data", "nms")
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20220823)
    total = 0
    for name, rows, nc, opts, gen in CASES:
        conf = f32(opts.get("conf", 0.25))
        iou = f32(opts.get("iou", 0.45))
        max_det = opts.get("max_det", 300)
        agnostic = opts.get("agnostic", False)
        classes = opts.get("classes")
        multi_label = opts.get("multi_label", False)
        for _ in range(100):
            out = random_output(rng, rows, nc, 640, **gen)
            if not has_score_ties(out, conf, multi_label):
                break
        else:
            sys.exit(f"{name}: could not draw an output without score ties")
        det = yolov5_nms(torch.from_numpy(out), conf, iou, classes, agnostic,
                         max_det, multi_label)
        expected = {
            "rows": rows, "nc": nc, "conf": conf, "iou": iou,
            "max_det": max_det, "agnostic": agnostic, "classes": classes,
            "multi_label": multi_label,
            "detections": [
                {"box": [float(v) for v in d[:4].tolist()],
                 "confidence": float(d[4]), "class_id": int(d[5])}
                for d in det
            ],
        }
        npy_path = os.path.join(outdir, name + ".npy")
        json_path = os.path.join(outdir, name + ".json")
        np.save(npy_path, out)
        with open(json_path, "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        size = os.path.getsize(npy_path) + os.path.getsize(json_path)
        total += size
        print(f"{name}: {rows} rows, nc {nc}, {len(det)} detections, {size} bytes")
    print(f"total {total} bytes")
    if total >= 1 << 20:
        sys.exit("fixtures exceed 1 MB")


if __name__ == "__main__":
    main()
