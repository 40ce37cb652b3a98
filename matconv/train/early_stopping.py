"""Early stopping for :func:`matconv.train.fit`: watch one history entry, stop when it has not
improved for ``patience`` epochs, and put the best weights back."""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["EarlyStopping"]

_PREFIXES = ("train_", "val_", "test_")


class EarlyStopping:
    """Stop training when a monitored quantity stops improving (Keras' rule).

    Parameters
    ----------
    monitor : str, default 'val_loss'
        A key of the history :func:`~matconv.train.fit` returns: ``train_loss``,
        ``val_accuracy``, ``val_<metric>``, ``test_loss``, ...
    patience : int, default 5
        Epochs without improvement to wait before stopping (0 stops at the first).
    min_delta : float, default 0
        The smallest change that counts as an improvement.
    mode : {'auto', 'min', 'max'}, default 'auto'
        Whether lower or higher is better; ``'auto'`` takes ``'max'`` for accuracies and
        ``'min'`` for everything else (give ``'max'`` for your own higher-is-better metrics).
    restore_best_weights : bool, default True
        At the end of training, put back the parameters (and buffers, for models with a
        ``state_dict``) of the best epoch.

    Attributes
    ----------
    best : float
        The best monitored value seen.
    best_epoch : int or None
        Its index in the history lists.
    stopped_epoch : int or None
        The index of the epoch after which training stopped early (``None`` if it did not).

    Examples
    --------
    >>> stop = EarlyStopping("val_loss", patience=2)
    >>> history, decisions = {"val_loss": []}, []
    >>> for value in (1.0, 0.5, 0.6, 0.55):
    ...     history["val_loss"].append(value)
    ...     decisions.append(stop.update(history))
    >>> decisions
    [False, False, False, True]
    >>> stop.best, stop.best_epoch, stop.stopped_epoch
    (0.5, 1, 3)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if not isinstance(monitor, str) or not monitor.startswith(_PREFIXES):
            raise ValueError(f"monitor must be a history key starting with one of {_PREFIXES} "
                             f"(e.g. 'val_loss'), got {monitor!r}")
        if isinstance(patience, (bool, np.bool_)) or not isinstance(patience, numbers.Integral) \
                or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if isinstance(min_delta, (bool, np.bool_)) or not isinstance(min_delta, numbers.Real) \
                or not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite real number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise TypeError(f"restore_best_weights must be True or False, got "
                            f"{restore_best_weights!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = ("max" if monitor.endswith("accuracy") else "min") if mode == "auto" \
            else mode
        self.restore_best_weights = bool(restore_best_weights)
        self.reset()

    def reset(self) -> None:
        """Forget what was seen (``fit`` calls this when it starts)."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.stopped_epoch = None
        self.wait = 0

    def update(self, history: dict) -> bool:
        """Look at the latest value of the monitored entry; True when training should stop."""
        if self.monitor not in history:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this training "
                             f"does not record; the history has {sorted(history)}")
        values = history[self.monitor]
        value = float(values[-1])
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.wait = value, len(values) - 1, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = len(values) - 1
            return True
        return False

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


def snapshot(model):
    """A copy of the model's state: its ``state_dict()`` if it has one, else its parameters."""
    if hasattr(model, "state_dict") and hasattr(model, "load_state_dict"):
        return {name: np.array(value, copy=True) for name, value in model.state_dict().items()}
    return [p.data.copy() for p in model.parameters()]


def restore(model, saved) -> None:
    """Put a :func:`snapshot` back, in place."""
    if isinstance(saved, dict):
        model.load_state_dict(saved)
    else:
        for p, value in zip(model.parameters(), saved):
            p.data[...] = value
