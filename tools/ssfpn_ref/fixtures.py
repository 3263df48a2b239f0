"""Helpers for golden fixtures: synthetic inputs, NMS results as JSON, and
the margins that say how robust an NMS result is to rounding."""

import torch
import torchvision

from .nms import candidates, non_max_suppression


def synthetic_images(n, h, w, seed):
    """n RGB images in [0, 1] with structure (gradient, rectangles, noise),
    so features are not just white noise."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty((n, 3, h, w), dtype=torch.float64)
    ys = torch.linspace(0, 1, h, dtype=torch.float64).view(h, 1)
    xs = torch.linspace(0, 1, w, dtype=torch.float64).view(1, w)
    for i in range(n):
        c = torch.rand((3, 3), generator=g, dtype=torch.float64)
        img = c[:, 0].view(3, 1, 1) * 0.5 + c[:, 1].view(3, 1, 1) * ys * 0.3 \
            + c[:, 2].view(3, 1, 1) * xs * 0.2
        for _ in range(6):
            y0 = int(torch.randint(0, h - 4, (1,), generator=g))
            x0 = int(torch.randint(0, w - 4, (1,), generator=g))
            y1 = int(torch.randint(y0 + 4, h + 1, (1,), generator=g))
            x1 = int(torch.randint(x0 + 4, w + 1, (1,), generator=g))
            img[:, y0:y1, x0:x1] = torch.rand((3, 1, 1), generator=g,
                                               dtype=torch.float64)
        img += 0.05 * torch.randn((3, h, w), generator=g, dtype=torch.float64)
        out[i] = img.clamp(0, 1)
    return out.to(torch.float32)


def candidate_count(output, conf):
    return sum(int(candidates(x, conf).shape[0]) for x in output)


def nms_json(output, names, conf, iou, agnostic, max_det):
    """NMS of output (N, A, 5+nc) as the object stored in <case>.nms.json."""
    n, _, _ = output.shape
    dets = non_max_suppression(output, conf, iou, agnostic=agnostic,
                               max_det=max_det)
    images = []
    for i, d in enumerate(dets):
        images.append({
            'index': i,
            'candidates': int(candidates(output[i], conf).shape[0]),
            'detections': [{
                'class_id': int(r[5]),
                'label': names[int(r[5])],
                'confidence': float(r[4]),
                'box': [float(v) for v in r[:4]],
            } for r in d],
        })
    return {'conf': conf, 'iou': iou, 'agnostic': agnostic, 'max_det': max_det,
            'images': images}


def nms_margins(output, conf, iou, agnostic, box_error=0.0):
    """How far the NMS decisions are from their thresholds.

    objectness: min |obj - conf| over all rows; score: min |score - conf|
    over rows with obj > conf; iou: min |IoU - iou| over pairs of
    candidates NMS compares (same class unless agnostic); iou_slack: the
    same less how far an error of box_error pixels in each coordinate
    could move each pair's IoU, must stay >= 0;
    score_gap: min score difference over the pairs that overlap past the
    threshold (their order decides which one survives)."""
    inf = float('inf')
    m = {'objectness': inf, 'score': inf, 'iou': inf, 'iou_slack': inf,
         'score_gap': inf}
    for x in output.to(torch.float64):
        obj = x[:, 4]
        m['objectness'] = min(m['objectness'], float((obj - conf).abs().min()))
        passing = x[obj > conf]
        if passing.shape[0]:
            score = (passing[:, 5:] * passing[:, 4:5]).max(1).values
            m['score'] = min(m['score'], float((score - conf).abs().min()))
        c = candidates(x, conf)
        if c.shape[0] < 2:
            continue
        ious = torchvision.ops.box_iou(c[:, :4], c[:, :4])
        same = torch.ones_like(ious, dtype=torch.bool) if agnostic else \
            c[:, 5].view(-1, 1) == c[:, 5].view(1, -1)
        pairs = torch.triu(torch.ones_like(same), diagonal=1) & same
        if not pairs.any():
            continue
        dist = (ious - iou).abs()
        m['iou'] = min(m['iou'], float(dist[pairs].min()))
        slack = dist - _iou_sensitivity(c[:, :4], ious, box_error)
        m['iou_slack'] = min(m['iou_slack'], float(slack[pairs].min()))
        overlap = pairs & (ious > iou)
        if overlap.any():
            gaps = (c[:, 4].view(-1, 1) - c[:, 4].view(1, -1)).abs()
            m['score_gap'] = min(m['score_gap'], float(gaps[overlap].min()))
    return {k: (None if v == inf else v) for k, v in m.items()}


def _iou_sensitivity(b, ious, err):
    """A first-order bound of how much pairwise IoUs move when every
    box coordinate moves by up to err: the intersection changes by at most
    2 err (wi + hi), the union by at most 2 err (w1 + h1 + w2 + h2)."""
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    wi = (torch.minimum(b[:, None, 2], b[None, :, 2])
          - torch.maximum(b[:, None, 0], b[None, :, 0])).clamp_min(0)
    hi = (torch.minimum(b[:, None, 3], b[None, :, 3])
          - torch.maximum(b[:, None, 1], b[None, :, 1])).clamp_min(0)
    union = (w * h)[:, None] + (w * h)[None, :] - wi * hi
    perimeters = (w + h)[:, None] + (w + h)[None, :]
    return 2 * err * ((wi + hi) + ious * perimeters) / union.clamp_min(1e-12)


def margins_ok(m, conf_margin=2e-4, iou_margin=1e-3, gap_margin=1e-5):
    """Whether every NMS decision is further from its threshold than the
    given margins (and the IoUs than box errors can move them)."""
    def ok(v, lim):
        return v is None or v >= lim
    return ok(m['objectness'], conf_margin) and ok(m['score'], conf_margin) \
        and ok(m['iou'], iou_margin) and ok(m['iou_slack'], 0.0) \
        and ok(m['score_gap'], gap_margin)
