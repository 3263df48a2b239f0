"""Training of the reference model (tools/ssfpn_ref) on YOLO-format data:
YOLOv5's loss, anchor matching, optimiser recipe, EMA and augmentation,
written for ssfpn-gst.  Entry point: tools/train.py."""

from .loss import YoloLoss, bbox_ciou
from .data import YoloDataset, collate
from .optim import ModelEMA, build_optimizer, cosine_factor, warmup

__all__ = ['YoloLoss', 'bbox_ciou', 'YoloDataset', 'collate', 'ModelEMA',
           'build_optimizer', 'cosine_factor', 'warmup']
