"""``matconv train`` and ``matconv evaluate``: a CNN or an MLP on the bundled digits or on the
user's own arrays (an ``.npz`` file or IDX files), sized to the data."""
from __future__ import annotations

import argparse
import os

from . import args as types

__all__ = ["add_parsers", "load_dataset", "run_evaluate", "run_train"]

#: the learning rate each optimizer trains the default LeNet well with on the digits
DEFAULT_LR = {"adam": 2e-3, "adamw": 2e-3, "sgd": 0.05, "rmsprop": 1e-3}
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")

DATA_HELP = """\
data: without --data or --data-idx, the bundled 8x8 digits (UCI ML, CC BY 4.0).
  --data FILE.npz  arrays x_train, y_train, x_test, y_test: images (N, C, H, W) or (N, H, W)
                   (any real dtype; uint8 is divided by 255), integer class labels (N,) from 0.
  --data-idx       four IDX files (MNIST's format, plain or .gz): train images, train labels,
                   test images, test labels.
The model is sized to the data: input channels and size (square or not) and the number of
classes (the largest label + 1).
"""


def _add_data_flags(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", metavar="FILE.npz",
                       help="train/score on these arrays instead of the bundled digits")
    group.add_argument("--data-idx", nargs=4, metavar=("TRAIN_IMAGES", "TRAIN_LABELS",
                                                       "TEST_IMAGES", "TEST_LABELS"),
                       help="train/score on four IDX files instead of the bundled digits")


def add_parsers(sub) -> None:
    """Register ``train`` and ``evaluate`` on the sub-command parsers ``sub``."""
    formatter = argparse.RawDescriptionHelpFormatter
    tr = sub.add_parser("train", help="train a CNN (or MLP) on the digits or your own data",
                        description="Train a LeNet-style CNN or an MLP and report its test "
                                    "accuracy.", epilog=DATA_HELP, formatter_class=formatter)
    _add_data_flags(tr)
    tr.add_argument("--model", choices=["lenet", "mlp"], default="lenet",
                    help="lenet: (conv 3x3, ReLU, max pool 2) x 2 and two dense layers; mlp: "
                         "one hidden dense layer (default: %(default)s)")
    tr.add_argument("--hidden", type=types.positive_int, default=128,
                    help="width of the hidden dense layer (default: %(default)s)")
    tr.add_argument("--epochs", type=types.positive_int, default=30,
                    help="passes over the training data (default: %(default)s)")
    tr.add_argument("--batch-size", type=types.positive_int, default=64,
                    help="examples per step (default: %(default)s)")
    tr.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam",
                    help="sgd uses momentum 0.9 (default: %(default)s)")
    tr.add_argument("--lr", type=types.finite_positive, default=None,
                    help="learning rate (default per optimizer: "
                         + ", ".join(f"{k} {v:g}" for k, v in sorted(DEFAULT_LR.items())) + ")")
    tr.add_argument("--weight-decay", type=types.finite_nonnegative, default=None,
                    help="weight decay (default: the optimizer's, 0; 0.01 for adamw)")
    tr.add_argument("--scheduler", choices=["none", "cosine", "onecycle"], default="none",
                    help="cosine: annealed to 0 over the epochs; onecycle: the 1cycle policy "
                         "peaking at --lr, stepped per batch (default: %(default)s)")
    tr.add_argument("--validation-split", type=types.fraction, default=None, metavar="FRACTION",
                    help="hold out this fraction of the training data and report its loss "
                         "and accuracy each epoch (default: none)")
    tr.add_argument("--patience", type=types.positive_int, default=None,
                    help="stop when the validation loss has not improved for this many "
                         "epochs and keep the best weights (needs --validation-split; "
                         "default: train all epochs)")
    tr.add_argument("--seed", type=int, default=0,
                    help="seeds the weights, the shuffling and the split (default: %(default)s)")
    tr.add_argument("--lowering", choices=["auto", "im2col", "sparse"], default="auto",
                    help="how convolutions run; auto picks per layer (default: %(default)s)")
    tr.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="floating-point type of weights and data (default: %(default)s)")
    tr.add_argument("--save", metavar="PATH",
                    help="write a checkpoint (.npz) here; its directory must exist")
    tr.add_argument("--quiet", action="store_true", help="print only the test accuracy")
    tr.add_argument("--json", action="store_true",
                    help="print one JSON object (test_accuracy, epochs, train_seconds, "
                         "eval_seconds, lowering, ...)")
    tr.set_defaults(func=run_train)

    ev = sub.add_parser("evaluate", help="score a saved checkpoint",
                        description="Score a checkpoint written by matconv train --save.",
                        epilog=DATA_HELP, formatter_class=formatter)
    ev.add_argument("path", help="checkpoint written by matconv train --save")
    _add_data_flags(ev)
    ev.add_argument("--split", choices=["test", "train"], default="test",
                    help="which part of the data to score (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=run_evaluate)


# -- data ---------------------------------------------------------------------------------------

def _images(array, name: str, where: str, dtype):
    """Images ``(N, C, H, W)`` (a channel axis added to ``(N, H, W)``) in ``dtype``."""
    import numpy as np

    from ..memory import check_memory

    if array.dtype.kind not in "uif" or array.ndim < 2:
        raise ValueError(f"{where}: {name} must be a real array of images (N, C, H, W) or "
                         f"(N, H, W), got dtype {array.dtype}, shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{where}: {name} is empty; it needs at least one example")
    check_memory(array.size * np.dtype(dtype).itemsize, f"{name} as {np.dtype(dtype)}",
                 "use a smaller data set")
    out = array.astype(dtype)
    if array.dtype == np.uint8:
        out /= 255
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{where}: {name} holds non-finite values (NaN or inf)")
    return out[:, None] if out.ndim == 3 else out


def _labels(array, name: str, where: str, n: int):
    import numpy as np

    if array.dtype.kind not in "iu" or array.shape != (n,):
        raise ValueError(f"{where}: {name} must hold integer class labels of shape (N,) = "
                         f"({n},), one per image, got dtype {array.dtype}, shape {array.shape}")
    if n and array.min() < 0:
        raise ValueError(f"{where}: {name} holds the label {int(array.min())}; class labels "
                         f"are integers from 0")
    return array.astype(np.int64)


def _read_npz(path) -> dict:
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [name for name in NPZ_ARRAYS if name not in f.files]
            if missing:
                raise ValueError(f"{path}: no array {missing[0]!r}; expected the arrays "
                                 f"x_train (N, C, H, W), y_train (N,), x_test (M, C, H, W), "
                                 f"y_test (M,); the file has {sorted(f.files)}")
            return {name: f[name] for name in NPZ_ARRAYS}
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: "
                         f"{exc})") from None
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: not a readable .npz file of numeric arrays ({exc})") from None


