"""Products of lowered operators: a stack's linear map, its Jacobian, receptive fields.

A network at a point is a composite of function elements (seed 001); each element here has a
sparse matrix (its linear map, or its Jacobian at the last forward), so the network's Jacobian
is their product, and backprop is multiplying their transposes right to left.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["compose", "jacobian", "receptive_field", "receptive_field_size", "ReceptiveField"]


def _modules(model):
    from .nn.container import Sequential

    if isinstance(model, Sequential):
        return list(model)
    if isinstance(model, (list, tuple)):
        return list(model)
    return [model]


def compose(model, input_shape, *, support: bool = False) -> sp.csr_array:
    """The product ``M_L ... M_1`` of a stack's matrices for one example of ``input_shape``.

    Parameters
    ----------
    model : Sequential, module or list of modules
        Linear modules only (convolutions, transposed convolutions, average and adaptive
        average pooling, upsampling, Linear, Flatten), unless ``support=True``.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example.
    support : bool
        Multiply *support* matrices instead: element-wise layers become the identity and max
        pools the pattern of their windows, so nonzeros mark which inputs can reach an output.

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
    shape = tuple(input_shape)
    M = None
    for m in _modules(model):
        if support:
            step = m.support_matrix(shape)
        elif m.is_linear:
            step = m.matrix(shape)
        else:
            raise ValueError(f"{type(m).__name__} is not a fixed linear map: use jacobian(model, x) "
                             f"for its Jacobian at a point, or compose(..., support=True) for "
                             f"which inputs reach which outputs")
        M = step if M is None else step @ M
        shape = tuple(m.output_shape(shape))
    if M is None:
        return sp.eye_array(math.prod(shape), format="csr")
    M = sp.csr_array(M)
    if support:
        M.data[:] = 1  # only the pattern matters
    return M


def jacobian(model, x: np.ndarray) -> sp.csr_array:
    """The Jacobian of ``model`` at one example ``x`` of shape ``(C, *spatial)``, as a product.

    Runs one forward on ``x`` (in the model's current train/eval mode), then multiplies each
    module's matrix at that point: conv ``A``, ReLU ``diag(x > 0)``, max pool selection ``P``,
    ``diag(tanh')``, dense ``W``, softmax blocks, ...  ``J.T @ dy`` equals what ``backward``
    returns for that example.

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
    x = np.asarray(x)
    modules = _modules(model)
    h = x[None]
    shapes = [x.shape]
    for m in modules:
        h = m(h)
        shapes.append(h.shape[1:])
    J = sp.eye_array(x.size, format="csr")
    for m, shape in zip(modules, shapes):
        J = m.matrix(shape, example=0) @ J
    return sp.csr_array(J)


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
    input_shape = tuple(input_shape)
    modules = _modules(model)
    linear = all(m.is_linear for m in modules)
    M = compose(modules, input_shape, support=not linear)
    out_shape = input_shape
    for m in modules:
        out_shape = tuple(m.output_shape(out_shape))
    if isinstance(output_index, tuple):
        output_index = int(np.ravel_multi_index(output_index, out_shape))
    if not 0 <= output_index < M.shape[0]:
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

    Counts every layer with a ``kernel_size`` (convolutions and pools); element-wise layers
    add nothing.

    >>> from matconv import nn
    >>> receptive_field_size([nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)])
    (8, 8)
    """
    r, jump = None, None
    for m in _modules(model):
        k = getattr(m, "kernel_size", None)
        if k is None:
            continue
        if getattr(m, "_transposed", False):
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
