"""Arrays that know where they came from, so a custom ``forward`` can add, multiply, slice and
concatenate layer outputs and still be differentiated exactly.

Inside a recorded forward, layer outputs are :class:`Recorded` arrays: ordinary ndarrays (every
numpy function reads them) carrying the node they are on the tape. Arithmetic on them records an
operator too: ``a + b`` is ``[I I]``, ``a * b`` is ``[diag(b) diag(a)]``, ``a[:, 2:5]`` a 0/1
selection, ``matconv.cat`` a block placement. Anything else numpy does to a recorded array (a
transpose, a reduction, ``exp``) records an operator that cannot be differentiated: if a gradient
ever reaches it, the backward says so instead of silently dropping that path.
Outside a forward (and at the top level) arrays are plain ndarrays again.
"""
from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from ..operators import BlockRow, Diagonal, Identity, Operator, SparseOperator
from .tape import Record, current_frame, is_recording, thread_flag

__all__ = ["Recorded", "cat", "NotDifferentiable"]

_local = threading.local()


def _quiet():
    """Views numpy makes while we compute a result are ours, not the user's operations."""
    return thread_flag(_local, "quiet")


def _tape():
    frame = current_frame()
    return frame.tape if frame is not None and is_recording() else None


def _live(a, tape):
    return isinstance(a, Recorded) and a._node is not None and tape is not None \
        and a._node.tape is tape


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Recorded) else a


def _plain_tree(obj):
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_tree(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain_tree(v) for k, v in obj.items()}
    return _plain(obj)


