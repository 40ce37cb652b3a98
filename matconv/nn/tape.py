"""Recording a forward: every operator a layer applies goes on a tape, with the arrays it read and
wrote; backward walks the tape in reverse applying each operator's ``.T``.

* A **node** stands for one array of the forward: its shape, dtype, and whether its first axis is
  the batch. Gradients at a node are batch-last ``(size, N)`` arrays (``size`` the entries of one
  example), the layout the operators work in.
* A **record** is one applied operator: ``op`` maps its input nodes (stacked) to its output node;
  ``grads(dY)`` adds the parameter gradients it owes; ``release()`` gives back buffers it holds.
* A **tape** belongs to the module whose call started it (the outermost call); each module call
  is a **span** of it — its inputs, outputs and the records made while it ran. ``backward`` of a
  module is the transpose of its last span: :class:`matconv.operators.Graph` over those records.

The tape of a module is released (its buffers given back) when that module starts its next
outermost call; a backward through a released tape raises instead of computing from reused
memory.
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from ..layout import check_float_array, from_batch_last, to_batch_last
from ..operators import Graph

__all__ = ["Node", "Record", "Tape", "Span", "Frame", "no_grad", "is_recording",
           "current_frame", "ForwardRequiredError"]


class ForwardRequiredError(RuntimeError, ValueError):
    """A backward, or the Jacobian of a data-dependent layer, asked for before any forward (or
    after the forward it belonged to was released). A ``ValueError`` too, so bad-state calls are
    caught where bad arguments are."""


#: this thread's recording flags: ``paused`` (inside :func:`no_grad`), ``detached`` (a trace
#: that no module keeps), ``last_trace`` (the span such a trace left), ``frames`` (calls running)
state = threading.local()


def _frames() -> list:
    frames = getattr(state, "frames", None)
    if frames is None:
        frames = state.frames = []
    return frames


def current_frame():
    """The innermost module call running in this thread, or ``None``."""
    frames = _frames()
    return frames[-1] if frames else None


def is_recording() -> bool:
    """False inside :func:`no_grad`."""
    return not getattr(state, "paused", False)


@contextlib.contextmanager
def no_grad():
    """Run forwards without recording (evaluation): nothing is kept for a backward.

    >>> from matconv import nn
    >>> conv = nn.Conv1d(1, 1, 2)
    >>> with no_grad():
    ...     y = conv(np.ones((1, 1, 4), np.float32))
    >>> y.shape
    (1, 1, 3)
    """
    with thread_flag(state, "paused"):
        yield


@contextlib.contextmanager
def thread_flag(state: threading.local, name: str):
    """Set the thread-local flag ``state.name`` for the duration of a ``with`` block."""
    before = getattr(state, name, False)
    setattr(state, name, True)
    try:
        yield
    finally:
        setattr(state, name, before)


class Node:
    """One array of a recorded forward.

    ``batched`` is ``None`` until a layer says whether the first axis is the batch (a layer
    given one ``(C, *spatial)`` example says it is not); element-wise arithmetic assumes it is.
    """

    __slots__ = ("tape", "shape", "dtype", "batched")

    def __init__(self, tape, shape, dtype, batched=None):
        self.tape, self.shape, self.dtype, self.batched = tape, tuple(shape), dtype, batched

    def bind(self, batched: bool) -> Node:
        if self.batched is None:
            self.batched = bool(batched)
        elif self.batched != bool(batched):
            raise ValueError(f"an array of shape {self.shape} is used both as a batch and as one "
                             f"example: pass every layer of a graph batched (N, C, ...) inputs")
        return self

    @property
    def example_shape(self) -> tuple:
        return self.shape[1:] if self.batched else self.shape

    @property
    def size(self) -> int:
        return math.prod(self.example_shape)

    @property
    def count(self) -> int:
        """Examples in the array (the columns of its batch-last form)."""
        return self.shape[0] if self.batched else 1

    def to_columns(self, a: np.ndarray) -> np.ndarray:
        """The array as batch-last ``(size, N)`` (free for a batch-last view)."""
        return to_batch_last(a if self.batched else a[None])

    def from_columns(self, A: np.ndarray) -> np.ndarray:
        """Back to the array's own shape, a view of ``A``'s memory."""
        if self.batched:
            return from_batch_last(A, self.shape)
        return from_batch_last(A, (1, *self.shape))[0]

    def __repr__(self):
        return f"<Node {self.shape} {np.dtype(self.dtype).name}>"


class Record:
    """One applied operator: ``op`` from ``inputs`` (stacked) to ``output``."""

    __slots__ = ("op", "inputs", "output", "grads", "release", "module")

    def __init__(self, op, inputs, output, grads=None, release=None, module=None):
        self.op, self.inputs, self.output = op, tuple(inputs), output
        self.grads, self.release, self.module = grads, release, module


class Tape:
    """The records of one outermost module call, in the order they ran."""

    def __init__(self, owner=None):
        self.owner, self.records, self.released = owner, [], False
        self._lock = threading.Lock()

    def node(self, shape, dtype, batched=None) -> Node:
        return Node(self, shape, dtype, batched)

    def add(self, record: Record) -> None:
        self.records.append(record)

    def release(self) -> None:
        """Give back every buffer the records hold; later backwards through this tape raise."""
        with self._lock:
            if self.released:
                return
            self.released = True
            records, self.records = self.records, []
        for rec in records:
            if rec.release is not None:
                rec.release()


class Frame:
    """A module call in progress: its tape and the nodes of its array arguments."""

    __slots__ = ("module", "tape", "inputs")

    def __init__(self, module, tape, inputs):
        self.module, self.tape, self.inputs = module, tape, inputs


class Span:
    """A module call on a tape: records ``[start, stop)``, input and output nodes."""

    def __init__(self, tape: Tape, start: int, stop: int, inputs, outputs, single: bool):
        self.tape, self.start, self.stop = tape, start, stop
        self.inputs, self.outputs, self.single = list(inputs), list(outputs), single

    def check_live(self, module, what: str) -> None:
        if self.tape.released:
            owner = type(self.tape.owner).__name__ if self.tape.owner is not None else "a module"
            raise ForwardRequiredError(
                f"{type(module).__name__}.{what}: the forward it belongs to was released when "
                f"{owner} ran its next forward; run the forward again first")

    @property
    def records(self) -> list:
        return self.tape.records[self.start:self.stop]

    def graph(self) -> Graph:
        """The span as an operator from its (array) inputs to its outputs."""
        inputs = [n for n in self.inputs if n is not None]
        outputs = [n for n in self.outputs if n is not None]
        for n in inputs + outputs:
            if n.batched is None:
                n.bind(True)
        return Graph(self.records, inputs, outputs)

    def backward(self, module, grads: tuple, input_grad: bool = True):
        """Input gradients (arrays in the inputs' own shapes) for output gradients ``grads``;
        ``None`` for each without ``input_grad`` (then they are not computed)."""
        self.check_live(module, "backward")
        if len(grads) != len(self.outputs):
            raise ValueError(f"{type(module).__name__}.backward expects {len(self.outputs)} "
                             f"gradient(s), one per output of the last forward, got {len(grads)}")
        if all(dy is None for dy in grads):
            raise TypeError(f"{type(module).__name__}.backward needs grad_output, the gradient "
                            f"of the last forward's output as an ndarray, got None")
        seeds = {}
        for node, dy in zip(self.outputs, grads):
            if dy is None or node is None:
                continue
            dy = _check_grad(dy, node)
            node.bind(True) if node.batched is None else None
            part = node.to_columns(dy)
            seeds[node] = part if node not in seeds else seeds[node] + part
        graph = self.graph()
        result = graph.backward(seeds, on_record=_parameter_grads, input_grads=input_grad)
        out = []
        for node in self.inputs:
            if node is None or not input_grad:
                out.append(None)
                continue
            g = result.get(node)
            out.append(np.zeros(node.shape, node.dtype) if g is None else node.from_columns(g))
        return out[0] if len(out) == 1 else tuple(out)


def _parameter_grads(record: Record, dY: np.ndarray) -> None:
    if record.grads is not None:
        record.grads(dY)


def _check_grad(dy, node: Node) -> np.ndarray:
    dy = check_float_array(dy, "grad_output", node.dtype)
    if dy.shape != node.shape:
        raise ValueError(f"grad_output must have the shape of the last forward's output "
                         f"{node.shape}, got {dy.shape}")
    return np.asarray(dy)
