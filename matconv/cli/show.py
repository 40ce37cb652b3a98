"""``matconv show``: print a convolution as the matrix the slides draw, and picture it."""
from __future__ import annotations

import argparse
import math
import os

from ..geometry import PADDING_MODES
from . import args as types

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  matconv show --input 4x4 --kernel 3x3          the slides' 4 x 16 matrix
  matconv show --input 5 --kernel 2 --stride 2 --transposed --labels
  matconv show --input 5x5 --stride 2 --padding 1 --gif conv.gif --html conv.html
  matconv show --input 3x3 --kernel 2 --unfold --labels
"""


def add_parser(sub) -> None:
    """Register ``show`` on the sub-command parsers ``sub``."""
    show = sub.add_parser(
        "show", help="print the unrolled matrix of a convolution; animate it, or write a page",
        description="Print a convolution as the matrix the slides draw: rows are outputs,\n"
                    "columns inputs, w00.. in the right cells. Wide matrices print in blocks\n"
                    "of columns. --png, --gif and --html also picture it.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    geometry = show.add_argument_group("the convolution")
    geometry.add_argument("--input", type=types.size, default="4x4", metavar="SIZE",
                          help="spatial input size: 5 (1-D), 4x4 (2-D) or 3x4x4 "
                               "(default: %(default)s)")
    geometry.add_argument("--kernel", type=types.size, default="3", metavar="SIZE",
                          help="kernel size; one number is used along every dimension "
                               "(default: %(default)s)")
    geometry.add_argument("--stride", type=types.int_or_sizes, default="1", metavar="N",
                          help="an int, or one per dimension like 2x1 (default: %(default)s)")
    geometry.add_argument("--padding", type=types.padding, default="0", metavar="P",
                          help="an int, one per dimension like 2x1, or valid, same, full, "
                               "causal (default: %(default)s)")
    geometry.add_argument("--padding-mode", choices=tuple(PADDING_MODES), default="zeros",
                          help="what padding cells read: zeros, or the input cell they mirror, "
                               "repeat or wrap to (default: %(default)s)")
    geometry.add_argument("--dilation", type=types.int_or_sizes, default="1", metavar="N",
                          help="spacing of the kernel taps, an int or one per dimension "
                               "(default: %(default)s)")
    geometry.add_argument("--channels", type=types.channels, default="1,1", metavar="IN,OUT",
                          help="input and output channels (default: %(default)s)")
    geometry.add_argument("--groups", type=types.positive_int, default=1, metavar="G",
                          help="channel groups; both channel counts must divide by it "
                               "(default: %(default)s)")
    geometry.add_argument("--transposed", action="store_true",
                          help="the transposed convolution (ConvTranspose): its matrix is A.T "
                               "of the matching convolution, and --input is its input")
    geometry.add_argument("--output-padding", type=types.int_or_sizes, default="0", metavar="N",
                          help="extra output cells of --transposed, smaller than the stride "
                               "(default: %(default)s)")
    text = show.add_argument_group("what to print")
    text.add_argument("--unfold", action="store_true",
                      help="the im2col matrix of the input instead: which input cell each "
                           "(channel, tap) row reads at each output position")
    text.add_argument("--labels", action="store_true",
                      help="label rows and columns: y(c,pos) and x(c,pos); with --unfold, "
                           "w(:,c,tap) and y(:,pos)")
    text.add_argument("--latex", action="store_true", help="print a LaTeX bmatrix")
    text.add_argument("--max-cells", type=types.positive_int, default=4096, metavar="N",
                      help="print a summary instead of a matrix of more cells "
                           "(default: %(default)s)")
    pictures = show.add_argument_group("pictures (need matplotlib, but --html)")
    pictures.add_argument("--png", metavar="PATH",
                          help="save a picture of the matrix (with --unfold: the input beside "
                               "its im2col matrix)")
    pictures.add_argument("--gif", metavar="PATH",
                          help="save an animation: the kernel window sliding over the input "
                               "beside the matrix, one row of A a frame (one column of A.T for "
                               "--transposed); 1-D and 2-D")
    pictures.add_argument("--html", metavar="PATH",
                          help="write an interactive page (one self-contained file): hover a "
                               "cell to see its row, column, window and weight; 1-D and 2-D")
    pictures.add_argument("--seed", type=int, default=0, metavar="N",
                          help="seed of the weights the pictures show (default: %(default)s)")
    show.set_defaults(func=run)


def _check_combinations(args) -> None:
    """Refuse flags that would otherwise be ignored, naming them."""
    extra = args.output_padding
    if not args.transposed and any(extra if isinstance(extra, tuple) else (extra,)):
        raise ValueError(f"--output-padding applies to --transposed only (a convolution has no "
                         f"output padding), got --output-padding {args.output_padding}")
    if args.unfold:
        extra = [flag for flag, on in (("--transposed", args.transposed),
                                       ("--latex", args.latex), ("--gif", args.gif),
                                       ("--html", args.html)) if on]
        if extra:
            raise ValueError(f"--unfold prints the im2col matrix of the input; it does not "
                             f"combine with {', '.join(extra)}")
    if args.latex and args.labels:
        raise ValueError("--labels labels the text output; --latex prints a bare bmatrix")


def _kernel(args) -> tuple:
    return types.broadcast_kernel(args.kernel, args.input)


def _layer(args, kernel):
    import numpy as np

    from .. import nn

    nd, (cin, cout) = len(args.input), args.channels
    if nd not in (1, 2, 3):  # pragma: no cover - types.size allows 1 to 3 sizes
        raise ValueError(f"--input must have 1 to 3 sizes, got {args.input}")
    rng = np.random.default_rng(args.seed)
    if args.transposed:
        layer = getattr(nn, f"ConvTranspose{nd}d")
        return layer(cin, cout, kernel, args.stride, args.padding, args.output_padding,
                     args.groups, dilation=args.dilation, padding_mode=args.padding_mode,
                     dtype="float64", rng=rng)
    layer = getattr(nn, f"Conv{nd}d")
    return layer(cin, cout, kernel, args.stride, args.padding, args.dilation, args.groups,
                 padding_mode=args.padding_mode, dtype="float64", rng=rng)


def _save_atomically(path, save) -> None:
    """``save(tmp)`` beside ``path`` (same suffix, so the format is the same), then rename."""
    path = os.fspath(path)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}{os.path.splitext(name)[1]}")
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _pictures(args, layer, input_shape) -> None:
    """Check every requested picture first (sizes, matplotlib), then write them."""
    if args.gif and not args.gif.lower().endswith(".gif"):
        raise ValueError(f"--gif writes a GIF: PATH must end in .gif, got {args.gif!r}")
    if args.png or args.gif:
        from ..plot import require_matplotlib

        require_matplotlib("matconv show " + " ".join(
            flag for flag, on in (("--png", args.png), ("--gif", args.gif)) if on))
    page = anim = None
    try:
        if args.html:
            from ..page import render_page

            page = render_page(layer, input_shape)
        if args.gif:
            from ..animation import animate

            anim = animate(layer, input_shape)
    except ValueError as err:  # too large, or 3-D: say which flag asked for it
        raise ValueError(f"{'--html' if args.html and page is None else '--gif'}: {err}") \
            from None
    if args.png:
        from ..plot import plot_operator

        ax = plot_operator(layer, input_shape)
        _save_atomically(args.png, lambda tmp: ax.figure.savefig(tmp, dpi=150,
                                                                 bbox_inches="tight"))
    if anim is not None:
        _save_atomically(args.gif, lambda tmp: anim.save(tmp, writer="pillow", fps=1.5))
    if page is not None:
        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(page)

        _save_atomically(args.html, write)


def _unfold(args, input_shape, kernel) -> int:
    from ..geometry import ConvGeometry
    from ..show import unfold_text

    nd, channels = len(args.input), input_shape[0]
    g = ConvGeometry(channels, channels, kernel, args.stride, args.padding, args.dilation,
                     padding_mode=args.padding_mode, ndim=nd)
    rows = channels * g.kernel_numel
    cols = math.prod(g.output_size(args.input))
    if args.png:
        if nd == 3:
            raise ValueError("--png with --unfold draws 1-D and 2-D inputs, got 3 sizes in "
                             "--input")
        import numpy as np

        from ..plot import plot_unfold, require_matplotlib

        require_matplotlib("matconv show --png")
        # each cell shows its own flat index, so the picture says which cell each row reads
        x = np.arange(math.prod(input_shape), dtype=float).reshape(input_shape)
        kw = {"kernel_size": kernel, "stride": g.stride, "padding": g.padding,
              "dilation": g.dilation}
        if nd == 1:  # one row of cells: a 2-D picture with a kernel of height 1
            x = x[:, None, :]
            kw = {"kernel_size": (1, *kernel), "stride": (1, *g.stride),
                  "padding": ((0, 0), *g.padding), "dilation": (1, *g.dilation)}
        fig = plot_unfold(x, padding_mode=args.padding_mode, **kw)
        _save_atomically(args.png, lambda tmp: fig.savefig(tmp, dpi=150, bbox_inches="tight"))
    if rows * cols > args.max_cells:
        print(f"im2col matrix {rows} x {cols} (channel and tap by output position), more than "
              f"--max-cells {args.max_cells}" + (f"; picture written to {args.png}"
                                                 if args.png else ""))
        return 0
    print(unfold_text(input_shape, kernel, g.stride, g.padding, g.dilation, args.padding_mode,
                      labels=args.labels))
    return 0


def run(args) -> int:
    """Do ``matconv show``: print (and draw) the matrix the arguments describe."""
    from ..memory import format_bytes
    from ..show import symbolic

    _check_combinations(args)
    kernel = _kernel(args)
    cin, _ = args.channels
    input_shape = (cin, *args.input)
    if args.unfold:
        return _unfold(args, input_shape, kernel)
    layer = _layer(args, kernel)
    A = layer.matrix(input_shape)
    _pictures(args, layer, input_shape)
    rows, cols = A.shape
    if rows * cols > args.max_cells:
        written = [p for p in (args.png, args.gif, args.html) if p]
        print(f"{'transposed ' if args.transposed else ''}conv matrix {rows} x {cols}: {A.nnz} "
              f"nonzeros, density {A.nnz / (rows * cols):.3g}, "
              f"{format_bytes(A.data.nbytes + A.indices.nbytes + A.indptr.nbytes)} as CSR"
              + (f"; written: {', '.join(written)}" if written else ""))
        return 0
    sym = symbolic(layer, input_shape)
    print(sym.to_latex() if args.latex else sym.to_text(labels=args.labels))
    return 0
