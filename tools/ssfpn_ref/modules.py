"""The modules a configuration may name, with YOLOv5 v6.0 semantics.

Attribute names follow YOLOv5's models/common.py and models/yolo.py, so the
state_dict of a built Model has exactly YOLOv5's tensor names
(model-format.md, "Tensors").  Two settings are model-wide: the activation of
every Conv (the configuration's optional "activation" key) and the epsilon
of every 2-D BatchNorm (the model file's ssfpn.bn_eps).  parse_model sets
them through build_settings() while it constructs the layers.
"""

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    'SiLU': lambda: nn.SiLU(),
    'LeakyReLU': lambda: nn.LeakyReLU(0.1),
    'ReLU': lambda: nn.ReLU(),
    'Hardswish': lambda: nn.Hardswish(),
}

DEFAULT_BN_EPS = 0.001

_settings = {'activation': 'SiLU', 'bn_eps': DEFAULT_BN_EPS}


@contextlib.contextmanager
def build_settings(activation='SiLU', bn_eps=DEFAULT_BN_EPS):
    """Model-wide Conv activation and 2-D BatchNorm epsilon while building."""
    if activation not in ACTIVATIONS:
        raise ValueError(f'unknown activation {activation!r}; expected one of '
                         f'{", ".join(ACTIVATIONS)}')
    saved = dict(_settings)
    _settings.update(activation=activation, bn_eps=float(bn_eps))
    try:
        yield
    finally:
        _settings.clear()
        _settings.update(saved)


def _batchnorm2d(channels):
    return nn.BatchNorm2d(channels, eps=_settings['bn_eps'])


def autopad(k, p=None):
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


class Conv(nn.Module):
    """Conv2d without bias, BatchNorm2d, activation."""

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), groups=g, bias=False)
        self.bn = _batchnorm2d(c2)
        if act is True:
            self.act = ACTIVATIONS[_settings['activation']]()
        elif isinstance(act, nn.Module):
            self.act = act
        else:
            self.act = nn.Identity()

    def forward(self, x):
        if 'bn' not in self._modules:  # folded by fuse.fuse()
            return self.act(self.conv(x))
        return self.act(self.bn(self.conv(x)))


def _space_to_depth(x):
    # Order shared by Focus and SPD-Conv: (even row, even col), (odd row,
    # even col), (even row, odd col), (odd row, odd col).
    return torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2],
                      x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)


class Focus(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s, p, g, act)

    def forward(self, x):
        return self.conv(_space_to_depth(x))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class BottleneckCSP(nn.Module):
    """CSP bottleneck as in YOLOv5 up to v6.0: plain cv2/cv3, BN over the
    concat, LeakyReLU(0.1) (not the model-wide activation)."""

    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1)
        self.bn = _batchnorm2d(2 * c_)
        self.act = nn.LeakyReLU(0.1)
        self.m = nn.Sequential(*[Bottleneck(c_, c_, shortcut, g, e=1.0)
                                 for _ in range(n)])

    def forward(self, x):
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*[Bottleneck(c_, c_, shortcut, g, e=1.0)
                                 for _ in range(n)])

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPP(nn.Module):
    def __init__(self, c1, c2, k=(5, 9, 13)):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(kernel_size=x, stride=1,
                                             padding=x // 2) for x in k])

    def forward(self, x):
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


class Concat(nn.Module):
    """dim 1: channel concat.  dim 2: stack 5-D (N, C, 1, H, W) inputs on
    the scale axis (official ssFPN)."""

    def __init__(self, dimension=1):
        super().__init__()
        self.d = dimension

    def forward(self, x):
        return torch.cat(x, self.d)


class space_to_depth(nn.Module):  # noqa: N801 -- the name configurations use
    """SPD-Conv's space-to-depth: Focus's reordering without the Conv."""

    def __init__(self, dimension=1):
        super().__init__()
        self.d = dimension

    def forward(self, x):
        return _space_to_depth(x)


class Contract(nn.Module):
    """YOLOv5's Contract: (b, c, h, w) -> (b, c*s*s, h/s, w/s), channel
    order (row phase, column phase, c)."""

    def __init__(self, gain=2):
        super().__init__()
        self.gain = gain

    def forward(self, x):
        b, c, h, w = x.size()
        s = self.gain
        x = x.view(b, c, h // s, s, w // s, s)
        x = x.permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(b, c * s * s, h // s, w // s)


class ssFPN(nn.Module):  # noqa: N801 -- the name configurations use
    """Seed form of the ssFPN neck (one module, from = [p3, p4, p5]).

    The Conv3d has kernel depth 1 but padding 1 on every axis, so the depth
    grows from 1 to 3 and the outer two slices see only zero input; the
    average pool over depth brings it back to 1 (model-format.md)."""

    def __init__(self, c1, c2):
        super().__init__()
        self.conv = nn.Conv3d(c1, c2, (1, 3, 3), stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(c2, eps=1e-5)
        self.act = nn.LeakyReLU(0.01)
        self.pool = nn.AvgPool3d((3, 1, 1))

    def forward(self, x):
        p3, p4, p5 = x
        p4 = F.interpolate(p4, scale_factor=2, mode='nearest')
        p5 = F.interpolate(p5, scale_factor=4, mode='nearest')
        x = torch.cat((p3, p4, p5), 1)
        n, c, h, w = x.shape
        x = x.view(n, c, 1, h, w)
        x = self.pool(self.act(self.bn(self.conv(x))))
        return x.squeeze(2)


class Unsqueeze(nn.Module):
    def __init__(self, dim=2):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.unsqueeze(self.dim)


class Conv3D(nn.Module):
    """Official ssFPN 3-D block: Conv3d 3x3x3 with bias, BatchNorm3d(eps
    0.001), LeakyReLU(0.01), mean over the scale axis."""

    def __init__(self, c1, c2):
        super().__init__()
        self.conv3d = nn.Conv3d(c1, c2, 3, 1, 1, bias=True)
        self.batch3d = nn.BatchNorm3d(c2, eps=0.001)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.batch3d(self.conv3d(x))).mean(2)


class Detect(nn.Module):
    """YOLOv5 v6.0 Detect; eval mode returns (decoded (N, A, 5+nc), raw)."""

    def __init__(self, nc=80, anchors=(), ch=()):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer('anchors',
                             torch.tensor(anchors).float().view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.stride = None  # set by Model from a forward pass

    def forward(self, x):
        x = list(x)
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx) \
                       .permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                grid, anchor_grid = self._make_grid(nx, ny, i, x[i].dtype)
                y = x[i].sigmoid()
                xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.stride[i]
                wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
                y = torch.cat((xy, wh, y[..., 4:]), -1)
                z.append(y.view(bs, -1, self.no))
        return x if self.training else (torch.cat(z, 1), x)

    def _make_grid(self, nx, ny, i, dtype):
        d = self.anchors.device
        yv, xv = torch.meshgrid(torch.arange(ny, device=d),
                                torch.arange(nx, device=d), indexing='ij')
        grid = torch.stack((xv, yv), 2).expand((1, self.na, ny, nx, 2)).to(dtype)
        anchor_grid = (self.anchors[i].clone() * self.stride[i]) \
            .view((1, self.na, 1, 1, 2)).expand((1, self.na, ny, nx, 2)).to(dtype)
        return grid, anchor_grid
