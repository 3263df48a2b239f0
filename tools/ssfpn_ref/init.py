"""Random weights that keep activations O(1) and make BatchNorm non-trivial.

Convolution weights are normal with std gain/sqrt(fan_in).  BatchNorm gets
random affine parameters (gamma in [0.5, 1.5], beta ~ N(0, 0.1)).  Its
running statistics are calibrated on one forward pass over a sample input
and then perturbed (mean + N(0, 0.1)·std, var · U[0.5, 1.5]), so every
BatchNorm's output stays O(1) however deep the network is, while folding the
BatchNorm into the convolution remains a real transformation to test.  The
Detect convolutions are scaled so their logits have unit spread.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F



def _fan_in(weight):
    return weight[0].numel()


def randomize_weights(model, seed=0, sample=None, detect_obj_bias=None,
                      detect_cls_bias=None):
    """Fill model with seeded random weights.

    sample: input batch for calibrating BatchNorm statistics, several
    images, since one image's statistics say little about another's
    (default: four seeded uniform [0, 1] images at 256x256).  detect_obj_bias: objectness
    logit bias of every Detect level (default YOLOv5's prior log(8 /
    (640 / stride)^2)).  detect_cls_bias: class logit bias (default YOLOv5's
    prior log(0.6 / (nc - 0.99)))."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

    detect = model.model[-1]
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                in_detect = any(m is c for c in detect.m)
                gain = 1.0 if in_detect else math.sqrt(2.0)
                w = normal(m.weight.shape, gain / math.sqrt(_fan_in(m.weight)))
                if not in_detect:
                    # Zero-mean filters: activations after SiLU are mostly
                    # positive, and a filter with a net positive sum turns
                    # that into a large common mode which BatchNorm then
                    # subtracts, amplifying rounding errors layer by layer.
                    w -= w.flatten(1).mean(1).view(-1, *[1] * (w.dim() - 1))
                m.weight.copy_(w)
                if m.bias is not None and not in_detect:
                    m.bias.copy_(normal(m.bias.shape, 0.1))
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                m.weight.copy_(uniform(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(normal(m.bias.shape, 0.1))
                m.running_mean.zero_()
                m.running_var.fill_(1.0)

        _init_detect_biases(detect, g, detect_obj_bias, detect_cls_bias)
        if sample is None:
            sample = torch.rand((4, 3, 256, 256), generator=g)
        _calibrate_batchnorm(model, sample, g)
        _calibrate_detect(model, sample)
    return model


def _init_detect_biases(detect, g, obj_bias, cls_bias):
    for mi, s in zip(detect.m, detect.stride.tolist()):
        b = mi.bias.view(detect.na, -1)
        b.copy_(torch.randn(b.shape, generator=g) * 0.5)
        if obj_bias is None:
            b[:, 4] += math.log(8 / (640 / s) ** 2)
        else:
            b[:, 4] += obj_bias
        if cls_bias is None:
            b[:, 5:] += math.log(0.6 / (detect.nc - 0.99))
        else:
            b[:, 5:] += cls_bias


def _calibrate_detect(model, sample):
    """Scale each Detect output channel's weights so that, bias aside, its
    logit has standard deviation 1 on `sample`: saturated sigmoids would
    make boxes collapse to nothing or objectness all-or-nothing."""
    detect = model.model[-1]
    captured = []
    handle = detect.register_forward_pre_hook(
        lambda m, inputs: captured.append([t.detach() for t in inputs[0]]))
    was_training = model.training
    model.eval()
    try:
        model(sample.to(next(model.parameters()).dtype))
    finally:
        handle.remove()
        model.train(was_training)
    for mi, x in zip(detect.m, captured[0]):
        y = F.conv2d(x.to(mi.weight.dtype), mi.weight)
        std = y.transpose(0, 1).reshape(y.shape[1], -1).std(1).clamp_min(1e-6)
        mi.weight.div_(std.view(-1, 1, 1, 1))


def _calibrate_batchnorm(model, sample, g):
    """Set each BatchNorm's running stats from the statistics of its actual
    input on `sample` (one eval-mode pass, in order), then perturb them."""
    def pre_hook(bn, inputs):
        x = inputs[0].detach().to(torch.float64)
        dims = [d for d in range(x.dim()) if d != 1]
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        # A channel nearly constant on the sample must not get a tiny
        # variance: on other inputs it would be amplified without bound.
        var = var.clamp_min(max(1e-2, 0.25 * float(var.median())))
        mean = mean + torch.randn(mean.shape, generator=g, dtype=torch.float64) \
            * 0.1 * var.sqrt()
        var = var * (0.5 + torch.rand(var.shape, generator=g, dtype=torch.float64))
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)

    handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()
               if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d))]
    was_training = model.training
    model.eval()
    try:
        model(sample.to(next(model.parameters()).dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
