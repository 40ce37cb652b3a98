"""Fractional max pooling (Graham, "Fractional Max-Pooling", 2014), like
``torch.nn.FractionalMaxPool2d/3d``: max pooling over pseudo-random windows.

Every plane (example, channel) draws its own windows from one sample per spatial dim (PyTorch's
``_random_samples``); the forward keeps each window's first maximum and records the selection
matrix ``P`` of this batch, one more :class:`~matconv.operators.Selection`; the backward is
``P.T``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..geometry import as_tuple
from ..geometry.pool import pool_shorthand
from ..layout import to_batch_last
from ..operators import fractional_max
from .init import default_rng
from .maxpool import _MaxPool, check_return_indices

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d"]


class _FractionalMaxPoolNd(_MaxPool):
    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                 _random_samples=None, *, rng=None):
        super().__init__()
        nd = self._ndim
        self.kernel_size = as_tuple(pool_shorthand(kernel_size), nd, "kernel_size")
        if (output_size is None) == (output_ratio is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of output_size and "
                             f"output_ratio (like PyTorch), got output_size={output_size!r}, "
                             f"output_ratio={output_ratio!r}")
        self.output_size = None if output_size is None else \
            as_tuple(pool_shorthand(output_size), nd, "output_size")
        self.output_ratio = None if output_ratio is None else _check_ratio(output_ratio, nd)
        self.return_indices = check_return_indices(return_indices)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
        self.rng = rng
        self.register_buffer("_random_samples", _check_samples(_random_samples, nd))

    def _sizes(self, input_size) -> tuple:
        """The output size for a spatial input size (``int(n * output_ratio)`` per dim)."""
        out = self.output_size or tuple(int(n * r) for n, r in zip(input_size, self.output_ratio))
        for dim, (n, o, k) in enumerate(zip(input_size, out, self.kernel_size)):
            if o < 1 or o + k - 1 > n:
                raise ValueError(f"{type(self).__name__}: output size {o} with kernel_size {k} "
                                 f"needs 1 <= output and output + kernel_size - 1 <= input size "
                                 f"in spatial dim {dim}, got input size {n}")
        return out

    def _samples(self, n, channels, dtype):
        samples = self._random_samples
        if samples is None:
            rng = self.rng if self.rng is not None else default_rng()
            return rng.random((n, channels, self._ndim)).astype(dtype)
        if samples.shape != (n, channels, self._ndim):
            raise ValueError(f"_random_samples must have shape (N, C, {self._ndim}) = "
                             f"{(n, channels, self._ndim)} for this input, got {samples.shape}")
        return samples.astype(dtype)

    def forward(self, x):
        x, batched = self._input(x)
        n, channels, size = x.shape[0], x.shape[1], tuple(x.shape[2:])
        out = self._sizes(size)
        samples = self._samples(n, channels, x.dtype)
        Y, P = fractional_max(to_batch_last(x), channels, size, out, self.kernel_size, samples)
        return self._outputs(P, Y, (n, channels, *out), batched, channels)

    def output_shape(self, input_shape):
        shape = self._example_shape(input_shape)
        return (shape[0], *self._sizes(shape[1:]))

    def extra_repr(self):
        what = f"output_size={self.output_size}" if self.output_size else \
            f"output_ratio={self.output_ratio}"
        return f"kernel_size={self.kernel_size}, {what}" + (", return_indices=True"
                                                              if self.return_indices else "")


def _check_ratio(ratio, nd):
    ratios = pool_shorthand(ratio)
    ratios = ratios if isinstance(ratios, (tuple, list)) else (ratios,) * nd
    if len(ratios) != nd or not all(isinstance(r, numbers.Real) and not isinstance(r, bool)
                                    and 0 < r < 1 for r in ratios):
        raise ValueError(f"output_ratio must be a number or {nd} numbers in (0, 1) (like "
                         f"PyTorch), got {ratio!r}")
    return tuple(float(r) for r in ratios)


def _check_samples(samples, nd):
    if samples is None:
        return None
    if hasattr(samples, "detach") and hasattr(samples, "numpy"):  # a torch tensor
        samples = samples.detach().cpu().numpy()
    if not isinstance(samples, np.ndarray) or samples.dtype.kind != "f" or samples.ndim != 3 \
            or samples.shape[2] != nd:
        raise ValueError(f"_random_samples must be a float array of shape (N, C, {nd}), got "
                         f"{getattr(samples, 'shape', type(samples).__name__)}")
    if not np.all((samples >= 0) & (samples < 1)):
        raise ValueError("_random_samples must lie in [0, 1), like torch.rand's")
    return samples.copy()


_DOC = """{n}-D fractional max pooling, like ``torch.nn.FractionalMaxPool{n}d``.

Parameters
----------
kernel_size : int or tuple of {n} ints
output_size : int or tuple of {n} ints, optional
output_ratio : float or tuple of {n} floats in (0, 1), optional
    Output size ``int(input * output_ratio)``; give exactly one of the two.
return_indices : bool, default False
    Also return each maximum's flat index within its channel's plane.
_random_samples : ndarray of shape (N, C, {n}), optional
    One sample in ``[0, 1)`` per plane and dim (as PyTorch, the 2-D layer reads the first for
    the width); fixed samples make the windows the same on every forward. Default: drawn from
    ``rng`` on every forward.
rng : numpy.random.Generator, optional, keyword-only
    Default: the generator :func:`matconv.manual_seed` seeds.

Notes
-----
Window ``i < out - 1`` along a dim starts at ``int((i + u) alpha) - int(u alpha)`` with
``alpha = (input - kernel) / (out - 1)``; the last one ends at the input's end. ``matrix()`` is
the selection ``P`` of the last forward (``example=`` picks the example: windows differ per
plane), and ``backward(dy)`` is ``P.T dy``.

Examples
--------
>>> pool = FractionalMaxPool{n}d(2, output_size={out}, _random_samples=np.full((1, 1, {n}), 0.5))
>>> pool(np.arange({cells}.0).reshape({shape})).ravel()
{expected}
"""


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    __doc__ = _DOC.format(n=2, out=2, cells=16, shape="1, 1, 4, 4",
                          expected="array([ 5.,  7., 13., 15.])")
    _ndim = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    __doc__ = _DOC.format(n=3, out=1, cells=8, shape="1, 1, 2, 2, 2", expected="array([7.])")
    _ndim = 3