def load_dataset(args, dtype):
    """``(x_train, y_train, x_test, y_test, description)`` from ``--data``, ``--data-idx`` or
    the bundled digits, checked: images ``(N, C, H, W)`` in ``dtype``, int64 labels."""
    from .. import data

    if args.data_idx:
        xtr, ytr = data.load_idx_dataset(*args.data_idx[:2], dtype=dtype)
        xte, yte = data.load_idx_dataset(*args.data_idx[2:], dtype=dtype)
        where = f"{args.data_idx[0]} and its companions"
    elif args.data:
        where = args.data
        arrays = _read_npz(where)
        xtr = _images(arrays["x_train"], "x_train", where, dtype)
        xte = _images(arrays["x_test"], "x_test", where, dtype)
        ytr = _labels(arrays["y_train"], "y_train", where, len(xtr))
        yte = _labels(arrays["y_test"], "y_test", where, len(xte))
    else:
        xtr, ytr = data.load_digits("train", dtype=dtype)
        xte, yte = data.load_digits("test", dtype=dtype)
        return xtr, ytr, xte, yte, "the bundled digits"
    if xte.shape[1:] != xtr.shape[1:]:
        raise ValueError(f"{where}: the test images have shape {xte.shape[1:]} but the training "
                         f"images {xtr.shape[1:]}; both need the same (C, H, W)")
    return xtr, ytr, xte, yte, where


# -- commands ----------------------------------------------------------------------------------

def _build_model(args, xtr, num_classes, source: str):
    from .. import models

    shape = xtr.shape[1:]
    if args.model == "mlp":
        return models.mlp(shape, num_classes, hidden=(args.hidden,), dtype=args.dtype,
                          seed=args.seed)
    if len(shape) != 3 or min(shape[1:]) < 4:
        raise ValueError(f"--model lenet needs images (C, H, W) of at least 4x4, got examples "
                         f"of shape {shape} in {source}; use --model mlp for other inputs")
    return models.lenet(shape[0], num_classes, hidden=args.hidden, input_size=shape[1:],
                        lowering=args.lowering, dtype=args.dtype, seed=args.seed)


def _conv_lowerings(model) -> list:
    return [m.lowering for m in model if hasattr(m, "lowering")]


def _optimizer(args, params):
    from .. import optim

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    kwargs = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, **kwargs), lr
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[args.optimizer]
    return cls(params, lr=lr, **kwargs), lr


