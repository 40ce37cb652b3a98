"""Padding: the accepted forms of the ``padding`` argument, and the one table of padding modes.

A padding *form* says how many cells are added on each side (``2``, ``(1, 2)``,
``((0, 1), (2, 2))``, ``'same'``, ...). A padding *mode* says what a padded cell reads: nothing
(``'zeros'``), or the input cell it mirrors, repeats or wraps to. Each mode is an index map from a
position ``pos`` (``-before <= pos < n + after``) to the input cell read, ``-1`` for nothing, plus
the largest padding it allows; the lowering builds every window table from this one table.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .arithmetic import as_tuple, is_int

__all__ = ["PADDING_STRINGS", "PADDING_MODES", "PaddingMode", "padding_pairs"]

PADDING_STRINGS = ("valid", "same", "full", "causal")


class PaddingMode(NamedTuple):
    """What a padded cell reads, and how much padding the mode allows.

    Attributes
    ----------
    source : callable
        ``source(pos, n)``: the input index each position reads (``-1``: nothing); works on ints
        and integer arrays alike.
    max_padding : callable
        ``max_padding(n)``: the largest padding on either side for an input of size ``n``
        (``None``: unlimited).
    rule : str
        The limit in words, for error messages.
    """

    source: Callable
    max_padding: Callable
    rule: str = ""


def _zeros(pos, n):
    return np.where((pos >= 0) & (pos < n), pos, -1)


def _reflect(pos, n):  # about the edge cells, PyTorch's 'reflect' (edge not repeated)
    pos = np.abs(pos)
    return np.where(pos >= n, 2 * (n - 1) - pos, pos)


PADDING_MODES = {
    "zeros": PaddingMode(_zeros, lambda n: None),
    "reflect": PaddingMode(_reflect, lambda n: n - 1, "padding < input size"),
    "replicate": PaddingMode(lambda pos, n: np.clip(pos, 0, n - 1), lambda n: None),
    "circular": PaddingMode(lambda pos, n: pos % n, lambda n: n, "padding <= input size"),
}


def padding_pairs(padding, ndim: int, kernel_size, dilation, stride) -> tuple:
    """Resolve every accepted padding form to per-side pairs ``((before, after), ...)``.

    >>> padding_pairs("same", 1, (4,), (1,), (1,))
    ((1, 2),)
    >>> padding_pairs(((0, 1), (2, 2)), 2, (3, 3), (1, 1), (1, 1))
    ((0, 1), (2, 2))
    """
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"padding must be one of {PADDING_STRINGS}, an int, a tuple of ints "
                             f"or per-side pairs ((before, after), ...); got {padding!r}")
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        if padding == "valid":
            return tuple((0, 0) for _ in totals)
        if padding == "full":
            return tuple((t, t) for t in totals)
        if padding == "causal":
            if ndim != 1:
                raise ValueError(f"padding='causal' is only defined for 1-D convolution, "
                                 f"got {ndim} spatial dimensions")
            return ((totals[0], 0),)
        # 'same': like PyTorch, an odd total puts the extra cell at the end.
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride=1 (like PyTorch), got stride={stride}")
        return tuple((t // 2, t - t // 2) for t in totals)
    if (isinstance(padding, (tuple, list)) and padding
            and all(isinstance(p, (tuple, list)) for p in padding)):
        if len(padding) != ndim or not all(len(p) == 2 and all(is_int(v) for v in p)
                                           for p in padding):
            raise ValueError(f"per-side padding must be {ndim} pairs (before, after) of ints, "
                             f"got {padding!r}")
        pairs = tuple((int(a), int(b)) for a, b in padding)
    else:
        pairs = tuple((p, p) for p in as_tuple(padding, ndim, "padding", minimum=0))
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return pairs


def check_mode_padding(mode: str, pairs, size) -> None:
    """Raise unless every side's padding is allowed by ``mode`` for the input ``size``."""
    for dim, ((before, after), n) in enumerate(zip(pairs, size)):
        rule = PADDING_MODES[mode]
        limit = rule.max_padding(n)
        if limit is not None and max(before, after) > limit:
            raise ValueError(f"padding_mode={mode!r} needs {rule.rule} in every dimension (at "
                             f"most {limit} cells for size {n}), got padding {(before, after)} "
                             f"in dim {dim}")
