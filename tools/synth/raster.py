"""Anti-aliased coverage of a polygon: PIL fills it at a supersampled
resolution and box-filtering brings it back, so each pixel holds the
fraction of its area the polygon covers (to 1/SUPERSAMPLE^2)."""

import math

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4


def coverage(points, height, width, supersample=SUPERSAMPLE):
    """(y0, x0, alpha): alpha is float32 coverage of the polygon over the
    part of its bounding box inside a height x width image, placed at row
    y0, column x0; None when none of it is inside."""
    x0 = max(int(math.floor(points[:, 0].min())), 0)
    y0 = max(int(math.floor(points[:, 1].min())), 0)
    x1 = min(int(math.ceil(points[:, 0].max())), width)
    y1 = min(int(math.ceil(points[:, 1].max())), height)
    if x1 <= x0 or y1 <= y0:
        return None
    ss = supersample
    mask = Image.new('L', ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    # PIL puts integer coordinates on pixel centres; shift by half a
    # supersampled pixel so image coordinates mean pixel edges.
    local = (points - [x0, y0]) * ss - 0.5
    ImageDraw.Draw(mask).polygon([tuple(p) for p in local.tolist()], fill=255)
    a = np.asarray(mask, dtype=np.float32)
    a = a.reshape(y1 - y0, ss, x1 - x0, ss).mean((1, 3)) / 255.0
    return y0, x0, a


def paint(canvas, patch, colour):
    """Composite a solid colour over canvas (H, W, 3 float) through a
    coverage patch from coverage()."""
    y0, x0, a = patch
    h, w = a.shape
    region = canvas[y0:y0 + h, x0:x0 + w]
    region += (np.asarray(colour, dtype=np.float32) - region) * a[..., None]
