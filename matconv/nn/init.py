"""Parameter initialisation with PyTorch's defaults, from a seedable generator."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["manual_seed", "default_rng", "uniform_fan_in", "check_dtype"]

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator layers draw their initial weights from (like ``torch.manual_seed``).

    >>> manual_seed(0)
    """
    global _rng
    _rng = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    """The generator used when a layer is not given ``rng=``."""
    return _rng


def uniform_fan_in(shape, fan_in: int, dtype, rng=None) -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for conv and linear layers.

    (``kaiming_uniform_(a=sqrt(5))`` for the weight and the bias rule both reduce to this bound.)

    >>> w = uniform_fan_in((4, 9), 9, np.float32, np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 1 / 3), w.dtype
    (True, dtype('float32'))
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    rng = _rng if rng is None else rng
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as float32 or float64, else ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return dt
