#!/usr/bin/env python
"""Probe: would Winograd F(2x2, 3x3) beat matconv's blocked im2col forward here?

Winograd writes a 3x3 stride-1 convolution as ``Y = A_out [U (.) (B_in X)]``: ``B_in`` maps each
overlapping 4x4 input tile to its 16 transformed values (``B^T d B``), ``U = G W G^T`` is the
weight in the same 16 frequencies, the product is 16 GEMMs ``U_xi (C_out x C_in) @ V_xi``, and
``A_out`` maps each tile's 16 products back to its 2x2 outputs (``A^T m A``). Every factor is an
explicit matrix (here ``B_in`` and ``A_out`` are scipy CSR matrices), the backward would be their
transposes, and the GEMMs do 2.25x fewer multiplications than im2col's.

This script builds that forward for configs B, C and F (F's dilation 2 is four independent
14x14 grids: it is run as B's geometry on 4 x 64 examples, which leaves out the cost of splitting
and merging the grids, a favour to Winograd), checks it against matconv's output, and times both,
one thread each (CPU time of the calling thread; run with ``OPENBLAS_NUM_THREADS=1``) and with
the machine's threads (wall time). ``benchmarks/README.md`` records the outcome: the transforms
cost more than the multiplications they save, so matconv has no Winograd lowering.

Run::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/winograd_probe.py
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp
from common import machine_info

from matconv.geometry import ConvGeometry
from matconv.operators import conv_plan
from matconv.operators.parallel import set_num_threads

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)
CASES = {"B": (64, 16, 14, 14, 32), "C": (64, 32, 32, 32, 64),
         "F as 4 grids": (256, 16, 14, 14, 32)}


def transforms(C, Co, H, W, dtype):
    """``(B_in, A_out, tiles)`` for a 3x3 convolution with padding 1 on ``H x W``."""
    TH, TW = -(-H // 2), -(-W // 2)
    th = np.arange(TH)[None, :, None, None]
    tw = np.arange(TW)[None, None, :, None]
    i, j, a, b = (v.ravel() for v in np.meshgrid(*[range(4)] * 4, indexing="ij"))
    coef = B_T[i, a] * B_T[j, b]
    keep = coef != 0
    i, j, a, b, coef = i[keep], j[keep], a[keep], b[keep], coef[keep]
    c = np.arange(C)[:, None, None, None]
    rows = (((i * 4 + j) * C + c) * TH + th) * TW + tw
    h, w = 2 * th + a - 1, 2 * tw + b - 1
    ok = np.broadcast_to((h >= 0) & (h < H) & (w >= 0) & (w < W), rows.shape)
    cols = np.broadcast_to((c * H + h) * W + w, rows.shape)
    B_in = sp.csr_array((np.broadcast_to(coef, rows.shape)[ok], (rows[ok], cols[ok])),
                        shape=(16 * C * TH * TW, C * H * W), dtype=dtype)
    i, j, a, b = (v.ravel() for v in np.meshgrid(range(4), range(4), range(2), range(2),
                                                  indexing="ij"))
    coef = A_T[a, i] * A_T[b, j]
    keep = coef != 0
    i, j, a, b, coef = i[keep], j[keep], a[keep], b[keep], coef[keep]
    o = np.arange(Co)[:, None, None, None]
    cols = (((i * 4 + j) * Co + o) * TH + th) * TW + tw
    ho, wo = 2 * th + a, 2 * tw + b
    ok = np.broadcast_to((ho < H) & (wo < W), cols.shape)
    rows = np.broadcast_to((o * H + ho) * W + wo, cols.shape)
    A_out = sp.csr_array((np.broadcast_to(coef, cols.shape)[ok], (rows[ok], cols[ok])),
                         shape=(Co * H * W, 16 * Co * TH * TW), dtype=dtype)
    return B_in, A_out, TH * TW


def timed(fn, clock, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times) * 1e3


def probe(case, dtype, rng):
    """``(error, {clock: (im2col, winograd, B_in X, GEMMs, A_out M)})`` in ms."""
    N, C, H, W, Co = case
    X = rng.standard_normal((C * H * W, N)).astype(dtype)
    w = rng.standard_normal((Co, C, 3, 3)).astype(dtype)
    op = conv_plan(ConvGeometry(C, Co, 3, padding=1), (H, W)).at(w)
    B_in, A_out, T = transforms(C, Co, H, W, dtype)
    U = np.einsum("ia,ocab,jb->ijoc", G, w.astype(np.float64), G).reshape(16, Co, C)
    U = U.astype(dtype)
    V = B_in @ X
    M = np.matmul(U, V.reshape(16, C, T * N)).reshape(-1, N)
    Y = op.apply(X, keep=False)[0]
    error = float(np.max(np.abs(A_out @ M - Y)) / np.max(np.abs(Y)))
    pieces = [lambda: op.apply(X, keep=False), lambda: B_in @ X,
              lambda: np.matmul(U, V.reshape(16, C, T * N)), lambda: A_out @ M]
    result = {}
    for label, clock, threads in (("thread CPU", time.thread_time, 1),
                                  ("wall", time.perf_counter, None)):
        old = set_num_threads(threads)  # one thread: all of im2col's work on the timed thread
        try:
            im2col, *wino = (timed(fn, clock) for fn in pieces)
        finally:
            set_num_threads(old)
        result[label] = (im2col, sum(wino), *wino)
    return error, result


def main():
    print("Winograd F(2x2, 3x3) forward against matconv's blocked im2col forward, float32, ms")
    for line in machine_info():
        print(line)
    rng = np.random.default_rng(0)
    print(f"\n{'config':<14}{'clock':<12}{'im2col':>8}{'winograd':>9}{'B_in X':>8}"
          f"{'GEMMs':>8}{'A_out M':>8}   max rel err")
    for name, case in CASES.items():
        error, result = probe(case, np.float32, rng)
        for label, row in result.items():
            print(f"{name:<14}{label:<12}" + "".join(f"{v:8.2f}" for v in row)
                  + f"   {error:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