def _check_save_path(path) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--save {path}: the directory {folder!r} does not exist (create it "
                         f"first; checked before training)")
    if os.path.isdir(path):
        raise ValueError(f"--save {path}: is a directory; give a file name like model.npz")


def run_train(args) -> int:
    """Do ``matconv train``: train, report, and save if asked."""
    import json

    from .. import checkpoint, nn, train
    from ..optim import lr_scheduler

    if args.save:
        _check_save_path(args.save)
    if args.patience is not None and args.validation_split is None:
        raise ValueError("--patience needs --validation-split (it watches the validation loss)")
    xtr, ytr, xte, yte, source = load_dataset(args, args.dtype)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    model = _build_model(args, xtr, num_classes, source)
    opt, lr = _optimizer(args, model.parameters())
    scheduler, step = None, "epoch"
    if args.scheduler == "cosine":
        scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    elif args.scheduler == "onecycle":
        # the batches fit() takes per epoch: its validation split holds out round(n * split)
        n_train = len(xtr) - round(len(xtr) * (args.validation_split or 0))
        scheduler = lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=args.epochs,
                                            steps_per_epoch=-(-n_train // args.batch_size))
        step = "batch"
    stopping = None if args.patience is None else train.EarlyStopping("val_loss", args.patience)
    lowerings = _conv_lowerings(model)
    lowering = ",".join(dict.fromkeys(lowerings)) or None
    if not args.quiet and not args.json:
        if not lowerings:
            ran = "dense layers only"
        elif len(set(lowerings)) == 1:
            ran = f"{len(lowerings)} convolutions lowered to {lowerings[0]}"
        else:
            ran = f"convolutions lowered to {', '.join(lowerings)}"
        epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
        print(f"training {args.model} ({ran}) on {len(xtr)} examples of shape "
              f"{'x'.join(map(str, xtr.shape[1:]))} from {source}, {num_classes} classes "
              f"({epochs}, batch {args.batch_size}, {args.optimizer} lr {lr:g}, {args.dtype})")
    history = train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, xte, yte,
                        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        progress=False if args.quiet or args.json else None,
                        validation_split=args.validation_split, early_stopping=stopping,
                        scheduler=scheduler, scheduler_step=step)
    accuracy = train.evaluate(model, xte, yte) if stopping else history["test_accuracy"][-1]
    epochs_run = len(history["train_loss"])
    train_seconds, eval_seconds = sum(history["epoch_seconds"]), sum(history["eval_seconds"])
    result = {"test_accuracy": accuracy, "train_accuracy": history["train_accuracy"][-1],
              "train_loss": history["train_loss"][-1], "epochs": epochs_run,
              "train_seconds": round(train_seconds, 3), "eval_seconds": round(eval_seconds, 3),
              "images_per_second": round(len(xtr) * epochs_run / train_seconds),
              "model": args.model, "classes": num_classes, "batch_size": args.batch_size,
              "optimizer": args.optimizer, "lr": lr, "scheduler": args.scheduler,
              "seed": args.seed, "dtype": args.dtype, "lowering": lowering,
              "conv_lowerings": lowerings, "data": source}
    if "val_loss" in history:
        result["val_accuracy"] = history["val_accuracy"][-1]
    if args.save:
        checkpoint.save(model, args.save, test_accuracy=accuracy, epochs=epochs_run)
        result["saved"] = args.save
    if args.json:
        print(json.dumps(result))
    elif not args.quiet:
        epochs = f"{epochs_run} epoch{'s' if epochs_run != 1 else ''}"
        print(f"test accuracy {accuracy:.4f} after {epochs}: training {train_seconds:.1f} s, "
              f"per-epoch evaluation {eval_seconds:.1f} s"
              + (f"; saved to {args.save}" if args.save else ""))
    else:
        print(f"{accuracy:.4f}")
    return 0


def run_evaluate(args) -> int:
    """Do ``matconv evaluate``: score a saved checkpoint."""
    import json

    from .. import checkpoint, train

    model, _ = checkpoint.load(args.path)
    dtype = model.parameters()[0].dtype
    xtr, ytr, xte, yte, source = load_dataset(args, dtype)
    x, y = (xte, yte) if args.split == "test" else (xtr, ytr)
    accuracy = train.evaluate(model, x, y)
    if args.json:
        print(json.dumps({"accuracy": accuracy, "split": args.split, "images": len(x),
                          "path": args.path, "data": source}))
    else:
        print(f"{args.split} accuracy {accuracy:.4f} on {len(x)} examples from {source} "
              f"({args.path})")
    return 0
