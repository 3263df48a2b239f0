"""YOLO-format datasets for training: letterbox, 4-image mosaic with random
scale and translation, HSV colour jitter and flips.

A sample is (uint8 tensor (3, S, S), labels (n, 6) float32 rows
[0, class, cx, cy, w, h] normalised to S, HSV gains (3,)); collate() writes
the batch index into column 0, as YOLOv5's loss expects.  The HSV jitter
itself is applied to the batch on the device (apply_hsv_gains).
"""

import os

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
PAD_VALUE = 114  # YOLOv5's letterbox grey


def list_dataset(root):
    """(image paths, label paths) of root/images and root/labels."""
    folder = os.path.join(root, 'images')
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'{root}: no images/ folder (expected a YOLO-format dataset)')
    images = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                    if f.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise FileNotFoundError(f'{folder}: no images')
    labels = [os.path.join(root, 'labels', os.path.splitext(os.path.basename(p))[0] + '.txt')
              for p in images]
    return images, labels


def read_labels(path):
    """(n, 5) float32 [class, cx, cy, w, h]; an absent file is an empty image."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return np.zeros((0, 5), np.float32)
    rows = np.loadtxt(path, dtype=np.float32, ndmin=2)
    if rows.shape[1] != 5:
        raise ValueError(f'{path}: expected 5 numbers a line, found {rows.shape[1]}')
    return rows


def xywhn_to_xyxy(rows, w, h, dx=0.0, dy=0.0):
    out = np.empty((len(rows), 4), np.float32)
    out[:, 0] = (rows[:, 1] - rows[:, 3] / 2) * w + dx
    out[:, 1] = (rows[:, 2] - rows[:, 4] / 2) * h + dy
    out[:, 2] = (rows[:, 1] + rows[:, 3] / 2) * w + dx
    out[:, 3] = (rows[:, 2] + rows[:, 4] / 2) * h + dy
    return out


def keep_boxes(before, after, min_side=2.0, min_area_kept=0.4):
    """Boxes that survive an augmentation: at least min_side pixels wide and
    high, and at least min_area_kept of their (scaled) area left after
    clipping, the world's own 40% visibility rule."""
    w, h = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    area_before = np.maximum((before[:, 2] - before[:, 0]) * (before[:, 3] - before[:, 1]), 1e-9)
    return (w >= min_side) & (h >= min_side) & (w * h / area_before >= min_area_kept)


def hsv_gains(rng, hgain, sgain, vgain):
    """YOLOv5's random HSV gains: each 1 + U(-gain, gain)."""
    return (rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1).astype(np.float32)


def apply_hsv_gains(images, gains):
    """YOLOv5's HSV augmentation on a float batch (B, 3, H, W) in [0, 1]
    with per-image gains (B, 3): hue multiplied (wrapping), saturation and
    value multiplied and clipped.  Done in torch on the training device,
    where a batch costs next to nothing, rather than per image in workers."""
    r, g, b = images[:, 0], images[:, 1], images[:, 2]
    maxc, _ = images.max(1)
    minc, _ = images.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, ((g - b) / safe) % 6,
                      torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)),
                      torch.zeros_like(maxc))
    gains = gains.to(images.dtype).view(-1, 3, 1, 1)
    hue = (hue * gains[:, 0]) % 1.0
    sat = (sat * gains[:, 1]).clamp(0, 1)
    val = (maxc * gains[:, 2]).clamp(0, 1)
    out = []
    for n in (5, 3, 1):  # r, g, b of the piecewise-linear HSV -> RGB map
        k = (n + hue * 6) % 6
        out.append(val - val * sat * torch.clamp(torch.min(k, 4 - k), 0, 1))
    return torch.stack(out, 1)


