#!/usr/bin/env python
"""Train the default LeNet on the bundled digits with matconv, PyTorch and JAX, in one run.

The same network (``matconv.models.lenet``: conv 3x3 1->32, ReLU, max pool, conv 3x3 32->64,
ReLU, max pool, dense 256->128, ReLU, dense 128->10), the same initial weights (matconv's, copied
into the others), Adam (lr 2e-3, PyTorch's defaults otherwise), batch 64, the same shuffling
order; the training loop alone is timed (no evaluation inside it; JAX's step is compiled for both
batch shapes before the clock starts). Each framework trains once per seed, the frameworks taking
turns with a pause between them; the table shows medians over seeds.

Also printed: the test accuracy of every seed, and the memory (``step MB``: resident memory one
training step of a fresh model adds at its peak; ``run MB``: the peak of a whole training run
above the memory before it).

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_train.py                # 7 seeds, 30 epochs (~3 min)
    PYTHONPATH=. python benchmarks/bench_train.py --quick        # smoke test
    PYTHONPATH=. python benchmarks/bench_train.py --with-sparse  # also every conv as sparse A
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from common import PeakMemory, machine_info

from matconv import data, models, nn, optim, train

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
try:
    import jax
except ImportError:  # pragma: no cover
    jax = None

TARGET = 0.8   # matconv's training time / PyTorch's, at equal test accuracy (+- 0.01)


# --------------------------------------------------------------------------- matconv
def matconv_trainer(args, lowering):
    def prepare(seed):
        model = models.lenet(seed=seed, dtype=args.dtype, lowering=lowering)
        return model, optim.Adam(model.parameters(), lr=args.lr), nn.CrossEntropyLoss()

    def step(state, xb, yb):
        model, opt, loss_fn = state
        opt.zero_grad()
        loss_fn(model(xb), yb)
        model.backward(loss_fn.backward(), input_grad=False)  # as torch: x needs no grad
        opt.step()

    def train_run(seed, xtr, ytr):
        state = prepare(seed)
        start = time.perf_counter()
        train.fit(state[0], state[2], state[1], xtr, ytr, epochs=args.epochs,
                  batch_size=args.batch_size, seed=seed, progress=False)
        return time.perf_counter() - start, state

    def accuracy(state, xte, yte):
        return train.evaluate(state[0], xte, yte)

    return prepare, step, train_run, accuracy


# --------------------------------------------------------------------------- PyTorch
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


def torch_trainer(args):
    def prepare(seed):
        net = torch_lenet(models.lenet(seed=seed, dtype=args.dtype))
        net = net.double() if args.dtype == "float64" else net
        return net, torch.optim.Adam(net.parameters(), lr=args.lr), torch.nn.CrossEntropyLoss()

    def step(state, xb, yb):
        net, opt, loss_fn = state
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()

    def train_run(seed, xtr, ytr):
        state = prepare(seed)
        X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
        rng = np.random.default_rng(seed)  # the same shuffling as matconv's fit
        start = time.perf_counter()
        for _ in range(args.epochs):
            for idx in train.iterate_minibatches(len(xtr), args.batch_size, rng):
                idx = torch.from_numpy(idx)
                step(state, X[idx], Y[idx])
        return time.perf_counter() - start, state

    def accuracy(state, xte, yte):
        with torch.no_grad():
            return float((state[0](torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())

    def torch_step(state, xb, yb):
        step(state, torch.from_numpy(xb), torch.from_numpy(yb))

    return prepare, torch_step, train_run, accuracy


# --------------------------------------------------------------------------- JAX
def jax_trainer(args):
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import jax.numpy as jnp
    from jax import lax

    def conv(x, w, b):
        y = lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (1, 1)],
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + b[None, :, None, None]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def forward(p, x):
        y = pool(jax.nn.relu(conv(x, p["0.weight"], p["0.bias"])))
        y = pool(jax.nn.relu(conv(y, p["3.weight"], p["3.bias"])))
        y = jax.nn.relu(y.reshape(y.shape[0], -1) @ p["7.weight"].T + p["7.bias"])
        return y @ p["9.weight"].T + p["9.bias"]

    def loss(p, x, y):
        logp = jax.nn.log_softmax(forward(p, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def update(p, m, v, t, x, y):
        g = jax.grad(loss)(p, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        scale = args.lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (
            jnp.sqrt(v) + eps * jnp.sqrt(1 - b2 ** t)), p, m, v)   # PyTorch's Adam, rearranged
        return p, m, v, t

    def prepare(seed):
        params = {k: jnp.asarray(v) for k, v in
                  models.lenet(seed=seed, dtype=args.dtype).state_dict().items()}
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return [params, zeros, zeros, jnp.asarray(0.0, dtype=args.dtype)]

    def step(state, xb, yb):
        state[:] = update(*state, xb, yb)
        jax.block_until_ready(state[0])

    def train_run(seed, xtr, ytr):
        warm = prepare(seed)
        for n in {args.batch_size, len(xtr) % args.batch_size or args.batch_size}:
            step(warm, xtr[:n], ytr[:n])     # compile each batch shape before the clock starts
        state = prepare(seed)
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        for _ in range(args.epochs):
            for idx in train.iterate_minibatches(len(xtr), args.batch_size, rng):
                state[:] = update(*state, xtr[idx], ytr[idx])
        jax.block_until_ready(state[0])
        return time.perf_counter() - start, state

    def accuracy(state, xte, yte):
        return float((np.asarray(forward(state[0], xte)).argmax(1) == yte).mean())

    return prepare, step, train_run, accuracy


# --------------------------------------------------------------------------- the run
def step_memory(trainer, xtr, ytr, batch):
    """MiB one training step of a fresh model adds at its peak (caches and buffers included)."""
    prepare, step, _, _ = trainer
    state = prepare(0)
    with PeakMemory() as mem:
        step(state, xtr[:batch], ytr[:batch])
    return mem.extra / 2**20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--repeats", type=int, default=7, help="seeds 0..repeats-1 (default 7)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--with-sparse", action="store_true", help="also matconv with every conv "
                   "as the whole sparse operator")
    p.add_argument("--quick", action="store_true", help="2 epochs, 1 seed: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 2, 1
    dt = np.dtype(args.dtype)
    xtr, ytr = data.load_digits("train", dtype=dt)
    xte, yte = data.load_digits("test", dtype=dt)
    trainers = {"matconv": matconv_trainer(args, "auto")}
    if args.with_sparse:
        trainers["matconv sparse"] = matconv_trainer(args, "sparse")
    extra = []
    if torch is not None:
        torch.set_num_threads(args.threads)
        trainers["pytorch"] = torch_trainer(args)
        extra.append(f"torch       {torch.__version__} ({torch.get_num_threads()} threads)")
    if jax is not None:
        trainers["jax"] = jax_trainer(args)
        extra.append(f"jax         {jax.__version__} ({jax.devices()[0].platform})")
    print("matconv training benchmark: the default LeNet on the bundled digits")
    for line in machine_info(extra):
        print(line)
    print(f"run         {len(xtr)} train / {len(xte)} test images, {args.epochs} epochs, batch "
          f"{args.batch_size}, Adam lr {args.lr}, {args.dtype}, seeds 0-{args.repeats - 1}")

    memory = {name: step_memory(t, xtr, ytr, args.batch_size) for name, t in trainers.items()}
    seconds = {name: [] for name in trainers}
    accuracy = {name: [] for name in trainers}
    run_mb = {name: [] for name in trainers}
    for seed in range(args.repeats):
        for name, (_, _, train_run, acc) in trainers.items():
            time.sleep(0.2)  # the previous library's threads stop spinning
            with PeakMemory() as mem:
                s, state = train_run(seed, xtr, ytr)
            seconds[name].append(s)
            run_mb[name].append(mem.extra / 2**20)
            accuracy[name].append(acc(state, xte, yte))
        sys.stdout.flush()

    ref = statistics.median(seconds["pytorch"]) if "pytorch" in seconds else None
    ref_acc = statistics.median(accuracy["pytorch"]) if "pytorch" in accuracy else None
    n = len(xtr) * args.epochs
    print(f"\n{'':16}{'train s':>8}{'images/s':>10}{'ms/step':>9}{'vs torch':>9}{'step MB':>9}"
          f"{'run MB':>8}  test accuracy per seed")
    steps = args.epochs * -(-len(xtr) // args.batch_size)
    for name in trainers:
        t = statistics.median(seconds[name])
        ratio = f"{t / ref:8.2f}x" if ref else "        -"
        print(f"{name:<16}{t:8.2f}{n / t:10.0f}{t / steps * 1e3:9.2f}{ratio}"
              f"{memory[name]:9.1f}{statistics.median(run_mb[name]):8.1f}  "
              + " ".join(f"{a:.3f}" for a in accuracy[name]))
    if ref:
        r = statistics.median(seconds["matconv"]) / ref
        gap = abs(statistics.median(accuracy["matconv"]) - ref_acc)
        print(f"SUMMARY train matconv/PyTorch {r:.2f}x (target <= {TARGET}x: "
              f"{'meets' if r <= TARGET else 'misses'}); median test accuracy "
              f"{statistics.median(accuracy['matconv']):.3f} vs {ref_acc:.3f} "
              f"({'equal' if gap <= 0.01 else 'NOT equal'} within 0.01)")
    if "jax" in seconds:
        print(f"SUMMARY train matconv/JAX "
              f"{statistics.median(seconds['matconv']) / statistics.median(seconds['jax']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
