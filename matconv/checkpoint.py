"""Checkpoints as ``.npz`` files read with ``allow_pickle=False``: no code runs on load.

A checkpoint holds every parameter under its PyTorch-style name (``"0.weight"``, ...) and one
JSON string, ``__matconv__``, with the format version and, when the model was made by a builder
of :mod:`matconv.models`, the spec that rebuilds it.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .models import build

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "__matconv__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


def save(model, path, **metadata) -> None:
    """Write ``model``'s parameters (and its builder spec, if any) to ``path`` (``.npz``).

    Extra keyword arguments are stored as JSON metadata (numbers, strings, lists).

    Examples
    --------
    >>> import tempfile, os
    >>> from matconv import models
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> save(models.lenet(seed=0), path, test_accuracy=0.98)
    >>> model, meta = load(path)
    >>> meta["test_accuracy"]
    0.98
    """
    meta = {"format": FORMAT_VERSION, "spec": getattr(model, "spec", None), **metadata}
    try:
        text = json.dumps(meta)
    except TypeError as exc:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {exc}") from None
    arrays = {name: p.data for name, p in model.named_parameters()}
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays, **{_META: np.array(text)})


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path!r} is not a readable matconv checkpoint (a .npz file): "
                              f"{type(exc).__name__}: {exc}") from None
    if _META not in arrays:
        raise CheckpointError(f"{path!r} is a .npz file but not a matconv checkpoint (no "
                              f"{_META!r} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path!r} has a corrupted {_META!r} entry: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path!r} has checkpoint format {meta.get('format')!r}; this "
                              f"matconv reads format {FORMAT_VERSION}")
    return arrays, meta


def load(path, model=None):
    """Read a checkpoint; return ``(model, metadata)``.

    Without ``model``, the checkpoint's builder spec rebuilds it. With ``model``, the parameters
    are loaded into it and must match its names and shapes exactly.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is truncated, corrupted, not a matconv checkpoint, or does not fit.
    """
    arrays, meta = _read(path)
    if model is None:
        if not meta.get("spec"):
            raise CheckpointError(f"{os.fspath(path)!r} does not record how to build its model; "
                                  f"pass the model: load(path, model=...)")
        try:
            model = build(meta["spec"])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{os.fspath(path)!r}: cannot rebuild the model: {exc}") \
                from None
    try:
        model.load_state_dict(arrays, strict=True)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r} does not fit the model: "
                              f"{exc.args[0] if exc.args else exc}") from None
    return model, meta
