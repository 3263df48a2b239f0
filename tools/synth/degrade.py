"""Camera-like degradations applied to a finished scene: brightness,
contrast, blur, sensor noise; JPEG quality is chosen here and applied by
whoever encodes the image."""

import numpy as np
from PIL import Image, ImageFilter


def degrade(canvas, rng):
    """canvas: (H, W, 3) float32 in [0, 1].  Returns (uint8 image, JPEG
    quality to encode with, or None for lossless)."""
    contrast = rng.uniform(0.6, 1.4)
    brightness = rng.uniform(-0.15, 0.15)
    mean = canvas.mean((0, 1), keepdims=True)
    canvas = (canvas - mean) * contrast + mean + brightness
    if rng.uniform() < 0.25:
        canvas = canvas + rng.normal(0, rng.uniform(0.005, 0.04),
                                     canvas.shape).astype(np.float32)
    img = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.uniform() < 0.3:
        pil = Image.fromarray(img).filter(
            ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5)))
        img = np.asarray(pil)
    quality = int(rng.integers(30, 96)) if rng.uniform() < 0.5 else None
    return img, quality
