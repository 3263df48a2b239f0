"""The training loop and its command line (tools/train.py).

Runs on the CPU with Debian's torch 1.13 and on a CUDA GPU (torch 2.x,
mixed precision) with the same code.  Every epoch writes DIR/last.pt (a
checkpoint to --resume from, for runs cut into time-limited pieces) and
DIR/metrics.jsonl; the end writes the EMA weights as model files.
"""

import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from ssfpn_ref import Model, load_config, non_max_suppression, write_model_file
from ssfpn_ref.model_file import load_model
from ssfpn_ref.modules import Detect

from .data import YoloDataset, apply_hsv_gains, collate
from .fast3d import use_conv2d_for_conv3d
from .loss import YoloLoss
from .metrics import average_precision, match_image
from .optim import ModelEMA, build_optimizer, cosine_factor, warmup

CLASS_NAMES = ['circle', 'square', 'triangle', 'star', 'hexagon', 'cross']
NOMINAL_BATCH = 64  # YOLOv5's nbs: gradients accumulate up to this many images

# YOLOv5's hyp.scratch-low.yaml, with vertical flips on: the world's
# shapes appear at every rotation, so up and down mean nothing.
DEFAULT_HYP = {
    'lr0': 0.01, 'lrf': 0.01, 'momentum': 0.937, 'weight_decay': 5e-4,
    'warmup_epochs': 3.0, 'warmup_momentum': 0.8, 'warmup_bias_lr': 0.1,
    'box': 0.05, 'cls': 0.5, 'obj': 1.0, 'anchor_t': 4.0,
    'hsv_h': 0.015, 'hsv_s': 0.7, 'hsv_v': 0.4, 'translate': 0.1,
    'scale': 0.5, 'fliplr': 0.5, 'flipud': 0.5, 'mosaic': 1.0,
}


def build_model(config_path, nc, names):
    cfg = load_config(config_path)
    cfg['nc'] = nc
    model = Model(cfg)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.03  # YOLOv5's initialize_weights; eps is set by Model
    detect = model.model[-1]
    # YOLOv5's bias priors: about 8 objects per 640 image, class prior 0.6/nc.
    with torch.no_grad():
        for conv, stride in zip(detect.m, detect.stride):
            b = conv.bias.view(detect.na, -1)
            b[:, 4] += math.log(8 / (640 / float(stride)) ** 2)
            b[:, 5:] += math.log(0.6 / (nc - 0.99))
    model.names = list(names)
    return model


def scaled_hyp(hyp, nl, nc, imgsz):
    """YOLOv5 scales the loss gains to the level count, classes, image size."""
    h = dict(hyp)
    h['box'] *= 3 / nl
    h['cls'] *= nc / 80 * 3 / nl
    h['obj'] *= (imgsz / 640) ** 2 * 3 / nl
    return h


