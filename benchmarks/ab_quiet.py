#!/usr/bin/env python
"""A/B: this checkout's Conv2d against another checkout's (and PyTorch), in one process, timed
only while the machine is quiet.

For a shared machine where other processes come and go: both matconvs (the other one imported
under the name ``matconv_baseline`` from a temporary copy of its package) and PyTorch take turns;
before each group of 7 forward+backward calls the script waits for a window in which other
processes use less than 0.1 core, and keeps the group only if they stayed below that while it
ran. Each cell is the minimum over the kept groups of their medians (``samples`` says how many
were kept). Ratios of two cells come from the same quiet windows, so they are fair even when the
windows are few; absolute times drift between windows.

Run from the repository root::

    PYTHONPATH=. python benchmarks/ab_quiet.py --baseline /path/to/main/checkout
    PYTHONPATH=. python benchmarks/ab_quiet.py --baseline ../main --configs C,F --dtypes float64
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from common import CONFIGS, ForeignLoad, batch_last_view, describe, matconv, output_size


def import_baseline(checkout: str):
    """The ``matconv`` package of ``checkout``, imported as ``matconv_baseline`` (matconv's
    modules import each other relatively, so a renamed copy is a separate package)."""
    src = os.path.join(checkout, "matconv")
    if not os.path.isfile(os.path.join(src, "__init__.py")):
        raise SystemExit(f"--baseline {checkout!r} has no matconv package")
    tmp = tempfile.mkdtemp(prefix="matconv_ab_")
    shutil.copytree(src, os.path.join(tmp, "matconv_baseline"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, tmp)
    return importlib.import_module("matconv_baseline"), tmp


def contenders(cfg, dtype, packages, with_torch, rng):
    """``{label: fwd+bwd function}`` on the same in-network data."""
    N, C, H, W, Co, k, s, p, d, g = cfg
    x = batch_last_view(rng.standard_normal((N, C, H, W)).astype(dtype))
    dy = batch_last_view(rng.standard_normal((N, Co, *output_size(cfg))).astype(dtype))
    fns = {}
    for label, package in packages.items():
        layer = package.nn.Conv2d(C, Co, k, s, p, d, g, dtype=dtype,
                                  rng=np.random.default_rng(0))

        def run(layer=layer):
            layer(x)
            layer.backward(dy)

        fns[label] = run
    if with_torch:
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
        wt = torch.from_numpy(layer.weight.data.copy()).requires_grad_()
        bt = torch.from_numpy(layer.bias.data.copy()).requires_grad_()
        dyt = torch.from_numpy(np.ascontiguousarray(dy))

        def run_torch():
            xt.grad = wt.grad = bt.grad = None
            torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g).backward(dyt)

        fns["pytorch"] = run_torch
    return fns


def quiet_minimum(fns, samples, max_wait):
    """``{label: [medians of kept groups]}``, the contenders taking turns."""
    kept = {label: [] for label in fns}
    t_end = time.time() + max_wait
    while min(map(len, kept.values())) < samples and time.time() < t_end:
        for label, fn in fns.items():
            fn()
            fn()
            with ForeignLoad() as load:
                time.sleep(0.1)
            if load.cores > 0.1:
                continue
            with ForeignLoad() as load:
                times = []
                for _ in range(7):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
            if load.cores < 0.1:
                kept[label].append(statistics.median(times) * 1e3)
    return kept


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="a checkout whose matconv to compare")
    ap.add_argument("--configs", default="A,B,C,D,E,F,G,H")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--samples", type=int, default=5, help="quiet groups to keep per contender")
    ap.add_argument("--max-wait", type=float, default=120.0, help="s to wait per config")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    baseline, tmp = import_baseline(args.baseline)
    try:
        if not args.no_torch:
            import torch
            torch.set_num_threads(2)
        packages = {"baseline": baseline, "this": matconv}
        rng = np.random.default_rng(12345)
        print(f"A/B in quiet windows: this checkout against {args.baseline}; ms per fwd+bwd "
              f"(minimum over kept groups of the median of 7)")
        for dname in args.dtypes.split(","):
            for name in args.configs.split(","):
                cfg = CONFIGS[name.strip().upper()]
                fns = contenders(cfg, np.dtype(dname).type, packages, not args.no_torch, rng)
                kept = quiet_minimum(fns, args.samples, args.max_wait)
                best = {label: min(v) if v else float("nan") for label, v in kept.items()}
                ratios = f"this/baseline {best['this'] / best['baseline']:.2f}"
                if "pytorch" in best:
                    ratios += f"  this/pytorch {best['this'] / best['pytorch']:.2f}"
                print(f"{describe(name, cfg):<36}{dname:<8}"
                      + "".join(f"{label} {t:8.2f}  " for label, t in best.items())
                      + f"{ratios}  samples {[len(v) for v in kept.values()]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
