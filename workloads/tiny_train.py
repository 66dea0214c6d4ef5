#!/usr/bin/python3
"""A tiny PyTorch training run for gpucolo experiment tests and demos (CPU or GPU).

A 2-layer MLP learns a synthetic 4-class problem (Gaussian clusters in 32 dimensions, generated
in-process from --seed: no downloads). Prints one line per epoch and, at the end, the lines the
experiment runner's metric regexes read:

    Test Accuracy: 93.75
    Best Val Accuracy: 95.31

Arguments: --epochs N --lr X --batch-size N [--samples N] [--seed N] [--device cpu|cuda].
One intra-op thread (torch.set_num_threads(1)): on small CI hosts a foreground and a background
run share the cores without oversubscribing them. A few seconds on one CPU core, most of it
`import torch`.
"""
import argparse
import sys
import time

import torch
from torch import nn


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    if a.epochs < 1 or a.batch_size < 1 or a.samples < 16 or not a.lr > 0:
        print("tiny_train: --epochs, --batch-size >= 1, --samples >= 16, --lr > 0", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    classes, dim = 4, 32
    centers = torch.randn(classes, dim) * 0.35
    y = torch.randint(0, classes, (a.samples,))
    x = centers[y] + torch.randn(a.samples, dim)
    n_train, n_val = int(a.samples * 0.7), int(a.samples * 0.15)
    splits = {
        "train": (x[:n_train], y[:n_train]),
        "val": (x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
        "test": (x[n_train + n_val :], y[n_train + n_val :]),
    }

    model = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, classes)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def accuracy(split: str) -> float:
        xs, ys = splits[split]
        model.eval()
        with torch.no_grad():
            pred = model(xs.to(dev)).argmax(dim=1).cpu()
        model.train()
        return 100.0 * (pred == ys).float().mean().item()

    print(f"tiny_train: {a.samples} samples, epochs {a.epochs}, lr {a.lr}, batch size {a.batch_size}, device {dev}, torch {torch.__version__}", flush=True)
    best_val = 0.0
    xs, ys = splits["train"]
    t0 = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n_train)
        total = 0.0
        for i in range(0, n_train, a.batch_size):
            idx = perm[i : i + a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xs[idx].to(dev)), ys[idx].to(dev))
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val = accuracy("val")
        best_val = max(best_val, val)
        print(f"epoch {epoch}/{a.epochs} loss {total / n_train:.4f} val_acc {val:.2f}", flush=True)
    print(f"train time {time.perf_counter() - t0:.3f} s", flush=True)
    print(f"Test Accuracy: {accuracy('test'):.2f}", flush=True)
    print(f"Best Val Accuracy: {best_val:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
