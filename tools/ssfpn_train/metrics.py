"""A quick COCO-style AP for monitoring training: AP@[.5:.95] and AP50
over all classes, 101-point interpolated precision, greedy matching by
confidence.  The figures to report come from `ssfpn eval` in the engine;
this only tells the trainer whether it is improving."""

import numpy as np
import torchvision

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def match_image(pred, truth):
    """pred: (m, 6) [x1, y1, x2, y2, conf, class]; truth: (n, 5) [class,
    x1, y1, x2, y2].  Returns (m, 10) bool: true positive per IoU
    threshold, each ground-truth box matched at most once."""
    correct = np.zeros((len(pred), len(IOU_THRESHOLDS)), bool)
    if not len(pred) or not len(truth):
        return correct
    iou = torchvision.ops.box_iou(truth[:, 1:], pred[:, :4]).numpy()
    same = truth[:, 0:1].numpy() == pred[:, 5].numpy()[None]
    order = np.argsort(-pred[:, 4].numpy(), kind='stable')
    for t, thr in enumerate(IOU_THRESHOLDS):
        used = np.zeros(len(truth), bool)
        for p in order:
            cand = np.where(same[:, p] & ~used & (iou[:, p] >= thr))[0]
            if cand.size:
                best = cand[np.argmax(iou[cand, p])]
                used[best] = True
                correct[p, t] = True
    return correct


def average_precision(correct, conf, pred_cls, truth_cls, nc):
    """Mean over classes present in the truth of 101-point AP; returns
    (AP per IoU threshold averaged over classes)."""
    ap = []
    recall_points = np.linspace(0, 1, 101)
    for c in range(nc):
        n_truth = int((truth_cls == c).sum())
        if n_truth == 0:
            continue
        sel = pred_cls == c
        order = np.argsort(-conf[sel], kind='stable')
        tp = correct[sel][order].astype(np.float64)
        row = []
        for t in range(len(IOU_THRESHOLDS)):
            ctp = np.cumsum(tp[:, t])
            recall = ctp / n_truth
            precision = ctp / np.arange(1, len(ctp) + 1)
            precision = np.maximum.accumulate(precision[::-1])[::-1] if len(ctp) else precision
            idx = np.searchsorted(recall, recall_points, side='left')
            q = np.zeros(len(recall_points))
            valid = idx < len(precision)
            q[valid] = precision[idx[valid]]
            row.append(q.mean())
        ap.append(row)
    return np.array(ap).mean(0) if ap else np.zeros(len(IOU_THRESHOLDS))
