"""Argument types shared by the commands: sizes like ``4x4``, padding, channel pairs, numbers.

Each raises ``argparse.ArgumentTypeError`` with the text it got, so argparse prints one line.
"""
from __future__ import annotations

import argparse

__all__ = ["channels", "int_or_sizes", "padding", "positive_float", "positive_int", "size"]


def size(text: str) -> tuple:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 4x4 or 5, got {text!r}") from None
    if not 1 <= len(parts) <= 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 to 3 positive sizes like 4x4, got {text!r}")
    return parts


def padding(text: str):
    if text in ("valid", "same", "full", "causal"):
        return text
    return int_or_sizes(text)


def int_or_sizes(text: str):
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or sizes like 2x1 (padding also takes "
                                         f"valid/same/full/causal), got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def channels(text: str) -> tuple:
    try:
        cin, cout = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IN,OUT channel counts like 2,3, got "
                                         f"{text!r}") from None
    return cin, cout


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
