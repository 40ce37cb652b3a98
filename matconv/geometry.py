"""Convolution arithmetic: output sizes, padding forms and the frozen geometry of a layer.

Everything here is pure integer arithmetic on tuples: no arrays, no scipy. The formulas are those
of Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (arXiv:1603.07285), in
PyTorch's conventions:

* output size ``o = floor((i + p_before + p_after - d (k - 1) - 1) / s) + 1``;
* transposed output size ``o' = (i' - 1) s - p_before - p_after + d (k - 1) + output_padding + 1``
  with ``0 <= output_padding < max(s, d)``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

__all__ = [
    "PADDING_MODES",
    "PADDING_STRINGS",
    "ConvGeometry",
    "conv_output_size",
    "conv_transpose_output_size",
]

PADDING_STRINGS = ("valid", "same", "full", "causal")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------- argument checks
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_tuple(value, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``ndim`` ints, each ``>= minimum``) as a tuple.

    >>> as_tuple(3, 2, "kernel_size")
    (3, 3)
    >>> as_tuple((1, 2), 2, "stride")
    (1, 2)
    """
    if _is_int(value):
        items = (int(value),) * ndim
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        items = tuple(int(v) for v in value)
        if len(items) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial dimension), "
                f"got {value!r} with {len(items)} entries"
            )
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    return items


