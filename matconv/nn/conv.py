"""Convolution and transposed convolution layers with PyTorch's signatures and semantics.

A ``Conv*d`` layer owns its parameters and geometry; its forward applies the operator
``A = conv_plan(geometry, size).at(weight)`` and records it, so its backward is ``A.T``. A
``ConvTranspose*d`` layer owns the *matching convolution* (the one whose input is the transposed
layer's output) and applies ``A.T``; its backward is ``(A.T).T = A``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..geometry import ConvGeometry, as_tuple, check_output_padding
from ..layout import batched_input, float_dtype, spatial_names, to_batch_last
from ..operators import LOWERINGS, conv_plan
from .module import Module, init_parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
           "choose_lowering"]


def choose_lowering(lowering: str, geometry: ConvGeometry) -> str:
    """Resolve ``lowering='auto'`` for a geometry, from the benchmark's evidence.

    ``benchmarks/bench_conv.py`` (see ``benchmarks/README.md``) measured the blocked im2col
    GEMMs ahead on every multi-channel config and on single-input-channel layers with several
    filters (configs A and D; A 2x ahead on one core), and the whole sparse operator ahead
    where each output channel reads one input channel through one filter
    (``in_channels/groups == out_channels/groups == 1``: depthwise and single-filter layers,
    configs G and H, 2-3x ahead on one core), where im2col's GEMM degenerates into many tiny
    products. ``'auto'`` picks accordingly.

    >>> choose_lowering("auto", ConvGeometry(16, 16, 3, groups=16))
    'sparse'
    >>> choose_lowering("auto", ConvGeometry(1, 16, 3))
    'im2col'
    """
    if isinstance(lowering, str) and lowering == "auto":
        one_to_one = geometry.in_channels == geometry.out_channels == geometry.groups
        return "sparse" if one_to_one else "im2col"
    if not isinstance(lowering, str) or lowering not in LOWERINGS:
        raise ValueError(f"lowering must be 'auto' or one of {LOWERINGS}, got {lowering!r}")
    return lowering


class _LoweredLayer(Module):
    """Shared machinery: parameters, input checks, the plan of each input size."""

    _ndim = 2
    _primitive = True
    transposed = False

    def _init_parameters(self, geometry, bias, dtype, rng, fan_in):
        dtype, name = float_dtype(dtype), type(self).__name__
        self.weight = init_parameter(geometry.weight_shape, fan_in, dtype, rng, name)
        n_out = geometry.in_channels if self.transposed else geometry.out_channels
        self.bias = init_parameter((n_out,), fan_in, dtype, rng, name) if bias else None

    @property
    def dtype(self) -> np.dtype:
        return self.weight.data.dtype

    def _check_input(self, x, channels, name="input"):
        """``x`` as a float array of the layer's dtype with a batch axis; also ``batched``."""
        return batched_input(x, self._ndim, type(self).__name__, channels, self.dtype, name)

    def _weight(self) -> np.ndarray:
        w = self.weight.data
        if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
            raise TypeError(f"weight.data must be a real floating-point ndarray, got "
                            f"{getattr(w, 'dtype', type(w).__name__)}")
        if w.shape != self.geometry.weight_shape:
            raise ValueError(f"weight.data has shape {w.shape}, expected "
                             f"{self.geometry.weight_shape}")
        return w if w.dtype == self.dtype else w.astype(self.dtype)

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
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={g.kernel_size}, " \
            f"stride={g.stride}"
        if any(p != (0, 0) for p in g.padding):
            pad = g.padding
            s += f", padding={tuple(a for a, _ in pad) if all(a == b for a, b in pad) else pad}"
        if self.transposed and any(self.output_padding):
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

    kernel_size = property(lambda self: self.geometry.kernel_size)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)
    dilation = property(lambda self: self.geometry.dilation)
    groups = property(lambda self: self.geometry.groups)
    padding_mode = property(lambda self: self.geometry.padding_mode)


