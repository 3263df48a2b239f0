"""The official ssFPN Conv3D block computed with 2-D convolutions, for
training speed: PyTorch's CPU Conv3d is several times slower than the
Conv2d that computes the same thing.

Each output scale slice o of a 3x3x3 convolution over the (zero-padded)
scale axis is one 3x3 Conv2d of the kd input slices around o stacked on the
channel axis, so the scale slices become batch entries of one Conv2d.
BatchNorm3d's statistics over (N, D, H, W) are BatchNorm over that folded
batch.  The parameters and state_dict are the module's own, unchanged.
"""

import types

import torch
import torch.nn.functional as F

from ssfpn_ref.modules import Conv3D


def _forward(self, x):
    n, c, d, h, w = x.shape
    weight = self.conv3d.weight                 # (c2, c1, kd, kh, kw)
    c2, _, kd, kh, kw = weight.shape
    pd = self.conv3d.padding[0]
    xp = F.pad(x, (0, 0, 0, 0, pd, pd))         # zero slices on the scale axis
    slices = torch.stack([xp[:, :, o:o + kd] for o in range(d)], 1)  # (n, d, c, kd, h, w)
    y = F.conv2d(slices.reshape(n * d, c * kd, h, w), weight.reshape(c2, c * kd, kh, kw),
                 self.conv3d.bias, padding=self.conv3d.padding[1:])
    bn = self.batch3d
    if bn.training:
        bn.num_batches_tracked.add_(1)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     bn.training, bn.momentum, bn.eps)
    return self.act(y).view(n, d, c2, h, w).mean(1)


def _check(module):
    """The 2-D form against the module's own Conv3d on a random input (eval
    mode, so no BatchNorm statistics move); raises on a mismatch."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        x = torch.randn(2, module.conv3d.in_channels, 3, 9, 7,
                        generator=torch.Generator().manual_seed(0))
        want = Conv3D.forward(module, x)
        got = _forward(module, x)
    module.train(was_training)
    error = (want - got).abs().max().item()
    scale = want.abs().max().item()
    if not error <= 1e-4 * max(scale, 1.0):
        raise RuntimeError(f'fast3d: the 2-D form of Conv3D differs by {error:g}')


def use_conv2d_for_conv3d(model):
    """Swap every Conv3D block's forward for the 2-D form, after checking
    it computes the same; returns the count."""
    count = 0
    for m in model.modules():
        if isinstance(m, Conv3D):
            assert m.conv3d.stride == (1, 1, 1) and m.conv3d.groups == 1
            _check(m)
            m.forward = types.MethodType(_forward, m)
            count += 1
    return count
