"""What ``op`` is: a matrix, a ``LinearOperator``, a layer, a model or a model at a point.

:func:`resolve` turns any of them into one :class:`Operator`, which knows the shape of ``A`` and
how to get it three ways: dense, explicit (``scipy.sparse`` factors) and matrix-free
(``LinearOperator`` products; for a convolution with ``lowering='im2col'`` the im2col products,
``A`` never built). The solvers choose among them.

:func:`module_kind` is the one place that answers, for a module, "is this a fixed linear
map, and if not, what is its Lipschitz constant"; the solvers and :mod:`.lipschitz` both ask it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from ..memory import check_memory, get_memory_budget
from .fourier import circular_reason

__all__ = ["Operator", "leaves", "resolve"]

#: Columns of the identity pushed through a matrix-free operator at a time (dense fallback).
_DENSE_CHUNK = 256


class ModuleKind(NamedTuple):
    """The answer of :func:`module_kind`.

    Attributes
    ----------
    linear : bool
        A fixed linear map: the same matrix for every input (``module.matrix(input_shape)``).
    identity : bool
        The identity map (``Flatten``, ``Dropout`` in evaluation mode): nothing to decompose.
    lipschitz : float or None
        The module's global Lipschitz constant in the 2-norm when it is known in closed form;
        ``None`` for a linear map, whose constant is its operator norm.
    note : str
        Where the constant comes from, for reports.
    """

    linear: bool
    identity: bool
    lipschitz: object
    note: str


def _classes():
    from .. import nn

    linear = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
              nn.ConvTranspose3d, nn.Linear, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
              nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Upsample)
    max_pools = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d,
                 nn.ChannelMaxPool)
    return nn, linear, max_pools


SUPPORTED = ("Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear, AvgPool*, AdaptiveAvgPool*, Upsample, "
             "Flatten, Dropout, ReLU, LeakyReLU, Tanh, Sigmoid, Softmax, LogSoftmax, MaxPool*, "
             "AdaptiveMaxPool2d, ChannelMaxPool, LPPool* (even norm_type), and Sequential "
             "(nested too) of these")


def _max_overlap(module, input_shape) -> int:
    """The most windows any one input cell belongs to, read off the module's support matrix."""
    from ..composition import compose

    pattern = sp.csc_array(compose(module, tuple(input_shape), support=True))
    return int(np.diff(pattern.indptr).max()) if pattern.shape[1] else 0


def _softmax_size(module, input_shape) -> int:
    rank = len(input_shape) + 1  # the batched array the layer's ``dim`` refers to
    dim = module.dim
    if isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < rank \
            or dim % rank == 0:
        raise ValueError(f"{type(module).__name__}(dim={dim}) must act along one example's axes "
                         f"(dim in 1..{rank - 1} or negative) for input_shape {input_shape}")
    return int(input_shape[dim % rank - 1])


def module_kind(module, input_shape) -> ModuleKind:
    """Is ``module`` a fixed linear map, and if not, what is its Lipschitz constant (2-norm)?

    The one place this question is answered (the constants are listed in
    :func:`matconv.spectral.lipschitz_bound`). ``input_shape`` is one example's ``(C, *spatial)``
    at the module's input (softmax sizes and pooling overlaps depend on it).

    Raises
    ------
    TypeError
        For a module this does not know, naming what is supported.

    Examples
    --------
    >>> from matconv import nn
    >>> module_kind(nn.MaxPool2d(3, stride=1), (1, 5, 5)).lipschitz   # 9 windows share a cell
    3.0
    >>> module_kind(nn.Conv2d(1, 1, 3), (1, 5, 5)).linear
    True
    """
    nn, linear, max_pools = _classes()
    name = type(module).__name__
    if isinstance(module, nn.Sequential):
        raise TypeError("a Sequential is not one layer: flatten it with leaves(model)")
    if isinstance(module, linear):
        return ModuleKind(True, False, None, "operator norm")
    if isinstance(module, nn.Flatten):
        return ModuleKind(True, True, 1.0, "reshapes only")
    if isinstance(module, nn.Dropout):
        if not module.training or module.p == 0:
            return ModuleKind(True, True, 1.0, "identity in evaluation mode")
        return ModuleKind(False, False, 1.0 / (1.0 - module.p),
                          "1/(1-p): the largest mask entry (training mode)")
    if isinstance(module, (nn.ReLU, nn.Tanh)):
        return ModuleKind(False, False, 1.0, "|f'| <= 1")
    if isinstance(module, nn.LeakyReLU):
        return ModuleKind(False, False, max(1.0, abs(module.negative_slope)), "max(1, |slope|)")
    if isinstance(module, nn.Sigmoid):
        return ModuleKind(False, False, 0.25, "|f'| <= 1/4")
    if isinstance(module, nn.Softmax):
        n = _softmax_size(module, input_shape)
        return ModuleKind(False, False, 0.5 if n > 1 else 0.0, "||diag(p) - p p^T|| <= 1/2")
    if isinstance(module, nn.LogSoftmax):
        n = _softmax_size(module, input_shape)
        return ModuleKind(False, False, math.sqrt(n) if n > 1 else 0.0,
                          f"||I - 1 p^T|| < sqrt({n})")
    if isinstance(module, max_pools) or (isinstance(module, (nn.LPPool1d, nn.LPPool2d)) and
                                         module.norm_type % 2 == 0):
        m = _max_overlap(module, input_shape)
        return ModuleKind(False, False, math.sqrt(m),
                          "windows do not overlap" if m <= 1 else f"sqrt({m}): a cell in {m} "
                                                                  f"windows")
    if isinstance(module, (nn.LPPool1d, nn.LPPool2d)):
        raise TypeError(f"{name}(norm_type={module.norm_type:g}) has no global Lipschitz "
                        f"constant for signed inputs; only even norm_type (a p-norm of each "
                        f"window) is supported")
    raise TypeError(f"{name} is not supported by matconv.spectral: supported are {SUPPORTED}")


