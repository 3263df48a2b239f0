#!/usr/bin/env python3
"""Would a second-stage crop classifier close the default model's gap on
the smallest objects?  An experiment, not part of the engine: it trains
tools/small_object_ceiling.py's classifier on crops whose centre is off by
up to 2 px (as a detection's is), then re-scores the detections under
16 px of an `ssfpn eval --dump-predictions` file: each such box keeps its
best score b and gets, for every class c, b * p_c^w * r_c^(1-w) (p the
classifier's probabilities over the eight flips and quarter turns, r_c
the detector's score for c over b, 0.001 / b where the dump has none), and
pycocotools scores the result against `--dump-ground-truth`.

  small_object_rescore.py train --train DIR... --out clf.pt [--epochs 8]
  small_object_rescore.py score --clf clf.pt --eval DIR --pred P.json \
      --gt G.json [--weights 1,0.5]

Needs torch and pycocotools in one interpreter: a virtual environment made
with --system-site-packages over Debian's python3-torch, pycocotools from
PyPI (docs/default-model.md).
"""
import argparse, contextlib, io, json, math, os, sys
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small_object_ceiling as soc

CROP, PAD = 24, 2


def jitter(x, gen):
    """random CROP window of the (CROP + 2 PAD) crops: a centre off by up
    to PAD px, as a detection's is."""
    dx, dy = (int(v) for v in torch.randint(2 * PAD + 1, (2,), generator=gen))
    return x[:, :, dy:dy + CROP, dx:dx + CROP]


def train(args):
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    parts = [soc.crops_of(d, CROP + 2 * PAD, 16) for d in args.train]
    x = soc.to_tensor(np.concatenate([c for c, _, _, _ in parts]))
    y = torch.from_numpy(np.concatenate([c for _, c, _, _ in parts]))
    print(f'{len(x)} crops', file=sys.stderr, flush=True)
    model = soc.classifier(6)
    soc.train(model, x, y, args.epochs, 256, 0, crop_batch=jitter)
    torch.save(model.state_dict(), args.out)


def coco_ap(gt_path, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate(); ev.accumulate(); ev.summarize()
    return ev.stats[0], ev.stats[1], ev.stats[3]


def score(args):
    torch.set_num_threads(os.cpu_count())
    gt = json.load(open(args.gt))
    files = {im['id']: im['file_name'] for im in gt['images']}
    preds = json.load(open(args.pred))
    print('as dumped: AP %.4f AP50 %.4f APs %.4f' % coco_ap(args.gt, preds), flush=True)
    groups = {}
    for d in preds:
        groups.setdefault((d['image_id'], tuple(d['bbox'])), {})[d['category_id']] = d['score']
    small = [k for k in groups if math.sqrt(k[1][2] * k[1][3]) < args.max_side]
    print(f'{len(groups)} boxes, {len(small)} under {args.max_side} px', flush=True)
    model = soc.classifier(6)
    model.load_state_dict(torch.load(args.clf))
    crops = []
    by_image = {}
    for n, k in enumerate(small):
        by_image.setdefault(k[0], []).append(n)
    crops = np.zeros((len(small), CROP, CROP, 3), np.uint8)
    half = CROP // 2
    for image_id, ns in by_image.items():
        name = files[image_id]
        path = name if os.path.isabs(name) else os.path.join(args.eval, 'images', os.path.basename(name))
        img = np.asarray(Image.open(path).convert('RGB'))
        padded = np.pad(img, ((half, half), (half, half), (0, 0)), constant_values=114)
        for n in ns:
            x, y, w, h = small[n][1]
            cx, cy = int(round(x + w / 2)), int(round(y + h / 2))
            cx = min(max(cx, 0), img.shape[1]); cy = min(max(cy, 0), img.shape[0])
            crops[n] = padded[cy:cy + CROP, cx:cx + CROP]
    p = soc.probabilities(model, soc.to_tensor(crops), 2048).numpy()
    for w in [float(v) for v in args.weights.split(',')]:
        out = []
        small_set = {k: n for n, k in enumerate(small)}
        for k, scores in groups.items():
            n = small_set.get(k)
            if n is None:
                out += [{'image_id': k[0], 'category_id': c, 'bbox': list(k[1]), 'score': s}
                        for c, s in scores.items()]
                continue
            b = max(scores.values())
            for c in range(6):
                r = scores.get(c, 0.001) / b
                s = b * (p[n, c] ** w) * (r ** (1 - w))
                if s >= 0.001:
                    out.append({'image_id': k[0], 'category_id': c, 'bbox': list(k[1]), 'score': float(s)})
        print('w %.2f: AP %.4f AP50 %.4f APs %.4f' % ((w,) + coco_ap(args.gt, out)), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('train'); t.add_argument('--train', nargs='+'); t.add_argument('--out')
    t.add_argument('--epochs', type=int, default=8)
    s = sub.add_parser('score'); s.add_argument('--clf'); s.add_argument('--eval')
    s.add_argument('--pred'); s.add_argument('--gt'); s.add_argument('--max-side', type=float, default=16)
    s.add_argument('--weights', default='1,0.7,0.5,0.3')
    a = p.parse_args()
    train(a) if a.cmd == 'train' else score(a)


if __name__ == '__main__':
    main()
