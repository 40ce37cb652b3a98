"""Minibatch training with a progress bar, and evaluation.

:func:`fit` runs the loop seed 000 lists, batched: forward, loss, backward (each layer's
transpose, in reverse), optimizer step. Shuffling uses its own seeded generator, so a fixed seed
(and a model built from a fixed seed) gives the same history every time.
"""
from __future__ import annotations

import sys
import time

import numpy as np

__all__ = ["fit", "evaluate", "iterate_minibatches"]


def iterate_minibatches(n: int, batch_size: int, rng=None):
    """Index arrays covering ``range(n)`` in batches (shuffled when ``rng`` is given).

    >>> [b.tolist() for b in iterate_minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _check_data(x, y, name):
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(f"{name} images and labels must be numpy arrays")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{name} data must be non-empty with one label per image, got "
                         f"{len(x)} images and {len(y)} labels")


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256, loss_fn=None):
    """Accuracy of ``model`` on ``(x, y)`` (and mean loss when ``loss_fn`` is given).

    The model is put in evaluation mode for the pass and restored afterwards.

    Returns
    -------
    float, or (float, float) with ``loss_fn``
    """
    _check_data(x, y, "evaluation")
    was_training = getattr(model, "training", True)
    model.eval()
    correct, total_loss = 0, 0.0
    try:
        for idx in iterate_minibatches(len(x), batch_size):
            out = model(x[idx])
            correct += int(np.sum(np.argmax(out, axis=1) == y[idx]))
            if loss_fn is not None:
                total_loss += loss_fn(out, y[idx]) * len(idx)
    finally:
        model.train(was_training)
    accuracy = correct / len(x)
    return (accuracy, total_loss / len(x)) if loss_fn is not None else accuracy


def fit(model, loss_fn, optimizer, x_train, y_train, x_test=None, y_test=None, *, epochs=10,
        batch_size=64, seed=0, progress=None):
    """Train ``model`` and return its history.

    Parameters
    ----------
    model : Module
        Anything with ``model(x)``, ``model.backward(dy)``, ``train()``/``eval()``.
    loss_fn : loss module
        ``loss = loss_fn(out, target)`` and ``dout = loss_fn.backward()``.
    optimizer : matconv.optim.Optimizer
    x_train, y_train : ndarray
        Images ``(n, C, H, W)`` and class labels ``(n,)``.
    x_test, y_test : ndarray, optional
        Scored after every epoch.
    epochs, batch_size, seed : int
        ``seed`` drives the shuffling.
    progress : bool or None
        Show a tqdm progress bar; ``None`` shows it only when stderr is a terminal.

    Returns
    -------
    dict of lists
        ``train_loss``, ``train_accuracy``, ``test_accuracy`` (if test data) and
        ``epoch_seconds``, one entry per epoch.

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
    """
    _check_data(x_train, y_train, "training")
    if x_test is not None:
        _check_data(x_test, y_test, "test")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    rng = np.random.default_rng(seed)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    history = {"train_loss": [], "train_accuracy": [], "epoch_seconds": []}
    if x_test is not None:
        history["test_accuracy"] = []
    bar = _progress_bar(epochs * -(-len(x_train) // batch_size), show)
    model.train()
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            total_loss, correct = 0.0, 0
            for idx in iterate_minibatches(len(x_train), batch_size, rng):
                optimizer.zero_grad()
                out = model(x_train[idx])
                loss = loss_fn(out, y_train[idx])
                model.backward(loss_fn.backward())
                optimizer.step()
                total_loss += loss * len(idx)
                correct += int(np.sum(np.argmax(out, axis=1) == y_train[idx]))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}", refresh=False)
            history["epoch_seconds"].append(time.perf_counter() - start)
            history["train_loss"].append(total_loss / len(x_train))
            history["train_accuracy"].append(correct / len(x_train))
            if x_test is not None:
                history["test_accuracy"].append(evaluate(model, x_test, y_test))
                bar.set_postfix(epoch=epoch + 1, test_acc=f"{history['test_accuracy'][-1]:.3f}")
    finally:
        bar.close()
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
