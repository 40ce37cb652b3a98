#!/usr/bin/env python
"""Benchmark: a 2-D conv layer's forward and forward+backward, matconv against its peers.

Implementations timed in one run (one process), on the same data, one timing group each with a
pause before it (OpenBLAS's, oneDNN's and XLA's threads spin for a while after a call):

* ``pytorch``     ``torch.nn.functional.conv2d`` (oneDNN on CPU for float32), input, weight and
                  bias with ``requires_grad``; fwd+bwd is ``y.backward(dy)`` with the grads set to
                  ``None`` before each iteration (PyTorch's default ``zero_grad``); 2 threads.
* ``jax``         ``jax.jit`` of ``lax.conv_general_dilated`` and of its ``jax.vjp`` (CPU).
* ``np im2col``   im2col by fancy indexing, one GEMM, col2im with ``np.add.at`` (``peers.py``).
* ``np window``   ``sliding_window_view`` + ``tensordot`` (``peers.py``).
* ``scipy corr``  ``scipy.signal.correlate`` per filter (one input channel, stride 1: A, D, H).
* ``matconv``     ``matconv.nn.Conv2d(..., lowering='im2col' | 'sparse')``, ``y = layer(x)``,
                  ``dx = layer.backward(dy)``, in two input layouts:

    - ``in-net``:  ``x`` and ``dy`` are ``(N, C, H, W)`` views of batch-last ``(C, H, W, N)``
      memory, which is what every matconv layer after the first receives in a network;
    - ``C-ord``: C-contiguous ``x`` and ``dy`` (the layer pays a transpose of each).

    - ``1-thr``: in-net with matconv's thread pool off (``set_num_threads(1)``): every GEMM
      whole on OpenBLAS's threads; the evidence for when the pool is used.

  ``lowering='auto'`` resolves to one of the two at construction (column ``auto``).
* ``floor``       matconv's three im2col GEMMs alone on ready operands (``common.gemm_floor``).

Every implementation's output and gradients (PyTorch's own included) are checked against PyTorch
in float64 on the same data once per config before timing (tolerance: max error over max entry,
5e-4 in float32, 1e-10 in float64); a mismatch is reported and makes the script exit with
status 1. ``peak MB`` is the
resident memory the first two fwd+bwd calls on fresh objects add at their peak (what they cache
and keep counts; JAX's includes compiling), from ``/proc/self/clear_refs`` and ``VmHWM``.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_conv.py                  # everything (~6 min quiet)
    PYTHONPATH=. python benchmarks/bench_conv.py --quick          # smoke test
    PYTHONPATH=. python benchmarks/bench_conv.py --configs B,C --dtypes float32 --repeats 15
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F
from common import (
    CONFIGS,
    TARGET_CONFIGS,
    Timer,
    batch_last_view,
    describe,
    flops,
    gemm_floor,
    machine_info,
    matconv,
    output_size,
    peak_extra_mb,
)
from peers import CorrelateConv, NumpyIm2colConv, SlidingWindowConv, jax_conv, numpy_peer

from matconv.operators.parallel import set_num_threads

# max abs error relative to max |reference|, the reference PyTorch in float64 on the same data:
# float32 sums of 50176 products (H's weight gradient) are off by ~1e-4 of their largest entry
TOL = {"float32": 5e-4, "float64": 1e-10}
MATCONV = [("im2col", "in-net"), ("im2col", "C-ord"), ("sparse", "in-net"), ("sparse", "C-ord"),
           ("im2col", "1-thr")]
NUMPY_PEERS = ("np im2col", "np window", "scipy corr")
TARGETS = ("float32: every config <= 1.25x its GEMM floor; median over A-F <= 1.1x PyTorch, none "
           "above 1.5x.  float64: every config <= 0.8x PyTorch.  Faster than every numpy peer.")


def rel_err(a, ref):
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-30))


def run_config(name, cfg, dtype, timer, rng):
    """``(times, checks, failed, auto)``: ``times[impl] = (fwd ms, fwd+bwd ms, peak MB)``."""
    N, C, H, W, Co, k, s, p, d, g = cfg
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dy = rng.standard_normal((N, Co, *output_size(cfg))).astype(dtype)
    x_net, dy_net = batch_last_view(x), batch_last_view(dy)
    probe = matconv.nn.Conv2d(C, Co, k, s, p, d, g, dtype=dtype, rng=np.random.default_rng(0))
    w, b = probe.weight.data.copy(), probe.bias.data.copy()
    dname = np.dtype(dtype).name

    # ---- PyTorch, the reference
    xt, wt, bt, dyt = (torch.from_numpy(a).clone() for a in (x, w, b, dy))
    for t in (xt, wt, bt):
        t.requires_grad_()

    def torch_fwd():
        return F.conv2d(xt, wt, bt, s, p, d, g)

    def torch_fwdbwd():
        xt.grad = wt.grad = bt.grad = None
        F.conv2d(xt, wt, bt, s, p, d, g).backward(dyt)

    x64, w64, b64 = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (x, w, b))
    y64 = F.conv2d(x64, w64, b64, s, p, d, g)
    y64.backward(torch.from_numpy(dy.astype(np.float64)))
    refs = (y64.detach().numpy(), *(t.grad.numpy() for t in (x64, w64, b64)))

    def torch_results():
        torch_fwdbwd()
        return torch_fwd().detach().numpy(), *(t.grad.numpy().copy() for t in (xt, wt, bt))

    # ---- everything else as (fwd(), fwdbwd(), results()) triples
    impls = {"pytorch": (torch_fwd, torch_fwdbwd, torch_results)}
    jx = jax_conv(w, b, s, p, d, g)
    if jx is not None:
        run_fwd, run_fwdbwd, to_device = jx
        xj, dyj = to_device(x), to_device(dy)
        impls["jax"] = (lambda: run_fwd(xj), lambda: run_fwdbwd(xj, dyj),
                        lambda: (run_fwd(xj), *run_fwdbwd(xj, dyj)))
    peers = {"np im2col": numpy_peer(NumpyIm2colConv, w, b, s, p, d, g),
             "np window": numpy_peer(SlidingWindowConv, w, b, s, p, d, g)}
    if C == 1 and s == 1 and d == 1 and g == 1:
        peers["scipy corr"] = CorrelateConv(w, b, s, p, d)
    for label, peer in peers.items():
        def results(peer=peer):
            y = peer.forward(x)
            return y, peer.backward(dy), peer.dw, peer.db

        impls[label] = (lambda peer=peer: peer.forward(x),
                        lambda peer=peer: (peer.forward(x), peer.backward(dy)), results)
    for lowering, layout in MATCONV:
        layer = matconv.nn.Conv2d(C, Co, k, s, p, d, g, lowering=lowering, dtype=dtype)
        layer.weight.data[...] = w
        layer.bias.data[...] = b
        xi, dyi = (x, dy) if layout == "C-ord" else (x_net, dy_net)
        threads = 1 if layout == "1-thr" else None  # 1-thr: matconv's pool off, in-net

        def fwd(layer=layer, xi=xi, threads=threads):
            old = set_num_threads(threads)
            try:
                return layer(xi)
            finally:
                set_num_threads(old)

        def fwdbwd(layer=layer, xi=xi, dyi=dyi, threads=threads):
            old = set_num_threads(threads)
            try:
                layer(xi)
                return layer.backward(dyi)
            finally:
                set_num_threads(old)

        def results(layer=layer, xi=xi, dyi=dyi):
            layer.zero_grad()
            y = layer(xi)
            dx = layer.backward(dyi)
            return y, dx, layer.weight.grad.copy(), layer.bias.grad.copy()

        impls[f"{lowering} {layout}"] = (fwd, fwdbwd, results)
    auto = matconv.nn.Conv2d(C, Co, k, s, p, d, g, dtype=dtype).lowering

    # ---- memory of the first two calls on fresh objects, then correctness, once
    memory = {label: peak_extra_mb(fwdbwd) for label, (_, fwdbwd, _) in impls.items()}
    checks, failed = [], []
    for label, (_, _, results) in impls.items():
        if results is None:
            continue
        worst = max(rel_err(a, r) for a, r in zip(results(), refs))
        if worst > TOL[dname]:
            failed.append(f"{name}/{dname}/{label}")
        checks.append(f"{label} {worst:.1e}" + ("" if worst <= TOL[dname] else " MISMATCH"))

    # ---- timing: one group per implementation, then the peak memory of two calls
    times = {}
    for label, (fwd, fwdbwd, _) in impls.items():
        times[label] = (timer(fwd), timer(fwdbwd), memory[label])
    floor = gemm_floor(cfg, dtype, timer, rng)
    times["floor"] = (floor["fwd"], sum(floor.values()), float("nan"))
    return times, checks, failed, auto


def print_config(name, cfg, dname, times, checks, auto):
    gf = flops(cfg) * 1e-9
    t_torch = times["pytorch"][1]
    print(f"\n{describe(name, cfg)}  {dname}   fwd {gf:.2f} GFLOP, fwd+bwd {3 * gf:.2f} GFLOP;"
          f"  auto -> {auto}")
    print("  max relative error vs PyTorch in float64: " + ", ".join(checks))
    print(f"  {'implementation':<18}{'fwd ms':>9}{'fwd+bwd ms':>12}{'GF/s':>7}{'/torch':>8}"
          f"{'peak MB':>9}")
    for label, (tf, tfb, mb) in times.items():
        print(f"  {label:<18}{tf:9.2f}{tfb:12.2f}{3 * gf / tfb * 1e3:7.1f}{tfb / t_torch:7.2f}x"
              f"{mb:9.1f}")


def summarize(dname, rows):
    """Per-config ratios and the target lines; ``rows`` is ``[(name, times, auto)]``."""
    print(f"\n== {dname}: fwd+bwd time ratios (same run) ==")
    print(f"  {'cfg':<4}{'torch ms':>9}{'auto':>8}{'auto':>7}{'best':>7} |{'auto/':>7}"
          f"{'auto/':>7}{'auto/':>7}{'pool':>7}{'peak MB':>9}{'peak MB':>8}  auto")
    print(f"  {'':<4}{'':>9}{'/torch':>8}{'C-ord':>7}{'/torch':>7} |{'floor':>7}{'jax':>7}"
          f"{'numpy':>7}{'on/off':>7}{'matconv':>9}{'torch':>8}")
    r_auto, r_best, r_floor, r_jax, r_numpy = {}, {}, {}, {}, {}
    for name, t, auto in rows:
        torch_ms = t["pytorch"][1]
        mine = t[f"{auto} in-net"][1]
        best = min(t[f"{lo} in-net"][1] for lo in ("im2col", "sparse"))
        numpy_best = min(t[label][1] for label in NUMPY_PEERS if label in t)
        r_auto[name], r_best[name] = mine / torch_ms, best / torch_ms
        r_floor[name] = t["im2col in-net"][1] / t["floor"][1]
        r_jax[name] = mine / t["jax"][1] if "jax" in t else float("nan")
        r_numpy[name] = mine / numpy_best
        print(f"  {name:<4}{torch_ms:9.2f}{r_auto[name]:7.2f}x"
              f"{t[f'{auto} C-ord'][1] / torch_ms:6.2f}x{r_best[name]:6.2f}x |"
              f"{r_floor[name]:6.2f}x{r_jax[name]:6.2f}x{r_numpy[name]:6.2f}x"
              f"{t['im2col in-net'][1] / t['im2col 1-thr'][1]:6.2f}x"
              f"{t[f'{auto} in-net'][2]:9.1f}{t['pytorch'][2]:8.1f}  {auto}")
    target = [n for n, _, _ in rows if n in TARGET_CONFIGS]
    lines = []
    if target:
        med = statistics.median(r_auto[n] for n in target)
        worst = max(target, key=lambda n: r_auto[n])
        if dname == "float32":
            over = [n for n in target if r_floor[n] > 1.25]
            lines.append(f"SUMMARY float32 matconv/floor: worst "
                         f"{max(r_floor[n] for n in target):.2f}x "
                         f"({'meets' if not over else 'misses on ' + ''.join(over)} <= 1.25x)")
            lines.append(f"SUMMARY float32 matconv/PyTorch (auto, in-net): median {med:.2f}x "
                         f"({'meets' if med <= 1.1 else 'misses'} <= 1.1x), worst {worst} "
                         f"{r_auto[worst]:.2f}x ({'meets' if r_auto[worst] <= 1.5 else 'misses'}"
                         f" <= 1.5x)")
        else:
            over = [n for n in target if r_auto[n] > 0.8]
            lines.append(f"SUMMARY float64 matconv/PyTorch (auto, in-net): median {med:.2f}x, "
                         f"worst {worst} {r_auto[worst]:.2f}x "
                         f"({'meets' if not over else 'misses on ' + ''.join(over)} <= 0.8x)")
    slower = [n for n, _, _ in rows if r_numpy[n] >= 1]
    lines.append(f"SUMMARY {dname} faster than every numpy peer on "
                 f"{len(rows) - len(slower)}/{len(rows)} configs"
                 + (f" (not on {''.join(slower)})" if slower else ""))
    behind = [n for n, _, _ in rows if not r_jax[n] < 1]
    lines.append(f"SUMMARY {dname} faster than JAX on {len(rows) - len(behind)}/{len(rows)} "
                 f"configs" + (f" (not on {''.join(behind)})" if behind else ""))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed calls per group (median; "
                    "fast cases get more so that a group lasts 0.1 s)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up, no waiting "
                    "for a quiet machine: a smoke test")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = ap.parse_args(argv)
    names = [c.strip().upper() for c in args.configs.split(",") if c.strip()]
    dtypes = [t.strip() for t in args.dtypes.split(",") if t.strip()]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown config {n!r}; choose from {','.join(CONFIGS)}")
    for t in dtypes:
        if t not in TOL:
            ap.error(f"unknown dtype {t!r}; choose float32 and/or float64")
    if args.repeats < 7 and not args.quick:
        ap.error("--repeats must be >= 7 (medians of at least 7)")
    timer = Timer(3, 1, 0.0, attempts=1) if args.quick else Timer(args.repeats, args.warmup)
    torch.set_num_threads(args.threads)
    try:
        import jax
        jax_line = f"jax {jax.__version__} ({jax.devices()[0].platform})"
    except ImportError:
        jax_line = "jax not installed (pip install jax): its column stays empty"
    print("matconv conv2d benchmark: medians in ms; ratios are fwd+bwd times in this run")
    for line in machine_info([f"peers       torch {torch.__version__} ({torch.get_num_threads()} "
                              f"threads, mkldnn {torch.backends.mkldnn.is_available()}), "
                              f"{jax_line}"]):
        print(line)
    print(f"run         repeats >= {timer.repeats}, warm-up {timer.warmup}, configs "
          f"{','.join(names)}, dtypes {','.join(dtypes)}")
    print(f"targets     {TARGETS}")

    failed, summaries = [], []
    rng = np.random.default_rng(12345)
    for dname in dtypes:
        rows = []
        for name in names:
            times, checks, bad, auto = run_config(name, CONFIGS[name], np.dtype(dname).type,
                                                  timer, rng)
            print_config(name, CONFIGS[name], dname, times, checks, auto)
            sys.stdout.flush()
            failed += bad
            rows.append((name, times, auto))
        summaries += summarize(dname, rows)
    print(f"\nother processes' load during the timed groups: max {max(timer.loads):.2f} cores, "
          f"median {statistics.median(timer.loads):.2f}; {timer.retries} group(s) measured "
          f"again")
    for line in summaries:
        print(line)
    if failed:
        print("\nCORRECTNESS CHECK FAILED for: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
