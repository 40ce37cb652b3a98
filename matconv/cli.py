"""The ``matconv`` command (also ``python -m matconv``): thin argument parsing over the library."""
from __future__ import annotations

import argparse
import sys

from .memory import format_bytes

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, no traceback
        self.exit(2, f"{self.prog}: error: {message}\n")


def _size(text: str) -> tuple:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 4x4 or 5, got {text!r}") from None
    if not 1 <= len(parts) <= 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 to 3 positive sizes like 4x4, got {text!r}")
    return parts


def _padding(text: str):
    if text in ("valid", "same", "full", "causal"):
        return text
    return _size_or_zero(text)


def _size_or_zero(text: str):
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, NxM or valid/same/full/causal, got "
                                         f"{text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _show(args) -> int:
    from .geometry import ConvGeometry
    from .lowering import conv_structure
    from .show import render_text, weight_index_matrix, weight_names

    nd = len(args.input)
    kernel = args.kernel if len(args.kernel) == nd else args.kernel * nd
    geometry = ConvGeometry(1, 1, kernel, args.stride, args.padding, args.dilation, ndim=nd)
    s = conv_structure(geometry, args.input)
    rows, cols = s.shape
    if rows * cols > args.max_cells:
        density = s.nnz / (rows * cols)
        print(f"conv matrix {rows} x {cols}: {s.nnz} nonzeros, density {density:.3g}, "
              f"{format_bytes(s.nnz * (s.indices.itemsize + 8) + s.indptr.nbytes)} as CSR")
        return 0
    weight_shape = (1, 1, *kernel)
    index = weight_index_matrix(weight_shape, (1, *args.input), args.stride, args.padding,
                                args.dilation)
    print(render_text(index, weight_names(weight_shape)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matconv", description="Every convolution as an explicit matrix.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    show = sub.add_parser("show", help="print the unrolled matrix of a convolution")
    show.add_argument("--input", type=_size, default=(4, 4), help="spatial input size, e.g. 4x4")
    show.add_argument("--kernel", type=_size, default=(3, 3), help="kernel size, e.g. 3x3")
    show.add_argument("--stride", type=_size_or_zero, default=1)
    show.add_argument("--padding", type=_padding, default=0)
    show.add_argument("--dilation", type=_size_or_zero, default=1)
    show.add_argument("--max-cells", type=int, default=4096,
                      help="summarise instead of printing above this many matrix cells")
    show.set_defaults(func=_show)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"matconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
