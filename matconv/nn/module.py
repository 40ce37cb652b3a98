"""The module protocol: ``y = m(x)``, ``dx = m.backward(dy)``, parameters with ``.grad``.

Like ``torch.nn.Module``: attributes register parameters, buffers and sub-modules (call
``super().__init__()`` first); ``state_dict()`` / ``load_state_dict()`` use PyTorch's dotted keys;
``train()`` / ``eval()`` set ``.training``. Calling a module records, on a tape, every operator its
forward applies (:mod:`matconv.nn.tape`); ``backward(dy)`` applies their transposes in reverse,
returns the input gradient and *adds* parameter gradients to ``param.grad`` (call ``zero_grad()``
between steps, as in PyTorch). So a custom module whose ``forward`` adds, concatenates, slices and
reuses layers trains exactly like a ``Sequential``.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..layout import float_dtype
from ..memory import check_memory
from .init import uniform_fan_in
from .recorded import Recorded
from .tape import ForwardRequiredError, Frame, Span, Tape, _frames, current_frame, is_recording
from .tape import _state as _tape_state

__all__ = ["Parameter", "Module", "IncompatibleKeys", "StateDictError", "init_parameter"]


class StateDictError(ValueError, KeyError):
    """A state dict that does not fit the model (missing or unexpected keys). A ``ValueError``;
    also a ``KeyError`` for code written against earlier versions."""

    __str__ = Exception.__str__


class Parameter:
    """A trainable array and its accumulated gradient.

    Attributes
    ----------
    data : ndarray
        The values; optimizers update it in place, and in-place edits by users are honoured by
        the next forward.
    grad : ndarray
        Same shape and dtype as ``data``; backward passes add to it.

    Examples
    --------
    >>> p = Parameter(np.ones(3))
    >>> p.grad
    array([0., 0., 0.])
    """

    def __init__(self, data: np.ndarray):
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a real floating-point ndarray, got "
                            f"{getattr(data, 'dtype', type(data).__name__)}")
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def init_parameter(shape, fan_in: int, dtype, rng, owner: str) -> Parameter:
    """A parameter drawn from PyTorch's default ``U(±1/sqrt(fan_in))``, its size estimated
    against the memory budget first (drawing happens in float64, then the gradient)."""
    n = math.prod(shape)
    check_memory(n * (8 + 2 * np.dtype(dtype).itemsize),
                 f"the parameters of {owner} ({' x '.join(map(str, shape))})",
                 "use fewer channels or features")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    return Parameter(uniform_fan_in(shape, fan_in, dtype, rng))


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` left out, like PyTorch's result."""

    missing_keys: list
    unexpected_keys: list


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Recorded) else a


def _node_for(tape: Tape, a):
    if isinstance(a, Recorded) and a._node is not None and a._node.tape is tape:
        return a._node
    if isinstance(a, np.ndarray):
        return tape.node(a.shape, a.dtype)
    return None