def autocast(device, enabled):
    if device.type == 'cuda' and enabled:
        return torch.autocast(device_type='cuda', dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(enabled):
    # torch.amp.GradScaler is torch >= 2.3; torch.cuda.amp's works everywhere.
    if hasattr(torch, 'amp') and hasattr(torch.amp, 'GradScaler'):
        return torch.amp.GradScaler('cuda', enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


@torch.no_grad()
def validate(model, loader, loss_fn, device, amp, imgsz):
    """Mean loss components and quick AP@[.5:.95], AP50 on a loader."""
    model.eval()
    total, batches = torch.zeros(3, device=device), 0
    stats = []
    truth_classes = []
    for images, targets, _ in loader:
        images = images.to(device, non_blocking=True).float() / 255
        targets = targets.to(device)
        with autocast(device, amp):
            decoded, raw = model(images)
        total += loss_fn([r.float() for r in raw], targets)[1]
        batches += 1
        dets = non_max_suppression(decoded.float(), conf_thres=0.001, iou_thres=0.6)
        for k, det in enumerate(dets):
            t = targets[targets[:, 0] == k].cpu()
            truth = torch.cat((t[:, 1:2], (t[:, 2:4] - t[:, 4:6] / 2) * imgsz,
                               (t[:, 2:4] + t[:, 4:6] / 2) * imgsz), 1)
            det = det.cpu()
            stats.append((match_image(det, truth), det[:, 4].numpy(), det[:, 5].numpy()))
            truth_classes.append(t[:, 1].numpy())
    correct = np.concatenate([s[0] for s in stats]) if stats else np.zeros((0, 10), bool)
    conf = np.concatenate([s[1] for s in stats]) if stats else np.zeros(0)
    cls = np.concatenate([s[2] for s in stats]) if stats else np.zeros(0)
    ap = average_precision(correct, conf, cls, np.concatenate(truth_classes),
                           model.model[-1].nc)
    loss = (total / max(batches, 1)).tolist()
    return {'val_box': loss[0], 'val_obj': loss[1], 'val_cls': loss[2],
            'AP50': float(ap[0]), 'AP': float(ap.mean())}


def make_loader(dataset, batch_size, workers, shuffle, device, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
        collate_fn=collate, pin_memory=device.type == 'cuda', generator=g,
        drop_last=False)


def save_model_files(ema_model, out_dir, imgsz, stem='model'):
    paths = {}
    for dtype in ('F32', 'F16'):
        path = os.path.join(out_dir, f'{stem}-{dtype.lower()}.safetensors')
        write_model_file(path, ema_model.float().cpu(), CLASS_NAMES,
                         (imgsz, imgsz), dtype,
                         extra_metadata={'training': 'tools/train.py, EMA weights'})
        paths[dtype] = path
    return paths


def initial_weights_from_model_file(path, cfg_path):
    """The state_dict of a model file, after checking that it holds the
    network of cfg_path (the same configuration with its class count)."""
    loaded = load_model(path)
    cfg = load_config(cfg_path)
    cfg['nc'] = len(CLASS_NAMES)
    expected = Model(cfg).state_dict()
    weights = loaded.state_dict()
    mismatched = [k for k in expected
                  if k not in weights or weights[k].shape != expected[k].shape]
    if mismatched or len(weights) != len(expected):
        sys.exit(f'{path}: not a {cfg_path} model with {len(CLASS_NAMES)} classes '
                 f'(first differing tensor: {(mismatched or ["(count)"])[0]})')
    return weights


def parse_args(argv):
    p = argparse.ArgumentParser(prog='train.py', description='Train a YOLOv5/ssFPN '
                                'configuration on a YOLO-format dataset.')
    p.add_argument('--cfg', required=True, help='models/*.yaml')
    p.add_argument('--data', required=True, help='training dataset folder')
    p.add_argument('--val', help='validation dataset folder (loss and quick AP each epoch)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--img', type=int, default=640, help='training input size (square)')
    p.add_argument('--export-size', type=int,
                   help='input size written into the model files (default --img); the '
                   'network is fully convolutional, so a model trained on 320x320 scenes '
                   'runs at 640 on objects of the same pixel sizes')
    p.add_argument('--warmup-epochs', type=float, help='default 3 (YOLOv5)')
    p.add_argument('--threads', type=int, default=0,
                   help='CPU threads for torch (default: all cores)')
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--nominal-batch', type=int, default=NOMINAL_BATCH,
                   help='accumulate gradients up to this many images an '
                        'optimiser step (YOLOv5: 64)')
    p.add_argument('--optimizer', choices=['SGD', 'AdamW'], default='SGD')
    p.add_argument('--lr0', type=float, help='initial learning rate '
                   '(default 0.01 for SGD, 0.001 for AdamW)')
    p.add_argument('--workers', type=int, default=max(min((os.cpu_count() or 1) - 1, 16), 1))
    p.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N')
    p.add_argument('--no-amp', action='store_true', help='fp32 on the GPU too')
    p.add_argument('--cache', action='store_true', help='keep decoded images in RAM')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-iterations', type=int, default=0,
                   help='stop after this many batches in all (0: no limit)')
    p.add_argument('--max-minutes', type=float, default=0,
                   help='stop cleanly after the epoch that passes this wall time '
                        '(0: no limit); --resume continues')
    p.add_argument('--val-every', type=int, default=1, help='validate every N epochs')
    p.add_argument('--resume', action='store_true', help='continue from OUT/last.pt')
    p.add_argument('--init-weights', metavar='CKPT',
                   help='start from the EMA weights of another run\'s last.pt, or from the '
                        'weights of a model file (.safetensors), with a fresh optimiser, '
                        'warm-up and cosine schedule (a longer training after a short '
                        'one); ignored when --resume finds OUT/last.pt')
    p.add_argument('--close-mosaic', type=int, default=0, metavar='N',
                   help='the last N epochs without mosaic or scale jitter: whole '
                        'scenes at their own pixel sizes, as the test sees them '
                        '(flips and colour jitter stay)')
    p.add_argument('--freeze', type=int, default=0, metavar='N',
                   help='keep layers 0 to N-1 as they are (weights and BatchNorm '
                        'statistics): train only a branch grafted onto a trained network')
    p.add_argument('--freeze-levels', metavar='L,L,...',
                   help='Detect levels (0 = finest) whose convolutions stay as they are, '
                        'with --freeze: only the grafted level learns')
    p.add_argument('--hyp', action='append', default=[], metavar='KEY=VALUE',
                   help='override one of the hyperparameters (DEFAULT_HYP: loss '
                        'gains before YOLOv5 scales them, augmentation); repeatable')
    return p.parse_args(argv)


