"""Products of lowered operators: a network's linear map, its Jacobian, receptive fields.

A network at a point is a composite of function elements (Kuwajima's backprop memo); each element
records an operator (its linear map, or its Jacobian at that point), so the network's Jacobian is
their sums and products — for any graph, not only a chain — and backprop is multiplying their
transposes in reverse.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .nn import Module, Sequential
from .nn.trace import NotLinearError, check_input_shape, trace
from .nn.trace import jacobian as _jacobian

__all__ = ["compose", "jacobian", "receptive_field", "receptive_field_size", "ReceptiveField"]


def _as_module(model) -> Module:
    if isinstance(model, Module):
        return model
    if isinstance(model, (list, tuple)) and all(isinstance(m, Module) for m in model):
        return Sequential(*model)
    raise TypeError(f"model must be a matconv Module or a list of modules, got "
                    f"{type(model).__name__}")


def _chain(model) -> list:
    """The layers of a chain, nested ``Sequential`` s flattened; a graph module is refused."""
    model = _as_module(model)
    if not isinstance(model, Sequential):
        if model.children() and not model._primitive:
            raise ValueError(f"receptive_field_size is the closed form of a chain; "
                             f"{type(model).__name__} is a graph module: use "
                             f"receptive_field(model, input_shape, output_index)")
        return [model]
    return [layer for m in model for layer in _chain(m)]


def compose(model, input_shape, *, support: bool = False) -> sp.csr_array:
    """The linear map ``M`` of a network for one example of ``input_shape``.

    For a chain it is the product ``M_L ... M_1`` of the layers' matrices; for a graph (residual
    additions, concatenations, a layer used twice) the sums and products of every recorded
    operator.

    Parameters
    ----------
    model : Module or list of modules
        Fixed linear maps only (convolutions, transposed convolutions, average and adaptive
        average pooling, upsampling, Linear, Flatten, additions...), unless ``support=True``.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example.
    support : bool
        The *pattern* instead: element-wise layers count as the identity and max pools as the
        pattern of their windows, so nonzeros mark which inputs can reach an output.

    Returns
    -------
    scipy.sparse.csr_array of shape (output size, prod(input_shape))

    Examples
    --------
    >>> from matconv import nn
    >>> stack = [nn.Conv1d(1, 1, 2, bias=False, dtype=np.float64), nn.AvgPool1d(2)]
    >>> stack[0].weight.data[...] = [[[1.0, 2.0]]]
    >>> compose(stack, (1, 5)).toarray()
    array([[0.5, 1.5, 1. , 0. , 0. ],
           [0. , 0. , 0.5, 1.5, 1. ]])
    """
    model = _as_module(model)
    input_shape = check_input_shape(model, input_shape, "compose")
    if support:
        model.check_factors(input_shape)  # refuse what cannot be built before any forward
        from .nn.trace import example_input

        x = example_input(model, input_shape, "compose")[0]
        _, span = trace(model, x[None])
        try:
            return span.graph().pattern()
        finally:
            span.tape.release()
    return sp.csr_array(model.operator(tuple(input_shape)).matrix())


def jacobian(model, x: np.ndarray) -> sp.csr_array:
    """The Jacobian of ``model`` at one example ``x`` of shape ``(C, *spatial)``.

    One forward on ``x`` (in the model's current train/eval mode) records every operator:
    conv ``A``, ReLU ``diag(x > 0)``, max pool selection ``P``, ``diag(tanh')``, dense ``W``,
    softmax blocks, identities of residual paths... ``J`` is their sums and products, and
    ``J.T @ dy`` equals what ``backward`` returns for that example, and afterwards each layer's
    ``matrix()`` is its factor at ``x``.

    Examples
    --------
    >>> from matconv import nn
    >>> net = nn.Sequential(nn.Linear(2, 2, dtype=np.float64), nn.ReLU())
    >>> net[0].weight.data[...] = [[1.0, 0.0], [0.0, -1.0]]
    >>> net[0].bias.data[...] = 0
    >>> jacobian(net, np.array([3.0, 4.0])).toarray()
    array([[1., 0.],
           [0., 0.]])
    """
    return sp.csr_array(_jacobian(_as_module(model), x))


class ReceptiveField(NamedTuple):
    """The inputs that reach one output unit.

    Attributes
    ----------
    inputs : ndarray of int
        Flat indices into one example's input.
    positions : ndarray of int, shape (n, 1 + spatial dims)
        The same as ``(channel, *position)`` rows.
    weights : ndarray or None
        The coefficient each input has in the output (linear stacks only).
    extent : tuple of int
        Size of the bounding box of the positions, per spatial dim.
    """

    inputs: np.ndarray
    positions: np.ndarray
    weights: object
    extent: tuple


def receptive_field(model, input_shape, output_index) -> ReceptiveField:
    """Which inputs reach output unit ``output_index``, and with what weight.

    Parameters
    ----------
    model : Sequential, module or list of modules
    input_shape : tuple of int
        ``(C, *spatial)``.
    output_index : int or tuple
        A flat index into one example's output, or ``(channel, *position)``.

    Examples
    --------
    >>> from matconv import nn
    >>> stack = [nn.Conv1d(1, 1, 3, dilation=d, bias=False) for d in (1, 2, 4)]
    >>> receptive_field(stack, (1, 32), (0, 10)).extent
    (15,)
    """
    model = _as_module(model)
    input_shape = check_input_shape(model, input_shape, "receptive_field")
    try:
        M, linear = compose(model, input_shape), True
    except NotLinearError:  # not a fixed linear map: which inputs *can* reach, with no weights
        M, linear = compose(model, input_shape, support=True), False
    out_shape = tuple(model.output_shape(input_shape))
    if isinstance(output_index, tuple) and len(output_index) == len(out_shape) and all(
            isinstance(i, (int, np.integer)) and 0 <= i < n
            for i, n in zip(output_index, out_shape)):
        output_index = int(np.ravel_multi_index(output_index, out_shape))
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
            or not 0 <= output_index < M.shape[0]:
        raise ValueError(f"output_index must address one of the {M.shape[0]} outputs of shape "
                         f"{out_shape}, got {output_index}")
    row = M[[output_index]].tocoo()
    keep = row.data != 0
    inputs = row.coords[1][keep]
    order = np.argsort(inputs)
    inputs = inputs[order]
    positions = np.stack(np.unravel_index(inputs, input_shape), axis=1)
    extent = tuple(int(np.ptp(positions[:, 1 + d])) + 1 if len(inputs) else 0
                   for d in range(len(input_shape) - 1))
    weights = row.data[keep][order] if linear else None
    return ReceptiveField(inputs, positions, weights, extent)


def receptive_field_size(model) -> tuple:
    """Closed form ``r = 1 + sum_l (k_l - 1) d_l prod_{j<l} s_j`` per spatial dim.

    Counts every layer with a ``kernel_size`` (convolutions and pools) of a chain, nested
    ``Sequential`` s included; element-wise layers add nothing. A graph module (a residual
    block, a concatenation) has no such closed form: :func:`receptive_field` reads it off the
    recorded operators instead.

    >>> from matconv import nn
    >>> receptive_field_size([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)])
    (8, 8)
    """
    r, jump = None, None
    for m in _chain(model):
        k = getattr(m, "kernel_size", None)
        if k is None:
            continue
        if getattr(m, "transposed", False):
            raise ValueError("receptive_field_size covers convolutions and pools, not "
                             "transposed convolutions")
        s = m.stride
        d = getattr(m, "dilation", (1,) * len(k))
        if r is None:
            r, jump = [1] * len(k), [1] * len(k)
        for i in range(len(k)):
            r[i] += (k[i] - 1) * d[i] * jump[i]
            jump[i] *= s[i]
    if r is None:
        raise ValueError("no layer with a kernel_size in the model")
    return tuple(r)
