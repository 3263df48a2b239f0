"""One scene: background, clutter, shapes and distractors in a random
painting order, then labels from per-object visibility.

Visibility: every item (object or distractor) leaves an anti-aliased
coverage mask; walking the painting order backwards, an object's visible
part is its coverage times what later items left uncovered.  An object is
labelled when at least min_visible of its full area (including any part
outside the frame) is visible; its box is the tight box of the pixels
that are at least half visible.
"""

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from . import shapes
from .background import add_clutter, background, random_colour
from .degrade import degrade
from .raster import coverage, paint


@dataclass
class SceneConfig:
    height: int = 640
    width: int = 640
    max_objects: int = 30
    min_size: float = 6.0           # pixels, geometric mean of width and height
    max_size_frac: float = 0.6      # of the shorter image side
    small_share: float = 0.5        # share of objects drawn from [min_size, 32]
    min_visible: float = 0.4        # of the object's area
    max_distractors: int = 8
    max_clutter: int = 40
    min_contrast: float = 0.2       # RGB distance from the local background


def _log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _similar_colour(rng, colour):
    h, s, v = colorsys.rgb_to_hsv(*colour)
    h = (h + rng.normal(0, 0.04)) % 1.0
    s = float(np.clip(s + rng.normal(0, 0.1), 0, 1))
    v = float(np.clip(v + rng.normal(0, 0.1), 0.03, 1))
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _contrasting_colour(rng, canvas, patch, min_contrast):
    """A random colour that stands out from the canvas under the patch;
    the most distinct of a few tries when none reaches min_contrast."""
    y0, x0, a = patch
    region = canvas[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
    weight = a.sum()
    local = (region * a[..., None]).sum((0, 1)) / weight if weight > 0 \
        else region.mean((0, 1))
    best, best_d = None, -1.0
    for _ in range(20):
        c = random_colour(rng)
        d = float(np.linalg.norm(c - local))
        if d >= min_contrast:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _object_size(rng, cfg, aspect):
    longest = 0.6 * min(cfg.height, cfg.width) / math.sqrt(max(aspect, 1 / aspect))
    longest = max(longest * cfg.max_size_frac / 0.6, cfg.min_size)
    if rng.uniform() < cfg.small_share:
        return _log_uniform(rng, cfg.min_size, min(32.0, longest))
    return _log_uniform(rng, cfg.min_size, longest)


def _plan_items(rng, cfg):
    """The objects and distractors of a scene, in painting order."""
    h, w = cfg.height, cfg.width
    items, budget = [], 0.9 * h * w
    for _ in range(int(rng.integers(0, cfg.max_objects + 1))):
        cls = int(rng.integers(len(shapes.CLASS_NAMES)))
        aspect = _log_uniform(rng, 0.8, 1.25)
        size = _object_size(rng, cfg, aspect)
        if size * size > budget:  # keep the scene from being all overlap
            size = _log_uniform(rng, cfg.min_size, 32.0)
        budget -= size * size
        angle = 0.0 if cls == shapes.CIRCLE else rng.uniform(0, 2 * math.pi)
        # Centres may lie a little outside the frame: objects cut by the edge.
        centre = (rng.uniform(-0.25 * size, w + 0.25 * size),
                  rng.uniform(-0.25 * size, h + 0.25 * size))
        unit = shapes.unit_outline(cls, rng)
        items.append({'class': cls,
                      'points': shapes.place(unit, centre, size, aspect, angle)})
    n_distract = int(rng.integers(0, cfg.max_distractors + 1)) \
        if rng.uniform() < 0.7 else 0
    for _ in range(n_distract):
        unit = shapes.blob(rng) if rng.uniform() < 0.5 else shapes.irregular_polygon(rng)
        size = _log_uniform(rng, 8.0, 0.4 * min(h, w))
        centre = rng.uniform(0, 1, 2) * (w, h)
        points = shapes.place(unit, centre, size, _log_uniform(rng, 0.5, 2.0),
                              rng.uniform(0, 2 * math.pi))
        items.insert(int(rng.integers(len(items) + 1)),
                     {'class': None, 'points': points})
    return items


def _label_boxes(items, h, w, min_visible):
    covered = np.zeros((h, w), dtype=np.float32)
    labels = []
    for item in reversed(items):
        patch = item['patch']
        if patch is None:
            continue
        y0, x0, a = patch
        under = covered[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
        if item['class'] is not None:
            visible = a * (1 - under)
            area = shapes.polygon_area(item['points'])
            rows = np.nonzero((visible >= 0.5).any(1))[0]
            cols = np.nonzero((visible >= 0.5).any(0))[0]
            if area > 0 and visible.sum() >= min_visible * area and rows.size:
                labels.append((item['class'],
                               float(x0 + cols[0]), float(y0 + rows[0]),
                               float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1)))
        under[...] = 1 - (1 - under) * (1 - a)
    labels.reverse()
    return labels


def render_scene(seed, cfg=None):
    """Returns (uint8 RGB image (H, W, 3), labels [(class, x1, y1, x2, y2)]
    in pixels, JPEG quality or None), all determined by seed (an int or a
    sequence of ints, as numpy's SeedSequence takes)."""
    cfg = cfg or SceneConfig()
    rng = np.random.default_rng(seed)
    h, w = cfg.height, cfg.width
    canvas = background(rng, h, w)
    if rng.uniform() < 0.5:
        add_clutter(canvas, rng, int(rng.integers(1, cfg.max_clutter + 1)))
    items = _plan_items(rng, cfg)
    object_colours = []
    for item in items:
        item['patch'] = coverage(item['points'], h, w)
        if item['patch'] is None:
            continue
        if item['class'] is None and object_colours and rng.uniform() < 0.7:
            colour = _similar_colour(rng, object_colours[int(rng.integers(len(object_colours)))])
        else:
            colour = _contrasting_colour(rng, canvas, item['patch'], cfg.min_contrast)
        if item['class'] is not None:
            object_colours.append(colour)
        paint(canvas, item['patch'], colour)
    labels = _label_boxes(items, h, w, cfg.min_visible)
    image, quality = degrade(canvas, rng)
    return image, labels, quality
