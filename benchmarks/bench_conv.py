#!/usr/bin/env python
"""Benchmark: a 2-D conv layer's forward and forward+backward, matconv against PyTorch and numpy.

Implementations timed in one run, on the same data:

* ``pytorch``      ``torch.nn.functional.conv2d`` (oneDNN on CPU), input, weight and bias with
                   ``requires_grad``; fwd+bwd is ``y.backward(dy)`` with the grads set to ``None``
                   before each iteration (PyTorch's default ``zero_grad``); 2 threads.
* ``numpy peer``   im2col "written in the usual way" (CS231n / numpy-ml style): fancy-index
                   im2col, one GEMM, col2im with ``np.add.at``. Index arrays are computed once
                   per geometry (a favour to the peer).
* ``matconv``      ``matconv.nn.Conv2d(..., lowering='im2col' | 'sparse')``, ``y = layer(x)``,
                   ``dx = layer.backward(dy)``, in two input layouts:

    - ``C-order``: ``x`` and ``dy`` are ordinary C-contiguous ``(N, C, H, W)`` arrays (the layer
      pays a transpose into its batch-last layout);
    - ``in-net``:  ``x`` and ``dy`` are ``(N, C, H, W)`` views of batch-last ``(C, H, W, N)``
      memory, which is what every matconv layer after the first receives in a network.

    ``lowering='auto'`` resolves to one of the two at construction, so its time is the time of
    the lowering it picks (printed as ``auto->im2col`` / ``auto->sparse``).

Every implementation's output, input gradient and weight gradient are checked against PyTorch
once per config before timing; a mismatch is reported and makes the script exit with status 1.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_conv.py                  # everything, 9 repeats
    PYTHONPATH=. python benchmarks/bench_conv.py --quick          # smoke test
    PYTHONPATH=. python benchmarks/bench_conv.py --configs B,C --dtypes float32 --repeats 15
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

try:
    import matconv
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import matconv
import scipy
import torch
import torch.nn.functional as F

# name: (N, C_in, H, W, C_out, k, stride, pad, dilation, groups)
CONFIGS = {
    "A": (64, 1, 28, 28, 16, 5, 1, 2, 1, 1),
    "B": (64, 16, 14, 14, 32, 3, 1, 1, 1, 1),
    "C": (64, 32, 32, 32, 64, 3, 1, 1, 1, 1),
    "D": (256, 1, 8, 8, 16, 3, 1, 1, 1, 1),
    "E": (64, 16, 28, 28, 32, 3, 2, 1, 1, 1),
    "F": (64, 16, 28, 28, 32, 3, 1, 2, 2, 1),
    # extra configs (not in the target medians), the evidence for lowering='auto':
    # one input and one output channel per group, where the whole sparse operator wins
    "G": (64, 16, 14, 14, 16, 3, 1, 1, 1, 16),   # depthwise
    "H": (64, 1, 28, 28, 1, 5, 1, 2, 1, 1),      # a single filter
}
TARGET_CONFIGS = ("A", "B", "C", "D", "E", "F")
TARGETS = {"float32": 1.5, "float64": 1.0}
TOL = {"float32": 1e-4, "float64": 1e-10}   # max abs error relative to max |reference|
SLEEP = 0.2                                  # OpenBLAS threads spin for a moment after a call
DISTURBED = 0.15     # other processes' load (cores) above which a timing group is measured again
QUIET = 0.05         # ... and below which the machine counts as quiet again
MAX_ATTEMPTS = 4
MIN_GROUP_TIME = 0.1  # s: fast cases get more repeats than --repeats (up to MAX_REPEATS)
MAX_REPEATS = 101
QUIET_MAX_WAIT = 60.0
MATCONV_VARIANTS = [("im2col", "C-order"), ("im2col", "in-net"),
                    ("sparse", "C-order"), ("sparse", "in-net")]


# --------------------------------------------------------------------------- the numpy peer
class NumpyIm2colConv:
    """A conv layer as people usually write it in numpy (CS231n ``conv_forward_im2col`` style)."""

    def __init__(self, w, b, stride, pad, dilation):
        self.w, self.b = w, b
        self.stride, self.pad, self.dilation = stride, pad, dilation
        self._idx = {}

    def _indices(self, x_shape):
        if x_shape not in self._idx:
            N, C, H, W = x_shape
            F_, _, kh, kw = self.w.shape
            s, p, d = self.stride, self.pad, self.dilation
            Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
            Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
            i0 = np.tile(d * np.repeat(np.arange(kh), kw), C)
            i1 = s * np.repeat(np.arange(Ho), Wo)
            j0 = np.tile(d * np.arange(kw), kh * C)
            j1 = s * np.tile(np.arange(Wo), Ho)
            i = i0.reshape(-1, 1) + i1.reshape(1, -1)
            j = j0.reshape(-1, 1) + j1.reshape(1, -1)
            k = np.repeat(np.arange(C), kh * kw).reshape(-1, 1)
            self._idx[x_shape] = (k, i, j, Ho, Wo)
        return self._idx[x_shape]

    def forward(self, x):
        N, C, H, W = x.shape
        F_ = self.w.shape[0]
        p = self.pad
        k, i, j, Ho, Wo = self._indices(x.shape)
        x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
        cols = x_padded[:, k, i, j]                              # (N, C*kh*kw, Ho*Wo)
        cols = cols.transpose(1, 2, 0).reshape(cols.shape[1], -1)
        out = self.w.reshape(F_, -1) @ cols + self.b.reshape(-1, 1)
        out = out.reshape(F_, Ho, Wo, N).transpose(3, 0, 1, 2)
        self.cache = (x.shape, cols)
        return out

    def backward(self, dout):
        x_shape, cols = self.cache
        N, C, H, W = x_shape
        F_ = self.w.shape[0]
        p = self.pad
        k, i, j, Ho, Wo = self._indices(x_shape)
        self.db = dout.sum(axis=(0, 2, 3))
        dout_r = dout.transpose(1, 2, 3, 0).reshape(F_, -1)
        self.dw = (dout_r @ cols.T).reshape(self.w.shape)
        dx_cols = self.w.reshape(F_, -1).T @ dout_r
        # col2im
        x_padded = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dx_cols.dtype)
        cols_r = dx_cols.reshape(dx_cols.shape[0], -1, N).transpose(2, 0, 1)
        np.add.at(x_padded, (slice(None), k, i, j), cols_r)
        return x_padded if p == 0 else x_padded[:, :, p:-p, p:-p]


class GroupedPeer:
    """The usual way to add groups to it: one such layer per group, outputs concatenated."""

    def __init__(self, w, b, stride, pad, dilation, groups):
        o = w.shape[0] // groups
        self.groups = groups
        self.parts = [NumpyIm2colConv(w[i * o:(i + 1) * o], b[i * o:(i + 1) * o], stride, pad,
                                      dilation) for i in range(groups)]

    def forward(self, x):
        xs = np.split(x, self.groups, axis=1)
        return np.concatenate([part.forward(xi) for part, xi in zip(self.parts, xs)], axis=1)

    def backward(self, dout):
        douts = np.split(dout, self.groups, axis=1)
        dx = np.concatenate([part.backward(d) for part, d in zip(self.parts, douts)], axis=1)
        self.dw = np.concatenate([part.dw for part in self.parts])
        self.db = np.concatenate([part.db for part in self.parts])
        return dx


# --------------------------------------------------------------------------- helpers
def batch_last_view(a):
    """``a``'s values as an (N, C, H, W) view of (C, H, W, N) memory (what layers pass on)."""
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


