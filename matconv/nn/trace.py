"""Tracing a module once to read it as an operator: its linear map, its Jacobian at a point, its
output shape. A trace is a forward that leaves the modules' own state (their last forward, the
buffers they hold) untouched."""
from __future__ import annotations

import math

import numpy as np

from ..geometry import as_shape
from ..memory import check_memory
from .tape import ForwardRequiredError, no_grad, thread_flag
from .tape import state as _state

__all__ = ["trace", "traced_operator", "traced_output_shape", "jacobian", "example_input",
           "NotLinearError"]


class NotLinearError(ValueError):
    """A module asked for its fixed linear map whose map depends on the input."""


def trace(module, *args):
    """``(outputs, span)`` of one forward of ``module`` recorded on a fresh tape that no module
    keeps; release it with ``span.tape.release()``."""
    try:
        with thread_flag(_state, "detached"):
            out = module(*args)
        span = _state.last_trace
    finally:
        _state.last_trace = None
    return out, span


def _dtype_of(module):
    params = module.parameters()
    return params[0].data.dtype if params else np.dtype(np.float64)


def check_input_shape(module, input_shape, what: str) -> tuple:
    """``input_shape`` as a tuple of positive ints, or a ``ValueError`` naming ``what``."""
    if input_shape is None:
        raise ValueError(f"{type(module).__name__}.{what} needs input_shape, the shape (C, "
                         f"*spatial) of one example")
    return as_shape(input_shape, "input_shape")


def example_input(module, input_shape, what: str) -> np.ndarray:
    """A batch of one zero example of ``input_shape``, in the module's precision."""
    input_shape = check_input_shape(module, input_shape, what)
    dtype = _dtype_of(module)
    check_memory(math.prod(input_shape) * dtype.itemsize, f"an input of shape {input_shape}",
                 "use a smaller input_shape")
    return np.zeros((1, *input_shape), dtype=dtype)


def traced_operator(module, input_shape):
    """The fixed linear map of ``module`` as a :class:`~matconv.operators.Graph` of the
    operators one forward on zeros records (bias excluded: the map, not the affine function)."""
    x = example_input(module, input_shape, "operator()")
    _, span = trace(module, x)
    try:
        for rec in span.records:
            if not rec.op.fixed:
                raise _not_linear(type(rec.module).__name__ if rec.module is not None else
                                  "an element-wise product", module)
        return span.graph()
    finally:
        span.tape.release()


def _not_linear(name: str, model) -> NotLinearError:
    return NotLinearError(
        f"{name} is not a fixed linear map: use jacobian(model, x) for the "
        f"Jacobian of {type(model).__name__} at a point x, or compose(model, input_shape, "
        f"support=True) for which inputs reach which outputs")


def fixed_operator(layer, input_shape, model):
    """``layer``'s operator for ``input_shape`` if it is a fixed linear map (no forward needed),
    else :class:`NotLinearError` naming it (``model`` is what the user asked about)."""
    try:
        op = layer.operator(tuple(input_shape))
    except ForwardRequiredError:  # a data-dependent layer that has not run yet
        raise _not_linear(type(layer).__name__, model) from None
    if not op.fixed or op.batch is not None:
        raise _not_linear(type(layer).__name__, model)
    return op


def traced_output_shape(module, input_shape) -> tuple:
    """The output shape of one example, from a forward on zeros that records nothing."""
    x = example_input(module, input_shape, "output_shape()")
    with no_grad(), thread_flag(_state, "detached"):  # leaves running statistics alone
        y = module(x)
    if not isinstance(y, np.ndarray):
        raise ValueError(f"{type(module).__name__} does not return one array: no output_shape")
    return tuple(y.shape[1:])


def jacobian(module, x, *, support: bool = False):
    """The Jacobian of ``module`` at one example ``x`` (``(C, *spatial)``), as the sums and
    products of the sparse operators one forward records (the module's train/eval mode holds).

    The forward is an ordinary call: afterwards each layer's ``matrix()`` is its factor at ``x``.
    With ``support=True``, the pattern of where it can be nonzero whatever the point.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiub":
        raise TypeError(f"x must be a real numeric ndarray of one example (C, *spatial), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    module.check_factors(x.shape)
    dtype = _dtype_of(module)
    batch = np.asarray(x, dtype=dtype if x.dtype.kind != "f" else x.dtype)[None]
    try:
        module(batch)
    except ValueError as exc:  # say what the model was given, and why (x is one example)
        raise ValueError(f"jacobian runs the model on x as one example (C, *spatial), i.e. on a "
                        f"batch of shape {batch.shape}; for a batch, pass one example at a time "
                        f"(x[i]): {exc}") from exc
    graph = module._need_span("jacobian").graph()
    if support:
        return graph.pattern()
    return graph.matrix(example=0 if graph.batch is not None else None)
