"""PyTorch, imported only when a conversion needs it: matconv never requires it at runtime."""
from __future__ import annotations

import importlib

__all__ = ["require_torch"]


def require_torch(what: str):
    """The ``torch`` module, or an ``ImportError`` saying how to install it.

    Example (needs PyTorch)::

        torch = require_torch("matconv.from_torch")
    """
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(f"{what} needs PyTorch, which is not installed: pip install torch "
                          f"(matconv itself runs without it)") from exc
