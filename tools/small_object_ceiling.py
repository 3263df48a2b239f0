#!/usr/bin/env python3
"""How well can the class of a small object be told at all?  A small
classifier is trained on crops centred on the labelled small objects of
YOLO-format training sets, and its accuracy per object size on another set
is printed, next to a detector's where its `ssfpn detect` output is given.

    tools/small_object_ceiling.py --train DIR [DIR ...] --eval DIR \
        [--detections dets.jsonl] [--bins 7,8,9,10,12,14,16]
    tools/small_object_ceiling.py --no-classifier --eval DIR --detections dets.jsonl

The classifier is given what a detector is not: where the object is, to
the pixel.  Its accuracy is therefore an estimate of what the best
detector could reach on these objects' classes, not a bound: a better
classifier could do better still.  Sizes are the square root of the label
box's area, in the image's pixels, as in tools/error_breakdown.py; the
detector's figure is right / (right + wrong class) at IoU >= 0.5 there,
so objects it missed do not count against it.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn

import error_breakdown


def crops_of(dataset, crop, max_side):
    """(crops uint8 (n, crop, crop, 3), classes (n,), sizes (n,), keys) of
    the objects under max_side px, centred on their label box, grey where
    the window leaves the image."""
    images_dir = os.path.join(dataset, 'images')
    out, classes, sizes, keys = [], [], [], []
    half = crop // 2
    for name in sorted(os.listdir(images_dir)):
        stem = os.path.splitext(name)[0]
        img = np.asarray(Image.open(os.path.join(images_dir, name)).convert('RGB'))
        h, w = img.shape[:2]
        padded = np.pad(img, ((half, half), (half, half), (0, 0)), constant_values=114)
        boxes = error_breakdown.read_labels(os.path.join(dataset, 'labels', stem + '.txt'), w, h)
        for k, (cls, box) in enumerate(boxes):
            side = error_breakdown.box_side(box)
            if side >= max_side:
                continue
            cx = int(round((box[0] + box[2]) / 2))
            cy = int(round((box[1] + box[3]) / 2))
            out.append(padded[cy:cy + crop, cx:cx + crop])
            classes.append(cls)
            sizes.append(side)
            keys.append((stem, k))
    return (np.stack(out), np.array(classes, dtype=np.int64),
            np.array(sizes, dtype=np.float64), keys)


def classifier(n_classes):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]
    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),
                         *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                         *block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, n_classes))


def to_tensor(crops):
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255


def augment(x, gen):
    """Flips and quarter turns: every class but the circle is drawn at any
    rotation, and these change no class."""
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(3)
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(2)
    return torch.rot90(x, int(torch.randint(4, (1,), generator=gen)), (2, 3))


def train(model, x, y, epochs, batch, seed, crop_batch=None):
    """crop_batch(x, gen), when given, turns each batch into the crops the
    model sees before augment() (tools/small_object_rescore.py's jitter)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            xb = crop_batch(x[idx], gen) if crop_batch else x[idx]
            loss = loss_fn(model(augment(xb, gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        print(f'epoch {epoch + 1}/{epochs} loss {total / len(x):.4f}', file=sys.stderr, flush=True)


def predict(model, x, batch=1024):
    """Class predictions, averaged over the eight flips and quarter turns."""
    return probabilities(model, x, batch).argmax(1).numpy()


@torch.no_grad()
def probabilities(model, x, batch=1024):
    """Class probabilities (n, classes), averaged over the eight flips and
    quarter turns."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        p = 0
        for flip in (False, True):
            xf = xb.flip(3) if flip else xb
            for r in range(4):
                p = p + model(torch.rot90(xf, r, (2, 3))).softmax(1)
        out.append(p / 8)
    return torch.cat(out)


def detector_outcomes(path, dataset, max_side):
    """{(stem, label index): True right class / False wrong class} for the
    objects under max_side px that a detection overlaps at IoU >= 0.5."""
    outcome = {}
    for stem, dets, objects in error_breakdown.matched_objects(path, dataset):
        for k, (cls, box, best) in enumerate(objects):
            if best is not None and error_breakdown.box_side(box) < max_side:
                outcome[(stem, k)] = dets[best]['class_id'] == cls
    return outcome


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--train', nargs='+', help='YOLO-format training sets (needed '
                   'unless --no-classifier)')
    p.add_argument('--eval', required=True, help='YOLO-format set to measure on')
    p.add_argument('--detections', help="`ssfpn detect` JSON lines on the --eval set's images")
    p.add_argument('--bins', type=error_breakdown.size_bins,
                   default=error_breakdown.size_bins('7,8,9,10,12,14,16'),
                   help='size bin edges in pixels; the last is the largest size used '
                        '(default 7,8,9,10,12,14,16)')
    p.add_argument('--crop', type=int, default=24, help='crop side in pixels (default 24)')
    p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0 = all cores)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-classifier', action='store_true',
                   help="only the detector's column (with --detections): the "
                        "classifier's does not depend on the detector, and takes "
                        "most of the time")
    args = p.parse_args(argv)
    if args.no_classifier and not args.detections:
        p.error('--no-classifier needs --detections')
    if not args.no_classifier and not args.train:
        p.error('--train is needed to train the classifier')
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    bins = args.bins[:-1]  # the last edge bounds the sizes used
    max_side = bins[-1][1]

    ex, ey, esize, ekeys = crops_of(args.eval, args.crop, max_side)
    right = None
    if not args.no_classifier:
        parts = [crops_of(d, args.crop, max_side) for d in args.train]
        x = to_tensor(np.concatenate([c for c, _, _, _ in parts]))
        y = torch.from_numpy(np.concatenate([c for _, c, _, _ in parts]))
        print(f'{len(x)} training crops, {len(ex)} to measure on, objects under '
              f'{max_side:g} px', file=sys.stderr, flush=True)
        model = classifier(6)
        train(model, x, y, args.epochs, args.batch, args.seed)
        right = predict(model, to_tensor(ex)) == ey

    outcome = detector_outcomes(args.detections, args.eval, max_side) if args.detections else None
    header = f'{"size (px)":>10} {"objects":>8}'
    if right is not None:
        header += f' {"classifier":>11}'
    if outcome is not None:
        header += f' {"detector":>9} {"(matched)":>9}'
    print(header)
    for lo, hi in bins:
        sel = (esize >= lo) & (esize < hi)
        if not sel.any():
            continue
        row = f'{f"{lo:g}-{hi:g}":>10} {int(sel.sum()):>8}'
        if right is not None:
            row += f' {right[sel].mean():>11.3f}'
        if outcome is not None:
            seen = [outcome[key] for key, s in zip(ekeys, sel) if s and key in outcome]
            row += f' {np.mean(seen) if seen else float("nan"):>9.3f} {len(seen):>9}'
        print(row)
    return 0


if __name__ == '__main__':
    sys.exit(main())
