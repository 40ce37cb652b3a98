"""Checkpoints: a model's state dict, and optionally an optimizer's state, in one ``.npz`` file
that is safe to load from anyone (no pickle, no code runs, sizes checked before reading).

Layout (format 2)
-----------------
- one array per entry of ``model.state_dict()`` (parameters *and* buffers), under PyTorch's
  dotted name (``"0.weight"``, ``"bn.running_mean"``);
- ``__matconv__``: one JSON string, ``{"format": 2, "spec": ..., **metadata}``, with the spec
  that rebuilds the model when it came from a builder of :mod:`matconv.models`, the keyword
  arguments given to :func:`save`, and (key ``"optimizer"``) the optimizer's state;
- ``__optimizer__.0``, ``__optimizer__.1``, ...: the arrays of the optimizer's state.

Names starting with ``__`` are reserved. Format 1 files (parameters only) are still read.

A path ending in ``.safetensors`` is written and read through the ``safetensors`` package (an
optional extra) instead: the same arrays, the ``__matconv__`` JSON in the file's string
metadata; its header is validated the same way before anything is read.

The optimizer's ``state_dict()`` (PyTorch's layout, ``{"state": {index: {name: value}},
"param_groups": [{..., "params": [index, ...]}]}``) is stored in a typed JSON encoding that
gives back exactly the same values and Python types: ints stay ints (also as dict keys),
floats floats, tuples tuples (``betas``), lists lists, numpy scalars numpy scalars and arrays
arrays of the same dtype. Plain metadata is JSON: tuples in it come back as lists.

Loading refuses, with :class:`CheckpointError` naming the file and the problem: damaged or
truncated archives, arrays over the memory budget (from their headers, before reading), zip
bombs, dtypes other than bool/integer/floating (no complex, datetime, string or object
arrays), malformed metadata, and model specs that are not ``{"builder": str, "kwargs": {name:
JSON scalar or list}}``. :func:`save` refuses what :func:`load` would refuse, before touching
the file, and writes atomically.
"""
from __future__ import annotations

import json
import re

import numpy as np

from .fileio import FileFormatError, atomic_write, check_path, read_npz, write_npz
from .interop.safetensors_io import SUFFIX, encode_safetensors, read_safetensors
from .models import build
from .typed_json import ARRAY_KINDS, MAX_DEPTH, decode, encode

__all__ = ["FORMAT_VERSION", "CheckpointError", "load", "save"]

#: the checkpoint format this matconv writes (format 1 files still load)
FORMAT_VERSION = 2
_READABLE = (1, 2)
_META = "__matconv__"
_OPT = "__optimizer__."
_RESERVED_META = ("format", "spec", "optimizer")
_MAX_META_CHARS = 1 << 22  # 16 MiB as a numpy str array: ample for metadata, small to parse
_WHAT = "matconv checkpoint"
_SCALARS = (type(None), bool, int, float, str)


class CheckpointError(FileFormatError):
    """A checkpoint that cannot be read safely, is malformed, or does not fit the model or
    optimizer. A ``ValueError``; the message names the file and the problem."""


