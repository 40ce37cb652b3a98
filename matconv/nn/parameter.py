"""Parameters, and the errors and results of loading state into a module."""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np


__all__ = ["Parameter", "IncompatibleKeys", "StateDictError", "check_state_value"]


class StateDictError(ValueError, KeyError):
    """A state dict that does not fit the model (missing or unexpected keys). A ``ValueError``;
    also a ``KeyError`` for code written against earlier versions."""

    __str__ = Exception.__str__


class Parameter:
    """A trainable array and its accumulated gradient.

    Attributes
    ----------
    data : ndarray
        The values; optimizers update it in place, and in-place edits by users are honoured by
        the next forward.
    grad : ndarray
        Same shape and dtype as ``data``; backward passes add to it.

    Examples
    --------
    >>> p = Parameter(np.ones(3))
    >>> p.grad
    array([0., 0., 0.])
    """

    def __init__(self, data: np.ndarray):
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a real floating-point ndarray, got "
                            f"{getattr(data, 'dtype', type(data).__name__)}")
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` left out, like PyTorch's result."""

    missing_keys: list
    unexpected_keys: list


def check_state_value(name, value):
    """A state-dict value as an ndarray: numpy arrays, numbers or torch tensors; no objects."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state dict entry {name!r} must be an array, got "
                        f"{type(value).__name__}")
    if value.dtype.kind not in "fiub":
        raise TypeError(f"state dict entry {name!r} must hold real numbers, got dtype "
                        f"{value.dtype}")
    return value
