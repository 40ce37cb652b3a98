"""The ``matconv`` command (also ``python -m matconv``): thin argument parsing over the library."""
from __future__ import annotations

import argparse
import sys

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
    return _int_or_sizes(text)


def _int_or_sizes(text: str):
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or sizes like 2x1 (padding also takes "
                                         f"valid/same/full/causal), got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _channels(text: str) -> tuple:
    try:
        cin, cout = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IN,OUT channel counts like 2,3, got "
                                         f"{text!r}") from None
    return cin, cout


def _show(args) -> int:
    from . import nn
    from .memory import format_bytes
    from .show import symbolic, unfold_text

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
        from .plot import plot_operator

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


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _train(args) -> int:
    import json
    import time

    from . import checkpoint, data, models, nn, optim, train

    xtr, ytr = data.load_digits("train", dtype=args.dtype)
    xte, yte = data.load_digits("test", dtype=args.dtype)
    model = models.lenet(seed=args.seed, lowering=args.lowering, dtype=args.dtype)
    params = model.parameters()
    opt = (optim.Adam(params, lr=args.lr) if args.optimizer == "adam"
           else optim.SGD(params, lr=args.lr, momentum=0.9))
    if not args.quiet and not args.json:
        print(f"training {model[0].lowering}/{model[3].lowering} LeNet on {len(xtr)} digits "
              f"({args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr}, "
              f"{args.dtype})")
    start = time.perf_counter()
    history = train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, xte, yte,
                        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        progress=False if args.quiet or args.json else None)
    seconds = time.perf_counter() - start
    accuracy = history["test_accuracy"][-1]
    result = {"test_accuracy": accuracy, "train_accuracy": history["train_accuracy"][-1],
              "train_loss": history["train_loss"][-1], "epochs": args.epochs,
              "train_seconds": round(seconds, 3), "images_per_second": round(
                  len(xtr) * args.epochs / sum(history["epoch_seconds"])),
              "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
              "seed": args.seed, "dtype": args.dtype, "lowering": args.lowering}
    if args.save:
        checkpoint.save(model, args.save, test_accuracy=accuracy, epochs=args.epochs)
        result["saved"] = args.save
    if args.json:
        print(json.dumps(result))
    elif not args.quiet:
        print(f"test accuracy {accuracy:.4f} after {args.epochs} epochs in {seconds:.1f} s"
              + (f"; saved to {args.save}" if args.save else ""))
    else:
        print(f"{accuracy:.4f}")
    return 0


def _evaluate(args) -> int:
    import json

    from . import checkpoint, data, train

    model, meta = checkpoint.load(args.path)
    dtype = model.parameters()[0].dtype
    x, y = data.load_digits(args.split, dtype=dtype)
    accuracy = train.evaluate(model, x, y)
    if args.json:
        print(json.dumps({"accuracy": accuracy, "split": args.split, "images": len(x),
                          "path": args.path}))
    else:
        print(f"{args.split} accuracy {accuracy:.4f} on {len(x)} digits ({args.path})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matconv", description="Every convolution as an explicit matrix.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    show = sub.add_parser("show", help="print the unrolled matrix of a convolution",
                          description="Print a convolution as the matrix the slides draw: rows "
                                      "are outputs, columns inputs, w00.. in the right cells.")
    show.add_argument("--input", type=_size, default=(4, 4), help="spatial input size, e.g. 4x4")
    show.add_argument("--kernel", type=_size, default=(3, 3), help="kernel size, e.g. 3x3")
    show.add_argument("--stride", type=_int_or_sizes, default=1)
    show.add_argument("--padding", type=_padding, default=0,
                      help="an int, NxM, or valid/same/full/causal")
    show.add_argument("--dilation", type=_int_or_sizes, default=1)
    show.add_argument("--channels", type=_channels, default=(1, 1), metavar="IN,OUT")
    show.add_argument("--groups", type=_positive_int, default=1)
    show.add_argument("--transposed", action="store_true",
                      help="the transposed convolution (its matrix is A.T of the matching conv)")
    show.add_argument("--output-padding", type=_int_or_sizes, default=0)
    show.add_argument("--unfold", action="store_true",
                      help="the im2col matrix of the input instead (which cell each row reads)")
    show.add_argument("--labels", action="store_true", help="label rows y(c,pos), columns x(c,pos)")
    show.add_argument("--latex", action="store_true", help="print a LaTeX bmatrix")
    show.add_argument("--png", metavar="PATH", help="also save a picture of the matrix")
    show.add_argument("--max-cells", type=_positive_int, default=4096,
                      help="summarise instead of printing above this many matrix cells")
    show.set_defaults(func=_show)

    tr = sub.add_parser("train", help="train the LeNet-style CNN on the bundled digits")
    tr.add_argument("--epochs", type=_positive_int, default=30)
    tr.add_argument("--batch-size", type=_positive_int, default=64)
    tr.add_argument("--lr", type=_positive_float, default=2e-3)
    tr.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                    help="adam, or sgd with momentum 0.9")
    tr.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    tr.add_argument("--lowering", choices=["auto", "im2col", "sparse"], default="auto")
    tr.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    tr.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here")
    tr.add_argument("--quiet", action="store_true", help="print only the test accuracy")
    tr.add_argument("--json", action="store_true",
                    help="print one JSON object (test_accuracy, epochs, train_seconds, ...)")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate", help="score a saved checkpoint on the bundled digits")
    ev.add_argument("path", help="checkpoint written by matconv train --save")
    ev.add_argument("--split", choices=["test", "train"], default="test")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:  # bad input or files: one line, status 2
        print(f"matconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
