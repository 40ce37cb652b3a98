"""``matconv train`` and ``matconv evaluate``: the LeNet-style CNN on the bundled digits."""
from __future__ import annotations

from . import args as types

__all__ = ["add_parsers", "run_evaluate", "run_train"]


def add_parsers(sub) -> None:
    """Register ``train`` and ``evaluate`` on the sub-command parsers ``sub``."""
    tr = sub.add_parser("train", help="train the LeNet-style CNN on the bundled digits")
    tr.add_argument("--epochs", type=types.positive_int, default=30)
    tr.add_argument("--batch-size", type=types.positive_int, default=64)
    tr.add_argument("--lr", type=types.positive_float, default=2e-3)
    tr.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                    help="adam, or sgd with momentum 0.9")
    tr.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    tr.add_argument("--lowering", choices=["auto", "im2col", "sparse"], default="auto")
    tr.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    tr.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here")
    tr.add_argument("--quiet", action="store_true", help="print only the test accuracy")
    tr.add_argument("--json", action="store_true",
                    help="print one JSON object (test_accuracy, epochs, train_seconds, ...)")
    tr.set_defaults(func=run_train)

    ev = sub.add_parser("evaluate", help="score a saved checkpoint on the bundled digits")
    ev.add_argument("path", help="checkpoint written by matconv train --save")
    ev.add_argument("--split", choices=["test", "train"], default="test")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=run_evaluate)


def run_train(args) -> int:
    import json
    import time

    from .. import checkpoint, data, models, nn, optim, train

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


def run_evaluate(args) -> int:
    import json

    from .. import checkpoint, data, train

    model, _ = checkpoint.load(args.path)
    dtype = model.parameters()[0].dtype
    x, y = data.load_digits(args.split, dtype=dtype)
    accuracy = train.evaluate(model, x, y)
    if args.json:
        print(json.dumps({"accuracy": accuracy, "split": args.split, "images": len(x),
                          "path": args.path}))
    else:
        print(f"{args.split} accuracy {accuracy:.4f} on {len(x)} digits ({args.path})")
    return 0
