"""The one cache of lowered structure: every sparse pattern, window table, fixed map and
convolution plan matconv builds is kept here, keyed by its geometry, and nowhere else.

Structures depend only on geometry and sizes, so they are built once and shared; when weights
change only values are gathered again. The cache is least-recently-used and bounded twice: by the
bytes of the arrays it holds (:func:`set_cache_limit`, default 512 MiB or an eighth of the memory
budget, whichever is smaller) and by a number of entries. :func:`clear_caches` empties it.
Working buffers of training live in the cached plans' buffer pools and are not counted: they
are bounded by the memory budget when allocated. The results handed out for reuse live in one
cached shared pool (:mod:`matconv.operators.buffers`), which is counted.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..memory import get_memory_budget

__all__ = ["cached", "clear_caches", "set_cache_limit", "cache_info"]

_MAX_ENTRIES = 512
_lock = threading.RLock()
_entries: OrderedDict[tuple, object] = OrderedDict()
_limit = None


def _nbytes(value) -> int:
    return int(getattr(value, "nbytes", 0))


def cache_limit() -> int:
    """Bytes the cache may hold before it drops the least recently used structures."""
    return _limit if _limit is not None else min(512 << 20, get_memory_budget() // 8)


def set_cache_limit(nbytes) -> int:
    """Bound the cache to ``nbytes`` (``None`` restores the default); return the previous bound.

    >>> old = set_cache_limit(64 << 20)
    >>> _ = set_cache_limit(old)
    """
    global _limit
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)
                               or nbytes < 0):
        raise ValueError(f"nbytes (the cache limit) must be an int of bytes >= 0 or None, got "
                         f"{nbytes!r}")
    previous = cache_limit()
    with _lock:
        _limit = nbytes
        _evict(None)
    return previous


def _evict(keep) -> None:
    total = sum(_nbytes(v) for v in _entries.values())
    while _entries and (total > cache_limit() or len(_entries) > _MAX_ENTRIES):
        key = next(iter(_entries))
        if key == keep:
            if len(_entries) == 1:
                break
            _entries.move_to_end(key)
            continue
        total -= _nbytes(_entries.pop(key))


def cached(key: tuple, build):
    """The value cached under ``key``, built by ``build()`` on a miss.

    Building happens outside the lock (two threads may both build; the first stored wins).
    """
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]
    value = build()
    with _lock:
        value = _entries.setdefault(key, value)
        _entries.move_to_end(key)
        _evict(key)
    return value


def clear_caches() -> None:
    """Drop every cached structure, fixed map and convolution plan, and with them the memory their
    buffer pools keep (all are rebuilt on demand).

    >>> clear_caches()
    >>> cache_info()["entries"]
    0
    """
    with _lock:
        _entries.clear()


def cache_info() -> dict:
    """``{"entries": n, "nbytes": bytes held, "limit": bound}``."""
    with _lock:
        return {"entries": len(_entries), "nbytes": sum(_nbytes(v) for v in _entries.values()),
                "limit": cache_limit()}
