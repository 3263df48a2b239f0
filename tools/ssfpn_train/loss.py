"""YOLOv5's training loss (utils/loss.py of v6.0, written afresh).

Box: 1 - CIoU between the decoded prediction and the target box, both in
grid units.  Objectness: BCE against the prediction's IoU with its target
(gradient ratio gr = 1.0, clamped at 0), each level weighted by balance
[4.0, 1.0, 0.4].  Classes: BCE against one-hot targets.  Matching
(build_targets): a target goes to every anchor of a level whose width and
height ratios are within anchor_t, in its own cell and in the two
neighbouring cells whose centres are nearest (offset g = 0.5), so up to
three cells per anchor per level.
"""

import math

import torch
import torch.nn as nn


def bbox_ciou(box1, box2, eps=1e-7):
    """CIoU of matching rows of two (n, 4) xywh tensors."""
    b1x1, b1x2 = box1[:, 0] - box1[:, 2] / 2, box1[:, 0] + box1[:, 2] / 2
    b1y1, b1y2 = box1[:, 1] - box1[:, 3] / 2, box1[:, 1] + box1[:, 3] / 2
    b2x1, b2x2 = box2[:, 0] - box2[:, 2] / 2, box2[:, 0] + box2[:, 2] / 2
    b2y1, b2y2 = box2[:, 1] - box2[:, 3] / 2, box2[:, 1] + box2[:, 3] / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
            (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    w1, h1 = box1[:, 2], box1[:, 3] + eps
    w2, h2 = box2[:, 2], box2[:, 3] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)  # enclosing box
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((box2[:, 0] - box1[:, 0]) ** 2 + (box2[:, 1] - box1[:, 1]) ** 2)
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class YoloLoss:
    def __init__(self, detect, hyp):
        """detect: the model's Detect layer (anchors in grid units, as the
        state_dict stores them); hyp: box, obj, cls gains already scaled
        for the level count, image size and class count; anchor_t."""
        self.detect = detect
        self.hyp = hyp
        self.na, self.nl, self.nc = detect.na, detect.nl, detect.nc
        self.balance = {3: [4.0, 1.0, 0.4]}.get(self.nl, [4.0, 1.0, 0.25, 0.06, 0.02])
        self.gr = 1.0
        self.bce = nn.BCEWithLogitsLoss()

    def __call__(self, preds, targets):
        """preds: per level (bs, na, ny, nx, 5 + nc) raw outputs; targets:
        (n, 6) [image, class, cx, cy, w, h] normalised.  Returns (loss
        scaled by batch size, detached [box, obj, cls])."""
        device = targets.device
        lbox = torch.zeros(1, device=device)
        lobj = torch.zeros(1, device=device)
        lcls = torch.zeros(1, device=device)
        tcls, tbox, indices, anchors = self.build_targets(preds, targets)
        for i, pi in enumerate(preds):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype, device=device)
            n = b.shape[0]
            if n:
                ps = pi[b, a, gj, gi].float()
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[i]
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox[i])
                lbox += (1.0 - iou).mean()
                score = iou.detach().clamp(0).to(tobj.dtype)
                tobj[b, a, gj, gi] = (1.0 - self.gr) + self.gr * score
                if self.nc > 1:
                    t = torch.zeros_like(ps[:, 5:])
                    t[torch.arange(n, device=device), tcls[i]] = 1.0
                    lcls += self.bce(ps[:, 5:], t)
            lobj += self.bce(pi[..., 4].float(), tobj.float()) * self.balance[i]
        lbox *= self.hyp['box']
        lobj *= self.hyp['obj']
        lcls *= self.hyp['cls']
        bs = preds[0].shape[0]
        return (lbox + lobj + lcls) * bs, torch.cat((lbox, lobj, lcls)).detach()

    def build_targets(self, preds, targets):
        na, nt = self.na, targets.shape[0]
        device = targets.device
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=device)
        ai = torch.arange(na, device=device).float().view(na, 1).repeat(1, nt)
        # (na, nt, 7): every target once per anchor, anchor index last.
        targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)
        g = 0.5
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]],
                           device=device).float() * g
        for i in range(self.nl):
            anchors = self.detect.anchors[i].to(device)
            ny, nx = preds[i].shape[2:4]
            gain[2:6] = torch.tensor([nx, ny, nx, ny], device=device, dtype=gain.dtype)
            t = targets * gain
            if nt:
                r = t[..., 4:6] / anchors[:, None]
                j = torch.max(r, 1 / r).max(2)[0] < self.hyp['anchor_t']
                t = t[j]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                j, k = ((gxy % 1 < g) & (gxy > 1)).T
                l, m = ((gxi % 1 < g) & (gxi > 1)).T
                j = torch.stack((torch.ones_like(j), j, k, l, m))
                t = t.repeat((5, 1, 1))[j]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[j]
            else:
                t = targets[0]
                offsets = 0
            b, c = t[:, :2].long().T
            gxy = t[:, 2:4]
            gwh = t[:, 4:6]
            gij = (gxy - offsets).long()
            gi = gij[:, 0].clamp(0, nx - 1)
            gj = gij[:, 1].clamp(0, ny - 1)
            a = t[:, 6].long()
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch
