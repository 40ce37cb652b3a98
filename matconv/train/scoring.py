"""Scoring a model on arrays: the mean loss, accuracy when the targets are class labels, and
metrics the user passes. :func:`evaluate` is the public face; :class:`Tally` accumulates the
same numbers batch by batch for :func:`matconv.train.fit`."""
from __future__ import annotations

import numbers

import numpy as np

from ..batches import batch_indices, check_batch_size

__all__ = ["Tally", "check_data", "check_metrics", "evaluate", "is_class_labels"]


def check_data(x, y, name: str) -> None:
    """``x`` and ``y`` non-empty ndarrays with one target per example."""
    for what, array in (("inputs", x), ("targets", y)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} {what} must be a numpy ndarray, got {type(array).__name__}")
        if array.ndim == 0:
            raise ValueError(f"{name} {what} must have an example axis, got a 0-d array")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{name} data must be non-empty with one label per image, got "
                         f"{len(x)} images and {len(y)} labels")


def is_class_labels(y: np.ndarray) -> bool:
    """True for integer class labels of shape ``(N,)``: the targets accuracy is defined for."""
    return y.ndim == 1 and y.dtype.kind in "iu"


def check_loss_fn(loss_fn) -> None:
    """A loss module that returns a number: ``reduction='none'`` is refused up front."""
    if not callable(getattr(loss_fn, "backward", None)):
        raise TypeError(f"loss_fn must be a loss module with forward and backward (e.g. "
                        f"nn.CrossEntropyLoss()), got {type(loss_fn).__name__}")
    if getattr(loss_fn, "reduction", None) == "none":
        raise ValueError(f"loss_fn has reduction='none', so it returns one loss per element; "
                         f"training and scoring need a number: use {type(loss_fn).__name__}"
                         f"(reduction='mean') or 'sum'")


def check_metrics(metrics) -> dict:
    """``metrics`` as a dict ``{name: fn(out, y) -> float}`` (``None``: no metrics)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict {{name: fn(out, y)}}, got "
                        f"{type(metrics).__name__}")
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name.isidentifier() or name in ("loss", "accuracy"):
            raise ValueError(f"metrics names must be identifiers other than 'loss' and "
                             f"'accuracy' (those are built in), got {name!r}")
        if not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be a function fn(out, y) -> float, got "
                            f"{type(fn).__name__}")
    return dict(metrics)


def _scalar_loss(value, loss_fn) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"the loss must be a number, got {type(value).__name__} from "
                        f"{type(loss_fn).__name__}")
    return float(value)


class Tally:
    """Sums over batches: the loss, correct predictions and each metric, then their means.

    Accuracy is counted when ``classification`` is true: integer labels ``(N,)`` against outputs
    ``(N, C)``, the predicted class being the argmax over ``C``; ``None`` decides on the first
    batch (true exactly when the labels and outputs have those shapes). The loss of a ``'mean'``
    loss is weighted by the batch size; a ``'sum'`` loss (e.g. ``SquaredError``) is summed; both are
    divided by the number of examples. Metrics are weighted by the batch size.
    """

    def __init__(self, loss_fn, metrics: dict, classification: bool):
        self.loss_fn, self.metrics, self.classification = loss_fn, metrics, classification
        self.summed_loss = getattr(loss_fn, "reduction", "mean") == "sum"
        self.n = self.correct = 0
        self.loss = 0.0
        self.sums = dict.fromkeys(metrics, 0.0)

    def add(self, out: np.ndarray, y: np.ndarray, loss=None) -> float | None:
        """Count one batch; ``loss`` is computed here when not given. Returns the loss."""
        n = len(y)
        self.n += n
        if self.classification is None:
            self.classification = (is_class_labels(y) and isinstance(out, np.ndarray)
                                   and out.ndim == 2 and out.shape[0] == n)
        if self.classification:
            if not (isinstance(out, np.ndarray) and out.ndim == 2 and out.shape[0] == n):
                raise ValueError(f"accuracy needs model outputs of shape (N, C) for class "
                                 f"labels of shape (N,), got outputs of shape "
                                 f"{np.shape(out)}; for other tasks pass metrics={{...}}")
            n_classes = out.shape[1]
            if y.size and (y.min() < 0 or y.max() >= n_classes):
                bad = y[(y < 0) | (y >= n_classes)][0]
                raise ValueError(f"class label {int(bad)} is outside [0, {n_classes}) for model "
                                 f"outputs of {n_classes} classes")
            self.correct += int(np.sum(np.argmax(out, axis=1) == y))
        if self.loss_fn is not None:
            if loss is None:
                loss = _scalar_loss(self.loss_fn(out, y), self.loss_fn)
            self.loss += loss if self.summed_loss else loss * n
        for name, fn in self.metrics.items():
            value = fn(out, y)
            if isinstance(value, np.ndarray) and value.shape == ():
                value = value.item()
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(f"metrics[{name!r}] must return a number, got "
                                f"{type(value).__name__}")
            self.sums[name] += float(value) * n
        return loss

    def results(self) -> dict:
        """``{"loss": ..., "accuracy": ..., name: ...}`` for what was counted."""
        out = {}
        if self.loss_fn is not None:
            out["loss"] = self.loss / self.n
        if self.classification:
            out["accuracy"] = self.correct / self.n
        out.update({name: total / self.n for name, total in self.sums.items()})
        return out


def score(model, x, y, indices, batch_size: int, loss_fn, metrics: dict,
          classification: bool | None) -> dict:
    """One pass over ``x[indices]`` in evaluation mode (the mode is restored afterwards)."""
    was_training = getattr(model, "training", True)
    model.eval()
    tally = Tally(loss_fn, metrics, classification)
    try:
        for idx in batch_indices(indices, batch_size):
            tally.add(model(x[idx]), y[idx])
    finally:
        model.train(was_training)
    return tally.results()


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256, loss_fn=None, *,
             metrics=None):
    """Score ``model`` on ``(x, y)`` in evaluation mode (its mode is restored afterwards).

    Parameters
    ----------
    model : Module
    x, y : ndarray
        Inputs and targets, one per example along axis 0.
    batch_size : int, default 256
    loss_fn : loss module, optional
        Also report the mean loss.
    metrics : dict of {str: callable}, optional, keyword-only
        ``fn(out, y) -> float`` per batch, averaged weighted by batch size. Passing ``metrics``
        (even ``{}``) returns a dict, for any kind of target.

    Returns
    -------
    float, (float, float) or dict
        Without ``metrics``: the accuracy, or ``(accuracy, loss)`` with ``loss_fn`` (class
        labels only). With ``metrics``: ``{"loss": ..., "accuracy": ..., name: ...}``, with
        ``"accuracy"`` only for class labels and ``"loss"`` only with ``loss_fn``.

    Raises
    ------
    ValueError
        Without ``metrics``, if ``y`` is not integer class labels of shape ``(N,)`` (accuracy
        is undefined for other targets), or the model's outputs are not ``(N, C)``.

    Examples
    --------
    >>> from matconv import nn
    >>> model = nn.Linear(2, 3, dtype=np.float64)
    >>> model.weight.data[...] = [[1, 0], [0, 1], [-1, -1]]
    >>> model.bias.data[...] = 0
    >>> x, y = np.array([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]), np.array([0, 1, 1])
    >>> evaluate(model, x, y)
    0.6666666666666666
    >>> evaluate(model, x, x[:, :1], metrics={"mean_out": lambda out, y: out.mean()})
    {'mean_out': 0.0}
    """
    check_data(x, y, "evaluation")
    batch_size = check_batch_size(batch_size)
    if loss_fn is not None:
        check_loss_fn(loss_fn)
    if metrics is None and not is_class_labels(y):
        raise ValueError(f"evaluate reports accuracy, which needs integer class labels of shape "
                         f"(N,); got targets of dtype {y.dtype} and shape {y.shape}. For other "
                         f"targets pass metrics={{...}} (and loss_fn) to get a dict")
    classification = True if metrics is None else None      # accuracy required, or if defined
    results = score(model, x, y, len(x), batch_size, loss_fn, check_metrics(metrics),
                    classification)
    if metrics is not None:
        return results
    return (results["accuracy"], results["loss"]) if loss_fn is not None else \
        results["accuracy"]
