#!/usr/bin/env python3
"""PyTorch peer of simplenn: the same MLP recipe, trained on CPU, for a side-by-side speed comparison.

Run from the repository root with a venv that lives OUTSIDE the repo (see benches/peers/README.md):

    /work/torch-venv/bin/python benches/peers/torch_mlp.py --threads 1 --hidden 256 --epochs 5
    /work/torch-venv/bin/python benches/peers/torch_mlp.py --threads 2 --hidden 256 --epochs 5
    /work/torch-venv/bin/python benches/peers/torch_mlp.py --threads 2 --hidden 1024,1024 --epochs 3

Recipe (simplenn's defaults): inputs x/255, Linear/ReLU/Dropout(p) per hidden layer then a final Linear,
He-normal weights N(0, 2/fan_in) and zero biases, cross-entropy, SGD(lr 0.1, momentum 0.9) with the
learning rate set every step to lr*0.5*(1+cos(pi*t/T)) (t = 0..T-1, T = all steps of the run), batch 128
reshuffled each epoch (the last, partial batch is kept, as in simplenn), the last 5000 training images
held out for validation, dropout 0.2.

Timing difference to keep in mind: this script pre-loads the whole training split as one float32 tensor
(already divided by 255) before any timing, so each timed step only indexes it. simplenn's own s/epoch
*includes* its per-batch gather from the mmap'd u8 images (u8 -> f32, /255) and the epoch's shuffle.
Here only the training steps (plus the cheap randperm) are timed; validation is not, in either.
"""
import argparse
import gzip
import json
import math
import os
import statistics
import struct
import time

import numpy as np
import torch
from torch import nn


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
    """(N, D) float32 tensor of x/255 and (N,) int64 labels for 'train' or 't10k'."""
    images = read_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(directory, f"{prefix}-labels-idx1-ubyte")
    n = images.shape[0]
    x = torch.from_numpy(images.reshape(n, -1).astype(np.float32) / 255.0)  # D = rows*cols
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build_model(d, hidden, k, dropout):
    """Linear, ReLU, Dropout per hidden width, then Linear to K classes; He-normal weights, zero biases."""
    layers, fan_in = [], d
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


@torch.no_grad()
def accuracy(model, x, y, batch=10000):
    model.eval()
    correct = sum((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
                  for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(here, "..", "..", "data", "mnist"))
    p.add_argument("--hidden", default="256", help="comma list of widths, e.g. 1024,1024; 'none' = no hidden layer")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val", type=int, default=5000)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    hidden = [] if a.hidden.strip().lower() == "none" else [int(h) for h in a.hidden.split(",")]

    # Everything is loaded and converted before any timing starts.
    x_all, y_all = load_split(a.data, "train")
    x_test, y_test = load_split(a.data, "t10k")
    n_train = len(x_all) - a.val
    x_tr, y_tr = x_all[:n_train].contiguous(), y_all[:n_train].contiguous()
    x_val, y_val = x_all[n_train:], y_all[n_train:]
    d, k = x_tr.shape[1], int(y_all.max()) + 1

    model = build_model(d, hidden, k, a.dropout)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(n_train / a.batch_size)
    total_steps, t = a.epochs * steps_per_epoch, 0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {d}-"
          + "".join(f"{h}-" for h in hidden) + f"{k}, train {n_train}, val {a.val}, batch {a.batch_size}")

    secs, rates = [], []
    for epoch in range(1, a.epochs + 1):
        model.train()
        loss_sum = 0.0
        t0 = time.perf_counter()
        order = torch.randperm(n_train)
        for i in range(0, n_train, a.batch_size):
            idx = order[i : i + a.batch_size]
            for g in opt.param_groups:  # cosine from lr to 0, stepped every batch
                g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * t / total_steps))
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)  # kept as a tensor: no sync/item() per step
            t += 1
        dt = time.perf_counter() - t0
        secs.append(dt)
        rates.append(n_train / dt)
        val = f"val acc {100 * accuracy(model, x_val, y_val):6.2f}%" if a.val > 0 else "val -"
        print(f"epoch {epoch:3d}/{a.epochs}  train loss {loss_sum.item() / n_train:.4f}  {val}"
              f"  {dt:.3f} s  {n_train / dt:.0f} samples/s", flush=True)

    test_acc = accuracy(model, x_test, y_test)
    kept = slice(1, None) if len(secs) >= 3 else slice(None)  # drop the warm-up epoch when >= 3
    med_s, med_rate = statistics.median(secs[kept]), statistics.median(rates[kept])
    print(f"test accuracy {100 * test_acc:.2f}%  median {med_s:.3f} s/epoch  {med_rate:.0f} samples/s"
          f" (over {len(secs[kept])} epoch(s){', first excluded' if len(secs) >= 3 else ''})")
    threads_line = next((l for l in torch.__config__.parallel_info().splitlines()
                         if l.strip().startswith("at::get_num_threads()")), "")
    result = {
        "peer": "torch", "torch": torch.__version__, "hidden": hidden, "threads": a.threads,
        "parallel_info_threads": int(threads_line.split(":")[-1]) if threads_line else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "epochs": a.epochs, "batch_size": a.batch_size, "test_acc": round(test_acc, 4),
        "median_s_per_epoch": round(med_s, 4), "median_samples_per_s": round(med_rate, 1),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