# --------------------------------------------------------------------------- save
def save(model, path, *, optimizer=None, **metadata) -> None:
    """Write ``model.state_dict()`` (and ``optimizer.state_dict()``) to ``path`` (``.npz``).

    Parameters
    ----------
    model : matconv.nn.Module
        Anything with ``state_dict()`` and ``load_state_dict(state, strict=True)``; its
        ``spec`` (set by the builders of :mod:`matconv.models`) is stored so :func:`load` can
        rebuild it.
    path : str or os.PathLike
        Destination; replaced atomically (a failed save leaves a previous file intact). A name
        ending in ``.safetensors`` writes that format (needs ``pip install safetensors``),
        anything else an ``.npz`` archive.
    optimizer : optional
        Anything with ``state_dict()``/``load_state_dict()`` in PyTorch's layout.
    **metadata
        JSON values (numbers, strings, bools, None, lists, dicts with string keys) stored
        beside the weights; numpy scalars are stored as Python numbers and tuples come back
        as lists. ``format``, ``spec`` and ``optimizer`` are reserved.

    Raises
    ------
    TypeError
        If ``model`` or ``optimizer`` lacks the state-dict methods, a parameter is not
        floating point, a buffer not bool/integer/floating, or a value cannot be stored.
    ValueError
        If a state-dict key is reserved (starts with ``__``), a metadata key is reserved, the
        metadata is nested too deeply or too large, or ``model.spec`` is malformed.
    OSError
        If the file cannot be written.

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
    path = check_path(path)
    arrays = _model_state(model)
    spec = getattr(model, "spec", None)
    problem = _spec_problem(spec)
    if problem:
        raise ValueError(f"model.spec cannot be stored: {problem}")
    reserved = sorted(set(metadata) & set(_RESERVED_META))
    if reserved:
        raise ValueError(f"metadata keys {reserved} are reserved by the checkpoint format")
    meta = {"format": FORMAT_VERSION, "spec": spec, **_plain(metadata, "metadata", 0)}
    if optimizer is not None:
        state = _methods(optimizer, "optimizer").state_dict()
        if not isinstance(state, dict):
            raise TypeError(f"optimizer.state_dict() must return a dict, got "
                            f"{type(state).__name__}")
        stored = []
        meta["optimizer"] = encode(state, stored, "optimizer.state_dict()")
        arrays.update((f"{_OPT}{i}", array) for i, array in enumerate(stored))
    text = json.dumps(meta)
    if len(text) > _MAX_META_CHARS:
        raise ValueError(f"checkpoint metadata is {len(text)} characters of JSON, more than the "
                         f"{_MAX_META_CHARS} allowed; store large values as arrays")
    if _is_safetensors(path):
        data = encode_safetensors(arrays, {_META: text})  # everything encoded before writing
        with atomic_write(path) as fh:
            fh.write(data)
        return
    arrays[_META] = np.array(text)
    with atomic_write(path) as fh:
        write_npz(fh, arrays)


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(SUFFIX)


def _methods(obj, name: str):
    if not (callable(getattr(obj, "state_dict", None))
            and callable(getattr(obj, "load_state_dict", None))):
        raise TypeError(f"{name} must have state_dict() and load_state_dict(), got "
                        f"{type(obj).__name__}")
    return obj


def _model_state(model) -> dict:
    state = _methods(model, "model").state_dict()
    if not isinstance(state, dict):
        raise TypeError(f"model.state_dict() must return a dict, got {type(state).__name__}")
    named = getattr(model, "named_parameters", None)
    params = {name for name, _ in named()} if callable(named) else set()
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name or name.startswith("__"):
            raise ValueError(f"state dict key {name!r} cannot be stored: keys are non-empty "
                             f"strings, and names starting with '__' are reserved")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"state dict entry {name!r} must be an ndarray, got "
                            f"{type(value).__name__}")
        kinds, allowed = ("f", "floating") if name in params else (ARRAY_KINDS,
                                                                     "bool, integer or floating")
        if value.dtype.kind not in kinds or value.dtype.names is not None:
            kind = "parameter" if name in params else "buffer"
            raise TypeError(f"state dict entry {name!r} has dtype {value.dtype}; a checkpoint "
                            f"stores a {kind} as {allowed}")
        arrays[name] = value
    return arrays


def _plain(value, where: str, depth: int):
    """Metadata as JSON that loads back: numpy bool/int/float scalars become Python numbers;
    str keys, bounded nesting; anything else is a TypeError naming where it is."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if type(value) in _SCALARS:
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}; JSON keys are strings")
        return {key: _plain(item, f"{where}[{key!r}]", depth + 1) for key, item in value.items()}
    raise TypeError(f"checkpoint metadata must be JSON-serialisable: {where} is a "
                    f"{type(value).__name__} (use numbers, strings, bools, None, lists, dicts)")


# --------------------------------------------------------------------------- load
def load(path, model=None, optimizer=None):
    """Read a checkpoint; return ``(model, metadata)``.

    Without ``model``, the checkpoint's builder spec rebuilds it. With ``model``, the state is
    loaded with ``model.load_state_dict(state, strict=True)``. With ``optimizer`` (which needs
    ``model``: it holds that model's parameters), the stored optimizer state is restored with
    ``optimizer.load_state_dict(...)``; if that fails, the model is put back as it was.

    Safe on files from anyone: see the module docstring and ``SECURITY.md``.

    Returns
    -------
    model : Module
    metadata : dict
        ``format``, ``spec`` and the keyword arguments given to :func:`save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        A ``ValueError`` naming the file and the problem: truncated, corrupted, not a matconv
        checkpoint, over the memory budget, a refused dtype, malformed metadata or spec, or a
        state that does not fit the model or the optimizer.
    TypeError, ValueError
        For bad arguments (``path`` not a path; ``optimizer`` without ``model``).
    """
    path = check_path(path)
    if model is not None:
        _methods(model, "model")
    if optimizer is not None:
        _methods(optimizer, "optimizer")
        if model is None:
            raise ValueError("optimizer needs model: an optimizer holds the parameters of an "
                             "existing model; pass load(path, model=model, optimizer=optimizer)")
    arrays, meta = _read(path)
    # Format 1 had no optimizer state: there, "optimizer" is the user's own metadata.
    encoded = meta.pop("optimizer", None) if meta["format"] >= 2 else None
    opt_state = _optimizer_state(path, arrays, encoded)
    if optimizer is not None and opt_state is None:
        raise CheckpointError(f"{path!r} holds no optimizer state (it was saved without "
                              f"optimizer=)")
    if model is None:
        model = _build(path, meta.get("spec"))
    previous = model.state_dict() if optimizer is not None else None
    _restore(path, "the model", lambda: model.load_state_dict(arrays, strict=True))
    if optimizer is not None:
        try:
            _restore(path, "the optimizer", lambda: optimizer.load_state_dict(opt_state))
        except CheckpointError:
            model.load_state_dict(previous, strict=True)
            raise
    return model, meta