class _ConvNd(_LoweredLayer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, lowering="auto",
                 dtype=np.float32, rng=None):
        super().__init__()
        self.geometry = ConvGeometry(in_channels, out_channels, kernel_size, stride, padding,
                                     dilation, groups, padding_mode, ndim=self._ndim)
        self.lowering = choose_lowering(lowering, self.geometry)
        g = self.geometry
        self._init_parameters(g, bias, dtype, rng,
                              fan_in=g.in_channels // g.groups * g.kernel_numel)

    in_channels = property(lambda self: self.geometry.in_channels)
    out_channels = property(lambda self: self.geometry.out_channels)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y = A x + b`` for a batch ``x`` of shape ``(N, C_in, *spatial)`` (or one example)."""
        x, batched = self._check_input(x, self.in_channels)
        plan = conv_plan(self.geometry, self.geometry.check_input_size(x.shape[2:]),
                         lowering=self.lowering)
        op = plan.at(self._weight())
        keep = self._recording()
        # the bias is added (and summed back) block by block inside the products, while each
        # block of the output is in cache; it is not part of A
        bias = None if self.bias is None else self.bias.data
        Y, saved = op.apply(to_batch_last(x), keep=keep, bias=bias)

        def grads(dY):  # dW = dY (S X).T, db = sum dY
            if self.bias is None:
                self.weight.grad += op.weight_grad(saved, dY)
            else:
                dW, db = op.weight_and_bias_grad(saved, dY)
                self.weight.grad += dW
                self.bias.grad += db

        return self._emit(op, Y, (x.shape[0], self.out_channels, *plan.output_size), batched,
                          grads, lambda: op.release(saved))

    def operator(self, input_shape=None):
        """``A`` for one example of shape ``(C_in, *spatial)`` (no bias)."""
        size = self.geometry.check_input_size(self._spatial(input_shape, self.in_channels))
        return conv_plan(self.geometry, size, lowering=self.lowering).at(self._weight())

    def output_shape(self, input_shape):
        size = self._spatial(input_shape, self.in_channels)
        return (self.out_channels, *self.geometry.output_size(size))


class _ConvTransposeNd(_LoweredLayer):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 lowering="auto", dtype=np.float32, rng=None):
        super().__init__()
        if not isinstance(padding_mode, str) or padding_mode != "zeros":
            raise ValueError(f"padding_mode must be 'zeros' for {type(self).__name__} (like "
                             f"PyTorch), got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"padding must be an int or a tuple for {type(self).__name__} (like "
                             f"PyTorch), got {padding!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                # named as the user passed them (the geometry swaps them)
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        # the matching convolution maps this layer's output back to its input
        self.geometry = ConvGeometry(out_channels, in_channels, kernel_size, stride, padding,
                                     dilation, groups, ndim=self._ndim)
        g = self.geometry
        self.output_padding = check_output_padding(
            as_tuple(output_padding, self._ndim, "output_padding", minimum=0), g.stride,
            g.dilation)
        self.lowering = choose_lowering(lowering, g.transposed())
        self._init_parameters(g, bias, dtype, rng,
                              fan_in=g.in_channels // g.groups * g.kernel_numel)

    in_channels = property(lambda self: self.geometry.out_channels)
    out_channels = property(lambda self: self.geometry.in_channels)

    def _sizes(self, input_size, output_size):
        """``(output padding, output spatial size)``; PyTorch's rule: ``output_size`` picks the
        output padding in ``[0, stride)``."""
        if output_size is None:
            extra = self.output_padding
        else:
            size = tuple(output_size)[-self._ndim:] if isinstance(output_size, (tuple, list)) \
                and len(output_size) >= self._ndim else ()
            smallest = self.geometry.transpose_output_size(input_size, 0)
            if len(size) != self._ndim or any(
                    not (lo <= o < lo + s) for o, lo, s in zip(size, smallest, self.stride)):
                largest = tuple(lo + s - 1 for lo, s in zip(smallest, self.stride))
                raise ValueError(f"output_size must be {self._ndim} spatial sizes between "
                                 f"{smallest} and {largest} for input size {input_size}, got "
                                 f"{output_size!r}")
            extra = tuple(o - lo for o, lo in zip(size, smallest))
        return self.geometry.transpose_output_size(input_size, extra)

    def _plan(self, input_size, output_size=None):
        size = self._sizes(input_size, output_size)
        return conv_plan(self.geometry, size, input_size, self.lowering)

    def forward(self, x: np.ndarray, output_size=None) -> np.ndarray:
        """``y = A.T x + b``, ``A`` the matching convolution's matrix.

        ``output_size`` (spatial sizes, or a full shape) chooses among the output sizes that
        map back to ``x``'s size, exactly like PyTorch.
        """
        x, batched = self._check_input(x, self.in_channels)
        plan = self._plan(tuple(x.shape[2:]), output_size)
        op = plan.at(self._weight())
        X = to_batch_last(x)
        Y = op.T.matmat(X)
        self._add_bias(Y, self.out_channels)

        def grads(dY):  # the conv's weight gradient with the roles of input and output swapped
            self.weight.grad += op.input_weight_grad(dY, X)
            self._bias_grad(dY, self.out_channels)

        return self._emit(op.T, Y, (x.shape[0], self.out_channels, *plan.input_size), batched,
                          grads)

    def operator(self, input_shape=None, output_size=None):
        """``A.T`` for one example of shape ``(C_in, *spatial)`` (no bias): the transpose of the
        matching convolution's matrix, without the columns of output positions beyond this
        layer's input when ``output_padding >= stride``."""
        size = self._spatial(input_shape, self.in_channels)
        return self._plan(size, output_size).at(self._weight()).T

    def matrix(self, input_shape=None, output_size=None, *, example=None):
        return self.operator(input_shape, output_size).matrix(example)

    def linear_operator(self, input_shape=None, output_size=None, *, example=None):
        return self.operator(input_shape, output_size).linear_operator(example)

    def output_shape(self, input_shape, output_size=None):
        spatial = self._spatial(input_shape, self.in_channels)
        return (self.out_channels, *self._sizes(spatial, output_size))


_CONV_DOC = """{n}-D convolution (cross-correlation, like ``torch.nn.Conv{n}d``) as a matrix.

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
    ``'im2col'``: ``y = W (S x)``, ``S x`` gathered in blocks of positions and multiplied by
    ``W`` (large products with small weights share their blocks among threads, see
    :func:`matconv.operators.parallel.set_num_threads`); ``'sparse'``: ``y = A x`` with the
    whole operator. ``'auto'`` takes ``'sparse'`` for depthwise and single-filter layers (one
    input and one output channel per group) and ``'im2col'`` elsewhere, as
    ``benchmarks/bench_conv.py`` measured (see :func:`choose_lowering`). Both give the same
    numbers, and ``matrix()`` is the same ``A``.
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

_TRANSPOSE_DOC = """{n}-D transposed convolution, like ``torch.nn.ConvTranspose{n}d``: ``A.T x``.

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
