"""Flip test-time augmentation, as the engine's SSFPN_AUGMENT_FLIPS defines
it: the network runs on the image and on its mirror images left-right,
top-bottom and both; each view's decoded output is mapped back onto the
image's own anchor grid (the mirror cell, the box centre mirrored) and the
four are averaged, anchor by anchor."""
import torch

# (left-right, top-bottom) for each view, in the engine's order.
FLIPS = ((False, False), (True, False), (False, True), (True, True))


def unflip(output, detect, height, width, fx, fy):
    """A mirrored view's decoded output (N, A, 5 + nc) on the original
    image's anchor grid."""
    parts, start = [], 0
    n = output.shape[0]
    for s in detect.stride.tolist():
        ny, nx = height // int(s), width // int(s)
        count = detect.na * ny * nx
        p = output[:, start:start + count].reshape(n, detect.na, ny, nx, detect.no)
        start += count
        if fx:
            p = p.flip(3).clone()
            p[..., 0] = width - p[..., 0]
        if fy:
            p = p.flip(2).clone()
            p[..., 1] = height - p[..., 1]
        parts.append(p.reshape(n, -1, detect.no))
    return torch.cat(parts, 1)


def flip_tta(model, x):
    """The merged output (N, A, 5 + nc) of model (eval mode) on x (N, 3, H, W)."""
    height, width = x.shape[2:]
    detect = model.model[-1]
    views = []
    with torch.no_grad():
        for fx, fy in FLIPS:
            xv = x.flip(3) if fx else x
            xv = xv.flip(2) if fy else xv
            views.append(unflip(model(xv)[0], detect, height, width, fx, fy))
    return torch.stack(views).mean(0)
