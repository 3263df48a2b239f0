"""YOLOv5 v6.0 non_max_suppression with torchvision NMS: a box with its best
class (detect.py) or once for every class above the threshold (multi_label,
as val.py)."""

import torch
import torchvision

MAX_WH = 4096  # v6.0's class offset: boxes of different classes never overlap
MAX_NMS = 30000


def xywh2xyxy(x):
    y = x.clone()
    y[:, 0] = x[:, 0] - x[:, 2] / 2
    y[:, 1] = x[:, 1] - x[:, 3] / 2
    y[:, 2] = x[:, 0] + x[:, 2] / 2
    y[:, 3] = x[:, 1] + x[:, 3] / 2
    return y


def candidates(x, conf_thres, multi_label=False):
    """Rows of one image's (A, 5+nc) output that reach NMS, as (n, 6)
    [x1, y1, x2, y2, score, class], in output row order (and class order
    within a row)."""
    x = x[x[:, 4] > conf_thres].clone()
    if not x.shape[0]:
        return x.new_zeros((0, 6))
    x[:, 5:] *= x[:, 4:5]
    box = xywh2xyxy(x[:, :4])
    if multi_label:
        i, j = (x[:, 5:] > conf_thres).nonzero(as_tuple=False).T
        return torch.cat((box[i], x[i, j + 5, None], j[:, None].to(x.dtype)), 1)
    conf, j = x[:, 5:].max(1, keepdim=True)
    return torch.cat((box, conf, j.to(x.dtype)), 1)[conf.view(-1) > conf_thres]


def non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.45,
                        classes=None, agnostic=False, max_det=300,
                        multi_label=False):
    """prediction: (N, A, 5+nc).  Returns per image an (n, 6) tensor
    [x1, y1, x2, y2, score, class], highest score first."""
    output = []
    for x in prediction:
        x = candidates(x, conf_thres, multi_label)
        if classes is not None:
            x = x[(x[:, 5:6] == torch.tensor(classes, dtype=x.dtype)).any(1)]
        if x.shape[0] > MAX_NMS:
            x = x[x[:, 4].argsort(descending=True)[:MAX_NMS]]
        if not x.shape[0]:
            output.append(x)
            continue
        c = x[:, 5:6] * (0 if agnostic else MAX_WH)
        keep = torchvision.ops.nms(x[:, :4] + c, x[:, 4], iou_thres)
        output.append(x[keep[:max_det]])
    return output
