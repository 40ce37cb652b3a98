"""Minibatches over arrays: :class:`DataLoader`, like ``torch.utils.data.DataLoader`` over a
``TensorDataset``, and the index generator :func:`batch_indices` that it and
:func:`matconv.train.fit` share.

Examples
--------
>>> import numpy as np
>>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> loader = DataLoader((x, y), batch_size=2)
>>> len(loader)
3
>>> [yb.tolist() for xb, yb in loader]
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

import numbers

import numpy as np

from .nn.init import default_rng

__all__ = ["DataLoader", "batch_indices", "check_batch_size"]


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int ``>= 1``; ``TypeError`` for non-ints (``True`` included)."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive int, got {batch_size!r} "
                        f"({type(batch_size).__name__})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _generator(seed) -> np.random.Generator:
    if seed is None:
        return default_rng()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None, an int >= 0 or a numpy.random.Generator, got "
                         f"{seed!r}")
    return np.random.default_rng(int(seed))


def batch_indices(indices, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                  rng: np.random.Generator | None = None):
    """Yield index arrays covering ``indices`` (or ``range(indices)`` for an int) in batches.

    Parameters
    ----------
    indices : int or 1-D int array
        The positions to cover, or their number ``n`` for ``0, ..., n - 1``.
    batch_size : int
    shuffle : bool, default False
        Permute the positions first, with ``rng``.
    drop_last : bool, default False
        Leave out a last batch smaller than ``batch_size``.
    rng : numpy.random.Generator, optional
        Needed for ``shuffle``.

    Examples
    --------
    >>> [b.tolist() for b in batch_indices(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in batch_indices(np.array([7, 8, 9]), 2, drop_last=True)]
    [[7, 8]]
    """
    batch_size = check_batch_size(batch_size)
    order = np.arange(indices) if isinstance(indices, numbers.Integral) else np.asarray(indices)
    if shuffle:
        order = order[rng.permutation(len(order))]
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


class DataLoader:
    """Iterate over minibatches of one array or of several arrays of equal length.

    Each pass (``for batch in loader``) is one epoch; with ``shuffle`` every epoch draws a new
    permutation from the loader's generator, so a loader built with the same ``seed`` gives the
    same sequence of epochs.

    Parameters
    ----------
    dataset : ndarray, or tuple / list of ndarrays
        Examples along the first axis, e.g. ``x`` or ``(x, y)``; the arrays must have the same
        length.
    batch_size : int, default 1
        Examples per batch (PyTorch's default).
    shuffle : bool, default False
        Reshuffle at every epoch.
    drop_last : bool, default False
        Leave out a last batch smaller than ``batch_size``.
    seed : int, numpy.random.Generator or None, default None
        Seeds the shuffling; ``None`` draws from the generator :func:`matconv.manual_seed`
        seeds (as PyTorch's loader draws from its global generator).

    Yields
    ------
    ndarray or tuple of ndarray
        A new array (a copy) per batch: ``x[idx]``, or ``(x[idx], y[idx], ...)`` for a tuple.

    Examples
    --------
    >>> x = np.arange(6)
    >>> loader = DataLoader(x, batch_size=4, shuffle=True, seed=0)
    >>> first, second = list(loader), list(loader)          # two epochs
    >>> [b.size for b in first], sorted(np.concatenate(first).tolist())
    ([4, 2], [0, 1, 2, 3, 4, 5])
    >>> [b.tolist() for b in first] == [b.tolist() for b in DataLoader(x, 4, True, seed=0)]
    True
    >>> len(DataLoader(x, batch_size=4, drop_last=True))
    1
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed=None):
        single = isinstance(dataset, np.ndarray)
        arrays = (dataset,) if single else dataset
        if not isinstance(arrays, (tuple, list)) or not arrays \
                or not all(isinstance(a, np.ndarray) for a in arrays):
            raise TypeError(f"dataset must be a numpy ndarray or a tuple of ndarrays, e.g. "
                            f"(x, y), got {type(dataset).__name__}")
        if any(a.ndim == 0 for a in arrays):
            raise ValueError("dataset arrays must have at least one axis (the examples)")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) > 1:
            raise ValueError(f"dataset arrays must have the same length (one entry per "
                             f"example), got lengths {lengths}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.arrays = tuple(arrays)
        self.single = single
        self.batch_size = check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = _generator(seed) if self.shuffle else None

    def __len__(self) -> int:
        n = len(self.arrays[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        for idx in batch_indices(len(self.arrays[0]), self.batch_size, shuffle=self.shuffle,
                                 drop_last=self.drop_last, rng=self.generator):
            batch = tuple(a[idx] for a in self.arrays)
            yield batch[0] if self.single else batch

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.arrays[0])} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")