def _leaves(obj):
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _leaves(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _leaves(o)
    else:
        yield obj


class NotDifferentiable(Operator):
    """What numpy did to a recorded array that matconv cannot differentiate."""

    fixed = False

    def __init__(self, what: str, shape):
        self.what, self.shape = what, shape

    def _fail(self, *args):
        raise ValueError(
            f"the backward reached {self.what} applied to a layer's output inside forward, which "
            f"matconv cannot differentiate; use layers (e.g. nn.Tanh, nn.AdaptiveAvgPool2d) and "
            f"+, -, *, /, slicing, reshape and matconv.cat on layer outputs")

    _matmat = _rmatmat = _matrix = _fail


def _common_batched(nodes, what) -> bool:
    """Bind every node to one batch interpretation (the first axis is the batch by default)."""
    batched = {n.batched for n in nodes} - {None}
    if len(batched) > 1:
        raise ValueError(f"cannot {what} a batch with a single example")
    batched = batched.pop() if batched else True
    for n in nodes:
        n.bind(batched)
    return batched


def _emit(tape, op, nodes, result, batched):
    out = tape.node(result.shape, result.dtype, batched)
    tape.add(Record(op, nodes, out))
    return out


def _untracked(tape, nodes, result, what):
    """A node for ``result`` behind an operator that raises if a gradient reaches it."""
    batched = nodes[0].batched is not False and result.ndim >= 1 \
        and result.shape[:1] == nodes[0].shape[:1]
    n_out = int(np.prod(result.shape[1:] if batched else result.shape))
    return _emit(tape, NotDifferentiable(what, (n_out, sum(n.size for n in nodes))), nodes,
                 result, batched)


class Recorded(np.ndarray):
    """An ndarray output of a layer inside a recorded forward (see the module docstring)."""

    _node = None

    @staticmethod
    def wrap(a: np.ndarray, node) -> Recorded:
        if type(a) is np.ndarray:  # a plain array's view records nothing: no flag to set
            r = a.view(Recorded)
        else:
            with _quiet():
                r = a.view(Recorded)
        r._node = node
        return r

    def __array_finalize__(self, obj):
        node = getattr(obj, "_node", None)
        if node is None or getattr(_local, "quiet", False) or node.tape is not _tape():
            self._node = None
            return
        tape = node.tape
        self._node = _untracked(tape, [node], self, "a numpy view or copy (transpose, ravel, "
                                                    "*_like, ...)")

    def __repr__(self):
        return repr(self.view(np.ndarray))

    def __str__(self):
        return str(self.view(np.ndarray))

    def __reduce__(self):  # copies and pickles are plain arrays
        return self.view(np.ndarray).__reduce__()

    # ---- arithmetic
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        with _quiet():
            result = getattr(ufunc, method)(*[_plain(i) for i in inputs], **kwargs)
        tape = _tape()
        tracked = [k for k, a in enumerate(inputs) if _live(a, tape)]
        target = out[0] if out is not None and len(out) == 1 else None
        if not tracked or not isinstance(result, np.ndarray):
            return target if target is not None else result
        nodes = [inputs[k]._node for k in tracked]
        batched = _common_batched(nodes, "combine")
        rule = _RULES.get(ufunc.__name__) if method == "__call__" else None
        parts = rule(inputs, tracked, result) if rule is not None and all(
            inputs[k].shape == result.shape for k in tracked) else None
        if parts is None:
            node = _untracked(tape, nodes, result, f"np.{ufunc.__name__}"
                              + ("" if method == "__call__" else f".{method}"))
        else:
            op = parts[0] if len(parts) == 1 else BlockRow(*parts)
            node = _emit(tape, op, nodes, result, batched)
        if target is not None:
            target._node = node
            return target
        return Recorded.wrap(result, node)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.concatenate:
            arrays = args[0] if args else kwargs.get("arrays")
            axis = args[1] if len(args) > 1 else kwargs.get("axis", 0)
            return cat(arrays, dim=axis)
        with _quiet():
            result = func(*_plain_tree(args), **_plain_tree(kwargs))
        tape = _tape()
        nodes = [a._node for a in _leaves((args, kwargs)) if _live(a, tape)]
        if nodes and isinstance(result, np.ndarray) and result.ndim:
            return Recorded.wrap(result, _untracked(tape, nodes[:1], result,
                                                    f"np.{func.__name__}"))
        return result

    # ---- indexing and shape
    def __getitem__(self, index):
        with _quiet():
            result = _plain(self)[index]
        tape = _tape()
        if not _live(self, tape) or not isinstance(result, np.ndarray):
            return result
        node = self._node.bind(True) if self._node.batched is None else self._node
        key = index if isinstance(index, tuple) else (index,)
        if node.batched:
            if key and key[0] is Ellipsis and all(
                    k is not None and k is not Ellipsis and not isinstance(k, np.ndarray)
                    for k in key[1:]):
                key = (slice(None),) * (self.ndim - len(key) + 1) + key[1:]
            if key and not (isinstance(key[0], slice) and key[0] == slice(None)):
                return Recorded.wrap(result, _untracked(
                    tape, [node], result, "indexing along the batch axis"))
            key = key[1:]
        picked = np.arange(node.size).reshape(node.example_shape)[key].ravel()
        M = sp.csr_array((np.ones(picked.size), (np.arange(picked.size), picked)),
                         shape=(picked.size, node.size))
        return Recorded.wrap(result, _emit(tape, SparseOperator(M), [node], result,
                                           node.batched))

    def __setitem__(self, index, value):
        _plain(self)[index] = _plain(value)
        tape = _tape()
        if _live(self, tape):
            self._node = _untracked(tape, [self._node], self, "an assignment into a recorded "
                                                              "array")

    def _identity(self, result):
        tape = _tape()
        if not _live(self, tape):
            return result
        node = self._node
        if node.batched is None:
            node.bind(True)
        if node.batched and result.shape[:1] != node.shape[:1]:
            return Recorded.wrap(result, _untracked(tape, [node], result,
                                                    "a reshape that mixes the batch axis"))
        return Recorded.wrap(result, _emit(tape, Identity(node.size, dtype=result.dtype),
                                           [node], result, node.batched))

    def reshape(self, *shape, **kwargs):
        with _quiet():
            result = _plain(self).reshape(*shape, **kwargs)
        return self._identity(result)

    def copy(self, order="C"):
        with _quiet():
            result = _plain(self).copy(order)
        return self._identity(result)

    def astype(self, dtype, *args, **kwargs):
        with _quiet():
            result = _plain(self).astype(dtype, *args, **kwargs)
        if np.dtype(dtype).kind != "f":
            return result
        return self._identity(result)


def _diag(node, value, shape):
    return Diagonal(node.to_columns(np.broadcast_to(np.asarray(value), shape)), fixed=False)


def _other(inputs, k):
    return _plain(inputs[1 - k])


def _size(a):
    return a._node.size


def _add(inputs, tracked, result):
    return [Identity(_size(inputs[k]), dtype=result.dtype) for k in tracked]


def _subtract(inputs, tracked, result):
    return [Identity(_size(inputs[k]), scale=1.0 if k == 0 else -1.0, dtype=result.dtype)
            for k in tracked]


def _negative(inputs, tracked, result):
    return [Identity(_size(inputs[0]), scale=-1.0, dtype=result.dtype)]


def _positive(inputs, tracked, result):
    return [Identity(_size(inputs[0]), dtype=result.dtype)]


def _multiply(inputs, tracked, result):
    node = inputs[tracked[0]]._node
    return [_diag(node, _other(inputs, k), result.shape) for k in tracked]


def _divide(inputs, tracked, result):
    node = inputs[tracked[0]]._node
    a, b = _plain(inputs[0]), _plain(inputs[1])
    return [_diag(node, 1.0 / b if k == 0 else -a / (b * b), result.shape) for k in tracked]


_RULES = {"add": _add, "subtract": _subtract, "negative": _negative, "positive": _positive,
          "multiply": _multiply, "divide": _divide, "true_divide": _divide}


def cat(arrays, dim: int = 1):
    """Concatenate layer outputs along ``dim`` (channels by default), like ``torch.cat``.

    Inside a recorded forward the result is recorded (each input's entries placed in the
    output: a 0/1 block operator), so gradients flow back to every input; elsewhere it is
    ``np.concatenate``.

    >>> from matconv import nn
    >>> a, b = np.ones((2, 1, 3)), np.zeros((2, 2, 3))
    >>> cat([a, b]).shape
    (2, 3, 3)
    """
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise TypeError(f"arrays must be a non-empty list or tuple of arrays, got "
                        f"{type(arrays).__name__}")
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {dim!r}")
    with _quiet():
        result = np.concatenate([_plain(a) for a in arrays], axis=dim)
    tape = _tape()
    tracked = [a for a in arrays if _live(a, tape)]
    if not tracked:
        return result
    nodes = [a._node for a in tracked]
    batched = _common_batched(nodes, "concatenate")
    axis = dim % result.ndim
    if batched and axis == 0:
        raise ValueError("cat along dim 0 (the batch) cannot be recorded: concatenate along a "
                         "channel or spatial dimension, or run the examples separately")
    example = result.shape[1:] if batched else result.shape
    ex_axis = axis - 1 if batched else axis
    flat = np.arange(int(np.prod(example))).reshape(example)
    pieces = np.split(flat, np.cumsum([a.shape[axis] for a in arrays])[:-1], axis=ex_axis)
    parts = []
    for a, piece in zip(arrays, pieces):
        if _live(a, tape):
            rows = piece.ravel()
            parts.append(SparseOperator(sp.csr_array(
                (np.ones(rows.size), (rows, np.arange(rows.size))), shape=(flat.size, rows.size))))
    op = parts[0] if len(parts) == 1 else BlockRow(*parts)
    return Recorded.wrap(result, _emit(tape, op, nodes, result, batched))
