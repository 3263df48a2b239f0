"""Optimiser, learning-rate schedule and weight EMA, as YOLOv5's train.py
sets them up: three parameter groups (BatchNorm weights, other weights
with decay, biases), warm-up, cosine decay to lr0 * lrf."""

import copy
import math

import numpy as np
import torch
import torch.nn as nn


def build_optimizer(model, name, lr, momentum, weight_decay):
    """Group 0: BatchNorm weights, group 1: weights (decayed), group 2:
    biases.  The order matters: warm-up treats group 2 specially."""
    bn_weights, weights, biases = [], [], []
    for module in model.modules():
        bias = getattr(module, 'bias', None)
        if isinstance(bias, nn.Parameter):
            biases.append(bias)
        weight = getattr(module, 'weight', None)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            bn_weights.append(weight)
        elif isinstance(weight, nn.Parameter):
            weights.append(weight)
    if name == 'SGD':
        opt = torch.optim.SGD(bn_weights, lr=lr, momentum=momentum, nesterov=True)
    elif name == 'AdamW':
        opt = torch.optim.AdamW(bn_weights, lr=lr, betas=(momentum, 0.999),
                                weight_decay=0.0)
    else:
        raise ValueError(f'unknown optimiser {name!r}; expected SGD or AdamW')
    opt.add_param_group({'params': weights, 'weight_decay': weight_decay})
    opt.add_param_group({'params': biases, 'weight_decay': 0.0})
    return opt


def cosine_factor(lrf, epochs):
    """Multiplier of lr0 at (fractional) epoch x: 1 at 0, lrf at epochs."""
    return lambda x: ((1 - math.cos(x * math.pi / epochs)) / 2) * (lrf - 1) + 1


def warmup(optimizer, step, warmup_steps, epoch_factor, hyp, nbs, batch_size):
    """Ramp learning rates (biases down from warmup_bias_lr, the rest up
    from 0) and momentum (from warmup_momentum) over the first
    warmup_steps optimiser-batch steps.  Returns the gradient accumulation
    count, which ramps from 1 to nbs / batch_size."""
    xi = [0, warmup_steps]
    accumulate = max(1, int(np.interp(step, xi, [1, nbs / batch_size]).round()))
    for j, group in enumerate(optimizer.param_groups):
        start = hyp['warmup_bias_lr'] if j == 2 else 0.0
        group['lr'] = float(np.interp(step, xi, [start, group['initial_lr'] * epoch_factor]))
        if 'momentum' in group:
            group['momentum'] = float(np.interp(step, xi, [hyp['warmup_momentum'],
                                                           hyp['momentum']]))
        elif 'betas' in group:
            beta1 = float(np.interp(step, xi, [hyp['warmup_momentum'], hyp['momentum']]))
            group['betas'] = (beta1, group['betas'][1])
    return accumulate


class ModelEMA:
    """Exponential moving average of every floating-point parameter and
    buffer; decay ramps up as 0.9999 * (1 - exp(-updates / 2000)) so early
    averages are not dominated by the random initial weights."""

    def __init__(self, model, decay=0.9999, tau=2000.0, updates=0):
        self.ema = copy.deepcopy(model).eval()
        self.updates = updates
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay(self.updates)
        current = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(current[k].detach(), alpha=1 - d)
