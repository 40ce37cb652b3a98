"""Convolution and transposed convolution layers with PyTorch's signatures and semantics.

A ``Conv*d`` layer owns its parameters and one :class:`~matconv.operators.ConvOperator` per input
size. Its forward is the operator's ``forward`` (``A x``), its backward the operator's transpose
(``A.T dy``). A ``ConvTranspose*d`` layer owns the *matching convolution* (the one whose input is
the transposed layer's output) and swaps the roles: forward ``A.T x``, backward ``A dy``.
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry, as_tuple
from ..layout import (batched_input, check_float_array, from_batch_last, spatial_names,
                      to_batch_last)
from ..operators import LOWERINGS, ConvOperator
from .init import check_dtype, uniform_fan_in
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
           "choose_lowering"]


def choose_lowering(lowering: str, geometry: ConvGeometry) -> str:
    """Resolve ``lowering='auto'`` for a geometry, from the benchmark's evidence.

    ``benchmarks/bench_conv.py`` (see ``benchmarks/README.md``) measured the im2col GEMM ahead
    on every multi-channel config and on single-input-channel layers with several filters
    (configs A and D), and the whole sparse operator ahead where each output channel reads one
    input channel through one filter (``in_channels/groups == out_channels/groups == 1``:
    depthwise and single-filter layers, configs G and H), where im2col's GEMM degenerates into
    many tiny products. ``'auto'`` picks accordingly.

    >>> choose_lowering("auto", ConvGeometry(16, 16, 3, groups=16))
    'sparse'
    >>> choose_lowering("auto", ConvGeometry(1, 16, 3))
    'im2col'
    """
    if lowering == "auto":
        one_to_one = geometry.in_channels == geometry.out_channels == geometry.groups
        return "sparse" if one_to_one else "im2col"
    if lowering not in LOWERINGS:
        raise ValueError(f"lowering must be 'auto' or one of {LOWERINGS}, got {lowering!r}")
    return lowering


class _LoweredLayer(Module):
    """Shared machinery: parameters, input checks, one operator per spatial size."""

    _ndim = 2
    _max_operators = 4

    def _init_parameters(self, geometry, bias, dtype, rng, fan_in):
        self.weight = Parameter(uniform_fan_in(geometry.weight_shape, fan_in, dtype, rng))
        n_out = geometry.in_channels if self._transposed else geometry.out_channels
        self.bias = Parameter(uniform_fan_in((n_out,), fan_in, dtype, rng)) if bias else None
        self._operators = {}

    @property
    def dtype(self) -> np.dtype:
        return self.weight.data.dtype

    def _operator(self, input_size, output_size=None) -> ConvOperator:
        key = (input_size, output_size)
        op = self._operators.get(key)
        if op is None:
            if len(self._operators) >= self._max_operators:
                self._operators.pop(next(iter(self._operators)))
            op = self._operators[key] = ConvOperator(self.geometry, input_size, output_size,
                                                     self.lowering)
        return op

    def _check_input(self, x, channels, name="input"):
        """``x`` as a float array of the layer's dtype with a batch axis; also ``batched``."""
        return batched_input(x, self._ndim, type(self).__name__, channels, self.dtype, name)

    def _weight(self) -> np.ndarray:
        w = self.weight.data
        if w.shape != self.geometry.weight_shape:
            raise ValueError(f"weight.data has shape {w.shape}, expected "
                             f"{self.geometry.weight_shape}")
        return w if w.dtype == self.dtype else w.astype(self.dtype)

    def _check_grad(self, dy, shape, batched):
        dy = check_float_array(dy, "grad_output", self.dtype)
        if not batched:
            dy = dy[None]
        if dy.shape != shape:
            raise ValueError(f"grad_output must have the shape of the last forward's output "
                             f"{shape if batched else shape[1:]}, got "
                             f"{dy.shape if batched else dy.shape[1:]}")
        return dy

    def _add_bias(self, Y, channels):
        if self.bias is not None:
            Y.reshape(channels, -1)[...] += self.bias.data.astype(self.dtype, copy=False)[:, None]

    def _bias_grad(self, dY, channels):
        if self.bias is not None:
            self.bias.grad += dY.reshape(channels, -1).sum(axis=1)

    def _spatial(self, input_shape, channels):
        nd = self._ndim
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != nd + 1:
            raise ValueError(f"input_shape must be (C, {spatial_names(nd)}) of one example, got "
                             f"{input_shape!r}")
        if input_shape[0] != channels:
            raise ValueError(f"input_shape has {input_shape[0]} channels, the layer expects "
                             f"{channels}")
        return as_tuple(tuple(input_shape[1:]), nd, "input_shape spatial size")

    def extra_repr(self) -> str:
        g = self.geometry
        cin, cout = ((g.out_channels, g.in_channels) if self._transposed
                     else (g.in_channels, g.out_channels))
        s = f"{cin}, {cout}, kernel_size={g.kernel_size}, stride={g.stride}"
        if any(p != (0, 0) for p in g.padding):
            pad = g.padding
            s += f", padding={tuple(a for a, _ in pad) if all(a == b for a, b in pad) else pad}"
        if self._transposed and any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if any(d != 1 for d in g.dilation):
            s += f", dilation={g.dilation}"
        if g.groups != 1:
            s += f", groups={g.groups}"
        if self.bias is None:
            s += ", bias=False"
        if g.padding_mode != "zeros":
            s += f", padding_mode={g.padding_mode!r}"
        return s + f", lowering={self.lowering!r}, dtype={self.dtype.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class _ConvNd(_LoweredLayer):
    _transposed = False
    is_linear = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, lowering="auto",
                 dtype=np.float32, rng=None):
        self.geometry = ConvGeometry(in_channels, out_channels, kernel_size, stride, padding,
                                     dilation, groups, padding_mode, ndim=self._ndim)
        self.lowering = choose_lowering(lowering, self.geometry)
        g = self.geometry
        self._init_parameters(g, bias, check_dtype(dtype), rng,
                              fan_in=g.in_channels // g.groups * g.kernel_numel)

    in_channels = property(lambda self: self.geometry.in_channels)
    out_channels = property(lambda self: self.geometry.out_channels)
    kernel_size = property(lambda self: self.geometry.kernel_size)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)
    dilation = property(lambda self: self.geometry.dilation)
    groups = property(lambda self: self.geometry.groups)
    padding_mode = property(lambda self: self.geometry.padding_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y = A x + b`` for a batch ``x`` of shape ``(N, C_in, *spatial)`` (or one example)."""
        x, batched = self._check_input(x, self.in_channels)
        op = self._operator(self.geometry.check_input_size(x.shape[2:]))
        X = to_batch_last(x)
        Y, saved = op.forward(self._weight(), X)
        self._add_bias(Y, self.out_channels)
        out_shape = (x.shape[0], self.out_channels, *op.output_size)
        self._saved = (op, saved, x.shape, out_shape, batched)
        y = from_batch_last(Y, out_shape)
        return y if batched else y[0]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dx = A.T dy``; adds ``dW = dY (S X).T`` and ``db = sum dY`` to the gradients."""
        op, saved, in_shape, out_shape, batched = self._need_saved()
        dY = to_batch_last(self._check_grad(dy, out_shape, batched))
        self.weight.grad += op.backward_weight(saved, dY)
        self._bias_grad(dY, self.out_channels)
        dx = from_batch_last(op.backward_input(self._weight(), dY), in_shape)
        return dx if batched else dx[0]

    def matrix(self, input_shape, *, example=0):
        """The layer's linear map (no bias) for one example of shape ``(C_in, *spatial)``.

        Returns
        -------
        scipy.sparse.csr_array of shape (C_out*prod(out), C_in*prod(spatial))
        """
        size = self.geometry.check_input_size(self._spatial(input_shape, self.in_channels))
        return self._operator(size).matrix(self._weight())

    def output_shape(self, input_shape):
        size = self._spatial(input_shape, self.in_channels)
        return (self.out_channels, *self.geometry.output_size(size))

    def linear_operator(self, input_shape):
        """The layer's linear map as a ``scipy.sparse.linalg.LinearOperator`` (no bias).

        ``matvec`` is the forward and ``rmatvec`` the backward of the layer's own lowering,
        so with ``lowering='im2col'`` no matrix of the whole operator is ever built.
        """
        size = self.geometry.check_input_size(self._spatial(input_shape, self.in_channels))
        op = self._operator(size)
        return _as_linear_operator(op.forward, op.backward_input, op.shape, self._weight())


class _ConvTransposeNd(_LoweredLayer):
    _transposed = True
    is_linear = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 lowering="auto", dtype=np.float32, rng=None):
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode must be 'zeros' for {type(self).__name__} (like "
                             f"PyTorch), got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"padding must be an int or a tuple for {type(self).__name__} (like "
                             f"PyTorch), got {padding!r}")
        # the matching convolution maps this layer's output back to its input
        self.geometry = ConvGeometry(out_channels, in_channels, kernel_size, stride, padding,
                                     dilation, groups, ndim=self._ndim)
        g = self.geometry
        self.output_padding = as_tuple(output_padding, self._ndim, "output_padding", minimum=0)
        for a, s, d in zip(self.output_padding, g.stride, g.dilation):
            if a >= max(s, d):
                raise ValueError(f"output_padding must be smaller than max(stride, dilation) in "
                                 f"every dimension, got output_padding={self.output_padding} "
                                 f"with stride={g.stride}, dilation={g.dilation}")
        self.lowering = choose_lowering(lowering, g.transposed())
        self._init_parameters(g, bias, check_dtype(dtype), rng,
                              fan_in=g.in_channels // g.groups * g.kernel_numel)

    in_channels = property(lambda self: self.geometry.out_channels)
    out_channels = property(lambda self: self.geometry.in_channels)
    kernel_size = property(lambda self: self.geometry.kernel_size)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)
    dilation = property(lambda self: self.geometry.dilation)
    groups = property(lambda self: self.geometry.groups)

    def _output_padding(self, input_size, output_size):
        """PyTorch's rule: ``output_size`` picks the output padding in ``[0, stride)``."""
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-self._ndim:] if len(tuple(output_size)) >= self._ndim else ()
        smallest = self.geometry.transpose_output_size(input_size, 0)
        if len(size) != self._ndim or any(
                not (lo <= o < lo + s) for o, lo, s in zip(size, smallest, self.stride)):
            largest = tuple(lo + s - 1 for lo, s in zip(smallest, self.stride))
            raise ValueError(f"output_size must be {self._ndim} spatial sizes between {smallest} "
                             f"and {largest} for input size {input_size}, got {output_size!r}")
        return tuple(o - lo for o, lo in zip(size, smallest))

    def _operator_for(self, input_size, output_size=None):
        extra = self._output_padding(input_size, output_size)
        size = self.geometry.transpose_output_size(input_size, extra)
        return self._operator(size, input_size)

    def forward(self, x: np.ndarray, output_size=None) -> np.ndarray:
        """``y = A.T x + b``, ``A`` the matching convolution's matrix.

        ``output_size`` (spatial sizes, or a full shape) chooses among the output sizes that
        map back to ``x``'s size, exactly like PyTorch.
        """
        x, batched = self._check_input(x, self.in_channels)
        op = self._operator_for(x.shape[2:], output_size)
        X = to_batch_last(x)
        Y = op.backward_input(self._weight(), X)
        self._add_bias(Y, self.out_channels)
        out_shape = (x.shape[0], self.out_channels, *op.input_size)
        self._saved = (op, X, x.shape, out_shape, batched)
        y = from_batch_last(Y, out_shape)
        return y if batched else y[0]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dx = A dy`` (the convolution's forward); adds ``dW = X (S dY).T`` and ``db``."""
        op, X, in_shape, out_shape, batched = self._need_saved()
        dY = to_batch_last(self._check_grad(dy, out_shape, batched))
        dX, saved = op.forward(self._weight(), dY)
        self.weight.grad += op.backward_weight(saved, X)
        self._bias_grad(dY, self.out_channels)
        dx = from_batch_last(dX, in_shape)
        return dx if batched else dx[0]

    def matrix(self, input_shape, output_size=None, *, example=0):
        """The layer's linear map (no bias) for one example of shape ``(C_in, *spatial)``.

        It is the transpose of the matching convolution's matrix, without the columns of
        output positions beyond this layer's input when ``output_padding >= stride``.
        """
        op = self._operator_for(self._spatial(input_shape, self.in_channels), output_size)
        return op.matrix(self._weight()).T.tocsr()

    def output_shape(self, input_shape, output_size=None):
        spatial = self._spatial(input_shape, self.in_channels)
        return (self.out_channels, *self._operator_for(spatial, output_size).input_size)

    def linear_operator(self, input_shape, output_size=None):
        """The layer's linear map ``A.T`` as a ``LinearOperator``: ``matvec`` is ``A.T x``."""
        op = self._operator_for(self._spatial(input_shape, self.in_channels), output_size)

        def forward(weight, X):
            return op.backward_input(weight, X), None

        def backward(weight, dY):
            return op.forward(weight, dY)[0]

        return _as_linear_operator(forward, backward, op.shape[::-1], self._weight())


def _as_linear_operator(forward, backward, shape, weight):
    """Wrap batch-last products in scipy's ``LinearOperator`` (columns are examples)."""
    from scipy.sparse.linalg import LinearOperator

    def matmat(X):
        return forward(weight, np.ascontiguousarray(X, dtype=weight.dtype))[0]

    def rmatmat(Y):
        return backward(weight, np.ascontiguousarray(Y, dtype=weight.dtype))

    return LinearOperator(shape, dtype=weight.dtype,
                          matvec=lambda x: matmat(np.reshape(x, (-1, 1))).ravel(),
                          rmatvec=lambda y: rmatmat(np.reshape(y, (-1, 1))).ravel(),
                          matmat=matmat, rmatmat=rmatmat)


_CONV_DOC = """{n}-D convolution (cross-correlation, like ``torch.nn.Conv{n}d``) lowered to a matrix.

Parameters
----------
in_channels, out_channels : int
kernel_size : int or tuple of {n} ints
stride, dilation : int or tuple, default 1
padding : int, tuple, per-side pairs, or 'valid' | 'same' | 'full'{causal}, default 0
groups : int, default 1
bias : bool, default True
padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}, default 'zeros'
lowering : {{'auto', 'im2col', 'sparse'}}, keyword-only
    ``'im2col'``: ``y = W (S x)`` (a sparse gather then one GEMM); ``'sparse'``: ``y = A x`` with
    the whole operator. ``'auto'`` takes ``'sparse'`` for depthwise and single-filter layers
    (one input and one output channel per group) and ``'im2col'`` elsewhere, as
    ``benchmarks/bench_conv.py`` measured (see :func:`choose_lowering`). Both give the same
    numbers.
dtype : np.float32 or np.float64, keyword-only, default np.float32
rng : numpy.random.Generator, optional, keyword-only
    Source of the initial weights (default: the generator :func:`matconv.manual_seed` seeds).

Attributes
----------
weight : Parameter of shape (out_channels, in_channels // groups, *kernel_size)
bias : Parameter of shape (out_channels,) or None

Notes
-----
``forward(x)`` returns ``A x + b`` for each example, ``backward(dy)`` returns ``A.T dy`` and adds
the parameter gradients to ``weight.grad`` and ``bias.grad``. ``matrix(input_shape)`` is ``A``.
Returned arrays are ``(N, C, ...)`` views of batch-last memory (see :mod:`matconv.layout`).

Examples
--------
>>> conv = Conv{n}d(2, 4, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(0))
>>> x = np.random.default_rng(1).standard_normal((5, 2{sp}))
>>> y = conv(x)
>>> y.shape
(5, 4{sp})
>>> A = conv.matrix(x.shape[1:])
>>> np.allclose(A @ x[0].ravel() + np.repeat(conv.bias.data, y[0, 0].size), y[0].ravel())
True
>>> dy = np.ones_like(y)
>>> np.allclose(conv.backward(dy)[0].ravel(), A.T @ dy[0].ravel())
True
"""

_TRANSPOSE_DOC = """{n}-D transposed convolution (like ``torch.nn.ConvTranspose{n}d``): ``y = A.T x``.

``A`` is the matrix of the matching convolution, which maps this layer's output back to its input
with the same ``kernel_size``, ``stride``, ``padding``, ``dilation`` and ``groups``. The output
size is ``(i - 1) s - 2p + d (k - 1) + output_padding + 1``.

Parameters
----------
in_channels, out_channels : int
kernel_size : int or tuple of {n} ints
stride, padding, output_padding, dilation : int or tuple
    ``output_padding`` must be smaller than ``max(stride, dilation)``.
groups : int, default 1
bias : bool, default True
padding_mode : 'zeros'
lowering, dtype, rng : keyword-only, as for :class:`Conv{n}d`

Attributes
----------
weight : Parameter of shape (in_channels, out_channels // groups, *kernel_size)
bias : Parameter of shape (out_channels,) or None

Examples
--------
>>> up = ConvTranspose{n}d(4, 2, 3, stride=2, padding=1, output_padding=1, dtype=np.float64)
>>> x = np.random.default_rng(1).standard_normal((5, 4{sp}))
>>> up(x).shape
(5, 2{sp2})
>>> A = up.matrix(x.shape[1:])          # (2*prod(out), 4*prod(in))
>>> A.shape == (up(x)[0].size, x[0].size)
True
"""

_sp = {1: (", 6", ", 12"), 2: (", 6, 6", ", 12, 12"), 3: (", 6, 6, 6", ", 12, 12, 12")}


class Conv1d(_ConvNd):
    __doc__ = _CONV_DOC.format(n=1, causal=" | 'causal'", sp=_sp[1][0])
    _ndim = 1


class Conv2d(_ConvNd):
    __doc__ = _CONV_DOC.format(n=2, causal="", sp=_sp[2][0])
    _ndim = 2


class Conv3d(_ConvNd):
    __doc__ = _CONV_DOC.format(n=3, causal="", sp=_sp[3][0])
    _ndim = 3


class ConvTranspose1d(_ConvTransposeNd):
    __doc__ = _TRANSPOSE_DOC.format(n=1, sp=_sp[1][0], sp2=_sp[1][1])
    _ndim = 1


class ConvTranspose2d(_ConvTransposeNd):
    __doc__ = _TRANSPOSE_DOC.format(n=2, sp=_sp[2][0], sp2=_sp[2][1])
    _ndim = 2


class ConvTranspose3d(_ConvTransposeNd):
    __doc__ = _TRANSPOSE_DOC.format(n=3, sp=_sp[3][0], sp2=_sp[3][1])
    _ndim = 3