class YoloDataset(torch.utils.data.Dataset):
    def __init__(self, root, imgsz, hyp=None, augment=False, cache=False):
        self.images, self.label_paths = list_dataset(root)
        self.labels = [read_labels(p) for p in self.label_paths]
        self.imgsz = imgsz
        self.hyp = hyp or {}
        self.augment = augment
        self.cache = None
        if cache:  # filled here, in the parent, so forked workers share it
            self.cache = [None] * len(self.images)
            for i in range(len(self.images)):
                self.load_resized(i)
        self.epoch_seed = 0  # set per epoch: augmentation is a function of (epoch, index)

    def check_classes(self, nc):
        """Every class id in 0..nc-1, as YOLOv5 asserts when it loads the
        labels: one beyond would fail deep inside the loss."""
        for path, rows in zip(self.label_paths, self.labels):
            bad = rows[(rows[:, 0] < 0) | (rows[:, 0] >= nc) | (rows[:, 0] != np.floor(rows[:, 0]))]
            if len(bad):
                raise ValueError(f'{path}: class {bad[0, 0]:g} is not one of the '
                                 f'model\'s {nc} classes (0 to {nc - 1})')

    def __len__(self):
        return len(self.images)

    def load_resized(self, i):
        """Image i as uint8 (h, w, 3), its longer side resized to imgsz."""
        if self.cache is not None and self.cache[i] is not None:
            return self.cache[i]
        img = Image.open(self.images[i]).convert('RGB')
        r = self.imgsz / max(img.size)
        if r != 1:
            img = img.resize((max(round(img.width * r), 1), max(round(img.height * r), 1)),
                             Image.BILINEAR if r > 1 else Image.BOX)
        a = np.asarray(img)
        if self.cache is not None:
            self.cache[i] = a
        return a

    def letterbox(self, i):
        img = self.load_resized(i)
        h, w = img.shape[:2]
        s = self.imgsz
        top, left = (s - h) // 2, (s - w) // 2
        out = np.full((s, s, 3), PAD_VALUE, np.uint8)
        out[top:top + h, left:left + w] = img
        boxes = xywhn_to_xyxy(self.labels[i], w, h, left, top)
        return out, self.labels[i][:, 0], boxes

    def mosaic(self, i, rng):
        """Four images around a random centre of a 2S x 2S canvas, then a
        random scale (1 +- hyp scale) and translation (+- hyp translate)
        sampled back to S x S, as YOLOv5's load_mosaic + random_perspective
        without rotation or shear."""
        s = self.imgsz
        canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, np.uint8)
        xc, yc = (int(v) for v in rng.uniform(s / 2, 3 * s / 2, 2))
        indices = [i] + [int(j) for j in rng.integers(0, len(self), 3)]
        classes, boxes = [], []
        for k, j in enumerate(indices):
            img = self.load_resized(j)
            h, w = img.shape[:2]
            if k == 0:    # top left of the centre
                x1, y1, x2, y2 = max(xc - w, 0), max(yc - h, 0), xc, yc
                sx1, sy1 = w - (x2 - x1), h - (y2 - y1)
            elif k == 1:  # top right
                x1, y1, x2, y2 = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
                sx1, sy1 = 0, h - (y2 - y1)
            elif k == 2:  # bottom left
                x1, y1, x2, y2 = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
                sx1, sy1 = w - (x2 - x1), 0
            else:         # bottom right
                x1, y1, x2, y2 = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
                sx1, sy1 = 0, 0
            canvas[y1:y2, x1:x2] = img[sy1:sy1 + (y2 - y1), sx1:sx1 + (x2 - x1)]
            b = xywhn_to_xyxy(self.labels[j], w, h, x1 - sx1, y1 - sy1)
            # Clip to this image's tile: the other tiles hide the rest.
            clipped = b.copy()
            clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(x1, x2)
            clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(y1, y2)
            keep = keep_boxes(b, clipped)
            classes.append(self.labels[j][keep, 0])
            boxes.append(clipped[keep])
        classes, boxes = np.concatenate(classes), np.concatenate(boxes)

        scale = rng.uniform(1 - self.hyp.get('scale', 0.5), 1 + self.hyp.get('scale', 0.5))
        t = self.hyp.get('translate', 0.1)
        tx, ty = rng.uniform(0.5 - t, 0.5 + t, 2) * s
        # Output pixel u samples canvas (u - tx) / scale + s: the canvas
        # region in view is resized straight into its place in the output.
        out = Image.new('RGB', (s, s), (PAD_VALUE,) * 3)
        u0, v0 = max(tx - s * scale, 0.0), max(ty - s * scale, 0.0)
        u1, v1 = min(tx + s * scale, float(s)), min(ty + s * scale, float(s))
        u0, v0, u1, v1 = round(u0), round(v0), round(u1), round(v1)
        if u1 > u0 and v1 > v0:
            box = ((u0 - tx) / scale + s, (v0 - ty) / scale + s,
                   (u1 - tx) / scale + s, (v1 - ty) / scale + s)
            box = (max(box[0], 0), max(box[1], 0), min(box[2], 2 * s), min(box[3], 2 * s))
            view = Image.fromarray(canvas).resize((u1 - u0, v1 - v0), Image.BILINEAR, box=box)
            out.paste(view, (u0, v0))
        moved = (boxes - [s, s, s, s]) * scale + [tx, ty, tx, ty]
        clipped = moved.clip(0, s)
        keep = keep_boxes(moved, clipped)
        return np.asarray(out), classes[keep], clipped[keep]

    def __getitem__(self, i):
        rng = np.random.default_rng([self.epoch_seed, i])
        if self.augment and rng.uniform() < self.hyp.get('mosaic', 1.0):
            img, classes, boxes = self.mosaic(i, rng)
        else:
            img, classes, boxes = self.letterbox(i)
        s = self.imgsz
        gains = np.ones(3, np.float32)
        if self.augment:
            gains = hsv_gains(rng, self.hyp.get('hsv_h', 0.015),
                              self.hyp.get('hsv_s', 0.7), self.hyp.get('hsv_v', 0.4))
            if rng.uniform() < self.hyp.get('fliplr', 0.5):
                img = img[:, ::-1]
                boxes = np.stack([s - boxes[:, 2], boxes[:, 1], s - boxes[:, 0], boxes[:, 3]], 1)
            if rng.uniform() < self.hyp.get('flipud', 0.5):
                img = img[::-1]
                boxes = np.stack([boxes[:, 0], s - boxes[:, 3], boxes[:, 2], s - boxes[:, 1]], 1)
        labels = np.zeros((len(classes), 6), np.float32)
        if len(classes):
            labels[:, 1] = classes
            labels[:, 2] = (boxes[:, 0] + boxes[:, 2]) / 2 / s
            labels[:, 3] = (boxes[:, 1] + boxes[:, 3]) / 2 / s
            labels[:, 4] = (boxes[:, 2] - boxes[:, 0]) / s
            labels[:, 5] = (boxes[:, 3] - boxes[:, 1]) / s
        img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return img, torch.from_numpy(labels), torch.from_numpy(gains)


def collate(batch):
    """(uint8 images (B, 3, S, S), labels (n, 6), HSV gains (B, 3))."""
    images, labels, gains = zip(*batch)
    for k, lab in enumerate(labels):
        lab[:, 0] = k
    return torch.stack(images, 0), torch.cat(labels, 0), torch.stack(gains, 0)
