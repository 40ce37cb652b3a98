"""The two size formulas and the argument checks every geometry shares."""
from __future__ import annotations

import numbers

__all__ = ["is_int", "as_tuple", "as_shape", "output_length", "check_output_padding",
           "conv_output_size",
           "conv_transpose_output_size"]


#: the largest size, stride, padding or dilation accepted: index products stay inside int64
MAX_SIZE = 2**40


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools (``True`` is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_tuple(value, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``ndim`` ints, each ``>= minimum``) as a tuple.

    >>> as_tuple(3, 2, "kernel_size")
    (3, 3)
    >>> as_tuple((1, 2), 2, "stride")
    (1, 2)
    """
    if is_int(value):
        items = (int(value),) * ndim
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        items = tuple(int(v) for v in value)
        if len(items) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial dimension), "
                f"got {value!r} with {len(items)} entries")
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    if any(v > MAX_SIZE for v in items):
        raise ValueError(f"{name} must be at most 2**40 in every dimension (a size whose index "
                         f"arithmetic fits in int64), got {value!r}")
    return items


def as_shape(value, name: str = "input_shape") -> tuple[int, ...]:
    """``value`` as a shape: a non-empty tuple of positive ints, or an error naming ``name``.

    >>> as_shape([1, 4, 4])
    (1, 4, 4)
    """
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(f"{name} must be a non-empty tuple of positive ints, e.g. (C, H, W) of "
                        f"one example, got {value!r}")
    for v in value:
        if not is_int(v):
            raise TypeError(f"{name} must hold ints, got {value!r}")
        if not 1 <= v <= MAX_SIZE:
            raise ValueError(f"{name} must hold sizes from 1 to 2**40, got {value!r}")
    return tuple(int(v) for v in value)


def output_length(i: int, k: int, s: int = 1, before: int = 0, after: int = 0, d: int = 1,
                  ceil_mode: bool = False) -> int:
    """Positions of a window of ``k`` taps (dilation ``d``, stride ``s``) along one dimension.

    ``floor((i + before + after - d (k - 1) - 1) / s) + 1``; with ``ceil_mode`` (pools) the
    division rounds up, but the last window must still start inside the input or the padding
    before it, as in PyTorch.

    >>> output_length(5, 3, 2, 1, 1), output_length(5, 2, 2, ceil_mode=True)
    (3, 3)
    """
    span = d * (k - 1) + 1
    if i + before + after < span:
        raise ValueError(f"kernel_size {k} with dilation {d} spans {span} cells, more than the "
                         f"padded input size {i} + {before} + {after} = {i + before + after}")
    o = (i + before + after - span + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= i + before:
        o -= 1
    return o


def check_output_padding(output_padding: tuple, stride: tuple, dilation: tuple) -> tuple:
    """PyTorch's rule for transposed convolutions: ``output_padding < max(stride, dilation)``.

    >>> check_output_padding((1,), (2,), (1,))
    (1,)
    """
    for dim, (a, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if a >= max(s, d):
            where = f" in dim {dim} (stride={stride}, dilation={dilation})" \
                if len(stride) > 1 else ""
            raise ValueError(f"output_padding must be smaller than max(stride, dilation) = "
                             f"{max(s, d)}, got output_padding={a}{where}")
    return tuple(output_padding)


def transpose_length(i: int, k: int, s: int, before: int, after: int, d: int, a: int) -> int:
    """``(i - 1) s - before - after + d (k - 1) + a + 1``, refusing an empty output."""
    o = (i - 1) * s - before - after + d * (k - 1) + a + 1
    if o < 1:
        raise ValueError(f"transposed convolution output size would be {o} (< 1) for input size "
                         f"{i}, kernel_size {k}, stride {s}, padding {(before, after)}, dilation "
                         f"{d}; reduce the padding")
    return o


def _per_dim(args: dict, minimum: dict) -> tuple[bool, list[tuple]]:
    """Broadcast int-or-tuple arguments to a common number of dimensions."""
    ndim = max((len(v) for v in args.values() if isinstance(v, (tuple, list))), default=0)
    scalar = ndim == 0
    cols = [as_tuple(v, max(ndim, 1), name, minimum[name]) for name, v in args.items()]
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
        dict(input_size=1, kernel_size=1, stride=1, padding=0, dilation=1))
    out = tuple(output_length(i, k, s, p, p, d) for i, k, s, p, d in dims)
    return out[0] if scalar else out


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
        dict(input_size=1, kernel_size=1, stride=1, padding=0, output_padding=0, dilation=1))
    _, k, s, _, a, d = zip(*dims)
    check_output_padding(a, s, d)
    out = tuple(transpose_length(i, k, s, p, p, d, a) for i, k, s, p, a, d in dims)
    return out[0] if scalar else out
