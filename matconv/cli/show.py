"""``matconv show``: print a convolution as the matrix the slides draw."""
from __future__ import annotations

from . import args as types

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``show`` on the sub-command parsers ``sub``."""
    show = sub.add_parser("show", help="print the unrolled matrix of a convolution",
                          description="Print a convolution as the matrix the slides draw: rows "
                                      "are outputs, columns inputs, w00.. in the right cells.")
    show.add_argument("--input", type=types.size, default=(4, 4),
                      help="spatial input size, e.g. 4x4")
    show.add_argument("--kernel", type=types.size, default=(3, 3), help="kernel size, e.g. 3x3")
    show.add_argument("--stride", type=types.int_or_sizes, default=1)
    show.add_argument("--padding", type=types.padding, default=0,
                      help="an int, NxM, or valid/same/full/causal")
    show.add_argument("--dilation", type=types.int_or_sizes, default=1)
    show.add_argument("--channels", type=types.channels, default=(1, 1), metavar="IN,OUT")
    show.add_argument("--groups", type=types.positive_int, default=1)
    show.add_argument("--transposed", action="store_true",
                      help="the transposed convolution (its matrix is A.T of the matching conv)")
    show.add_argument("--output-padding", type=types.int_or_sizes, default=0)
    show.add_argument("--unfold", action="store_true",
                      help="the im2col matrix of the input instead (which cell each row reads)")
    show.add_argument("--labels", action="store_true", help="label rows y(c,pos), columns x(c,pos)")
    show.add_argument("--latex", action="store_true", help="print a LaTeX bmatrix")
    show.add_argument("--png", metavar="PATH", help="also save a picture of the matrix")
    show.add_argument("--max-cells", type=types.positive_int, default=4096,
                      help="summarise instead of printing above this many matrix cells")
    show.set_defaults(func=run)


def run(args) -> int:
    from .. import nn
    from ..memory import format_bytes
    from ..show import symbolic, unfold_text

    nd = len(args.input)
    kernel = args.kernel if len(args.kernel) == nd else args.kernel * nd
    if len(kernel) != nd:
        raise ValueError(f"--kernel has {len(args.kernel)} sizes, --input {nd}")
    cin, cout = args.channels
    input_shape = (cin, *args.input)
    if args.unfold:
        print(unfold_text(input_shape, kernel, args.stride, args.padding, args.dilation))
        return 0
    conv = {1: (nn.Conv1d, nn.ConvTranspose1d), 2: (nn.Conv2d, nn.ConvTranspose2d),
            3: (nn.Conv3d, nn.ConvTranspose3d)}[nd]
    if args.transposed:
        layer = conv[1](cin, cout, kernel, args.stride, args.padding, args.output_padding,
                        args.groups, dilation=args.dilation, dtype="float64")
    else:
        layer = conv[0](cin, cout, kernel, args.stride, args.padding, args.dilation, args.groups,
                        dtype="float64")
    A = layer.matrix(input_shape)
    rows, cols = A.shape
    if args.png:
        from ..plot import plot_operator

        ax = plot_operator(layer, input_shape)
        ax.figure.savefig(args.png, dpi=150, bbox_inches="tight")
    if rows * cols > args.max_cells:
        print(f"{'transposed ' if args.transposed else ''}conv matrix {rows} x {cols}: {A.nnz} "
              f"nonzeros, density {A.nnz / (rows * cols):.3g}, "
              f"{format_bytes(A.data.nbytes + A.indices.nbytes + A.indptr.nbytes)} as CSR"
              + (f"; plot written to {args.png}" if args.png else ""))
        return 0
    sym = symbolic(layer, input_shape)
    print(sym.to_latex() if args.latex else sym.to_text(labels=args.labels))
    return 0
