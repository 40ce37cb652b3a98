"""Memory budget for explicit operators and buffers: estimate first, refuse clearly.

An explicit sparse operator grows with ``C_out * L_out * C_in/groups * prod(k)``; an im2col
buffer with ``C_in * prod(k) * L_out * N``. Before either is allocated, its size is estimated and
compared with a budget (by default a quarter of physical memory). Above it, a ``ValueError``
names the estimate and what to do instead.
"""
from __future__ import annotations

import functools
import os

__all__ = ["get_memory_budget", "set_memory_budget", "format_bytes", "check_memory"]

_budget = None


@functools.lru_cache(maxsize=1)
def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8 << 30


def get_memory_budget() -> int:
    """Bytes one operator or buffer may take (default: a quarter of physical memory).

    >>> get_memory_budget() > 0
    True
    """
    return _budget if _budget is not None else _physical_memory() // 4


def set_memory_budget(nbytes) -> int:
    """Set the budget in bytes (``None`` restores the default); return the previous budget.

    Examples
    --------
    >>> old = set_memory_budget(2 << 30)
    >>> get_memory_budget()
    2147483648
    >>> _ = set_memory_budget(None)
    """
    global _budget
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)):
        raise TypeError(f"nbytes (the memory budget) must be a positive int of bytes or None, "
                        f"got {nbytes!r}")
    if nbytes is not None and nbytes <= 0:
        raise ValueError(f"nbytes (the memory budget) must be a positive int of bytes or None, got "
                         f"{nbytes!r}")
    previous = get_memory_budget()
    _budget = nbytes
    return previous


def format_bytes(nbytes: float) -> str:
    """Human-readable size, e.g. ``'1.5 GiB'``.

    >>> format_bytes(3 * 2**20)
    '3.0 MiB'
    """
    nbytes = float(min(nbytes, 2**80))  # a size past a million TiB prints as one
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError  # pragma: no cover


def check_memory(nbytes: int, what: str, alternative: str) -> None:
    """Raise ``ValueError`` if ``nbytes`` exceeds the budget, naming ``what`` and the remedy."""
    budget = get_memory_budget()
    if nbytes > budget:
        raise ValueError(
            f"{what} would take about {format_bytes(nbytes)}, over the memory budget of "
            f"{format_bytes(budget)}; {alternative}, or raise the budget with "
            f"matconv.set_memory_budget(nbytes)")
