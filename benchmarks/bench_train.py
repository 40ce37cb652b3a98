"""Train the default LeNet-style CNN on the bundled digits with matconv and with PyTorch.

Same architecture, initial weights (matconv's, copied into PyTorch), optimizer (Adam), batch
size, epochs and shuffling order; prints images/s for both and their ratio, plus test accuracy.
matconv runs twice: with its default lowering (``'auto'``, im2col for these layers) and with
every convolution forced to the whole sparse operator.

Run:  python benchmarks/bench_train.py [--epochs 30] [--repeats 3] [--dtype float32]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from matconv import data, models, nn, optim, train

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def torch_lenet(ours):
    """The PyTorch twin of ``models.lenet``'s network, with matconv's initial weights."""
    c1, c2 = ours[0].out_channels, ours[3].out_channels
    hidden, classes = ours[7].out_features, ours[9].out_features
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, c1, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(c1, c2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(c2 * 4, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, classes))
    net.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return net


def run_matconv(args, seed, xtr, ytr, xte, yte, lowering):
    model = models.lenet(seed=seed, dtype=args.dtype, lowering=lowering)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    history = train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, epochs=args.epochs,
                        batch_size=args.batch_size, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    return seconds, train.evaluate(model, xte, yte), history


def run_torch(args, seed, xtr, ytr, xte, yte):
    net = torch_lenet(models.lenet(seed=seed, dtype=args.dtype))
    net = net.double() if args.dtype == "float64" else net
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    rng = np.random.default_rng(seed)  # the same shuffling as matconv's fit
    start = time.perf_counter()
    for _ in range(args.epochs):
        for idx in train.iterate_minibatches(len(xtr), args.batch_size, rng):
            idx = torch.from_numpy(idx)
            opt.zero_grad()
            loss = loss_fn(net(X[idx]), Y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    return seconds, acc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--repeats", type=int, default=3, help="seeds 0..repeats-1")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args()
    dt = np.dtype(args.dtype)
    xtr, ytr = data.load_digits("train", dtype=dt)
    xte, yte = data.load_digits("test", dtype=dt)
    n = len(xtr) * args.epochs
    print(f"# bench_train  {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}"
          f"  numpy {np.__version__}  torch {torch.__version__ if torch else '-'}  {args.dtype}")
    print(f"# digits: {len(xtr)} train / {len(xte)} test images, {args.epochs} epochs, "
          f"batch {args.batch_size}, Adam lr {args.lr}")
    rows = {"matconv default": [], "matconv sparse": [], "pytorch": []}
    accs = {k: [] for k in rows}
    for seed in range(args.repeats):
        for name, lowering in (("matconv default", "auto"), ("matconv sparse", "sparse")):
            s, a, _ = run_matconv(args, seed, xtr, ytr, xte, yte, lowering)
            rows[name].append(s)
            accs[name].append(a)
        time.sleep(0.2)
        if torch is not None:
            torch.set_num_threads(2)
            s, a = run_torch(args, seed, xtr, ytr, xte, yte)
            rows["pytorch"].append(s)
            accs["pytorch"].append(a)
        time.sleep(0.2)
    ref = np.median(rows["pytorch"]) if rows["pytorch"] else None
    print(f"{'':16s} {'train s':>8s} {'images/s':>9s} {'s/epoch':>8s} {'vs torch':>9s}  test accuracy")
    for name, times in rows.items():
        if not times:
            continue
        t = np.median(times)
        ratio = f"{t / ref:8.2f}x" if ref else "        -"
        print(f"{name:16s} {t:8.2f} {n / t:9.0f} {t / args.epochs:8.3f} {ratio}  "
              f"{' '.join(f'{a:.3f}' for a in accs[name])}")


if __name__ == "__main__":
    main()