def leaves(model) -> list:
    """The modules of ``model`` in order, nested ``Sequential`` containers flattened."""
    from ..nn import Module, Sequential

    if isinstance(model, Sequential):
        return [leaf for m in model for leaf in leaves(m)]
    if isinstance(model, Module):
        return [model]
    raise TypeError(f"expected a matconv module or Sequential, got {type(model).__name__}")


# --------------------------------------------------------------------------- operators
@dataclass
class Operator:
    """A linear map to decompose, with the ways to get at it.

    ``explicit()`` returns a sparse matrix or a product of them as a ``LinearOperator``;
    ``matrix_free()`` a ``LinearOperator``; ``dense()`` an ndarray. All in float64.
    ``explicit_fits`` says whether the explicit factors fit in the memory budget;
    ``prefer_matrix_free`` whether the matrix-free products are the faster ones (a convolution
    with ``lowering='im2col'``: its layer chose the im2col GEMM because it beats products with
    ``A``); ``fourier`` is ``(weight, input_size, geometry)`` when Sedghi et al.'s formula
    describes the map, else ``None`` with ``fourier_reason`` saying why.
    """

    shape: tuple
    explicit: Callable
    matrix_free: Callable
    explicit_fits: bool
    prefer_matrix_free: bool = False
    dense: Callable = None
    fourier: tuple = None
    fourier_reason: str = "the Fourier formula describes a single convolution layer"

    def __post_init__(self):
        if self.dense is None:
            self.dense = self._dense_from_products

    def _dense_from_products(self) -> np.ndarray:
        m, n = self.shape
        check_memory(8 * m * n, f"the dense {m} x {n} operator",
                     "ask for a few of the largest or smallest singular values instead")
        L = self.explicit() if self.explicit_fits else self.matrix_free()
        if sp.issparse(L):
            return L.toarray()
        out = np.empty((m, n))
        for start in range(0, n, _DENSE_CHUNK):
            stop = min(n, start + _DENSE_CHUNK)
            eye = np.zeros((n, stop - start))
            eye[np.arange(start, stop), np.arange(stop - start)] = 1.0
            out[:, start:stop] = L.matmat(eye)
        return out


def _as_float64(L: LinearOperator) -> LinearOperator:
    """Products in the operator's own dtype, handed to the solvers as float64."""
    if L.dtype == np.float64:
        return L

    def cast(f):
        return lambda x: np.asarray(f(x), dtype=np.float64)

    return LinearOperator(L.shape, dtype=np.float64, matvec=cast(L.matvec),
                          rmatvec=cast(L.rmatvec), matmat=cast(L.matmat),
                          rmatmat=cast(L.rmatmat))


def _check_dtype(dtype, what):
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{what} has complex dtype {dtype}: matconv.spectral handles real "
                        f"operators only")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
            or dtype == np.bool_):
        raise TypeError(f"{what} must have a real numeric dtype, got {dtype}")


def _from_matrix(A) -> Operator:
    if sp.issparse(A):
        _check_dtype(A.dtype, "the sparse matrix")
        A = _as_csr64(A)
        return Operator(A.shape, lambda: A, lambda: aslinearoperator(A), True,
                        dense=A.toarray)
    A = np.asarray(A)
    _check_dtype(A.dtype, "the matrix")
    A = A.astype(np.float64, copy=False)
    return Operator(A.shape, lambda: A, lambda: aslinearoperator(A), True, dense=lambda: A)


def _from_linear_operator(op) -> Operator:
    L = aslinearoperator(op)
    _check_dtype(L.dtype, "the LinearOperator")
    try:
        L.rmatvec(np.zeros(L.shape[0], dtype=L.dtype))
    except NotImplementedError:
        raise TypeError("the LinearOperator must provide rmatvec (products with A.T): the "
                        "solvers use both A and A.T") from None
    L = _as_float64(L)
    return Operator(L.shape, lambda: L, lambda: L, False)


def _as_csr64(M) -> sp.csr_array:
    M = sp.csr_array(M)
    return M if M.dtype == np.float64 else M.astype(np.float64)