def _read_entries(path: str):
    """``(arrays, metadata text)`` of an ``.npz`` or ``.safetensors`` checkpoint."""
    if _is_safetensors(path):
        arrays, strings = read_safetensors(path, kinds=ARRAY_KINDS, what=_WHAT,
                                           error=CheckpointError)
        if _META not in strings:
            raise CheckpointError(f"{path!r} is a .safetensors file but not a matconv "
                                  f"checkpoint (no {_META!r} metadata)")
        if len(strings[_META]) > _MAX_META_CHARS:
            raise CheckpointError(f"{path!r} has {_META!r} metadata of "
                                  f"{len(strings[_META])} characters, more than the "
                                  f"{_MAX_META_CHARS} allowed")
        return arrays, np.array(strings[_META])
    arrays = read_npz(path, kinds={_META: "U", "*": ARRAY_KINDS}, what=_WHAT,
                      error=CheckpointError, limits={_META: 4 * _MAX_META_CHARS})
    if _META not in arrays:
        raise CheckpointError(f"{path!r} is a .npz file but not a matconv checkpoint (no "
                              f"{_META!r} entry)")
    return arrays, arrays.pop(_META)


def _read(path: str):
    arrays, text = _read_entries(path)
    try:
        if text.ndim != 0:
            raise ValueError(f"expected one string, got shape {text.shape}")
        meta = json.loads(str(text))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path!r} has a corrupted {_META!r} entry: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path!r} has a corrupted {_META!r} entry: expected a JSON "
                              f"object, got {type(meta).__name__}")
    version = meta.get("format")
    if type(version) is not int or version not in _READABLE:
        raise CheckpointError(f"{path!r} has checkpoint format {repr(version)[:40]}; this "
                              f"matconv reads formats {' and '.join(map(str, _READABLE))}")
    for name in arrays:
        if name.startswith("__") and not re.fullmatch(rf"{re.escape(_OPT)}[0-9]{{1,9}}", name):
            raise CheckpointError(f"{path!r} has an unknown reserved entry {name[:60]!r}")
    return arrays, meta


def _optimizer_state(path: str, arrays: dict, encoded):
    """The stored optimizer state (or None), taking its ``__optimizer__.<i>`` arrays."""
    stored = {int(k[len(_OPT):]): arrays.pop(k) for k in list(arrays) if k.startswith(_OPT)}
    if encoded is None:
        if stored:
            raise CheckpointError(f"{path!r} has optimizer arrays but no optimizer state")
        return None

    def fail(problem):
        return CheckpointError(f"{path!r} has a malformed optimizer state: {problem}")

    used = set()
    state = decode(encoded, stored, fail, used)
    if not isinstance(state, dict):
        raise fail(f"expected a dict, got {type(state).__name__}")
    if used != set(stored):
        raise fail(f"unreferenced arrays {sorted(set(stored) - used)[:5]}")
    return state


def _spec_problem(spec):
    """Why ``spec`` is not ``None`` or ``{"builder": str, "kwargs": {str: JSON}}``, or None."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or "builder" not in spec or set(spec) - {"builder",
                                                                          "kwargs"}:
        return (f"expected a dict with 'builder' and 'kwargs', got "
                f"{type(spec).__name__} {str(spec)[:60]}")
    if not isinstance(spec["builder"], str):
        return f"'builder' must be a string, got {type(spec['builder']).__name__}"
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        return f"'kwargs' must be a dict, got {type(kwargs).__name__}"
    for key, value in kwargs.items():
        if not isinstance(key, str) or not _is_argument(value, 0):
            return (f"kwargs[{str(key)[:40]!r}] must be a JSON number, string, bool, null or a "
                    f"list of them")
    return None


def _is_argument(value, depth: int) -> bool:
    if type(value) in _SCALARS:
        return True
    return (isinstance(value, (list, tuple)) and depth < 4
            and all(_is_argument(v, depth + 1) for v in value))


def _build(path: str, spec):
    if not spec:
        raise CheckpointError(f"{path!r} does not record how to build its model; pass the "
                              f"model: load(path, model=...)")
    problem = _spec_problem(spec)
    if problem:
        raise CheckpointError(f"{path!r} has a malformed model spec: {problem}")
    try:
        return build(spec)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"{path!r}: cannot rebuild the model from its spec: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None


def _restore(path: str, what: str, load_state) -> None:
    """Call ``load_state()``; the KeyError/ValueError/TypeError of a mismatch become ours."""
    try:
        load_state()
    except (KeyError, ValueError, TypeError) as exc:
        message = exc.args[0] if exc.args else exc
        raise CheckpointError(f"{path!r} does not fit {what}: {message}") from None
