"""Outlines of the six classes and of the distractors, as polygons.

Every outline is built in a unit frame (its unrotated bounding box spans
[-0.5, 0.5] on both axes), then stretched to the requested aspect ratio,
scaled, rotated and moved.  A circle is a many-sided polygon: at the sizes
drawn (<= 0.6 of the image side) 96 sides are indistinguishable from a
true ellipse after anti-aliasing.
"""

import math

import numpy as np

CLASS_NAMES = ('circle', 'square', 'triangle', 'star', 'hexagon', 'cross')
CIRCLE, SQUARE, TRIANGLE, STAR, HEXAGON, CROSS = range(6)


def _fit_unit_box(points):
    """Centre points on their bounding box and scale it to span 1 x 1."""
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2) / (hi - lo)


def _regular(n, phase=0.0):
    t = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], 1)


def unit_outline(class_id, rng):
    """The outline of class_id in the unit frame; rng varies the proportions
    a class allows (the star's inner radius, the cross's arm width)."""
    if class_id == CIRCLE:
        return _fit_unit_box(_regular(96))
    if class_id == SQUARE:
        return _fit_unit_box(_regular(4, math.pi / 4))
    if class_id == TRIANGLE:
        return _fit_unit_box(_regular(3, -math.pi / 2))
    if class_id == STAR:
        inner = rng.uniform(0.38, 0.5)
        radii = np.tile([1.0, inner], 5)[:, None]
        return _fit_unit_box(_regular(10, -math.pi / 2) * radii)
    if class_id == HEXAGON:
        return _fit_unit_box(_regular(6))
    if class_id == CROSS:
        h = rng.uniform(0.15, 0.22)  # half the arm width, unit frame
        return np.array([[-h, -0.5], [h, -0.5], [h, -h], [0.5, -h], [0.5, h],
                         [h, h], [h, 0.5], [-h, 0.5], [-h, h], [-0.5, h],
                         [-0.5, -h], [-h, -h]])
    raise ValueError(f'unknown class id {class_id}')


def irregular_polygon(rng):
    """A convex-or-not polygon of 5-9 corners with strongly unequal radii
    and angles, so it never passes for a regular shape."""
    n = int(rng.integers(5, 10))
    gaps = rng.uniform(0.4, 1.6, n)
    t = np.cumsum(gaps / gaps.sum() * 2 * math.pi) + rng.uniform(0, 2 * math.pi)
    r = rng.uniform(0.35, 1.0, n)
    r[int(rng.integers(n))] = 1.0
    r[int(rng.integers(n))] = 0.35  # at least one deep dent
    return _fit_unit_box(np.stack([np.cos(t) * r, np.sin(t) * r], 1))


def blob(rng):
    """A smooth closed blob: a radius varying with angle as a few random
    harmonics, strong enough that the blob is visibly not an ellipse."""
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0.08, 0.22) / (k - 1) ** 0.5 * \
            np.cos(k * t + rng.uniform(0, 2 * math.pi))
    r = np.clip(r, 0.3, None)
    return _fit_unit_box(np.stack([np.cos(t) * r, np.sin(t) * r], 1))


def place(unit, centre, size, aspect, angle):
    """Image coordinates of a unit outline: width size*sqrt(aspect), height
    size/sqrt(aspect), rotated by angle (radians) about centre."""
    stretch = np.array([size * math.sqrt(aspect), size / math.sqrt(aspect)])
    p = unit * stretch
    c, s = math.cos(angle), math.sin(angle)
    p = p @ np.array([[c, s], [-s, c]])
    return p + np.asarray(centre, dtype=np.float64)


def polygon_area(points):
    """Shoelace area of a simple polygon (every outline here is simple)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