class ForeignLoad:
    """CPU time other processes used while a block ran, in cores (0 = the machine was ours).

    Busy ticks of the whole machine from ``/proc/stat`` minus this process's own CPU time: a
    concurrent test run or build on this 2-core machine shows up here and explains outliers.
    """

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                v = [int(t) for t in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(v[:3]) + sum(v[5:8])          # user nice system irq softirq steal
        tick = os.sysconf("SC_CLK_TCK")
        own = os.times()
        return busy / tick, own.user + own.system, time.perf_counter()

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        end = self._sample()
        if self.start is None or end is None:
            self.cores = float("nan")
        else:
            busy, own, wall = (e - s for e, s in zip(end, self.start))
            self.cores = max(busy - own, 0.0) / max(wall, 1e-9)
        return False


def wait_until_quiet(max_wait=QUIET_MAX_WAIT):
    """Sleep in short windows until other processes leave the CPUs (at most ``max_wait`` s)."""
    t_end = time.perf_counter() + max_wait
    while True:
        with ForeignLoad() as load:
            time.sleep(SLEEP)
        if not load.cores > QUIET or time.perf_counter() > t_end:
            return


class Timer:
    """Medians of timing groups; a group disturbed by other processes is measured again."""

    def __init__(self, repeats, warmup, min_group_time):
        self.repeats, self.warmup, self.min_group_time = repeats, warmup, min_group_time
        self.loads = []          # other processes' load (cores) during each kept group
        self.retries = 0

    def __call__(self, fn):
        t_call = float("inf")
        for _ in range(max(self.warmup, 1)):
            t0 = time.perf_counter()
            fn()
            t_call = min(t_call, time.perf_counter() - t0)
        # at least `repeats`, and enough for the group to last MIN_GROUP_TIME
        n = max(self.repeats, min(MAX_REPEATS, math.ceil(self.min_group_time / t_call)))
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                wait_until_quiet()
            gc.collect()
            with ForeignLoad() as load:  # window includes the pause: >= 0.2 s of ticks
                time.sleep(SLEEP)        # let the previous library's threads stop spinning
                gc.disable()
                try:
                    times = []
                    for _ in range(n):
                        t0 = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - t0)
                finally:
                    gc.enable()
            if not load.cores > DISTURBED:
                break
            self.retries += 1
        self.loads.append(load.cores)
        return statistics.median(times) * 1e3


