#!/usr/bin/env python3
"""Where a detector's errors are, by object size: for every labelled object
of a YOLO-format dataset, is the best-overlapping detection (IoU >= 0.5)
of the right class, of a wrong class, or is there none?

    ssfpn detect MODEL DATASET/images/* > dets.jsonl
    tools/error_breakdown.py dets.jsonl DATASET [--bins 8,12,16,32,96]

Sizes are the square root of the label box's area, in the image's pixels;
--bins sets the edges between size rows.
Uses the detections as `ssfpn detect` printed them (its confidence
threshold applies), so it describes what a pipeline sees, not the AP.
"""

import argparse
import json
import os
import sys

DEFAULT_EDGES = '16,32,96'


def size_bins(edges):
    """Bins [0, e1), [e1, e2), ... [en, inf) from 'e1,e2,...,en'."""
    cuts = [float(e) for e in edges.split(',') if e.strip()]
    if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:])) or cuts[0] <= 0:
        raise argparse.ArgumentTypeError(f'bin edges must be positive and increasing: {edges!r}')
    lows = [0.0] + cuts
    return list(zip(lows, cuts + [float('inf')]))


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_labels(path, width, height):
    boxes = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.strip():
                continue
            c, cx, cy, w, h = (float(v) for v in line.split())
            boxes.append((int(c), [(cx - w / 2) * width, (cy - h / 2) * height,
                                   (cx + w / 2) * width, (cy + h / 2) * height]))
    return boxes


def box_side(box):
    return ((box[2] - box[0]) * (box[3] - box[1])) ** 0.5


def matched_objects(detections_path, dataset):
    """For each record of `ssfpn detect` JSON lines: (stem, detections,
    [(class, box, index of the best-overlapping detection at IoU >= 0.5 or
    None) for each labelled object])."""
    with open(detections_path, encoding='utf-8') as f:
        for line in f:
            record = json.loads(line)
            stem = os.path.splitext(os.path.basename(record['image']))[0]
            label_path = os.path.join(dataset, 'labels', stem + '.txt')
            dets = record['detections']
            objects = []
            for cls, box in read_labels(label_path, record['width'], record['height']):
                best, best_iou = None, 0.5
                for k, d in enumerate(dets):
                    v = iou(box, d['box'])
                    if v >= best_iou:
                        best, best_iou = k, v
                objects.append((cls, box, best))
            yield stem, dets, objects


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('detections', help='JSON lines of `ssfpn detect`')
    p.add_argument('dataset', help='YOLO-format dataset folder (labels/)')
    p.add_argument('--bins', type=size_bins, default=size_bins(DEFAULT_EDGES),
                   help=f'size bin edges in pixels, comma-separated (default {DEFAULT_EDGES})')
    args = p.parse_args(argv)

    counts = {b: [0, 0, 0, 0] for b in args.bins}  # objects, right, wrong class, missed
    unmatched = 0
    for _, dets, objects in matched_objects(args.detections, args.dataset):
        used = set()
        for cls, box, best in objects:
            side = box_side(box)
            row = counts[next(b for b in args.bins if b[0] <= side < b[1])]
            row[0] += 1
            if best is None:
                row[3] += 1
            else:
                used.add(best)
                row[1 if dets[best]['class_id'] == cls else 2] += 1
        unmatched += len(dets) - len(used)

    print(f'{"size (px)":>10} {"objects":>8} {"right":>7} {"wrong class":>12} {"missed":>7}')
    total = [0, 0, 0, 0]
    for (lo, hi), row in counts.items():
        name = f'{lo:g}-{hi:g}' if hi != float('inf') else f'{lo:g}+'
        total = [t + r for t, r in zip(total, row)]
        if row[0]:
            print(f'{name:>10} {row[0]:>8} {row[1] / row[0]:>7.3f} '
                  f'{row[2] / row[0]:>12.3f} {row[3] / row[0]:>7.3f}')
    if total[0]:
        print(f'{"all":>10} {total[0]:>8} {total[1] / total[0]:>7.3f} '
              f'{total[2] / total[0]:>12.3f} {total[3] / total[0]:>7.3f}')
    print(f'detections matching no object: {unmatched}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
