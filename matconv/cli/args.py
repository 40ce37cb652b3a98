"""Argument types shared by the commands: sizes like ``4x4``, padding, channel pairs, numbers.

Each raises ``argparse.ArgumentTypeError`` with the text it got, so argparse prints one line.
"""
from __future__ import annotations

import argparse
import math

__all__ = ["channels", "int_or_sizes", "padding", "positive_float", "positive_int", "size",
           "number", "finite_positive", "finite_nonnegative", "fraction", "broadcast_kernel"]


def size(text: str) -> tuple:
    """Parse spatial sizes like ``4x4`` or ``5`` (1 to 3 positive ints)."""
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 4x4 or 5, got {text!r}") from None
    if not 1 <= len(parts) <= 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 to 3 positive sizes like 4x4, got {text!r}")
    return parts


def padding(text: str):
    """Parse a padding: an int, sizes like ``2x1``, or valid/same/full/causal."""
    if text in ("valid", "same", "full", "causal"):
        return text
    return int_or_sizes(text)


def int_or_sizes(text: str):
    """Parse an int, or sizes like ``2x1`` (one per dimension)."""
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or sizes like 2x1 (padding also takes "
                                         f"valid/same/full/causal), got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def channels(text: str) -> tuple:
    """Parse ``IN,OUT`` channel counts like ``2,3``."""
    try:
        cin, cout = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IN,OUT channel counts like 2,3, got "
                                         f"{text!r}") from None
    return cin, cout


def number(convert, ok, expected: str, name: str):
    """An argument type: ``convert(text)`` that must pass ``ok``, else one line saying what was
    ``expected``.

    >>> fraction("0.25")
    0.25
    """
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"Parse {expected}."
    return parse


positive_int = number(int, lambda v: v >= 1, "a positive int", "positive_int")
positive_float = number(float, lambda v: v > 0, "a positive number", "positive_float")
finite_positive = number(float, lambda v: v > 0 and math.isfinite(v),
                         "a positive number (finite)", "finite_positive")
finite_nonnegative = number(float, lambda v: v >= 0 and math.isfinite(v),
                            "a finite number >= 0", "finite_nonnegative")
fraction = number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)", "fraction")


def broadcast_kernel(kernel: tuple, input_size: tuple) -> tuple:
    """``--kernel`` repeated over the dimensions of ``--input`` when it gives one size.

    >>> broadcast_kernel((3,), (4, 4))
    (3, 3)
    """
    nd = len(input_size)
    if len(kernel) == nd:
        return tuple(kernel)
    if len(kernel) == 1:
        return tuple(kernel) * nd
    raise ValueError(f"--kernel has {len(kernel)} sizes, --input {nd}: give one size, or one per "
                     f"dimension of --input")
