"""The training loop, :func:`fit`, with a progress bar.

:func:`fit` runs the loop of Ray's "Training Convnet with Backprop", batched: forward, loss,
backward (each layer's transpose, in reverse), optimizer step. Shuffling uses its own seeded
generator, so a fixed seed (and a model built from a fixed seed) gives the same history every
time.
"""
from __future__ import annotations

import inspect
import numbers
import os
import sys
import time

import numpy as np

from ..batches import batch_indices, check_batch_size
from .early_stopping import EarlyStopping, restore, snapshot
from .scoring import Tally, check_data, check_loss_fn, check_metrics, score

__all__ = ["fit", "iterate_minibatches"]


def iterate_minibatches(n: int, batch_size: int, rng=None):
    """Index arrays covering ``range(n)`` in batches (shuffled when ``rng`` is given).

    >>> [b.tolist() for b in iterate_minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    return batch_indices(n, batch_size, shuffle=rng is not None, rng=rng)


def _split(n: int, validation_split, seed) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` positions: a seeded random ``validation_split`` of ``range(n)``."""
    if isinstance(validation_split, (bool, np.bool_)) \
            or not isinstance(validation_split, numbers.Real) or not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be a fraction in (0, 1), got "
                         f"{validation_split!r}")
    n_val = round(n * float(validation_split))
    if not 1 <= n_val <= n - 1:
        raise ValueError(f"validation_split={validation_split} of {n} examples leaves "
                         f"{n_val} for validation and {n - n_val} for training; both need at "
                         f"least one")
    order = np.random.default_rng(None if seed is None else [seed, 1]).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_options(epochs, seed, scheduler, scheduler_step, optimizer, callbacks,
                   early_stopping, checkpoint):
    if isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, numbers.Integral) \
            or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if scheduler is not None:
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"scheduler must have a step() method (e.g. a matconv.optim."
                            f"lr_scheduler scheduler), got {type(scheduler).__name__}")
        if getattr(scheduler, "optimizer", optimizer) is not optimizer:
            raise ValueError("scheduler schedules another optimizer than the one fit() steps")
    callbacks = list(callbacks or [])
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be callable as callback(epoch, history), got "
                            f"{type(callback).__name__}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be a matconv.train.EarlyStopping, got "
                        f"{type(early_stopping).__name__}")
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (str or os.PathLike), got "
                            f"{type(checkpoint).__name__}")
        folder = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"checkpoint={os.fspath(checkpoint)!r}: the directory "
                                    f"{folder!r} does not exist (checked before training)")
    return callbacks


def _record(history: dict, prefix: str, results: dict) -> None:
    for name, value in results.items():
        history.setdefault(f"{prefix}_{name}", []).append(value)


def _parameters_only(model) -> dict:
    """``{"input_grad": False}`` when ``model.backward`` takes it (every matconv module; a
    custom ``backward`` or a duck-typed model may not): a training step needs no input
    gradient."""
    try:
        accepted = inspect.signature(model.backward).parameters
    except (TypeError, ValueError):  # a builtin or otherwise unreadable signature
        return {}
    return {"input_grad": False} if "input_grad" in accepted else {}


