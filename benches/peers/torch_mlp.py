#!/usr/bin/env python3
"""PyTorch peer of simplenn: the same MLP recipes, trained on CPU, for a side-by-side wall-time comparison.

Run from the repository root with a venv that lives OUTSIDE the repo (see benches/peers/README.md):

    /work/torch-venv/bin/python benches/peers/torch_mlp.py --threads 2 --hidden 256 --epochs 5
    /work/torch-venv/bin/python benches/peers/torch_mlp.py --threads 2 --hidden 800 --augment elastic \\
        --optimizer sgd --momentum 0.9 --lr 0.05 --schedule cosine --epochs 40 --dropout 0
    /work/torch-venv/bin/python benches/peers/torch_mlp.py --augment-grid grid.png --augment elastic
    /work/torch-venv/bin/python benches/peers/torch_mlp.py --self-check

Default recipe (simplenn's defaults): inputs x/255, [Dropout(input p)], Linear/ReLU/Dropout(p) per hidden
layer then a final Linear, He-normal weights N(0, 2/fan_in) and zero biases, cross-entropy, SGD(lr 0.1,
momentum 0.9) with the learning rate set every step to lr*0.5*(1+cos(pi*t/T)) (t = 0..T-1, T = all steps
of the run), batch 128 reshuffled each epoch (the last, partial batch is kept, as in simplenn), the last
5000 training images held out for validation, dropout 0.2. Optimisers are torch.optim's own (PyTorch
semantics); --max-norm renorms every Linear's weight rows after each optimiser step.

Augmentation (--augment) warps each batch with F.grid_sample (zeros padding, align_corners=True, with the
grid built so that pixel index i maps exactly to the centre of pixel i: normalised = 2*i/(W-1) - 1).
Output pixel (x, y) samples the source at (x + dx, y + dy) in pixel units, bilinearly, zero outside.

Timing: the training split is pre-loaded as one float32 tensor (already /255) before any timing. An
epoch's seconds cover the shuffle, the batch gather (a float copy), the augmentation, forward, backward,
optimiser step and max-norm; validation and test evaluation are not timed. simplenn's own per-epoch lines
do include its validation pass (examples/epoch_time, the figure the benchmark tables use, does not), so
a training run's lines compare in PyTorch's favour. "cum" is the sum of epoch seconds (training wall
time); "wall" is elapsed time since training began, evaluation included. The median s/epoch leaves out
the first (warm-up) epoch when there are at least 3: use --epochs 4 for a median of 3.
"""
import argparse
import functools
import gzip
import json
import math
import os
import statistics
import struct
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TARGETS = (0.98, 0.99)  # test accuracies whose first time is reported
AFFINE_MAX_ROT_DEG = 15.0  # rotation uniform in [-15, 15] degrees
AFFINE_SCALE = (0.85, 1.15)  # isotropic scale uniform in [0.85, 1.15]
AFFINE_MAX_SHEAR = 0.2  # horizontal shear factor uniform in [-0.2, 0.2] (x' = x + k*y, about +-11 degrees)


# ----------------------------------------------------------------------------------------------- data
def read_idx(directory, name):
    """Read one IDX file (raw if present, else NAME.gz) into a numpy array of its header's shape."""
    raw = os.path.join(directory, name)
    if os.path.exists(raw):
        with open(raw, "rb") as f:
            buf = f.read()
    else:
        with gzip.open(raw + ".gz", "rb") as f:
            buf = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08 = unsigned byte, the only type MNIST uses
        raise ValueError(f"{name}: not a u8 IDX file (magic {buf[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", buf[4 : 4 + 4 * ndim])
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(directory, prefix):
    """(N, D) float32 tensor of x/255, (N,) int64 labels, and the image shape (rows, cols)."""
    images = read_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(directory, f"{prefix}-labels-idx1-ubyte")
    n = images.shape[0]
    x = torch.from_numpy(images.reshape(n, -1).astype(np.float32) / 255.0)  # D = rows*cols
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y, tuple(images.shape[1:])


