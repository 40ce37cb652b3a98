"""What every loss shares: the input checks, ``reduction`` and the upstream gradient."""
from __future__ import annotations

import numbers

import numpy as np

from ..module import Module

REDUCTIONS = ("none", "mean", "sum")


# -- input checks ------------------------------------------------------------------------------

def check_pred(pred, what: str = "a floating-point array") -> np.ndarray:
    if not isinstance(pred, np.ndarray):
        raise TypeError(f"pred must be a numpy ndarray ({what}), got {type(pred).__name__}")
    if pred.dtype.kind != "f":
        raise TypeError(f"pred must be a real floating-point array (float32 or float64), got "
                        f"dtype {pred.dtype}; convert with pred.astype(np.float64)")
    return pred


def check_float_target(target, pred: np.ndarray) -> np.ndarray:
    """``target`` as a float array of ``pred``'s shape, in ``pred``'s dtype."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy ndarray, got {type(target).__name__}")
    if target.dtype.kind != "f":
        raise TypeError(f"target must be a real floating-point array like pred ({pred.dtype}), "
                        f"got dtype {target.dtype}; convert with target.astype(pred.dtype)")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {pred.shape}, got shape "
                         f"{target.shape}")
    return target if target.dtype == pred.dtype else target.astype(pred.dtype)


def check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_weight(weight, name: str) -> np.ndarray | None:
    """An optional array of real weights, kept as float64 (cast to ``pred``'s dtype on use)."""
    if weight is None:
        return None
    array = np.asarray(weight)
    if array.dtype.kind not in "fiu" or array.ndim == 0:
        raise TypeError(f"{name} must be None or a real array (at least 1-D), got "
                        f"{type(weight).__name__} of dtype {array.dtype}, shape {array.shape}")
    return np.array(array, dtype=np.float64)


def broadcast_to_pred(array: np.ndarray | None, pred: np.ndarray, name: str):
    """``array`` in ``pred``'s dtype, checked to broadcast to ``pred``'s shape without growing."""
    if array is None:
        return None
    try:
        shape = np.broadcast_shapes(array.shape, pred.shape)
    except ValueError:
        shape = None
    if shape != pred.shape:
        raise ValueError(f"{name} of shape {array.shape} does not broadcast to pred's shape "
                         f"{pred.shape}")
    return array.astype(pred.dtype)


def check_real(value, name: str, allowed: str, ok) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not ok(float(value)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


# -- the base class ----------------------------------------------------------------------------

class Loss(Module):
    """Shared parts: ``reduction``, the reduced value, and ``backward(grad)``'s upstream factor.

    A subclass implements ``_forward(pred, target) -> (elementwise, denominator, saved)``: the
    per-element losses, what ``'mean'`` divides their sum by, and what ``_backward(saved, g)``
    needs to turn ``g`` (the upstream gradient of each element: a scalar or an array of the
    elements' shape) into the gradient with respect to ``pred``.
    """

    _records = False  # a criterion ends the chain: its backward takes no upstream array

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, pred: np.ndarray, target: np.ndarray):
        """The loss: a float, or with ``reduction='none'`` the array of per-element losses."""
        elementwise, denominator, saved = self._forward(pred, target)
        if self.reduction == "mean" and elementwise.size == 0:
            raise ValueError(f"{type(self).__name__}(reduction='mean') got an empty pred of "
                             f"shape {pred.shape}: the mean of no terms is undefined; use "
                             f"reduction='sum'")
        self._saved = (saved, elementwise.shape, elementwise.dtype, denominator)
        if self.reduction == "none":
            return elementwise
        total = np.sum(elementwise)
        if self.reduction == "sum":
            return float(total)
        with np.errstate(invalid="ignore", divide="ignore"):     # all ignored: NaN, as torch
            return float(total / denominator)

    def backward(self, grad=None) -> np.ndarray:
        """The gradient with respect to ``pred`` (``pred``'s shape and dtype).

        Parameters
        ----------
        grad : float or ndarray, optional
            The gradient flowing into the loss's output: for ``'mean'`` and ``'sum'`` a number
            (default 1, so ``backward()`` is the loss's own gradient); for ``'none'`` an array
            of the per-element losses' shape (default all ones, the gradient of their sum).
        """
        saved, shape, dtype, denominator = self._need_saved()
        if self.reduction == "none":
            if grad is None:
                g = np.ones(shape, dtype)
            else:
                g = np.asarray(grad)
                if g.dtype.kind not in "fiu" or g.shape != shape:
                    raise ValueError(f"grad must be a real array of the loss's shape {shape} "
                                     f"(reduction='none'), got dtype {g.dtype}, shape "
                                     f"{g.shape}")
                g = g.astype(dtype, copy=False)
        else:
            g = 1.0 if grad is None else grad
            if isinstance(g, np.ndarray) and g.shape == ():
                g = g.item()
            if isinstance(g, (bool, np.bool_)) or not isinstance(g, numbers.Real):
                raise TypeError(f"grad must be a real number for reduction="
                                f"{self.reduction!r} (the loss is a scalar), got "
                                f"{type(grad).__name__}")
            g = float(g)
            if self.reduction == "mean":
                g = float(g / denominator) if denominator != 0 else 0.0
        return self._backward(saved, g)

    def _forward(self, pred, target):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, saved, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"