def fit(model, loss_fn, optimizer, x_train, y_train, x_test=None, y_test=None, *, epochs=10,
        batch_size=64, seed=0, progress=None, metrics=None, validation_split=None,
        validation_data=None, callbacks=None, early_stopping=None, scheduler=None,
        scheduler_step="epoch", checkpoint=None):
    """Train ``model`` and return its history, for any task.

    Parameters
    ----------
    model : Module
        Anything with ``model(x)``, ``model.backward(dy)``, ``train()``/``eval()``.
    loss_fn : loss module
        ``loss = loss_fn(out, target)`` (a number: ``reduction`` 'mean' or 'sum') and
        ``dout = loss_fn.backward()``.
    optimizer : matconv.optim.Optimizer
    x_train, y_train : ndarray
        Inputs and targets, one per example along axis 0: class labels, regression targets, or
        the inputs themselves for an autoencoder.
    x_test, y_test : ndarray, optional
        Scored after every epoch (``test_*`` entries).
    epochs, batch_size : int
    seed : int or None, default 0
        Drives the shuffling (and the validation split).
    progress : bool or None
        Show a tqdm progress bar; ``None`` shows it only when stderr is a terminal.
    metrics : dict of {str: callable}, optional
        ``fn(out, y) -> float``, recorded as ``train_<name>``, ``val_<name>``, ``test_<name>``
        (means over examples, batches weighted by size; the training values are taken during
        the epoch, in training mode).
    validation_split : float in (0, 1), optional
        Hold out this fraction of the training data (a random, seeded choice) and score it
        after every epoch (``val_*`` entries).
    validation_data : (x_val, y_val), optional
        Or score this data as the validation set.
    callbacks : list of callable, optional
        ``callback(epoch, history)`` after every epoch (``epoch`` counts from 0); returning
        ``True`` stops training.
    early_stopping : EarlyStopping, optional
        Stop when its monitored entry stops improving; restores the best weights.
    scheduler : learning-rate scheduler, optional
        ``scheduler.step()`` after every epoch, or after every batch with
        ``scheduler_step='batch'`` (:class:`~matconv.optim.lr_scheduler.OneCycleLR`).
    scheduler_step : {'epoch', 'batch'}, default 'epoch'
    checkpoint : str or path, optional
        After every epoch, save the model and the optimizer state there
        (``matconv.checkpoint.save(model, path, optimizer=optimizer, epoch=..., history=...)``),
        replacing the previous save. Its directory must exist (checked before training).

    Returns
    -------
    dict of lists, one entry per epoch
        ``train_loss``; ``train_accuracy`` only when the targets are class labels (integer
        ``(N,)`` with outputs ``(N, C)``); ``train_<metric>``; the same with ``val_`` and
        ``test_``; ``lr`` (the first group's learning rate at the epoch's start) with a
        scheduler; ``epoch_seconds`` (the training loop alone) and, when anything is scored,
        ``eval_seconds`` (the validation and test passes).

    Examples
    --------
    >>> from matconv import nn, optim
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((40, 3)); y = (x[:, 0] > 0).astype(int)
    >>> model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, rng=rng))
    >>> history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.5),
    ...               x, y, epochs=20, batch_size=8, progress=False)
    >>> history["train_accuracy"][-1] > 0.9
    True

    A regression reports the loss (and any metrics), never an accuracy:

    >>> net = nn.Linear(3, 1, dtype=np.float64, rng=rng)
    >>> history = fit(net, nn.MSELoss(), optim.Adam(net.parameters(), lr=0.05), x, x[:, :1],
    ...               epochs=30, batch_size=8, progress=False, validation_split=0.25,
    ...               metrics={"mae": lambda out, y: np.abs(out - y).mean()})
    >>> sorted(k for k in history if k.startswith(("train", "val")))
    ['train_loss', 'train_mae', 'val_loss', 'val_mae']
    >>> history["val_loss"][-1] < 0.01
    True
    """
    check_data(x_train, y_train, "training")
    check_loss_fn(loss_fn)
    batch_size = check_batch_size(batch_size)
    callbacks = _check_options(epochs, seed, scheduler, scheduler_step, optimizer, callbacks,
                               early_stopping, checkpoint)
    metrics = check_metrics(metrics)
    if x_test is not None or y_test is not None:
        check_data(x_test, y_test, "test")
    train_idx, scored = np.arange(len(x_train)), []
    if validation_split is not None and validation_data is not None:
        raise ValueError("give validation_split or validation_data, not both")
    if validation_split is not None:
        train_idx, val_idx = _split(len(x_train), validation_split, seed)
        scored.append(("val", x_train, y_train, val_idx))
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        check_data(*validation_data, "validation")
        scored.append(("val", *validation_data, len(validation_data[0])))
    if early_stopping is not None:
        if early_stopping.monitor.startswith("val_") and not any(s[0] == "val" for s in scored):
            raise ValueError(f"early_stopping monitors {early_stopping.monitor!r} but there is "
                             f"no validation data: pass validation_split or validation_data")
        if early_stopping.monitor.startswith("test_") and x_test is None:
            raise ValueError(f"early_stopping monitors {early_stopping.monitor!r} but there is "
                             f"no test data")
        early_stopping.reset()
    if x_test is not None:
        scored.append(("test", x_test, y_test, len(x_test)))

    rng = np.random.default_rng(seed)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    history = {"train_loss": []}
    batches_per_epoch = -(-len(train_idx) // batch_size)
    backward_options = _parameters_only(model)
    bar = _progress_bar(epochs * batches_per_epoch, show)
    classification, best = None, None
    try:
        for epoch in range(epochs):
            if scheduler is not None:
                history.setdefault("lr", []).append(optimizer.param_groups[0]["lr"])
            model.train()
            start = time.perf_counter()
            tally = Tally(loss_fn, metrics, classification)
            for idx in batch_indices(train_idx, batch_size, shuffle=True, rng=rng):
                optimizer.zero_grad()
                out = model(x_train[idx])
                loss = tally.add(out, y_train[idx])
                # the parameters' gradients alone: the data needs none (PyTorch's requires_grad)
                model.backward(loss_fn.backward(), **backward_options)
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}", refresh=False)
            history.setdefault("epoch_seconds", []).append(time.perf_counter() - start)
            classification = tally.classification
            _record(history, "train", tally.results())
            if scored:
                start = time.perf_counter()
                for prefix, x, y, idx in scored:
                    _record(history, prefix, score(model, x, y, idx, max(batch_size, 256),
                                                   loss_fn, metrics, classification))
                history.setdefault("eval_seconds", []).append(time.perf_counter() - start)
                if "test_accuracy" in history:
                    bar.set_postfix(epoch=epoch + 1,
                                    test_acc=f"{history['test_accuracy'][-1]:.3f}")
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            stop = any(callback(epoch, history) is True for callback in callbacks)
            if early_stopping is not None:
                stop = early_stopping.update(history) or stop
                if early_stopping.best_epoch == epoch and early_stopping.restore_best_weights:
                    best = snapshot(model)
            if checkpoint is not None:
                from .. import checkpoint as checkpoints

                checkpoints.save(model, checkpoint, optimizer=optimizer, epoch=epoch + 1,
                                 history=history)
            if stop:
                break
    finally:
        bar.close()
    if best is not None and early_stopping.best_epoch != len(history["train_loss"]) - 1:
        restore(model, best)
    return history


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _progress_bar(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm import tqdm  # the text bar: works in terminals and notebooks without widgets

    return tqdm(total=total, unit="batch", dynamic_ncols=True, file=sys.stderr)