def _padding_pairs(padding, ndim: int, kernel_size, dilation, stride) -> tuple[tuple[int, int], ...]:
    """Resolve every accepted padding form to per-side pairs ``((before, after), ...)``."""
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"padding must be one of {PADDING_STRINGS}, an int, a tuple of ints "
                             f"or per-side pairs ((before, after), ...); got {padding!r}")
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        if padding == "valid":
            return tuple((0, 0) for _ in totals)
        if padding == "full":
            return tuple((t, t) for t in totals)
        if padding == "causal":
            if ndim != 1:
                raise ValueError(f"padding='causal' is only defined for 1-D convolution, "
                                 f"got {ndim} spatial dimensions")
            return ((totals[0], 0),)
        # 'same': like PyTorch, an odd total puts the extra cell at the end.
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride=1 (like PyTorch), got stride={stride}")
        return tuple((t // 2, t - t // 2) for t in totals)
    if (isinstance(padding, (tuple, list)) and padding
            and all(isinstance(p, (tuple, list)) for p in padding)):
        if len(padding) != ndim or not all(len(p) == 2 and all(_is_int(v) for v in p)
                                           for p in padding):
            raise ValueError(f"per-side padding must be {ndim} pairs (before, after) of ints, "
                             f"got {padding!r}")
        pairs = tuple((int(a), int(b)) for a, b in padding)
    else:
        pairs = tuple((p, p) for p in as_tuple(padding, ndim, "padding", minimum=0))
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return pairs


# --------------------------------------------------------------------------- scalar arithmetic
def _per_dim(args: dict, *, minimum: dict) -> tuple[int, list[tuple]]:
    """Broadcast int-or-tuple arguments to a common number of dimensions."""
    ndim = max((len(v) for v in args.values() if isinstance(v, (tuple, list))), default=0)
    scalar = ndim == 0
    ndim = max(ndim, 1)
    cols = [as_tuple(v, ndim, name, minimum[name]) for name, v in args.items()]
    return scalar, list(zip(*cols))


def conv_output_size(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """Output size of a convolution (or pooling) along each spatial dimension.

    ``o = floor((i + 2p - d (k - 1) - 1) / s) + 1``, which is ``floor((i + 2p - k) / s) + 1``
    when ``d = 1``.

    Parameters
    ----------
    input_size, kernel_size, stride, padding, dilation : int or tuple of int
        Ints give an int back; tuples (one entry per spatial dimension) give a tuple.

    Returns
    -------
    int or tuple of int

    Raises
    ------
    ValueError
        If the dilated kernel does not fit in the padded input.

    Examples
    --------
    >>> conv_output_size(5, 3, stride=2, padding=1)
    3
    >>> conv_output_size((28, 28), 5, padding=2)
    (28, 28)
    >>> conv_output_size(7, 3, dilation=2)
    3
    """
    scalar, dims = _per_dim(
        dict(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding,
             dilation=dilation),
        minimum=dict(input_size=1, kernel_size=1, stride=1, padding=0, dilation=1))
    out = []
    for i, k, s, p, d in dims:
        span = d * (k - 1) + 1
        if i + 2 * p < span:
            raise ValueError(f"kernel_size {k} with dilation {d} spans {span} cells, more than the "
                             f"padded input size {i} + 2*{p} = {i + 2 * p}")
        out.append((i + 2 * p - span) // s + 1)
    return out[0] if scalar else tuple(out)


def conv_transpose_output_size(input_size, kernel_size, stride=1, padding=0, output_padding=0,
                               dilation=1):
    """Output size of a transposed convolution along each spatial dimension.

    ``o' = (i' - 1) s - 2p + d (k - 1) + output_padding + 1``, PyTorch's rule; ``output_padding``
    must be smaller than ``max(stride, dilation)``.

    Examples
    --------
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1)
    5
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    >>> conv_transpose_output_size((2, 2), 3)
    (4, 4)
    """
    scalar, dims = _per_dim(
        dict(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding,
             output_padding=output_padding, dilation=dilation),
        minimum=dict(input_size=1, kernel_size=1, stride=1, padding=0, output_padding=0,
                     dilation=1))
    out = []
    for i, k, s, p, a, d in dims:
        if a >= max(s, d):
            raise ValueError(f"output_padding must be smaller than max(stride, dilation) = "
                             f"{max(s, d)}, got output_padding={a}")
        o = (i - 1) * s - 2 * p + d * (k - 1) + a + 1
        if o < 1:
            raise ValueError(f"transposed convolution output size would be {o} (< 1) for input "
                             f"size {i}, kernel_size {k}, stride {s}, padding {p}, dilation {d}")
        out.append(o)
    return out[0] if scalar else tuple(out)


# --------------------------------------------------------------------------- the geometry
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
        if ndim is None:
            sized = [v for v in (self.kernel_size, self.stride, self.dilation)
                     if isinstance(v, (tuple, list))]
            ndim = len(sized[0]) if sized else 2
        if not _is_int(ndim) or ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3 spatial dimensions, got {ndim!r}")
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) and out_channels "
                             f"({self.out_channels}) must both be divisible by groups "
                             f"({self.groups})")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, "
                             f"got {self.padding_mode!r}")
        kernel = as_tuple(self.kernel_size, ndim, "kernel_size")
        stride = as_tuple(self.stride, ndim, "stride")
        dilation = as_tuple(self.dilation, ndim, "dilation")
        padding = _padding_pairs(self.padding, ndim, kernel, dilation, stride)
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
        n = 1
        for k in self.kernel_size:
            n *= k
        return n

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
        size = as_tuple(input_size, self.ndim, "input spatial size")
        for dim, (i, (pb, pa), span) in enumerate(zip(size, self.padding,
                                                        self.effective_kernel_size)):
            if i + pb + pa < span:
                raise ValueError(
                    f"kernel_size {self.kernel_size} with dilation {self.dilation} spans {span} "
                    f"cells in spatial dim {dim}, more than the padded input size "
                    f"{i} + {pb} + {pa} = {i + pb + pa}")
            if self.padding_mode == "reflect" and max(pb, pa) >= i:
                raise ValueError(f"padding_mode='reflect' needs padding < input size in every "
                                 f"dimension, got padding {(pb, pa)} for size {i} in dim {dim}")
            if self.padding_mode == "circular" and max(pb, pa) > i:
                raise ValueError(f"padding_mode='circular' needs padding <= input size in every "
                                 f"dimension, got padding {(pb, pa)} for size {i} in dim {dim}")
        return size

    def output_size(self, input_size) -> tuple:
        """Spatial output size for a spatial input size (a tuple, one entry per dimension)."""
        size = self.check_input_size(input_size)
        return tuple((i + pb + pa - span) // s + 1 for i, (pb, pa), span, s in
                     zip(size, self.padding, self.effective_kernel_size, self.stride))

    def transpose_output_size(self, input_size, output_padding=0) -> tuple:
        """Spatial output size of the transposed convolution (input ``i'`` is this conv's output).

        ``o' = (i' - 1) s - p_before - p_after + d (k - 1) + output_padding + 1``.
        """
        size = as_tuple(input_size, self.ndim, "input spatial size")
        extra = as_tuple(output_padding, self.ndim, "output_padding", minimum=0)
        out = []
        for i, a, (pb, pa), k, s, d in zip(size, extra, self.padding, self.kernel_size,
                                           self.stride, self.dilation):
            if a >= max(s, d):
                raise ValueError(f"output_padding must be smaller than max(stride, dilation) = "
                                 f"{max(s, d)} in every dimension, got output_padding={extra}")
            o = (i - 1) * s - pb - pa + d * (k - 1) + a + 1
            if o < 1:
                raise ValueError(f"transposed convolution output size would be {o} (< 1) for "
                                 f"input size {size}; reduce padding {self.padding}")
            out.append(o)
        return tuple(out)

    def transposed(self) -> "ConvGeometry":
        """The same geometry with the channel roles swapped (for describing ``A.T``)."""
        return ConvGeometry(self.out_channels, self.in_channels, self.kernel_size, self.stride,
                            self.padding, self.dilation, self.groups, self.padding_mode, self.ndim)
