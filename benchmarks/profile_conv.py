#!/usr/bin/env python
"""Profile: where the time of one Conv2d forward+backward goes, piece by piece, beside the floor.

For each config and dtype, the median time (ms) of

* ``total``   the layer's forward+backward inside a network (``x`` and ``dy`` batch-last views);
* ``fwd``     ``op.apply(X)``: the blocked gather ``S_b X`` and GEMM ``W (S_b X)`` (and what it
              keeps for the weight gradient); ``gath`` and ``gemm`` are the same loop run with
              only that stage;
* ``bias``    adding the bias to ``Y``;
* ``dx``      ``op.rmatmat(dY)``: per block ``W.T dY_b``, then each channel's ``S_b.T`` product
              (``gemm`` and ``c2im`` alone);
* ``dW``      ``op.weight_grad(kept, dY)``: ``(S_b X) dY_b.T`` (with a gather again when the
              forward kept ``X`` rather than ``S X``; each stage alone);
* ``db``      the bias gradient ``sum(dY)``;
* ``+b``      ``op.apply(X, bias=b)`` plus ``op.weight_and_bias_grad``: what the layer runs,
              the bias inside the products (a column of the weight times a row of ones with
              one group), against ``fwd + bias + dW + db`` as separate passes;
* ``layout``  the two transposes a layer pays when ``x`` and ``dy`` come in C order (first layer);
* ``ovh``     Python overhead: ``total`` minus ``+b`` and ``dx`` (recording, checks, plan lookups);
* ``floor``   matconv's three GEMMs alone on ready operands, numpy's GEMM with its own threads:
              ``W cols``, ``W.T dY``, ``cols dY.T`` (``benchmarks/common.py: gemm_floor``).

A fused stage can take less or more than its two parts added: each part alone leaves the caches
and OpenBLAS's threads in another state.

Run from the repository root::

    PYTHONPATH=. python benchmarks/profile_conv.py                 # A-F, float32 and float64
    PYTHONPATH=. python benchmarks/profile_conv.py --configs F --dtypes float32 --repeats 15
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from common import (
    CONFIGS,
    TARGET_CONFIGS,
    Timer,
    batch_last_view,
    describe,
    gemm_floor,
    machine_info,
    matconv,
    output_size,
)

from matconv.geometry import ConvGeometry
from matconv.layout import to_batch_last
from matconv.operators import conv_plan
from matconv.operators.blocked import skipping

COLUMNS = ["total", "fwd", "gath", "gemm", "bias", "dx", "gemm", "c2im", "dW", "gath", "gemm",
           "db", "+b", "layout", "ovh", "floor", "/floor"]


def profile(cfg, dtype, timer, rng):
    """``{piece: ms}`` for one config."""
    N, C, H, W, Co, k, s, p, d, g = cfg
    layer = matconv.nn.Conv2d(C, Co, k, s, p, d, g, lowering="im2col", dtype=dtype,
                              rng=np.random.default_rng(0))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dy = rng.standard_normal((N, Co, *output_size(cfg))).astype(dtype)
    x_net, dy_net = batch_last_view(x), batch_last_view(dy)
    op = conv_plan(ConvGeometry(C, Co, k, s, p, d, g), (H, W)).at(layer.weight.data)
    X, dY = to_batch_last(x_net), to_batch_last(dy_net)
    Y, saved = op.apply(X)
    bias = layer.bias.data

    def total():
        layer(x_net)
        layer.backward(dy_net)

    def fwd():
        op.release(op.apply(X)[1])

    def alone(fn, *stages):
        def run():
            with skipping(*stages):
                fn()
        return run

    t = {"total": timer(total)}
    t["fwd"] = timer(fwd)
    t["fwd gath"] = timer(alone(fwd, "gemm"))
    t["fwd gemm"] = timer(alone(fwd, "gather"))
    t["bias"] = timer(lambda: Y.reshape(Co, -1).__iadd__(bias[:, None]))
    t["dx"] = timer(lambda: op.rmatmat(dY))
    t["dx gemm"] = timer(alone(lambda: op.rmatmat(dY), "scatter"))
    t["dx c2im"] = timer(alone(lambda: op.rmatmat(dY), "gemm"))
    t["dW"] = timer(lambda: op.weight_grad(saved, dY))
    t["dW gath"] = timer(alone(lambda: op.weight_grad(saved, dY), "gemm"))
    t["dW gemm"] = timer(alone(lambda: op.weight_grad(saved, dY), "gather"))
    t["db"] = timer(lambda: dY.reshape(Co, -1).sum(axis=1))

    def fused():
        Yb, kept = op.apply(X, bias=bias)
        op.weight_and_bias_grad(kept, dY)
        op.release(kept)

    t["+b"] = timer(fused)
    t["layout"] = timer(lambda: (to_batch_last(x), to_batch_last(dy)))
    # the layer adds its bias inside the products (+b: forward and weight gradient with it)
    t["ovh"] = t["total"] - t["+b"] - t["dx"]
    floor = gemm_floor(cfg, dtype, timer, rng)
    t["floor"] = sum(floor.values())
    t["floor parts"] = floor
    t["/floor"] = t["total"] / t["floor"]
    op.release(saved)
    return t


def print_table(dname, rows):
    keys = ["total", "fwd", "fwd gath", "fwd gemm", "bias", "dx", "dx gemm", "dx c2im", "dW",
            "dW gath", "dW gemm", "db", "+b", "layout", "ovh", "floor", "/floor"]
    print(f"\n== {dname}: ms per forward+backward (medians), pieces of the im2col layer ==")
    print("      " + "".join(f"{c:>8}" for c in COLUMNS))
    for name, t in rows:
        cells = [f"{t[key]:8.2f}" if key != "/floor" else f"{t[key]:7.2f}x" for key in keys]
        print(f"  {name:<4}" + "".join(cells))
    print("  floor parts (ms): " + "; ".join(
        f"{name} " + " ".join(f"{k} {v:.2f}" for k, v in t["floor parts"].items())
        for name, t in rows))
    saved = "; ".join(f"{name} {t['fwd'] + t['bias'] + t['dW'] + t['db'] - t['+b']:.2f}"
                      for name, t in rows)
    print(f"  the bias inside the products (as layers add it) saves (fwd + bias + dW + db) - "
          f"(+b) ms: {saved}")
    ratios = [t["/floor"] for name, t in rows if name in TARGET_CONFIGS]
    if ratios:
        print(f"SUMMARY {dname} total/floor: median {statistics.median(ratios):.2f}x, worst "
              f"{max(ratios):.2f}x over {''.join(n for n, _ in rows if n in TARGET_CONFIGS)} "
              f"(target: every config <= 1.25x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=",".join(TARGET_CONFIGS))
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--repeats", type=int, default=9, help="timed calls per piece (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="3 repeats, no waiting for a quiet "
                    "machine: a smoke test")
    args = ap.parse_args(argv)
    names = [c.strip().upper() for c in args.configs.split(",") if c.strip()]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown config {n!r}; choose from {','.join(CONFIGS)}")
    dtypes = [t.strip() for t in args.dtypes.split(",") if t.strip()]
    for t in dtypes:
        if t not in ("float32", "float64"):
            ap.error(f"unknown dtype {t!r}; choose float32 and/or float64")
    timer = Timer(3, 1, 0.0, attempts=1) if args.quick else Timer(args.repeats, args.warmup)
    print("matconv conv2d profile: ms per piece of one forward+backward (medians)")
    for line in machine_info():
        print(line)
    for desc in (describe(n, CONFIGS[n]) for n in names):
        print(f"config      {desc}")
    rng = np.random.default_rng(12345)
    for dname in dtypes:
        rows = []
        for name in names:
            rows.append((name, profile(CONFIGS[name], np.dtype(dname).type, timer, rng)))
            sys.stdout.flush()
        print_table(dname, rows)
    if timer.loads:
        print(f"\nother processes' load during the timed groups: max {max(timer.loads):.2f} "
              f"cores, median {statistics.median(timer.loads):.2f}; {timer.retries} group(s) "
              f"measured again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
