"""Batch-last columns of a layer's input, the empty batch included.

:func:`matconv.layout.to_batch_last` reshapes with ``-1``, which numpy cannot resolve for an
array of zero examples; the layers below go through :func:`to_columns`, so a batch of ``N = 0``
examples gives an empty output as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from ..layout import to_batch_last

__all__ = ["to_columns", "columns"]


def to_columns(x: np.ndarray) -> np.ndarray:
    """``(N, *rest)`` -> batch-last ``(prod(rest), N)``, also for ``N = 0``.

    >>> to_columns(np.zeros((0, 2, 3))).shape
    (6, 0)
    """
    if x.shape[0] == 0:
        return np.zeros((math.prod(x.shape[1:]), 0), dtype=x.dtype)
    return to_batch_last(x)


def columns(a: np.ndarray, batched: bool) -> np.ndarray:
    """``a`` as batch-last ``(size, N)``: its examples as columns (one column if not batched)."""
    return to_columns(a if batched else a[None])
