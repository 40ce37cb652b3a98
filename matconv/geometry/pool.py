"""Pooling and resizing sizes: sliding-window pools, adaptive pools, upsampling.

A sliding-window pool is a depthwise convolution with fixed weights, so its windows come from a
:class:`~matconv.geometry.ConvGeometry`; :class:`PoolGeometry` adds what pools have beyond it
(``stride`` defaulting to the kernel, ``ceil_mode``, PyTorch's half-kernel padding limit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .arithmetic import MAX_SIZE, as_tuple, is_int, output_length
from .conv import ConvGeometry

__all__ = ["PoolGeometry", "adaptive_output_size", "resize_output_size", "pool_shorthand",
           "UPSAMPLE_MODES"]

#: The interpolation modes of ``Upsample`` and the numbers of spatial dims each accepts, as in
#: PyTorch (``'area'`` is adaptive average pooling to the output size).
UPSAMPLE_MODES = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,),
                  "bilinear": (2,), "bicubic": (2,), "trilinear": (3,), "area": (1, 2, 3)}


def pool_shorthand(value):
    """PyTorch's pools read a one-element tuple as that value in every dimension.

    >>> pool_shorthand((3,)), pool_shorthand((1, 2))
    (3, (1, 2))
    """
    return value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value


def _empty(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 0


@dataclass(frozen=True)
class PoolGeometry:
    """The window of a max, average or Lp pool, like the arguments of ``torch.nn.MaxPool2d``.

    Parameters
    ----------
    kernel_size : int or tuple of int
        A tuple of one int stands for every dimension, as PyTorch's pools accept (so do
        ``stride``, ``padding`` and ``dilation``).
    stride : int or tuple of int, optional
        Default (``None`` or an empty tuple, as PyTorch): ``kernel_size``.
    padding : int or tuple of int, default 0
        At most half the effective kernel ``d (k - 1) + 1``, like PyTorch.
    dilation : int or tuple of int, default 1
    ceil_mode : bool, default False
        Round the output size up; the last window must still start inside the input or the
        padding before it.
    ndim : int, default 2
        Spatial dimensions.

    Examples
    --------
    >>> g = PoolGeometry(2, ceil_mode=True, ndim=1)
    >>> g.output_size((5,))
    (3,)
    >>> g.conv_geometry(3, (5,)).padding                 # one cell after, for the last window
    ((0, 1),)
    >>> PoolGeometry((2,), stride=()).stride             # PyTorch's shorthands
    (2, 2)
    """

    kernel_size: tuple
    stride: tuple = None
    padding: tuple = 0
    dilation: tuple = 1
    ceil_mode: bool = False
    ndim: int = 2

    def __post_init__(self):
        nd = self.ndim
        if not is_int(nd) or nd not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3 spatial dimensions, got {nd!r}")
        kernel = as_tuple(pool_shorthand(self.kernel_size), nd, "kernel_size")
        stride = kernel if self.stride is None or _empty(self.stride) else \
            as_tuple(pool_shorthand(self.stride), nd, "stride")
        padding = as_tuple(pool_shorthand(self.padding), nd, "padding", minimum=0)
        dilation = as_tuple(pool_shorthand(self.dilation), nd, "dilation")
        if not isinstance(self.ceil_mode, (bool, int)) or isinstance(self.ceil_mode, float):
            raise TypeError(f"ceil_mode must be a bool, got {self.ceil_mode!r}")
        for p, k, d in zip(padding, kernel, dilation):
            if p > (d * (k - 1) + 1) // 2:
                raise ValueError(f"padding should be at most half of the effective kernel size "
                                 f"(like PyTorch), got padding={padding}, kernel_size={kernel}, "
                                 f"dilation={dilation}")
        for name, value in (("kernel_size", kernel), ("stride", stride), ("padding", padding),
                            ("dilation", dilation), ("ceil_mode", bool(self.ceil_mode))):
            object.__setattr__(self, name, value)

    def output_size(self, input_size) -> tuple:
        """Spatial output size for a spatial input size."""
        size = as_tuple(input_size, self.ndim, "input spatial size")
        for n, k, p, d in zip(size, self.kernel_size, self.padding, self.dilation):
            if n + 2 * p < d * (k - 1) + 1:
                raise ValueError(f"pooling window of {d * (k - 1) + 1} cells does not fit the "
                                 f"padded input size {n} + 2*{p} = {n + 2 * p}")
        return tuple(output_length(n, k, s, p, p, d, self.ceil_mode) for n, k, s, p, d in
                     zip(size, self.kernel_size, self.stride, self.padding, self.dilation))

    def conv_geometry(self, channels: int, input_size) -> ConvGeometry:
        """The depthwise convolution whose windows this pool reads; ``ceil_mode`` becomes extra
        padding after the input, so the last window fits."""
        size = as_tuple(input_size, self.ndim, "input spatial size")
        pads = []
        for n, o, k, s, p, d in zip(size, self.output_size(size), self.kernel_size, self.stride,
                                    self.padding, self.dilation):
            pads.append((p, p + max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))))
        return ConvGeometry(channels, channels, self.kernel_size, self.stride, tuple(pads),
                            self.dilation, groups=channels, ndim=self.ndim)


def adaptive_output_size(output_size, ndim: int) -> tuple:
    """Validate an adaptive pool's ``output_size`` (an int, or ints and ``None`` per dim).

    >>> adaptive_output_size(1, 2), adaptive_output_size((None, 3), 2)
    ((1, 1), (None, 3))
    """
    if output_size is None or is_int(output_size):
        output_size = (output_size,) * ndim
    if not isinstance(output_size, (tuple, list)) or len(output_size) != ndim or any(
            o is not None and (not is_int(o) or o < 1) for o in output_size):
        raise ValueError(f"output_size must be a positive int or a tuple of {ndim} positive ints "
                         f"(or None to keep that size), got {output_size!r}")
    return tuple(None if o is None else int(o) for o in output_size)


def resize_output_size(size, scale_factor, input_size) -> tuple:
    """``(output size, scales)`` of a resize by ``size`` or ``scale_factor``, like
    ``torch.nn.Upsample``: ``floor(input * scale_factor)``; the scales (``None`` when ``size``
    is given) are what the interpolation's coordinate rule uses.

    >>> resize_output_size(None, 2.5, (2, 3))
    ((5, 7), (2.5, 2.5))
    """
    nd = len(input_size)
    if size is not None:
        out = (size,) * nd if is_int(size) else tuple(size)
        if len(out) != nd or any(not is_int(o) or o < 1 for o in out):
            raise ValueError(f"size must be a positive int or {nd} positive ints, got {size!r}")
        return tuple(int(o) for o in out), (None,) * nd
    scales = (scale_factor,) * nd if not isinstance(scale_factor, (tuple, list)) \
        else tuple(scale_factor)
    if len(scales) != nd:
        raise ValueError(f"scale_factor must be a number or {nd} numbers, got {scale_factor!r}")
    scales = tuple(float(s) for s in scales)
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scale_factor must be finite and > 0, got {scale_factor!r}")
    if any(n * s > MAX_SIZE for n, s in zip(input_size, scales)):
        raise ValueError(f"scale_factor {scale_factor!r} gives an output size over 2**40 for "
                         f"input size {tuple(input_size)}")
    out = tuple(int(math.floor(n * s)) for n, s in zip(input_size, scales))
    if min(out) < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output for input size "
                         f"{tuple(input_size)}")
    return out, scales
