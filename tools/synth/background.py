"""Backgrounds that carry no objects: flat, gradients, noise at several
scales, blurred blobs; and clutter of thin lines and curves over them."""

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ('flat', 'linear', 'radial', 'noise', 'blobs')


def random_colour(rng):
    """Any hue, saturation and brightness, as float RGB in [0, 1]."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 1)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _to_float(img):
    return np.asarray(img, dtype=np.float32) / 255.0


def _to_pil(canvas):
    return Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8))


def _linear(rng, h, w):
    a, b = random_colour(rng), random_colour(rng)
    t = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = x * math.cos(t) + y * math.sin(t)
    d = (d - d.min()) / max(float(d.max() - d.min()), 1.0)
    return a + (b - a) * d[..., None]


def _radial(rng, h, w):
    a, b = random_colour(rng), random_colour(rng)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    radius = rng.uniform(0.3, 1.2) * max(h, w)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.clip(np.hypot(y - cy, x - cx) / radius, 0, 1)
    return a + (b - a) * d[..., None]


def _noise(rng, h, w):
    """Value noise: coarse random grids upsampled smoothly, summed over a
    few scales around a base colour."""
    canvas = np.broadcast_to(random_colour(rng), (h, w, 3)).copy()
    for cell in rng.choice([4, 8, 16, 32, 64, 128], size=int(rng.integers(1, 4)),
                           replace=False):
        gh, gw = max(h // cell, 1) + 1, max(w // cell, 1) + 1
        grid = rng.uniform(0, 255, (gh, gw, 3)).astype(np.uint8)
        up = Image.fromarray(grid).resize((w, h), Image.BICUBIC)
        canvas += (_to_float(up) - 0.5) * rng.uniform(0.1, 0.6)
    return canvas


def _blobs(rng, h, w):
    img = _to_pil(np.broadcast_to(random_colour(rng), (h, w, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 30))):
        rx, ry = rng.uniform(0.03, 0.3, 2) * (w, h)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        colour = tuple(int(c * 255) for c in random_colour(rng))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)
    radius = rng.uniform(0.02, 0.08) * min(h, w)
    return _to_float(img.filter(ImageFilter.GaussianBlur(radius)))


def background(rng, h, w):
    """(h, w, 3) float32 in [0, 1]: one kind of background, sometimes with
    fine grain."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == 'flat':
        canvas = np.broadcast_to(random_colour(rng), (h, w, 3)).copy()
    else:
        canvas = {'linear': _linear, 'radial': _radial, 'noise': _noise,
                  'blobs': _blobs}[kind](rng, h, w)
    if rng.uniform() < 0.3:
        canvas += rng.normal(0, rng.uniform(0.01, 0.06), (h, w, 3)).astype(np.float32)
    return np.clip(canvas, 0, 1).astype(np.float32)


def _bezier(p0, p1, p2, p3, steps=24):
    t = np.linspace(0, 1, steps)[:, None]
    return ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 +
            3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)


def add_clutter(canvas, rng, count):
    """Draw count thin straight lines and cubic curves, 1-3 px wide, drawn
    at twice the resolution and box-filtered down for anti-aliasing."""
    h, w = canvas.shape[:2]
    ss = 2
    colour_layer = Image.new('RGB', (w * ss, h * ss), (0, 0, 0))
    mask_layer = Image.new('L', (w * ss, h * ss), 0)
    draw_c, draw_m = ImageDraw.Draw(colour_layer), ImageDraw.Draw(mask_layer)
    for _ in range(count):
        width = int(rng.integers(1, 4)) * ss
        colour = tuple(int(c * 255) for c in random_colour(rng))
        if rng.uniform() < 0.5:
            pts = rng.uniform(-0.1, 1.1, (2, 2)) * (w * ss, h * ss)
        else:
            start = rng.uniform(0, 1, 2) * (w, h)
            span = rng.uniform(0.1, 0.6) * min(h, w)
            ctrl = [start + rng.normal(0, span, 2) for _ in range(3)]
            pts = _bezier(start, *ctrl) * ss
        xy = [tuple(p) for p in pts.tolist()]
        draw_c.line(xy, fill=colour, width=width, joint='curve')
        draw_m.line(xy, fill=255, width=width, joint='curve')
    colour = _to_float(colour_layer.resize((w, h), Image.BOX))
    alpha = _to_float(mask_layer.resize((w, h), Image.BOX))[..., None]
    # The colour layer is drawn over black, so it is already premultiplied.
    canvas *= 1 - alpha
    canvas += colour
    return canvas
