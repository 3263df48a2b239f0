"""BatchNorm folding, as YOLOv5's Model.fuse(): each Conv's BatchNorm2d
goes into its Conv2d (which gains a bias).  Gives YOLOv5's fused parameter
and layer counts, and a float32 model computed the way the engine computes."""

import copy

import torch
import torch.nn as nn

from .modules import Conv


def fold_conv_bn(conv, bn):
    """A Conv2d with bias equal to bn(conv(x)) in eval mode; folded in
    float64, stored in conv's dtype."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      conv.stride, conv.padding, groups=conv.groups, bias=True)
    fused = fused.to(conv.weight.dtype)
    with torch.no_grad():
        scale = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
        w = conv.weight.double() * scale.view(-1, 1, 1, 1)
        b = bn.bias.double() - bn.running_mean.double() * scale
        if conv.bias is not None:
            b = b + conv.bias.double() * scale
        fused.weight.copy_(w)
        fused.bias.copy_(b)
    return fused


def fuse(model, inplace=False):
    """model with every Conv's BatchNorm folded (eval mode only)."""
    if not inplace:
        model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, Conv) and 'bn' in m._modules:
            m.conv = fold_conv_bn(m.conv, m.bn)
            del m.bn
    return model.eval()
