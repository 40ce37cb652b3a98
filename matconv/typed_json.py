"""JSON that gives back the same Python types: how checkpoints store an optimizer's state.

Plain JSON turns tuples into lists, int dict keys into strings, and cannot hold arrays.
:func:`encode` keeps every type of a PyTorch-style state dict by tagging what JSON lacks, each
tag a one-key object: ``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}`` (keys of
any type, order kept), ``{"__array__": i}`` and ``{"__scalar__": i}`` (an ndarray or a numpy
scalar, stored aside as ``arrays[i]``). ``None``, bools, ints, floats (also nan and inf),
strings and lists are JSON's own. :func:`decode` checks the structure it reads (known tags,
each array used once, bounded nesting, hashable keys) since the text may come from anyone.

>>> arrays = []
>>> text = encode({0: {"step": 3, "buf": np.zeros(2)}, "betas": (0.9, 0.999)}, arrays, "state")
>>> text["__dict__"][1]
['betas', {'__tuple__': [0.9, 0.999]}]
>>> decode(text, dict(enumerate(arrays)), ValueError)
{0: {'step': 3, 'buf': array([0., 0.])}, 'betas': (0.9, 0.999)}
"""
from __future__ import annotations

import numpy as np

__all__ = ["ARRAY_KINDS", "MAX_DEPTH", "decode", "encode"]

#: Dtype kinds of the arrays that may be stored: bool, integer, floating.
ARRAY_KINDS = "fiub"
#: Deepest nesting encoded or decoded.
MAX_DEPTH = 32
_SCALARS = (type(None), bool, int, float, str)


def encode(value, arrays: list, where: str, depth: int = 0):
    """``value`` as JSON-ready data; its arrays are appended to ``arrays``.

    Raises ``TypeError`` naming ``where`` (e.g. ``"optimizer.state_dict()['state'][0]"``) for
    a value that cannot be stored (a set, an object, a complex array), and ``ValueError`` for
    nesting deeper than :data:`MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind not in ARRAY_KINDS or array.dtype.names is not None:
            raise TypeError(f"{where} has dtype {array.dtype}; a checkpoint stores bool, "
                            f"integer or floating arrays")
        arrays.append(array)
        return {"__array__" if isinstance(value, np.ndarray) else "__scalar__": len(arrays) - 1}
    if type(value) in _SCALARS:  # exact types: a subclass would not come back as itself
        return value
    if isinstance(value, list):
        return [encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays, f"{where}[{i}]", depth + 1)
                              for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, arrays, f"{where} key", depth + 1),
                              encode(v, arrays, f"{where}[{k!r}]", depth + 1)]
                             for k, v in value.items()]}
    raise TypeError(f"{where} is a {type(value).__name__}, which a checkpoint cannot store "
                    f"(arrays, numbers, strings, bools, None, lists, tuples, dicts)")


def decode(value, arrays: dict, error, used: set | None = None, depth: int = 0):
    """The value :func:`encode` made; ``arrays`` maps the stored indices to arrays.

    Raises ``error(message)`` for anything :func:`encode` cannot have made. Pass a set as
    ``used`` to learn which arrays were referenced.
    """
    used = set() if used is None else used
    if depth > MAX_DEPTH:
        raise error(f"nested more than {MAX_DEPTH} levels deep")
    if type(value) in _SCALARS:
        return value
    if isinstance(value, list):
        return [decode(v, arrays, error, used, depth + 1) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, body), = value.items()
        if tag in ("__array__", "__scalar__") and type(body) is int:
            if body not in arrays or body in used:
                raise error(f"array {body} is missing or used twice")
            used.add(body)
            if tag == "__array__":
                return arrays[body]
            if arrays[body].ndim != 0:
                raise error(f"scalar {body} has shape {arrays[body].shape}")
            return arrays[body][()]
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(decode(v, arrays, error, used, depth + 1) for v in body)
        if tag == "__dict__" and isinstance(body, list):
            out = {}
            for pair in body:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise error("a dict entry is not a [key, value] pair")
                key = decode(pair[0], arrays, error, used, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise error(f"unhashable dict key {str(key)[:60]}") from None
                out[key] = decode(pair[1], arrays, error, used, depth + 1)
            return out
    raise error(f"unrecognised value {str(value)[:60]}")