def _conv_nbytes(layer, input_shape) -> int:
    """Estimated bytes of a convolution layer's explicit matrix (0 for other layers)."""
    from .. import nn
    from ..lowering import conv_matrix_nbytes

    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return conv_matrix_nbytes(layer.geometry, tuple(input_shape[1:]))
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        # the matching convolution reads this layer's output
        return conv_matrix_nbytes(layer.geometry, tuple(layer.output_shape(input_shape)[1:]))
    return 0


def _from_chain(factors, shape) -> Operator:
    """``A = M_k ... M_1`` for linear layers ``factors = [(layer, input_shape), ...]``."""
    from .. import nn

    n = math.prod(shape[0])
    m = math.prod(shape[1])
    if not factors:  # identities only
        eye = sp.eye_array(n, format="csr")
        return Operator((m, n), lambda: eye, lambda: aslinearoperator(eye), True)
    # building a conv matrix takes about twice its finished size (matconv.lowering), and every
    # factor stays cached while the product runs
    fits = 2 * sum(_conv_nbytes(layer, s) for layer, s in factors) <= get_memory_budget()
    im2col = any(getattr(layer, "lowering", None) == "im2col" for layer, s in factors
                 if _conv_nbytes(layer, s))

    def explicit_factors():
        return [_as_csr64(layer.matrix(s)) for layer, s in factors]

    def explicit():
        mats = explicit_factors()
        return mats[0] if len(mats) == 1 else _product([aslinearoperator(M) for M in mats])

    def matrix_free():
        ops = [_as_float64(layer.linear_operator(s)) if hasattr(layer, "linear_operator")
               else aslinearoperator(_as_csr64(layer.matrix(s)))
               for layer, s in factors]
        return _product(ops)

    def sparse_product():
        check_memory(8 * m * n, f"the dense {m} x {n} operator",
                     "ask for a few of the largest or smallest singular values instead")
        M = None
        for F in explicit_factors():
            M = F if M is None else F @ M
        return M.toarray()

    fourier, reason = None, Operator.fourier_reason
    if len(factors) == 1 and isinstance(factors[0][0], (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        layer, s = factors[0]
        reason = circular_reason(layer.geometry, tuple(s[1:]))
        if reason is None:
            fourier = (layer.weight.data, tuple(s[1:]), layer.geometry)
    return Operator((m, n), explicit, matrix_free, fits, prefer_matrix_free=im2col,
                    dense=sparse_product if fits else None, fourier=fourier,
                    fourier_reason=reason)


def _product(ops):
    L = ops[0]
    for op in ops[1:]:
        L = op @ L
    return L


def _module_shape(first, input_shape):
    from ..nn import Linear

    if input_shape is None:
        if isinstance(first, Linear):
            return (first.in_features,)
        raise ValueError(f"input_shape is required for {type(first).__name__}: (C, *spatial) "
                         f"of one example")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in input_shape):
        raise TypeError(f"input_shape must be a tuple of ints (C, *spatial), got {input_shape!r}")
    return tuple(int(v) for v in input_shape)


def resolve(op, input_shape=None, at=None) -> Operator:
    """The :class:`Operator` for anything ``singular_values`` accepts (see there)."""
    from ..composition import jacobian
    from ..nn import Module

    if isinstance(op, (Module, list, tuple)) and not isinstance(op, np.ndarray):
        mods = [leaf for m in op for leaf in leaves(m)] if isinstance(op, (list, tuple)) \
            else leaves(op)
        if not mods:
            raise ValueError("the model has no modules")
        if at is not None:
            x = np.asarray(at)
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"at must be a float array (one example), got dtype {x.dtype}")
            if input_shape is not None and tuple(input_shape) != x.shape:
                raise ValueError(f"at has shape {x.shape}, input_shape says {tuple(input_shape)}")
            return _from_matrix(jacobian(mods, x))
        shape = _module_shape(mods[0], input_shape)
        factors, start = [], shape
        for m in mods:
            kind = module_kind(m, shape)
            if not kind.linear:
                raise ValueError(f"{type(m).__name__} is not a fixed linear map, so the model has "
                                 f"no single matrix: pass at=x for its Jacobian at one example x, "
                                 f"or use lipschitz_bound(model, input_shape)")
            if not kind.identity:
                factors.append((m, shape))
            shape = tuple(m.output_shape(shape))
        return _from_chain(factors, (start, shape))
    if at is not None:
        raise ValueError("at= (a point) only applies to a model; a matrix or LinearOperator is "
                         "already linear")
    if sp.issparse(op) or isinstance(op, np.ndarray):
        if op.ndim != 2:
            raise ValueError(f"a matrix must be 2-D, got shape {op.shape}")
        return _from_matrix(op)
    if isinstance(op, LinearOperator) or (hasattr(op, "shape") and hasattr(op, "matvec")):
        return _from_linear_operator(op)
    raise TypeError(f"op must be a matconv layer or model, a scipy.sparse matrix, a 2-D ndarray "
                    f"or a LinearOperator, got {type(op).__name__}")
