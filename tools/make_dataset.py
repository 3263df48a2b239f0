#!/usr/bin/python3
"""Write a YOLO-format dataset of synthetic shape scenes.

DATASET/images/NNNNNN.jpg (or .png), DATASET/labels/NNNNNN.txt with one
`class cx cy w h` line per object (normalised), DATASET/data.yaml with the
class names.  Image i is a pure function of (--seed, i), so a dataset is
identical whatever --workers is.

Example: /usr/bin/python3 tools/make_dataset.py data/train --count 10000 --seed 1
"""

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from PIL import Image  # noqa: E402

from synth import CLASS_NAMES, SceneConfig, render_scene  # noqa: E402
from synth.preview import contact_sheet, read_yolo_labels  # noqa: E402


def _size(text):
    parts = [int(p) for p in text.replace('x', ',').split(',')]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 32:
        raise argparse.ArgumentTypeError(f'bad size {text!r}; use S or W,H (>= 32)')
    return parts


def write_one(job):
    out, index, seed, width, height, fmt, store_quality, world = job
    cfg = SceneConfig(height=height, width=width, **world)
    image, labels, quality = render_scene([seed, index], cfg)
    stem = f'{index:06d}'
    pil = Image.fromarray(image)
    if fmt == 'png':
        if quality is not None:  # the degradation still happens, losslessly stored
            buf = BytesIO()
            pil.save(buf, 'JPEG', quality=quality)
            pil = Image.open(BytesIO(buf.getvalue())).convert('RGB')
        pil.save(os.path.join(out, 'images', stem + '.png'), optimize=False)
    else:
        pil.save(os.path.join(out, 'images', stem + '.jpg'),
                 quality=quality if quality is not None else store_quality)
    with open(os.path.join(out, 'labels', stem + '.txt'), 'w', encoding='ascii') as f:
        for cls, x1, y1, x2, y2 in labels:
            f.write(f'{cls} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} '
                    f'{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n')
    return len(labels)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('output', help='dataset folder to create')
    p.add_argument('--count', type=int, required=True, help='number of images')
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--size', type=_size, default=[640, 640], help='S or W,H')
    p.add_argument('--format', choices=['jpg', 'png'], default='jpg')
    p.add_argument('--quality', type=int, default=95,
                   help='JPEG quality of scenes the world leaves uncompressed')
    p.add_argument('--workers', type=int, default=os.cpu_count())
    # Training worlds other than the test's (the defaults are the world of
    # docs/default-model.md, which the test set uses).
    p.add_argument('--max-objects', type=int, default=SceneConfig.max_objects,
                   help='objects a scene draws uniformly from 0 to this')
    p.add_argument('--small-share', type=float, default=SceneConfig.small_share,
                   help='share of objects sized from 6 to 32 px')
    p.add_argument('--max-size-frac', type=float, default=SceneConfig.max_size_frac,
                   help='largest object, as a share of the shorter side')
    p.add_argument('--contact-sheet', metavar='PNG',
                   help='also write the first 9 images with their boxes drawn')
    args = p.parse_args(argv)

    os.makedirs(os.path.join(args.output, 'images'), exist_ok=True)
    os.makedirs(os.path.join(args.output, 'labels'), exist_ok=True)
    width, height = args.size
    if args.max_objects < 0 or not 0 <= args.small_share <= 1 \
            or not 0 < args.max_size_frac <= 1:
        p.error('--max-objects must be >= 0, --small-share in [0, 1], '
                '--max-size-frac in (0, 1]')
    world = {'max_objects': args.max_objects, 'small_share': args.small_share,
             'max_size_frac': args.max_size_frac}
    jobs = [(args.output, i, args.seed, width, height, args.format, args.quality,
             world) for i in range(args.count)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            counts = list(pool.map(write_one, jobs, chunksize=16))
    else:
        counts = [write_one(j) for j in jobs]
    with open(os.path.join(args.output, 'data.yaml'), 'w', encoding='utf-8') as f:
        f.write(f'# synthetic shapes, tools/make_dataset.py --seed {args.seed} '
                f'--count {args.count} --size {width},{height}'
                + ''.join(f' --{k.replace("_", "-")} {v}' for k, v in world.items()
                          if v != getattr(SceneConfig, k))
                + '\n')
        f.write(f'nc: {len(CLASS_NAMES)}\nnames: {json.dumps(list(CLASS_NAMES))}\n')

    if args.contact_sheet:
        shown = []
        for i in range(min(9, args.count)):
            img = Image.open(os.path.join(args.output, 'images',
                                          f'{i:06d}.{args.format}')).convert('RGB')
            labels = read_yolo_labels(os.path.join(args.output, 'labels', f'{i:06d}.txt'),
                                      img.width, img.height)
            shown.append((img, labels))
        contact_sheet(shown).save(args.contact_sheet)
    print(json.dumps({'output': args.output, 'images': args.count,
                      'objects': sum(counts), 'seed': args.seed}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