def _check_state_value(name, value):
    """A state-dict value as an ndarray: numpy arrays, numbers or torch tensors; no objects."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state dict entry {name!r} must be an array, got "
                        f"{type(value).__name__}")
    if value.dtype.kind not in "fiub":
        raise TypeError(f"state dict entry {name!r} must hold real numbers, got dtype "
                        f"{value.dtype}")
    return value


class Module:
    """Base class of layers and networks.

    Subclasses implement ``forward``; library layers (``_primitive = True``) record the one
    operator they apply, composite modules are recorded by the layers and array operations their
    ``forward`` runs. ``backward``, ``matrix``, ``linear_operator``, ``state_dict`` and the rest
    come from here.

    Examples
    --------
    A residual block, written as in PyTorch:

    >>> from matconv import nn
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv1d(2, 2, 3, padding=1, dtype=np.float64)
    ...     def forward(self, x):
    ...         return x + self.conv(x)
    >>> block = Block()
    >>> x = np.random.default_rng(0).standard_normal((4, 2, 5))
    >>> y = block(x)
    >>> dx = block.backward(np.ones_like(y))
    >>> J = block.matrix((2, 5))                       # I + A
    >>> np.allclose(dx[0].ravel(), J.T @ np.ones(10))
    True
    >>> list(block.state_dict())
    ['conv.weight', 'conv.bias']
    """

    training = True
    _primitive = False
    _span = None
    _own_tape = None

    def __init__(self):
        d = self.__dict__
        d.setdefault("_parameters", {})
        d.setdefault("_buffers", {})
        d.setdefault("_modules", {})
        d.setdefault("_non_persistent", set())

    def _registry(self, name):
        d = self.__dict__
        if name not in d:
            Module.__init__(self)  # a subclass that forgot super().__init__()
        return d[name]

    # ---- registration, like torch.nn.Module
    def __setattr__(self, name, value):
        params, buffers, modules = (self._registry("_parameters"), self._registry("_buffers"),
                                    self._registry("_modules"))
        for registry in (params, buffers, modules):
            if name in registry and not (registry is params and value is None) \
                    and not (registry is buffers and (value is None
                                                      or isinstance(value, np.ndarray))):
                del registry[name]
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in params:  # a registered parameter set to None (e.g. no bias)
            params[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            self._registry(registry).pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (or ``None``) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"param must be a Parameter or None, got {type(param).__name__}")
        self._registry("_parameters")[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add non-trainable state (e.g. running statistics) saved in ``state_dict`` unless
        ``persistent=False``.

        >>> m = Module()
        >>> m.register_buffer("running_mean", np.zeros(3))
        >>> list(m.state_dict())
        ['running_mean']
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"buffer {name!r} must be an ndarray or None, got "
                            f"{type(tensor).__name__}")
        self._registry("_buffers")[name] = tensor
        if persistent:
            self._registry("_non_persistent").discard(name)
        else:
            self._registry("_non_persistent").add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module) -> None:
        """Add a sub-module under ``name`` (``Sequential`` uses ``"0"``, ``"1"``, ...)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"module must be a Module or None, got {type(module).__name__}")
        self._registry("_modules")[str(name)] = module
        object.__setattr__(self, str(name), module)

    # ---- traversal
    def named_children(self):
        """``(name, module)`` of the direct sub-modules, in registration order."""
        for name, m in self._registry("_modules").items():
            if m is not None:
                yield name, m

    def children(self):
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "", memo=None):
        """This module and every sub-module, each once, with dotted names."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(name, Parameter)`` pairs with PyTorch-style dotted names, each parameter once."""
        seen = set()
        mods = self.named_modules() if recurse else [("", self)]
        for mod_name, m in mods:
            for name, p in m._registry("_parameters").items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    full = f"{mod_name}.{name}" if mod_name else name
                    yield prefix + full, p

    def parameters(self, recurse: bool = True) -> list:
        """All trainable :class:`Parameter` objects, in a stable order."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        mods = self.named_modules() if recurse else [("", self)]
        for mod_name, m in mods:
            for name, b in m._registry("_buffers").items():
                if b is not None:
                    yield prefix + (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse: bool = True) -> list:
        return [b for _, b in self.named_buffers(recurse=recurse)]

    # ---- state
    def state_dict(self, prefix: str = "") -> dict:
        """``{name: copy}`` of every parameter and persistent buffer, PyTorch's keys and order.

        A module used twice appears under each of its names, as in PyTorch.
        """
        out = {}
        for name, p in self._registry("_parameters").items():
            if p is not None:
                out[prefix + name] = p.data.copy()
        for name, b in self._registry("_buffers").items():
            if b is not None and name not in self._registry("_non_persistent"):
                out[prefix + name] = b.copy()
        for name, m in self.named_children():
            out.update(m.state_dict(prefix=f"{prefix}{name}."))
        return out

    def _state_targets(self, prefix=""):
        """``{key: (module, kind, name)}`` for every entry ``state_dict`` would write."""
        out = {}
        for name, p in self._registry("_parameters").items():
            if p is not None:
                out[prefix + name] = (self, "param", name)
        for name, b in self._registry("_buffers").items():
            if b is not None and name not in self._registry("_non_persistent"):
                out[prefix + name] = (self, "buffer", name)
        for name, m in self.named_children():
            out.update(m._state_targets(f"{prefix}{name}."))
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (numpy, numbers or torch tensors) into parameters and buffers.

        Values are cast to each target's dtype; shapes must match. With ``strict=True`` the
        keys must match exactly. Nothing is written unless every entry is valid.

        Raises
        ------
        StateDictError
            Missing or unexpected keys (``strict``); a ``ValueError``.
        ValueError
            A shape mismatch.
        TypeError
            A value that is not an array of real numbers (complex, strings, objects, None...).
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict of arrays, got "
                            f"{type(state_dict).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(f"state dict does not match the model: missing keys {missing}, "
                                 f"unexpected keys {unexpected}")
        writes = []
        for key, (module, kind, name) in targets.items():
            if key not in state_dict:
                continue
            value = _check_state_value(key, state_dict[key])
            target = getattr(module, name)
            current = target.data if kind == "param" else target
            if value.shape != current.shape:
                raise ValueError(f"shape mismatch for {key!r}: the model has {current.shape}, "
                                 f"the state dict {value.shape}")
            writes.append((current, value))
        for current, value in writes:
            current[...] = value.astype(current.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ---- modes and dtypes
    def train(self, mode: bool = True) -> Module:
        """Switch training behaviour on (or off with ``mode=False``); returns ``self``."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Switch to evaluation behaviour; returns ``self``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zero."""
        for p in self.parameters():
            p.zero_grad()

    def to(self, dtype) -> Module:
        """Cast every parameter (and float buffer) to ``dtype`` in place; returns ``self``."""
        dtype = float_dtype(dtype)
        for p in self.parameters():
            if p.data.dtype != dtype:
                p.data = p.data.astype(dtype)
                p.grad = p.grad.astype(dtype)
        for m in self.modules():
            for name, b in list(m._registry("_buffers").items()):
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    setattr(m, name, b.astype(dtype))
        return self

    def float(self) -> Module:
        """``to(np.float32)``, like ``torch.nn.Module.float()``."""
        return self.to(np.float32)

    def double(self) -> Module:
        """``to(np.float64)``, like ``torch.nn.Module.double()``."""
        return self.to(np.float64)

    # ---- calling and recording
    #: False for criteria (losses): they end the chain and are not recorded
    _records = True

    def __call__(self, *args, **kwargs):
        if not self._records or not is_recording():
            return self.forward(*[_plain(a) for a in args], **kwargs)
        frame = current_frame()
        top = frame is None
        detached = getattr(_tape_state, "detached", False)
        if top:
            tape = Tape(owner=None if detached else self)
            if not detached and self._own_tape is not None:
                self._own_tape.release()  # its buffers serve this forward
        else:
            tape = frame.tape
        nodes = [_node_for(tape, a) for a in args]
        if self._primitive:
            call_args = [_plain(a) for a in args]
        else:
            call_args = [Recorded.wrap(_plain(a), n) if n is not None else a
                         for a, n in zip(args, nodes)]
        start = len(tape.records)
        frames = _frames()
        frames.append(Frame(self, tape, nodes))
        try:
            out = self.forward(*call_args, **kwargs)
        finally:
            frames.pop()
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        out_nodes = [o._node if isinstance(o, Recorded) and o._node is not None
                     and o._node.tape is tape else None for o in outs]
        span = Span(tape, start, len(tape.records), nodes, out_nodes, single)
        if detached and top:
            _tape_state.last_trace = span
        if not detached:
            object.__setattr__(self, "_span", span)
            if top:
                object.__setattr__(self, "_own_tape", tape)
        if top:
            outs = tuple(_plain(o) for o in outs)
            return outs[0] if single else outs
        return out

    def forward(self, *args):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def _recording(self) -> bool:
        """True when this call's operator is being recorded (a layer keeps what backward needs)."""
        frame = current_frame()
        return frame is not None and frame.module is self and is_recording()

    def _emit(self, op, Y, shape, batched: bool = True, grads=None, release=None):
        """Record ``op`` (this call's input to its output) and return the output array.

        ``Y`` is the batch-last output, ``shape`` its ``(N, ...)`` shape; ``grads(dY)`` adds the
        parameter gradients, ``release()`` gives back what the record holds.
        """
        from ..layout import from_batch_last

        y = from_batch_last(Y, shape)
        if not batched:
            y = y[0]
        if not self._recording():
            if release is not None:
                release()
            return y
        frame = current_frame()
        node_in = frame.inputs[0].bind(batched)
        node_out = frame.tape.node(y.shape, y.dtype, batched)
        from .tape import Record

        frame.tape.add(Record(op, (node_in,), node_out, grads, release, self))
        return Recorded.wrap(y, node_out)

    #: what a criterion's forward keeps for its backward (losses; layers use the tape)
    _saved = None

    def _need_saved(self):
        if self._saved is None:
            raise ForwardRequiredError(f"{type(self).__name__}.backward() called before "
                                       f"forward(): run the forward pass first, backward uses "
                                       f"what it saved")
        return self._saved

    def _need_span(self, what: str) -> Span:
        span = self._span
        if span is None:
            raise ForwardRequiredError(
                f"{type(self).__name__}.{what}() called before forward(): it uses the last "
                f"forward, so call the module on an input first (y = module(x))")
        span.check_live(self, what)
        return span

    def _recorded_operator(self, input_shape=None):
        """The operator a data-dependent layer recorded at its last forward (its Jacobian)."""
        rec = self._need_span("matrix").records[0]
        if input_shape is not None and tuple(input_shape) != rec.inputs[0].example_shape:
            raise ValueError(f"the last forward had input_shape {rec.inputs[0].example_shape}, "
                             f"got {tuple(input_shape)}")
        return rec.op

    def backward(self, *grads):
        """Input gradient(s) of the last forward for output gradient(s) ``grads``; adds every
        parameter's gradient to its ``.grad``.

        The transpose of the recorded operators, applied in reverse (``Graph.T``); a module used
        twice, a residual path or a concatenation accumulate where paths join.
        """
        return self._need_span("backward").backward(self, grads)

    # ---- the module as an operator
    def operator(self, input_shape=None):
        """The operator of this module for one example of ``input_shape`` ``(C, *spatial)``.

        Fixed linear modules: their map (traced on zeros; bias excluded). Layers whose map
        depends on the data (ReLU, max pooling, ...) give the Jacobian at their last forward.
        """
        from .trace import traced_operator

        return traced_operator(self, input_shape)

    def matrix(self, input_shape=None, *, example=None):
        """:meth:`operator` as a ``scipy.sparse.csr_array`` (``example`` picks the example of
        the last batch for a data-dependent layer)."""
        return self.operator(input_shape).matrix(example)

    def linear_operator(self, input_shape=None, *, example=None):
        """:meth:`operator` as a ``scipy.sparse.linalg.LinearOperator`` (matrix-free where the
        operator is)."""
        return self.operator(input_shape).linear_operator(example)

    def jacobian(self, x):
        """The Jacobian at one example ``x`` (``(C, *spatial)``) as a sparse product of every
        recorded operator (see :func:`matconv.jacobian`)."""
        from .trace import jacobian

        return jacobian(self, x)

    def output_shape(self, input_shape) -> tuple:
        """Shape of one example's output for one example of ``input_shape``."""
        from .trace import traced_output_shape

        return traced_output_shape(self, input_shape)

    # ---- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in children:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
