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

import numpy as np

from ..layout import from_batch_last
from .init import init_parameter
from .parameter import IncompatibleKeys, Parameter, StateDictError
from .recorded import Recorded
from .registry import Registry
from .tape import (ForwardRequiredError, Frame, Record, Span, Tape, _frames, current_frame,
                   is_recording)
from .tape import state as _tape_state

__all__ = ["Parameter", "Module", "IncompatibleKeys", "StateDictError", "init_parameter"]


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Recorded) else a


def _node_for(tape: Tape, a):
    if isinstance(a, Recorded) and a._node is not None and a._node.tape is tape:
        return a._node
    if isinstance(a, np.ndarray):
        return tape.node(a.shape, a.dtype)
    return None


class Module(Registry):
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

    # ---- calling and recording
    #: False for criteria (losses): they end the chain and are not recorded
    _records = True

    def __call__(self, *args, **kwargs):
        if not self._records or not is_recording():
            with np.errstate(all="ignore"):
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
            if top:
                with np.errstate(all="ignore"):  # nan and inf propagate silently, as in PyTorch
                    out = self.forward(*call_args, **kwargs)
            else:  # inside the outermost call's errstate
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
        y = from_batch_last(Y, shape)
        if not batched:
            y = y[0]
        frame = current_frame()
        if frame is None or frame.module is not self or not is_recording():
            if release is not None:
                release()
            return y
        node_in = frame.inputs[0].bind(batched)
        node_out = frame.tape.node(y.shape, y.dtype, batched)
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

    def backward(self, *grads, input_grad: bool = True):
        """Input gradient(s) of the last forward for output gradient(s) ``grads``; adds every
        parameter's gradient to its ``.grad``.

        The transpose of the recorded operators, applied in reverse (``Graph.T``); a module used
        twice, a residual path or a concatenation accumulate where paths join.

        ``input_grad=False`` returns ``None`` for each input and skips the products only the
        input gradient needs (the first layer's ``A.T``): a training step needs the parameter
        gradients alone, as in PyTorch where the data does not require a gradient.

        >>> from matconv import nn
        >>> layer = nn.Conv2d(1, 2, 3, dtype=np.float64, rng=np.random.default_rng(0))
        >>> y = layer(np.ones((1, 1, 4, 4)))
        >>> layer.backward(np.ones_like(y), input_grad=False) is None
        True
        >>> layer.weight.grad[0, 0]
        array([[4., 4., 4.],
               [4., 4., 4.],
               [4., 4., 4.]])
        """
        if not isinstance(input_grad, (bool, np.bool_)):
            raise TypeError(f"input_grad must be a bool, got {input_grad!r}")
        span = self._need_span("backward")
        with np.errstate(all="ignore"):
            return span.backward(self, grads, bool(input_grad))

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

    def check_factors(self, input_shape) -> None:
        """Raise ``ValueError`` if a fixed factor of this module's Jacobian could not be built
        (an estimate against the memory budget: nothing is built). A chain checks each layer's
        operator; other modules have nothing to check before their forward."""
        if self._primitive:
            try:
                op = self.operator(tuple(input_shape))
            except ValueError:  # data dependent (no forward yet, or another shape): the
                return          # forward gives its factor
            if op.fixed:
                op.check_matrix()

    def output_shape(self, input_shape) -> tuple:
        """Shape of one example's output for one example of ``input_shape``."""
        from .trace import traced_output_shape

        return traced_output_shape(self, input_shape)

    # ---- printing
    def extra_repr(self) -> str:
        return ""

    def _repr_html_(self) -> str:
        """A table for Jupyter: every module, its output shape at the last forward, its
        parameters, and the size and nonzeros of the operator it recorded."""
        import html

        rows, total = [], 0
        for name, m in self.named_modules():
            depth = name.count(".") + (1 if name else 0)
            count = sum(p.data.size for p in m.parameters(recurse=False))
            total += count
            span = m._span if m._span is not None and not m._span.tape.released else None
            shape = op = ""
            if span is not None and span.outputs and span.outputs[0] is not None:
                shape = str(span.outputs[0].shape)
                if m._primitive and span.records:
                    rec = span.records[-1].op
                    op = f"{rec.shape[0]} x {rec.shape[1]}"
                    op += f", {rec.nnz:,} nonzeros" if rec.nnz is not None else ""
            label = html.escape((f"{name}: " if name else "") +
                                f"{type(m).__name__}({m.extra_repr()})")
            rows.append(f"<tr><td style='padding-left:{1 + 1.5 * depth}em;text-align:left'>"
                        f"{label}</td><td>{html.escape(shape)}</td><td>{count:,}</td>"
                        f"<td>{html.escape(op)}</td></tr>")
        head = ("<tr><th style='text-align:left'>module</th><th>output (last forward)</th>"
                "<th>parameters</th><th>operator (one example)</th></tr>")
        return (f"<table>{head}{''.join(rows)}<tr><td style='text-align:left'><b>total</b></td>"
                f"<td></td><td><b>{total:,}</b></td><td></td></tr></table>")

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in children:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
