"""``matconv spectrum``: the exact operator norm and conditioning of one convolution layer."""
from __future__ import annotations

import argparse

from .. import geometry
from . import args as types

__all__ = ["add_parser", "run"]

METHODS = ("auto", "dense", "svds", "svds-matrix-free", "fft")


def add_parser(sub) -> None:
    """Register ``spectrum`` on the sub-command parsers ``sub``."""
    p = sub.add_parser(
        "spectrum", help="largest and smallest singular values of a convolution",
        description="Build a convolution with random weights (PyTorch's default init, float64, "
                    "no bias) and print its exact operator norm sigma_max, sigma_min, the "
                    "condition number, the reshaped-weight norm torch.nn.utils.spectral_norm "
                    "uses, and Sedghi et al.'s FFT formula where it applies.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", type=types.size, default="32x32",
                   help="spatial input size, e.g. 32x32 (1 to 3 dimensions)")
    p.add_argument("--kernel", type=types.size, default="3x3",
                   help="kernel size, e.g. 3x3 (one size repeats over the dimensions)")
    p.add_argument("--channels", type=types.channels, default="16,32", metavar="IN,OUT",
                   help="input and output channels")
    p.add_argument("--stride", type=types.int_or_sizes, default=1, help="an int or NxM")
    p.add_argument("--padding", type=types.padding, default=0,
                   help="an int, NxM, or valid/same/full/causal")
    p.add_argument("--dilation", type=types.int_or_sizes, default=1, help="an int or NxM")
    p.add_argument("--groups", type=types.positive_int, default=1, help="channel groups")
    p.add_argument("--padding-mode", choices=tuple(geometry.PADDING_MODES), default="zeros",
                   help="what padded cells read")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="how to compute the singular values (auto picks)")
    p.add_argument("--tol", type=float, default=0.0,
                   help="svds tolerance (0: machine precision)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Do ``matconv spectrum``: the singular values of the layer the arguments describe."""
    import time

    import numpy as np

    from .. import nn, spectral
    from ..spectral.fourier import circular_reason

    nd = len(args.input)
    kernel = types.broadcast_kernel(args.kernel, args.input)
    cin, cout = args.channels
    shape = (cin, *args.input)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
    layer = conv(cin, cout, kernel, args.stride, args.padding, args.dilation, args.groups,
                 bias=False, padding_mode=args.padding_mode, dtype=np.float64,
                 rng=np.random.default_rng(args.seed))
    rows, cols = np.prod(layer.output_shape(shape)), np.prod(shape)
    print(f"{layer!r} on input {shape}: A is {rows} x {cols}")

    start = time.perf_counter()
    largest = spectral.singular_values(layer, shape, which="largest", method=args.method,
                                       tol=args.tol)
    smallest = spectral.singular_values(layer, shape, which="smallest", method=args.method,
                                        tol=args.tol)
    elapsed = time.perf_counter() - start
    s_max, s_min = float(largest[0]), float(smallest[0])
    cond = s_max / s_min if s_min > 0 else float("inf")
    reshaped = spectral.reshaped_weight_norm(layer)

    reason = circular_reason(layer.geometry, tuple(args.input))
    if reason is None:
        g = layer.geometry
        fft = spectral.fft_singular_values(layer.weight.data, tuple(args.input), stride=g.stride,
                                           dilation=g.dilation, groups=g.groups)
        fft_line = f"sigma_max {fft[0]:.10g}, sigma_min {fft[-1]:.10g} (Sedghi et al.)"
    else:
        fft_line = f"not applicable: {reason}"
    lines = [("sigma_max", f"{s_max:.10g}"),
            ("sigma_min", f"{s_min:.10g}"),
            ("condition number", f"{cond:.6g}"),
            ("reshaped-weight norm", (f"{reshaped:.10g} (what spectral_norm divides by; "
                                      f"sigma_max / it = {s_max / reshaped:.4g})")),
            ("FFT formula", fft_line),
            ("method", (f"{largest.method} (residual {largest.residual:.1e} for sigma_max, "
                        f"{smallest.residual:.1e} for sigma_min)")),
            ("time", f"{elapsed:.3f} s")]
    for name, value in lines:
        print(f"{name:<21} {value}")
    return 0
