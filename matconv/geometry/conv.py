"""The frozen geometry of a convolution layer, independent of its weights and input size."""
from __future__ import annotations

import functools

import math
from dataclasses import dataclass

from .arithmetic import as_tuple, check_output_padding, is_int, output_length, transpose_length
from .padding import PADDING_MODES, check_mode_padding, padding_pairs

__all__ = ["ConvGeometry"]


@dataclass(frozen=True)
class ConvGeometry:
    """The shape of a convolution, independent of its weights and of the input size.

    Frozen and hashable, so lowered structures can be cached per geometry. All per-dimension
    arguments are stored as tuples and ``padding`` as per-side pairs, whatever form was given.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts; both must be divisible by ``groups``.
    kernel_size : int or tuple of int
        Kernel extent; its length (or ``ndim`` when an int) sets the number of spatial dims.
    stride, dilation : int or tuple of int, default 1
    padding : int, tuple of int, per-side pairs or str, default 0
        ``'valid'`` (none), ``'same'`` (stride 1 only; an odd total ``d (k - 1)`` puts the extra
        cell after, like PyTorch), ``'full'`` (``d (k - 1)`` on each side) or ``'causal'``
        (1-D only, all ``d (k - 1)`` before).
    groups : int, default 1
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What a padded cell reads: nothing, or the input cell it mirrors, repeats or wraps to.
    ndim : int, optional
        Number of spatial dimensions when every per-dimension argument is an int (default 2).

    Examples
    --------
    >>> g = ConvGeometry(1, 1, 3, padding="same")
    >>> g.padding, g.output_size((4, 4))
    (((1, 1), (1, 1)), (4, 4))
    >>> ConvGeometry(1, 1, 3, ndim=1, padding="causal", dilation=2).padding
    ((4, 0),)
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple = 1
    padding: tuple = 0
    dilation: tuple = 1
    groups: int = 1
    padding_mode: str = "zeros"
    ndim: int = None

    def __post_init__(self):
        ndim = self.ndim
        if ndim is None:  # the first per-dimension argument given as a sequence decides
            ndim = 2
            for name in ("kernel_size", "stride", "dilation"):
                value = getattr(self, name)
                if isinstance(value, (tuple, list)):
                    if not 1 <= len(value) <= 3:
                        raise ValueError(f"{name} must be an int or a tuple of 1 to 3 ints (one "
                                         f"per spatial dimension), got {value!r}")
                    ndim = len(value)
                    break
        if not is_int(ndim) or ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3 spatial dimensions, got {ndim!r}")
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) and out_channels "
                             f"({self.out_channels}) must both be divisible by groups "
                             f"({self.groups})")
        if not isinstance(self.padding_mode, str) or self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {tuple(PADDING_MODES)}, "
                             f"got {self.padding_mode!r}")
        kernel = as_tuple(self.kernel_size, ndim, "kernel_size")
        stride = as_tuple(self.stride, ndim, "stride")
        dilation = as_tuple(self.dilation, ndim, "dilation")
        padding = padding_pairs(self.padding, ndim, kernel, dilation, stride)
        for name, value in (("ndim", ndim), ("kernel_size", kernel), ("stride", stride),
                            ("dilation", dilation), ("padding", padding),
                            ("in_channels", int(self.in_channels)),
                            ("out_channels", int(self.out_channels)),
                            ("groups", int(self.groups))):
            object.__setattr__(self, name, value)

    # ---- derived sizes
    @property
    def kernel_numel(self) -> int:
        """Number of taps of one kernel, ``prod(kernel_size)``."""
        return math.prod(self.kernel_size)

    @property
    def effective_kernel_size(self) -> tuple:
        """Dilated extent ``k + (k - 1)(d - 1)`` per dimension."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def weight_shape(self) -> tuple:
        """``(out_channels, in_channels // groups, *kernel_size)``, PyTorch's conv weight."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def check_input_size(self, input_size) -> tuple:
        """Validate a spatial input size against this geometry; return it as a tuple."""
        if type(input_size) is tuple and all(type(i) is int for i in input_size):
            # a layer sees the same few sizes on every call: validated once (the cache keys
            # on values, so only exact ints may use it: (3.0, 3.0) equals (3, 3))
            return _checked_size(self, input_size)
        return self._check_input_size(input_size)

    def _check_input_size(self, input_size) -> tuple:
        size = as_tuple(input_size, self.ndim, "input spatial size")
        for dim, (i, (pb, pa), span) in enumerate(zip(size, self.padding,
                                                        self.effective_kernel_size)):
            if i + pb + pa < span:
                raise ValueError(
                    f"kernel_size {self.kernel_size} with dilation {self.dilation} spans {span} "
                    f"cells in spatial dim {dim}, more than the padded input size "
                    f"{i} + {pb} + {pa} = {i + pb + pa}")
        check_mode_padding(self.padding_mode, self.padding, size)
        return size

    def _lengths(self, size) -> tuple:
        return tuple(output_length(i, k, s, pb, pa, d) for i, k, s, (pb, pa), d in
                     zip(size, self.kernel_size, self.stride, self.padding, self.dilation))

    def output_size(self, input_size) -> tuple:
        """Spatial output size for a spatial input size (a tuple, one entry per dimension)."""
        return self._lengths(self.check_input_size(input_size))

    def transpose_output_size(self, input_size, output_padding=0) -> tuple:
        """Spatial output size of the transposed convolution (input ``i'`` is this conv's output).

        ``o' = (i' - 1) s - p_before - p_after + d (k - 1) + output_padding + 1``.
        """
        size = as_tuple(input_size, self.ndim, "input spatial size")
        extra = as_tuple(output_padding, self.ndim, "output_padding", minimum=0)
        check_output_padding(extra, self.stride, self.dilation)
        return tuple(transpose_length(i, k, s, pb, pa, d, a) for i, a, (pb, pa), k, s, d in
                     zip(size, extra, self.padding, self.kernel_size, self.stride, self.dilation))

    def transposed(self) -> ConvGeometry:
        """The same geometry with the channel roles swapped (for describing ``A.T``)."""
        return ConvGeometry(self.out_channels, self.in_channels, self.kernel_size, self.stride,
                            self.padding, self.dilation, self.groups, self.padding_mode, self.ndim)


@functools.lru_cache(maxsize=256)
def _checked_size(geometry: ConvGeometry, input_size: tuple) -> tuple:
    return geometry._check_input_size(input_size)
