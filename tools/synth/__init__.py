"""The synthetic world of the default model: scenes of six filled shapes.

Six classes (CLASS_NAMES, in label order) drawn in solid colours over
varied backgrounds with distractors that are not objects; each scene comes
with YOLO labels of the shapes that stay at least 40% visible.  Everything
is a pure function of a seed, so a dataset is reproducible from its seed.
"""

from .shapes import CLASS_NAMES
from .scene import SceneConfig, render_scene

__all__ = ['CLASS_NAMES', 'SceneConfig', 'render_scene']