def rel_err(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-30)), \
        float(np.max(np.abs(a - ref)))


def openblas_info():
    """Core name and thread count of numpy's OpenBLAS (via its exported functions)."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            try:
                core = getattr(lib, f"scipy_openblas_get_corename{suffix}")
                nthr = getattr(lib, f"scipy_openblas_get_num_threads{suffix}")
            except AttributeError:
                continue
            core.restype = ctypes.c_char_p
            return f"{core().decode()}, {nthr()} threads ({os.path.basename(path)})"
    return "unknown"


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            flags = ""
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
            if "avx512f" in flags.split():
                cpu += " (avx512f)"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    env = {k: os.environ.get(k, "<unset>") for k in
           ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    return [
        f"date        {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"cpu         {cpu}, {os.cpu_count()} cores ({usable} usable)",
        f"python      {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}, "
        f"mkldnn {torch.backends.mkldnn.is_available()}), matconv {matconv.__version__}",
        f"openblas    {openblas_info()}",
        "env         " + ", ".join(f"{k}={v}" for k, v in env.items()),
    ]


def describe(name, cfg):
    N, C, H, W, O, k, s, p, d, g = cfg
    return f"{name} ({N},{C},{H},{W})->{O} k{k} s{s} p{p} d{d}" + (f" g{g}" if g > 1 else "")


def flops(cfg):
    """Multiply-adds x 2 of the forward (the backward is twice this)."""
    N, C, H, W, O, k, s, p, d, g = cfg
    Ho = (H + 2 * p - d * (k - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (k - 1) - 1) // s + 1
    return 2 * N * O * Ho * Wo * (C // g) * k * k


# --------------------------------------------------------------------------- one config
def run_config(name, cfg, dtype, repeats, warmup, min_group_time, rng):
    N, C, H, W, O, k, s, p, d, g = cfg
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    x_net = batch_last_view(x)
    probe = matconv.nn.Conv2d(C, O, k, s, p, d, g, bias=True, lowering="im2col", dtype=dtype,
                              rng=np.random.default_rng(0))
    w = probe.weight.data.copy()
    b = probe.bias.data.copy()
    Ho = (H + 2 * p - d * (k - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (k - 1) - 1) // s + 1
    dy = rng.standard_normal((N, O, Ho, Wo)).astype(dtype)
    dy_net = batch_last_view(dy)
    dname = np.dtype(dtype).name
    tol = TOL[dname]

    # ---- PyTorch
    xt, wt, bt, dyt = (torch.from_numpy(a).clone() for a in (x, w, b, dy))  # torch's memory
    for t in (xt, wt, bt):
        t.requires_grad_()

    def torch_fwd():
        return F.conv2d(xt, wt, bt, s, p, d, g)

    def torch_fwdbwd():
        xt.grad = wt.grad = bt.grad = None
        F.conv2d(xt, wt, bt, s, p, d, g).backward(dyt)

    y_ref = torch_fwd().detach().numpy().copy()
    torch_fwdbwd()
    dx_ref, dw_ref, db_ref = (t.grad.numpy().copy() for t in (xt, wt, bt))

    # ---- the others
    peer = NumpyIm2colConv(w.copy(), b.copy(), s, p, d) if g == 1 else \
        GroupedPeer(w.copy(), b.copy(), s, p, d, g)
    layers = {}
    for lowering in ("im2col", "sparse"):
        layer = matconv.nn.Conv2d(C, O, k, s, p, d, g, bias=True, lowering=lowering,
                                  dtype=dtype)
        layer.weight.data[...] = w
        layer.bias.data[...] = b
        layers[lowering] = layer
    auto = matconv.nn.Conv2d(C, O, k, s, p, d, g, bias=True, lowering="auto",
                             dtype=dtype).lowering

    # ---- correctness, once, before timing
    failed = []
    checks = []

    def check(label, y, dx, dw, db):
        errs = [rel_err(a, r) for a, r in ((y, y_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref))]
        worst = max(e[0] for e in errs)
        ok = worst <= tol
        if not ok:
            failed.append(label)
        checks.append(f"{label:<15} max|err| y {errs[0][1]:.1e}  dx {errs[1][1]:.1e}  "
                      f"dW {errs[2][1]:.1e}  db {errs[3][1]:.1e}  (max relative {worst:.1e})"
                      f"{'' if ok else '  <-- MISMATCH'}")

    y = peer.forward(x)
    dx = peer.backward(dy)
    check("numpy", y, dx, peer.dw, peer.db)
    for lowering, layout in MATCONV_VARIANTS:
        layer = layers[lowering]
        layer.zero_grad()
        xi, dyi = (x, dy) if layout == "C-order" else (x_net, dy_net)
        y = layer(xi)
        dx = layer.backward(dyi)
        check(f"{lowering}/{layout}", y, dx, layer.weight.grad, layer.bias.grad)
        layer.zero_grad()

    # ---- timing: one group per implementation, a pause between groups
    median_time = Timer(repeats, warmup, min_group_time)
    wait_until_quiet()
    res = {}
    res["pytorch"] = (median_time(torch_fwd), median_time(torch_fwdbwd))

    def peer_fwdbwd():
        peer.forward(x)
        peer.backward(dy)

    res["numpy"] = (median_time(lambda: peer.forward(x)), median_time(peer_fwdbwd))

    for lowering, layout in MATCONV_VARIANTS:
        layer = layers[lowering]
        xi, dyi = (x, dy) if layout == "C-order" else (x_net, dy_net)

        def fwdbwd(layer=layer, xi=xi, dyi=dyi):
            layer(xi)
            layer.backward(dyi)

        res[(lowering, layout)] = (median_time(lambda: layer(xi)), median_time(fwdbwd))
    return res, auto, checks, failed, median_time


def print_config(name, cfg, dname, res, auto, checks, timer):
    gf = flops(cfg) * 1e-9
    t_fb = res["pytorch"][1]
    print(f"\n{describe(name, cfg)}  {dname}   fwd {gf:.2f} GFLOP, fwd+bwd {3 * gf:.2f} GFLOP;"
          f"  auto -> {auto}")
    print(f"  other processes' load during the timed groups: max {max(timer.loads):.2f} cores"
          f" ({timer.retries} group(s) re-measured)")
    print("  check vs torch: " + "; ".join(checks[:1]))
    for c in checks[1:]:
        print("                  " + c)
    print(f"  {'implementation':<24}{'fwd ms':>9}{'fwd+bwd ms':>12}{'GF/s':>7}"
          f"{'/torch':>8}{'/numpy':>8}  beats numpy")
    peer_fb = res["numpy"][1]
    rows = [("pytorch (oneDNN)", res["pytorch"]), ("numpy im2col+add.at", res["numpy"])]
    rows += [(f"matconv {lo} {la}", res[(lo, la)]) for lo, la in MATCONV_VARIANTS]
    for label, (tf, tfb) in rows:
        beats = ("yes" if tfb < peer_fb else "no") if label.startswith("matconv") else ""
        print(f"  {label:<24}{tf:9.2f}{tfb:12.2f}{3 * gf / tfb * 1e3:7.1f}{tfb / t_fb:7.2f}x"
              f"{tfb / peer_fb:7.2f}x  {beats}")


def summarize(dname, rows):
    """rows: list of (name, res, auto). Prints the per-config and median ratio table."""
    target = TARGETS[dname]
    print(f"\n== {dname}: fwd+bwd time / PyTorch fwd+bwd time (same run) ==")
    print(f"  {'cfg':<4}{'torch ms':>9}{'numpy':>7} | {'im2col':>7}{'im2col':>7}{'sparse':>7}"
          f"{'sparse':>7} | {'best':>6}{'best':>6} | {'auto':>6}{'auto':>6}  auto")
    print(f"  {'':<4}{'':>9}{'':>7} | {'in-net':>7}{'C-ord':>7}{'in-net':>7}{'C-ord':>7}"
          f" | {'in-net':>6}{'C-ord':>6} | {'in-net':>6}{'C-ord':>6}")
    best = {"in-net": [], "C-order": []}
    autos = {"in-net": [], "C-order": []}
    for name, res, auto in rows:
        t = res["pytorch"][1]
        r = {key: res[key][1] / t for key in res if isinstance(key, tuple)}
        line = f"  {name:<4}{t:9.2f}{res['numpy'][1] / t:6.2f}x |"
        line += "".join(f"{r[v]:6.2f}x" for v in (("im2col", "in-net"), ("im2col", "C-order"),
                                                    ("sparse", "in-net"), ("sparse", "C-order")))
        for layout in ("in-net", "C-order"):
            best[layout].append(min(r[("im2col", layout)], r[("sparse", layout)]))
            autos[layout].append(r[(auto, layout)])
        line += f" |{best['in-net'][-1]:5.2f}x{best['C-order'][-1]:5.2f}x"
        line += f" |{autos['in-net'][-1]:5.2f}x{autos['C-order'][-1]:5.2f}x  {auto}"
        print(line)
    summary = []
    in_target = [i for i, (name, _, _) in enumerate(rows) if name in TARGET_CONFIGS]
    for kind, vals in (("best lowering", best), ("lowering='auto'", autos)):
        for layout in ("in-net", "C-order"):
            if not in_target:
                continue
            m = statistics.median([vals[layout][i] for i in in_target])
            verdict = "meets" if m <= target else "misses"
            summary.append(f"SUMMARY {dname} {kind:<15} {layout:<7}: median over "
                           f"{''.join(rows[i][0] for i in in_target)} of matconv/PyTorch "
                           f"fwd+bwd = {m:.2f}x  (target <= {target}x: {verdict})")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed repeats per measurement "
                    "(median reported; default 9; fast cases get more, up to "
                    f"{MAX_REPEATS}, so that a group lasts {MIN_GROUP_TIME} s)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list of " +
                    ",".join(CONFIGS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up: a smoke test")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = ap.parse_args(argv)
    min_group_time = MIN_GROUP_TIME
    if args.quick:
        args.repeats, args.warmup, min_group_time = 3, 1, 0.0
    names = [c.strip().upper() for c in args.configs.split(",") if c.strip()]
    dtypes = [t.strip() for t in args.dtypes.split(",") if t.strip()]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown config {n!r}; choose from {','.join(CONFIGS)}")
    for t in dtypes:
        if t not in TARGETS:
            ap.error(f"unknown dtype {t!r}; choose float32 and/or float64")
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    torch.set_num_threads(args.threads)
    print("matconv conv2d benchmark: medians in ms, ratios are fwd+bwd time over PyTorch's fwd+bwd")
    for line in machine_info():
        print(line)
    print(f"run         repeats >= {args.repeats} (median; more for fast cases, to "
          f"{min_group_time} s a group), warm-up {args.warmup}, "
          f"sleep {SLEEP}s between groups, configs {','.join(names)}, dtypes {','.join(dtypes)}")
    print("layouts     C-order: C-contiguous x and dy;  in-net: x and dy as (N,C,H,W) views of "
          "batch-last memory (what a layer gets inside a network)")

    all_failed = []
    summaries = []
    loads = []
    retries = 0
    rng = np.random.default_rng(12345)
    for dname in dtypes:
        dtype = np.dtype(dname).type
        rows = []
        for name in names:
            res, auto, checks, failed, timer = run_config(name, CONFIGS[name], dtype,
                                                           args.repeats, args.warmup,
                                                           min_group_time, rng)
            print_config(name, CONFIGS[name], dname, res, auto, checks, timer)
            loads += timer.loads
            retries += timer.retries
            sys.stdout.flush()
            all_failed += [f"{name}/{dname}/{f}" for f in failed]
            rows.append((name, res, auto))
        summaries += summarize(dname, rows)
    print(f"\nother processes' CPU load during the timed groups: max {max(loads):.2f} cores, "
          f"median {statistics.median(loads):.2f}; {retries} disturbed group(s) re-measured "
          f"(a group is re-measured when other processes used > {DISTURBED} cores, "
          f"up to {MAX_ATTEMPTS} attempts)")
    for line in summaries:
        print(line)
    if all_failed:
        print("\nCORRECTNESS CHECK FAILED for: " + ", ".join(all_failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
