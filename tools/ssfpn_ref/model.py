"""parse_model and Model, as YOLOv5 v6.0's models/yolo.py builds them."""

import ast
import copy
import math

import torch
import torch.nn as nn

from . import modules as M
from .modules import build_settings, DEFAULT_BN_EPS

MODULES = {
    'Conv': M.Conv, 'Focus': M.Focus, 'Bottleneck': M.Bottleneck,
    'C3': M.C3, 'BottleneckCSP': M.BottleneckCSP, 'SPP': M.SPP,
    'SPPF': M.SPPF, 'nn.Upsample': nn.Upsample, 'Concat': M.Concat,
    'space_to_depth': M.space_to_depth, 'Contract': M.Contract,
    'Detect': M.Detect, 'ssFPN': M.ssFPN, 'Unsqueeze': M.Unsqueeze,
    'Conv3D': M.Conv3D,
}

# Modules whose output channels are args[0] * width_multiple.
SCALED = (M.Conv, M.Bottleneck, M.SPP, M.SPPF, M.Focus, M.BottleneckCSP,
          M.C3, M.ssFPN, M.Conv3D)
# Modules that take the layer's `number` as their own repeat count.
REPEATING = (M.BottleneckCSP, M.C3)


def make_divisible(x, divisor=8):
    return math.ceil(x / divisor) * divisor


def _eval_arg(a, names):
    """YOLOv5 eval()s string args; names it cannot resolve stay strings."""
    if not isinstance(a, str):
        return a
    if a in names:
        return names[a]
    try:
        return ast.literal_eval(a)
    except (ValueError, SyntaxError):
        return a


def parse_model(d, ch):
    """Build the layers of configuration d for ch=[input channels].

    Returns (nn.Sequential of layers, sorted list of saved layer indices,
    list of per-layer output channels)."""
    anchors, nc = d['anchors'], d['nc']
    gd, gw = d['depth_multiple'], d['width_multiple']
    na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors
    no = na * (nc + 5)
    names = {'nc': nc, 'anchors': anchors, 'None': None,
             'True': True, 'False': False}

    layers, save, c2 = [], [], ch[-1]
    for i, (f, n, m, args) in enumerate(d['backbone'] + d['head']):
        if m not in MODULES:
            raise ValueError(f'layer {i}: unknown module {m!r}')
        m = MODULES[m]
        args = [_eval_arg(a, names) for a in args]

        n = n_ = max(round(n * gd), 1) if n > 1 else n
        if m in SCALED:
            if m is M.ssFPN:
                c1 = sum(ch[x] for x in f)
            else:
                c1 = ch[f]
            c2 = args[0]
            if c2 != no:
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m in REPEATING:
                args.insert(2, n)
                n = 1
        elif m is M.Concat:
            dim = args[0] if args else 1
            if dim == 2:
                counts = {ch[x] for x in f}
                if len(counts) != 1:
                    raise ValueError(f'layer {i}: Concat [2] needs equal channel '
                                     f'counts, got {[ch[x] for x in f]}')
                c2 = counts.pop()
            else:
                c2 = sum(ch[x] for x in f)
        elif m is M.Detect:
            args.append([ch[x] for x in f])
            if isinstance(args[1], int):
                args[1] = [list(range(args[1] * 2))] * len(f)
        elif m is M.Contract:
            c2 = ch[f] * args[0] ** 2
        elif m is M.space_to_depth:
            c2 = 4 * ch[f]
        else:
            c2 = ch[f]

        m_ = nn.Sequential(*[m(*args) for _ in range(n)]) if n > 1 else m(*args)
        t = 'nn.Upsample' if m is nn.Upsample else m.__name__
        np_ = sum(x.numel() for x in m_.parameters())
        m_.i, m_.f, m_.type, m_.np, m_.n, m_.args = i, f, t, np_, n_, args
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(m_)
        if i == 0:
            ch = []
        ch.append(c2)
    return nn.Sequential(*layers), sorted(save), ch


class Model(nn.Module):
    """A YOLOv5-family detector built from a configuration dict.

    model(x)[0] in eval mode is the raw output of model-format.md."""

    def __init__(self, cfg, ch=3, bn_eps=DEFAULT_BN_EPS):
        super().__init__()
        self.yaml = copy.deepcopy(cfg)
        activation = self.yaml.get('activation', 'SiLU')
        with build_settings(activation=activation, bn_eps=bn_eps):
            self.model, self.save, self.channels = parse_model(
                copy.deepcopy(self.yaml), ch=[ch])
        self.bn_eps = bn_eps
        self.names = [str(i) for i in range(self.yaml['nc'])]

        m = self.model[-1]
        if not isinstance(m, M.Detect):
            raise ValueError('the last layer must be Detect')
        s = 256
        was_training = self.training
        self.eval()
        with torch.no_grad():
            # Strides from the raw outputs' heights, as YOLOv5 does.
            m.stride = torch.ones(m.nl)
            _, raw = self.forward(torch.zeros(1, ch, s, s))
        self.train(was_training)
        m.stride = torch.tensor([s / x.shape[-3] for x in raw])
        m.anchors /= m.stride.view(-1, 1, 1)
        self._check_anchor_order()
        self.stride = m.stride

    def _check_anchor_order(self):
        # YOLOv5 flips the anchors when their area order disagrees with the
        # stride order.
        m = self.model[-1]
        a = m.anchors.prod(-1).view(-1)
        da = a[-1] - a[0]
        ds = m.stride[-1] - m.stride[0]
        if da.sign() != ds.sign():
            m.anchors[:] = m.anchors.flip(0)

    def forward(self, x):
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else \
                    [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x

    def forward_layers(self, x):
        """Every layer's output, for inspection and tests."""
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else \
                    [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x)
        return y

    def parameter_count(self):
        return sum(p.numel() for p in self.parameters())

    def layer_count(self):
        """YOLOv5's model_info "layers": every module in the tree."""
        return len(list(self.modules()))

    def summary(self):
        rows = []
        for m in self.model:
            rows.append((m.i, m.f, m.n, m.np, m.type, m.args))
        return rows