# ------------------------------------------------------------------------------------- augmentation
def gaussian_kernel(sigma):
    """scipy.ndimage.gaussian_filter1d's kernel: radius int(4*sigma + 0.5), exp(-x^2/(2 sigma^2)), sum 1."""
    r = int(4.0 * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


@functools.lru_cache(maxsize=None)
def gaussian_matrix(sigma, n):
    """(n, n) band matrix G with G[i, j] = kernel[j - i + r]: G @ f is the 1-D zero-padded convolution along
    f's rows axis (the same sums as F.conv1d with padding r, as two small matmuls, faster on CPU)."""
    k = gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    d = j - i + r
    return torch.where((d >= 0) & (d < len(k)), k[d.clamp(0, len(k) - 1)], torch.zeros(()))


def displacement(kind, b, h, w, gen, sigma=4.0, alpha=34.0, shift=0):
    """(B, H, W, 2) source-minus-output offsets in pixels (last dim: dx, dy), and the grid_sample mode."""
    if kind == "elastic":  # Simard 2003: uniform [-1, 1] fields, Gaussian-smoothed (zero padding), times alpha
        field = torch.rand(b, 2, h, w, generator=gen) * 2.0 - 1.0
        field = gaussian_matrix(sigma, h) @ field @ gaussian_matrix(sigma, w).T  # separable, zero padded
        return (alpha * field).permute(0, 2, 3, 1), "bilinear"
    if kind == "shift":  # integer translation, each axis uniform in {-N..N}; nearest == bilinear here, exactly
        s = torch.randint(-shift, shift + 1, (b, 1, 1, 2), generator=gen).to(torch.float32)
        return s.expand(b, h, w, 2), "nearest"
    if kind == "affine":  # forward map A = R(theta) Shear(k) Scale(s) about the centre; source = c + A^-1 (p - c)
        u = torch.rand(b, 3, generator=gen, dtype=torch.float64) * 2.0 - 1.0
        th = u[:, 0] * math.radians(AFFINE_MAX_ROT_DEG)
        sc = AFFINE_SCALE[0] + (u[:, 1] + 1.0) / 2.0 * (AFFINE_SCALE[1] - AFFINE_SCALE[0])
        sh = u[:, 2] * AFFINE_MAX_SHEAR
        return affine_displacement(th, sc, sh, h, w), "bilinear"
    raise ValueError(kind)


def affine_displacement(theta, scale, shear, h, w):
    """Displacement field of the inverse of A = R(theta) [[1, shear], [0, 1]] scale, about the image centre."""
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    shr = torch.zeros_like(rot)
    shr[:, 0, 0], shr[:, 0, 1], shr[:, 1, 1] = 1.0, shear, 1.0
    a_inv = torch.linalg.inv(rot @ shr * scale.view(-1, 1, 1))  # (B, 2, 2), float64
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    p = torch.stack([xs - (w - 1) / 2.0, ys - (h - 1) / 2.0], -1)  # (H, W, 2) offsets from the centre
    src = torch.einsum("bij,hwj->bhwi", a_inv, p)
    return (src - p).to(torch.float32)


def warp(x, disp, mode, h, w):
    """Resample (B, H*W) images at output pixel + disp (pixels), zeros outside; returns (B, H*W)."""
    b = x.shape[0]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    gx = (xs + disp[..., 0]) * (2.0 / (w - 1)) - 1.0  # align_corners=True: -1 and +1 are the corner pixels' centres
    gy = (ys + disp[..., 1]) * (2.0 / (h - 1)) - 1.0
    out = F.grid_sample(x.view(b, 1, h, w), torch.stack([gx, gy], -1), mode=mode,
                        padding_mode="zeros", align_corners=True)
    return out.view(b, h * w)


def parse_augment(s):
    """'none' | 'elastic' | 'affine' | 'shift:N' -> (kind, N)."""
    if s in ("none", "elastic", "affine"):
        return s, 0
    if s.startswith("shift:") and s[6:].isdigit() and int(s[6:]) >= 1:
        return "shift", int(s[6:])
    raise argparse.ArgumentTypeError(f"--augment {s}: expected none, elastic, affine or shift:N (N >= 1)")


# ------------------------------------------------------------------------------------------- model
def build_model(d, hidden, k, dropout, input_dropout):
    """[Dropout(input)], then Linear, ReLU, Dropout per hidden width, then Linear; He-normal weights, zero biases."""
    layers, fan_in = ([nn.Dropout(input_dropout)] if input_dropout > 0 else []), d
    for h in hidden:
        layers += [nn.Linear(fan_in, h), nn.ReLU(), nn.Dropout(dropout)]
        fan_in = h
    layers.append(nn.Linear(fan_in, k))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")  # N(0, 2/fan_in)
            nn.init.zeros_(m.bias)
    return model


def make_optimizer(model, a):
    """torch.optim's own optimiser; biases go to a weight_decay=0 group with --no-decay-bias."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    weights, biases = [m.weight for m in linears], [m.bias for m in linears]
    groups = [{"params": weights + ([] if a.no_decay_bias else biases)}]
    if a.no_decay_bias:
        groups.append({"params": biases, "weight_decay": 0.0})
    if a.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(groups, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
                               nesterov=a.optimizer == "nesterov")
    cls = torch.optim.Adam if a.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, weight_decay=a.weight_decay)


@torch.no_grad()
def max_norm_(model, c):
    """Scale each Linear weight row (a unit's incoming weights) back to L2 norm c if longer; biases untouched."""
    for m in model:
        if isinstance(m, nn.Linear):
            m.weight.mul_(torch.clamp(c / m.weight.norm(dim=1, keepdim=True), max=1.0))


@torch.no_grad()
def accuracy(model, x, y, batch=10000):
    model.eval()
    correct = sum((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
                  for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


# ------------------------------------------------------------------------------ pictures and checks
def write_png(path, img):
    """8-bit greyscale PNG from a 2-D uint8 array (no imaging library needed)."""
    h, w = img.shape
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def disp_stats(disp):
    d = disp.reshape(-1, 2).double()
    return (f"mean |dx| {d[:, 0].abs().mean():.3f} px, mean |dy| {d[:, 1].abs().mean():.3f} px, "
            f"mean |d| {d.norm(dim=1).mean():.3f} px, max |d| {d.norm(dim=1).max():.2f} px")


def augment_grid(a, x, hw, gen):
    """PNG: each row is one training image followed by `cols` independent augmentations of it, 2x enlarged."""
    (h, w), cols, n = hw, 5, a.count
    src = x[:n].repeat_interleave(cols, 0)
    disp, mode = displacement(a.aug_kind, len(src), h, w, gen, a.elastic_sigma, a.elastic_alpha, a.aug_shift)
    out = warp(src, disp, mode, h, w).view(n, cols, h, w)
    tiles = torch.cat([x[:n].view(n, 1, h, w), out], 1)  # (n, 1+cols, h, w)
    pad = F.pad(tiles, (1, 1, 1, 1), value=0.5)  # grey frame around every tile
    grid = pad.permute(0, 2, 1, 3).reshape(n * (h + 2), (1 + cols) * (w + 2))
    img = (grid.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    write_png(a.augment_grid, np.kron(img, np.ones((2, 2), dtype=np.uint8)))
    print(f"wrote {a.augment_grid}: {n} rows of original + {cols} x '{a.augment}'; {disp_stats(disp)}")


def time_augment(a, model, opt, loss_fn, x, y, hw, gen):
    """Best and median of N calls: one training step of the model on one batch, then one batch of each warp."""
    n, (h, w) = a.time_augment, hw
    xb, yb = x[: a.batch_size], y[: a.batch_size]
    b = len(xb)  # fewer than --batch-size when --limit leaves fewer images

    def step():
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def augment(kind, shift):
        disp, mode = displacement(kind, b, h, w, gen, a.elastic_sigma, a.elastic_alpha, shift)
        return warp(xb, disp, mode, h, w)

    for name, fn in [("training step", step), ("augment elastic", lambda: augment("elastic", 0)),
                     ("augment affine", lambda: augment("affine", 0)), ("augment shift:2", lambda: augment("shift", 2))]:
        fn()  # warm-up, not timed
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"{name:16s} batch {b}: best {min(ts) * 1e3:.2f} ms, median {statistics.median(ts) * 1e3:.2f} ms of {n}")


def self_check(x, hw):
    """Independent checks of the warps; prints one line each, raises on failure."""
    h, w = hw
    g = torch.Generator().manual_seed(0)
    img = x[:64]
    # 1. zero displacement (elastic with alpha 0) reproduces the images.
    d0, _ = displacement("elastic", 64, h, w, g, 4.0, 0.0)
    err = (warp(img, d0, "bilinear", h, w) - img).abs().max().item()
    assert err < 1e-5, err
    print(f"ok  identity warp (elastic alpha=0): max |out - in| = {err:.1e}")
    # 2. shift:N equals an explicit zero-filled translation (pad + crop in numpy).
    ds, mode = displacement("shift", 64, h, w, g, shift=3)
    out = warp(img, ds, mode, h, w).view(64, h, w).numpy()
    ref = np.zeros_like(out)
    for i in range(64):
        sx, sy = int(ds[i, 0, 0, 0]), int(ds[i, 0, 0, 1])  # out(y, x) = in(y + sy, x + sx)
        padded = np.pad(img[i].view(h, w).numpy(), 3)
        ref[i] = padded[3 + sy : 3 + sy + h, 3 + sx : 3 + sx + w]
    assert np.array_equal(out, ref), np.abs(out - ref).max()
    print(f"ok  shift:3 == numpy pad+crop translation, bit-exact on 64 images (shifts in "
          f"[{int(ds.min())}, {int(ds.max())}])")
    # 3. bilinear half-pixel shift equals the average of the two neighbours (zeros beyond the edge).
    half = torch.zeros(64, h, w, 2)
    half[..., 0] = 0.5
    out = warp(img, half, "bilinear", h, w).view(64, h, w)
    im = img.view(64, h, w)
    ref = 0.5 * (im + F.pad(im[:, :, 1:], (0, 1)))
    err = (out - ref).abs().max().item()
    assert err < 1e-5, err
    print(f"ok  dx=+0.5 px bilinear == mean of pixel and right neighbour (pixel-centre sampling): {err:.1e}")
    # 4. affine with theta = 90 deg, scale 1, shear 0 is an exact quarter turn about the centre.
    one = torch.ones(64, dtype=torch.float64)
    dr = affine_displacement(one * math.pi / 2, one, one * 0, h, w)
    out = warp(img, dr, "bilinear", h, w).view(64, h, w)
    errs = {k: (out - torch.rot90(im, k, (1, 2))).abs().max().item() for k in (1, -1)}
    k = min(errs, key=errs.get)
    assert errs[k] < 1e-5, errs
    print(f"ok  affine theta=+90 deg == torch.rot90(k={k}) (visually clockwise, y down): {errs[k]:.1e}")
    # 5. affine scale 2 about the centre: output pixel p samples c + (p - c)/2.
    dz = affine_displacement(one * 0, one * 2, one * 0, h, w)
    cx = (w - 1) / 2
    assert abs(dz[0, 0, 0, 0].item() - ((0 - cx) / 2 - (0 - cx))) < 1e-5
    print(f"ok  affine scale=2 samples the source at centre + offset/2 (corner displacement "
          f"{dz[0, 0, 0, 0].item():+.2f} px)")
    # 6. the separable conv equals a direct 2-D Gaussian sum with zero padding (float64 numpy).
    kern = gaussian_kernel(4.0).double().numpy()
    f = (torch.rand(1, h, w, generator=g) * 2 - 1).double().numpy()[0]
    direct = np.zeros_like(f)
    r = (len(kern) - 1) // 2
    fp = np.pad(f, r)
    for yy in range(h):
        for xx in range(w):
            direct[yy, xx] = (np.outer(kern, kern) * fp[yy : yy + 2 * r + 1, xx : xx + 2 * r + 1]).sum()
    k32 = gaussian_kernel(4.0).view(1, 1, -1, 1)
    sep = F.conv2d(F.conv2d(torch.from_numpy(f).float().view(1, 1, h, w), k32, padding=(r, 0)),
                   k32.view(1, 1, 1, -1), padding=(0, r)).view(h, w).double().numpy()
    mat = (gaussian_matrix(4.0, h) @ torch.from_numpy(f).float() @ gaussian_matrix(4.0, w).T).double().numpy()
    err, err_m = np.abs(sep - direct).max(), np.abs(mat - direct).max()
    assert err < 1e-5 and err_m < 1e-5, (err, err_m)
    print(f"ok  Gaussian smoothing (sigma 4, {len(kern)} taps, zero padding): band-matrix form used in training "
          f"{err_m:.1e}, F.conv2d separable {err:.1e} from the direct 2-D sum")
    # 7. max-norm: rows longer than C end at exactly C (== torch.renorm), shorter rows and biases untouched.
    model = build_model(h * w, [32], 10, 0.0, 0.0)
    with torch.no_grad():
        model[0].weight.mul_(torch.linspace(0.1, 3.0, 32).view(-1, 1) / model[0].weight.norm(dim=1, keepdim=True))
        model[0].bias.fill_(7.0)
    ref = torch.renorm(model[0].weight, 2, 0, 1.5)
    before = model[0].weight.clone()
    max_norm_(model, 1.5)
    n = model[0].weight.norm(dim=1)
    short = before.norm(dim=1) <= 1.5
    assert (n <= 1.5 + 1e-6).all() and torch.equal(model[0].weight[short], before[short])
    assert (model[0].weight - ref).abs().max() < 1e-6 and (model[0].bias == 7.0).all()
    print(f"ok  max-norm 1.5: {int((~short).sum())} long rows scaled to norm {n[~short].min():.6f}..{n[~short].max():.6f}"
          f", {int(short.sum())} short rows and the biases unchanged, == torch.renorm")
    # 8. displacement sizes of each augmentation, over 1000 draws.
    for kind in ("elastic", "affine", "shift"):
        dd, _ = displacement(kind, 1000, h, w, g, 4.0, 34.0, 2)
        print(f"    {kind + (':2' if kind == 'shift' else ''):8s} {disp_stats(dd)}")


# -------------------------------------------------------------------------------------------- main
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(here, "..", "..", "data", "mnist"))
    p.add_argument("--hidden", default="256", help="comma list of widths, e.g. 1024,1024; 'none' = no hidden layer")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=["sgd", "nesterov", "adam", "adamw"], default="sgd")
    p.add_argument("--lr", type=float, default=None, help="default 0.1 (sgd, nesterov), 0.001 (adam, adamw)")
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--momentum", type=float, default=0.9, help="sgd/nesterov")
    p.add_argument("--beta1", type=float, default=0.9, help="adam/adamw")
    p.add_argument("--beta2", type=float, default=0.999, help="adam/adamw")
    p.add_argument("--eps", type=float, default=1e-8, help="adam/adamw")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="L2 added to the gradient (sgd, nesterov, adam); decoupled (adamw); "
                        "default 0, or 0.01 with adamw (simplenn's and torch.optim.AdamW's default)")
    p.add_argument("--no-decay-bias", action="store_true", help="biases get weight_decay 0 (default: decayed)")
    p.add_argument("--max-norm", type=float, default=None, help="after each step, Linear weight rows to L2 <= C")
    p.add_argument("--dropout", type=float, default=0.2, help="after each hidden ReLU")
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--augment", type=parse_augment, default=("none", 0), help="none | elastic | shift:N | affine")
    p.add_argument("--elastic-sigma", type=float, default=4.0)
    p.add_argument("--elastic-alpha", type=float, default=34.0)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="at least 1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val", type=int, default=5000, help="hold out the last N training images")
    p.add_argument("--limit", type=int, default=None, help="train on the first N of the remaining images only")
    p.add_argument("--augment-grid", metavar="PNG", help="write originals beside --augment samples, then exit")
    p.add_argument("--count", type=int, default=8, help="rows of --augment-grid")
    p.add_argument("--self-check", action="store_true", help="check the warps against references, then exit")
    p.add_argument("--time-augment", type=int, metavar="N",
                   help="time N training steps of the model and N batches of each augmentation, then exit")
    a = p.parse_args()
    a.aug_kind, a.aug_shift = a.augment
    a.augment = a.aug_kind + (f":{a.aug_shift}" if a.aug_kind == "shift" else "")
    if a.lr is None:
        a.lr = 0.1 if a.optimizer in ("sgd", "nesterov") else 0.001
    if a.weight_decay is None:
        a.weight_decay = 0.01 if a.optimizer == "adamw" else 0.0
    for bad, msg in [
        (a.epochs < 1 or a.batch_size < 1, "--epochs and --batch-size must be at least 1"),
        (a.threads < 1, f"--threads {a.threads}: must be at least 1"),
        (a.time_augment is not None and a.time_augment < 1, f"--time-augment {a.time_augment}: must be at least 1"),
        (not a.lr > 0, f"--lr {a.lr}: must be > 0"),
        (not 0 <= a.momentum < 1, f"--momentum {a.momentum}: must be in [0, 1)"),
        (a.optimizer == "nesterov" and a.momentum == 0, "--optimizer nesterov needs --momentum > 0"),
        (not (0 <= a.beta1 < 1 and 0 <= a.beta2 < 1), "--beta1/--beta2: must be in [0, 1)"),
        (not a.eps > 0, f"--eps {a.eps}: must be > 0"),
        (not a.weight_decay >= 0, f"--weight-decay {a.weight_decay}: must be >= 0"),
        (a.max_norm is not None and not a.max_norm > 0, f"--max-norm {a.max_norm}: must be > 0"),
        (not (0 <= a.dropout < 1 and 0 <= a.input_dropout < 1), "--dropout/--input-dropout: must be in [0, 1)"),
        (not (a.elastic_sigma > 0 and a.elastic_alpha >= 0), "--elastic-sigma must be > 0, --elastic-alpha >= 0"),
    ]:
        if bad:
            p.error(msg)

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    aug_gen = torch.Generator().manual_seed(a.seed + 1_000_003)  # augmentation draws, apart from init/shuffle/dropout
    hidden = [] if a.hidden.strip().lower() == "none" else a.hidden.split(",")
    if not all(h.strip().isdigit() and int(h) > 0 for h in hidden):
        p.error(f"--hidden {a.hidden}: widths are whole numbers of at least 1, e.g. 256 or 1024,1024 (or none)")
    hidden = [int(h) for h in hidden]
    if not os.path.isdir(a.data):
        p.error(f"--data {a.data}: no such directory; pass the directory holding the MNIST-format files")

    # Everything is loaded and converted before any timing starts.
    x_all, y_all, hw = load_split(a.data, "train")
    x_test, y_test, _ = load_split(a.data, "t10k")
    if a.aug_kind == "shift" and a.aug_shift >= min(hw):
        p.error(f"--augment {a.augment}: the images are only {hw[0]}x{hw[1]}")
    if a.self_check:
        return self_check(x_all, hw)
    if a.augment_grid:
        return augment_grid(a, x_all, hw, aug_gen)
    if not 0 <= a.val < len(x_all):
        p.error(f"--val {a.val}: must be in [0, {len(x_all)})")
    n_train = len(x_all) - a.val
    if a.limit is not None:
        n_train = max(1, min(a.limit, n_train))
    x_tr, y_tr = x_all[:n_train].contiguous(), y_all[:n_train].contiguous()
    x_val, y_val = x_all[len(x_all) - a.val :], y_all[len(x_all) - a.val :]
    d, k = x_tr.shape[1], int(y_all.max()) + 1

    model = build_model(d, hidden, k, a.dropout, a.input_dropout)
    opt = make_optimizer(model, a)
    loss_fn = nn.CrossEntropyLoss()
    if a.time_augment is not None:
        return time_augment(a, model, opt, loss_fn, x_tr, y_tr, hw, aug_gen)
    steps_per_epoch = math.ceil(n_train / a.batch_size)
    total_steps, t = a.epochs * steps_per_epoch, 0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {d}-"
          + "".join(f"{h}-" for h in hidden) + f"{k}, train {n_train}, val {a.val}, batch {a.batch_size}, "
          f"{a.optimizer} lr {a.lr} {a.schedule}, dropout {a.input_dropout}/{a.dropout}, "
          f"max-norm {a.max_norm}, augment {a.augment}", flush=True)

    secs, rates, test_accs, cum = [], [], [], []
    reached = {thr: None for thr in TARGETS}
    wall0 = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        model.train()
        loss_sum = 0.0
        t0 = time.perf_counter()
        order = torch.randperm(n_train)
        for i in range(0, n_train, a.batch_size):
            idx = order[i : i + a.batch_size]
            xb = x_tr[idx]
            if a.aug_kind != "none":
                disp, mode = displacement(a.aug_kind, len(idx), hw[0], hw[1], aug_gen,
                                          a.elastic_sigma, a.elastic_alpha, a.aug_shift)
                xb = warp(xb, disp, mode, hw[0], hw[1])
            if a.schedule == "cosine":  # cosine from lr to 0, stepped every batch
                for g in opt.param_groups:
                    g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * t / total_steps))
            loss = loss_fn(model(xb), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if a.max_norm is not None:
                max_norm_(model, a.max_norm)
            loss_sum += loss.detach() * len(idx)  # kept as a tensor: no sync/item() per step
            t += 1
        dt = time.perf_counter() - t0
        secs.append(dt)
        rates.append(n_train / dt)
        cum.append(sum(secs))
        val = f"val {100 * accuracy(model, x_val, y_val):6.2f}%" if a.val > 0 else "val    -   "
        test_accs.append(accuracy(model, x_test, y_test))
        wall = time.perf_counter() - wall0
        for thr in reached:
            if reached[thr] is None and test_accs[-1] >= thr:
                reached[thr] = (epoch, cum[-1], wall)
        print(f"epoch {epoch:3d}/{a.epochs}  loss {loss_sum.item() / n_train:.4f}  {val}  "
              f"test {100 * test_accs[-1]:6.2f}%  {dt:7.3f} s  cum {cum[-1]:8.2f} s  wall {wall:8.2f} s  "
              f"{n_train / dt:6.0f} samples/s", flush=True)

    total_wall = time.perf_counter() - wall0
    test_acc = test_accs[-1]
    kept = slice(1, None) if len(secs) >= 3 else slice(None)  # drop the warm-up epoch when >= 3
    med_s, med_rate = statistics.median(secs[kept]), statistics.median(rates[kept])
    print(f"test accuracy {100 * test_acc:.2f}%  median {med_s:.3f} s/epoch  {med_rate:.0f} samples/s"
          f" (over {len(secs[kept])} epoch(s){', first excluded' if len(secs) >= 3 else ''})")
    print(f"total: training {cum[-1]:.2f} s, wall {total_wall:.2f} s (evaluation included)")
    for thr, r in reached.items():
        print(f"test >= {100 * thr:g}%: " + (f"epoch {r[0]}, training {r[1]:.2f} s, wall {r[2]:.2f} s"
                                               if r else "never"))
    threads_line = next((l for l in torch.__config__.parallel_info().splitlines()
                         if l.strip().startswith("at::get_num_threads()")), "")
    result = {
        "peer": "torch", "torch": torch.__version__, "hidden": hidden, "threads": a.threads,
        "parallel_info_threads": int(threads_line.split(":")[-1]) if threads_line else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "epochs": a.epochs, "batch_size": a.batch_size,
        "optimizer": a.optimizer, "lr": a.lr, "schedule": a.schedule, "momentum": a.momentum,
        "beta1": a.beta1, "beta2": a.beta2, "eps": a.eps, "weight_decay": a.weight_decay,
        "decay_bias": not a.no_decay_bias, "max_norm": a.max_norm, "dropout": a.dropout,
        "input_dropout": a.input_dropout, "augment": a.augment,
        "elastic_sigma": a.elastic_sigma if a.aug_kind == "elastic" else None,
        "elastic_alpha": a.elastic_alpha if a.aug_kind == "elastic" else None,
        "seed": a.seed, "val": a.val, "train": n_train, "test_acc": round(test_acc, 4),
        "test_acc_per_epoch": [round(v, 4) for v in test_accs],
        "median_s_per_epoch": round(med_s, 4), "median_samples_per_s": round(med_rate, 1),
        "train_s": round(cum[-1], 3), "wall_s": round(total_wall, 3),
    }
    for thr, r in reached.items():  # e.g. train_s_to_98 / wall_s_to_98: null when never reached
        result[f"train_s_to_{100 * thr:g}"] = round(r[1], 3) if r else None
        result[f"wall_s_to_{100 * thr:g}"] = round(r[2], 3) if r else None
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