def hyp_overrides(pairs):
    """--hyp KEY=VALUE pairs as a dict of floats; exits on an unknown key or a
    value that is not a number."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or key not in DEFAULT_HYP:
            sys.exit(f'--hyp {pair}: expected KEY=VALUE with KEY one of '
                     f'{", ".join(sorted(DEFAULT_HYP))}')
        try:
            out[key] = float(value)
        except ValueError:
            sys.exit(f'--hyp {pair}: {value!r} is not a number')
    return out


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.device == 'auto':
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    else:
        device = torch.device(args.device)
    amp = device.type == 'cuda' and not args.no_amp
    if device.type == 'cpu':
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
    os.makedirs(args.out, exist_ok=True)

    hyp = dict(DEFAULT_HYP)
    if args.optimizer == 'AdamW':
        hyp['lr0'] = 0.001
    if args.lr0 is not None:
        hyp['lr0'] = args.lr0
    if args.warmup_epochs is not None:
        hyp['warmup_epochs'] = args.warmup_epochs
    hyp.update(hyp_overrides(args.hyp))

    model = build_model(args.cfg, len(CLASS_NAMES), CLASS_NAMES).to(device)
    detect = model.model[-1]
    assert isinstance(detect, Detect)
    loss_hyp = scaled_hyp(hyp, detect.nl, detect.nc, args.img)
    loss_fn = YoloLoss(detect, loss_hyp)
    frozen = [model.model[i] for i in range(min(args.freeze, len(model.model) - 1))]
    for layer in frozen:
        for param in layer.parameters():
            param.requires_grad_(False)
    try:
        frozen_levels = [int(v) for v in args.freeze_levels.split(',')] \
            if args.freeze_levels else []
    except ValueError:
        sys.exit(f'--freeze-levels {args.freeze_levels}: not a list of level numbers')
    for level in frozen_levels:
        if not 0 <= level < detect.nl:
            sys.exit(f'--freeze-levels: level {level} outside 0..{detect.nl - 1}')
        for param in detect.m[level].parameters():
            param.requires_grad_(False)

    nbs = args.nominal_batch
    accumulate = max(round(nbs / args.batch), 1)
    weight_decay = hyp['weight_decay'] * args.batch * accumulate / nbs
    optimizer = build_optimizer(model, args.optimizer, hyp['lr0'], hyp['momentum'],
                                weight_decay)
    lf = cosine_factor(hyp['lrf'], args.epochs)
    for group in optimizer.param_groups:
        group['initial_lr'] = hyp['lr0']
    ema = ModelEMA(model)
    if device.type == 'cpu':  # same parameters and results, fewer seconds
        use_conv2d_for_conv3d(model)
        use_conv2d_for_conv3d(ema.ema)
    scaler = grad_scaler(amp)
    start_epoch, iteration = 0, 0

    ckpt_path = os.path.join(args.out, 'last.pt')
    if args.resume:
        ckpt = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ckpt['model'])
        ema.ema.load_state_dict(ckpt['ema'])
        ema.updates = ckpt['updates']
        optimizer.load_state_dict(ckpt['optimizer'])
        start_epoch, iteration = ckpt['epoch'] + 1, ckpt['iteration']
        print(f'resumed from {ckpt_path} at epoch {start_epoch}', flush=True)
    elif args.init_weights and args.init_weights.endswith('.safetensors'):
        # A model file holds the weights a run exported (its EMA), maybe
        # rounded to F16: close enough to start from.
        weights = initial_weights_from_model_file(args.init_weights, args.cfg)
        model.load_state_dict(weights)
        ema.ema.load_state_dict(weights)
        print(f'initial weights: {args.init_weights}', flush=True)
    elif args.init_weights:
        # The EMA weights are the ones a run exports; both copies start there.
        ckpt = torch.load(args.init_weights, map_location=device)
        trained_cfg = ckpt.get('args', {}).get('cfg')
        if trained_cfg and os.path.abspath(trained_cfg) != os.path.abspath(args.cfg):
            sys.exit(f'{args.init_weights}: trained from {trained_cfg}, not {args.cfg}')
        model.load_state_dict(ckpt['ema'])
        ema.ema.load_state_dict(ckpt['ema'])
        print(f'initial weights: EMA of {args.init_weights} '
              f'(epoch {ckpt["epoch"] + 1}, iteration {ckpt["iteration"]})', flush=True)

    train_set = YoloDataset(args.data, args.img, hyp, augment=True, cache=args.cache)
    val_set = YoloDataset(args.val, args.img, cache=args.cache) if args.val else None
    for dataset in (train_set, val_set):
        if dataset is not None:
            dataset.check_classes(model.model[-1].nc)
    batches_per_epoch = math.ceil(len(train_set) / args.batch)
    warmup_steps = max(round(hyp['warmup_epochs'] * batches_per_epoch), 100)
    print(json.dumps({'device': str(device), 'torch': torch.__version__, 'amp': amp,
                      'cfg': args.cfg, 'parameters': model.parameter_count(),
                      'train_images': len(train_set), 'batch': args.batch,
                      'accumulate': accumulate, 'warmup_steps': warmup_steps,
                      'frozen_layers': len(frozen), 'frozen_levels': frozen_levels,
                      'epochs': args.epochs, 'threads': torch.get_num_threads(),
                      'hyp': hyp}), flush=True)

    started = time.time()
    metrics_file = open(os.path.join(args.out, 'metrics.jsonl'), 'a', encoding='utf-8')
    finished = True
    last_step = iteration - 1
    for epoch in range(start_epoch, args.epochs):
        model.train()
        for layer in frozen:  # BatchNorm statistics stay the trained ones
            layer.eval()
        train_set.epoch_seed = args.seed * 100003 + epoch
        if args.close_mosaic and epoch >= args.epochs - args.close_mosaic:
            train_set.hyp = dict(hyp, mosaic=0.0)
        loader = make_loader(train_set, args.batch, args.workers, True, device,
                             args.seed * 100003 + epoch)
        running = torch.zeros(3, device=device)
        seen = 0
        optimizer.zero_grad()
        epoch_start = time.time()
        for k, (images, targets, gains) in enumerate(loader):
            images = images.to(device, non_blocking=True).float() / 255
            images = apply_hsv_gains(images, gains.to(device))
            targets = targets.to(device)
            if iteration <= warmup_steps:
                accumulate = warmup(optimizer, iteration, warmup_steps,
                                    lf(epoch), hyp, nbs, args.batch)
            with autocast(device, amp):
                preds = model(images)
            loss, parts = loss_fn([p.float() for p in preds], targets)
            scaler.scale(loss).backward()
            if iteration - last_step >= accumulate:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
                ema.update(model)
                last_step = iteration
            running += parts
            seen += 1
            iteration += 1
            if k % 10 == 0 or k == batches_per_epoch - 1:
                m = (running / seen).tolist()
                print(f'epoch {epoch + 1}/{args.epochs} batch {k + 1}/{batches_per_epoch} '
                      f'iter {iteration} box {m[0]:.4f} obj {m[1]:.4f} cls {m[2]:.4f} '
                      f'lr {optimizer.param_groups[1]["lr"]:.5f}', flush=True)
            if args.max_iterations and iteration >= args.max_iterations:
                break
        for group in optimizer.param_groups:  # the per-epoch cosine step
            group['lr'] = group['initial_lr'] * lf(epoch + 1)
        m = (running / max(seen, 1)).tolist()
        record = {'epoch': epoch + 1, 'iteration': iteration, 'box': m[0], 'obj': m[1],
                  'cls': m[2], 'epoch_seconds': round(time.time() - epoch_start, 1)}
        last_epoch = epoch + 1 == args.epochs
        stop = (args.max_iterations and iteration >= args.max_iterations) or \
            (args.max_minutes and time.time() - started > args.max_minutes * 60)
        if val_set is not None and ((epoch + 1) % args.val_every == 0 or last_epoch or stop):
            val_loader = make_loader(val_set, args.batch * 2, args.workers, False, device, 0)
            record.update(validate(ema.ema, val_loader, loss_fn, device, amp, args.img))
        print(json.dumps(record), flush=True)
        metrics_file.write(json.dumps(record) + '\n')
        metrics_file.flush()
        # Written aside, then renamed: a run killed while saving keeps the
        # last whole checkpoint to resume from.
        torch.save({'model': model.state_dict(), 'ema': ema.ema.state_dict(),
                    'updates': ema.updates, 'optimizer': optimizer.state_dict(),
                    'epoch': epoch, 'iteration': iteration, 'hyp': hyp,
                    'args': vars(args)}, ckpt_path + '.partial')
        os.replace(ckpt_path + '.partial', ckpt_path)
        if stop and not last_epoch:
            finished = False
            break
    metrics_file.close()
    paths = save_model_files(ema.ema, args.out, args.export_size or args.img)
    print(json.dumps({'finished': finished, 'model_files': paths,
                      'checkpoint': ckpt_path,
                      'minutes': round((time.time() - started) / 60, 2)}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
