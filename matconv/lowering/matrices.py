"""The lowered matrices as a user asks for them: ``unfold_matrix`` (``S``) and ``conv_matrix``
(``A``), each a ``scipy.sparse`` array of its own (never a view of the cache)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..geometry import ConvGeometry, as_tuple
from .structure import conv_structure, unfold_structure

__all__ = ["unfold_matrix", "conv_matrix", "check_weight_shape", "split_input_shape"]


def split_input_shape(input_shape, ndim, name="input_shape"):
    """``(channels, spatial size)`` of a ``(C, *spatial)`` shape with ``ndim`` spatial dims."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != ndim + 1:
        raise ValueError(f"{name} must be (C, *spatial) with {ndim} spatial dimensions, "
                         f"got {input_shape!r}")
    channels = as_tuple(input_shape[0], 1, f"{name} channels")[0]
    return channels, as_tuple(tuple(input_shape[1:]), ndim, f"{name} spatial size")


def unfold_matrix(input_shape, kernel_size, stride=1, padding=0, dilation=1,
                  padding_mode="zeros") -> sp.csr_array:
    """The im2col matrix ``S``: ``(S @ x.ravel()).reshape(C*prod(k), L)`` unfolds one example.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, *spatial)`` of one example, 1 to 3 spatial dimensions.
    kernel_size, stride, padding, dilation, padding_mode
        As for :class:`~matconv.nn.Conv2d`.

    Returns
    -------
    scipy.sparse.csr_array of shape (C*prod(kernel_size)*L, C*prod(spatial)), float64
        Rows ordered ``(c, tap, position)``, exactly ``torch.nn.functional.unfold(x)`` flattened.
        Each row holds one 1, or nothing where the window reads a zero-padding cell.

    Examples
    --------
    >>> S = unfold_matrix((1, 3, 3), 2)
    >>> S.shape
    (16, 9)
    >>> (S @ np.arange(9.0)).reshape(4, 4)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    ndim = len(input_shape) - 1 if isinstance(input_shape, (tuple, list)) else 0
    if ndim not in (1, 2, 3):
        raise ValueError(f"input_shape must be (C, *spatial) with 1 to 3 spatial dimensions, "
                         f"got {input_shape!r}")
    channels, size = split_input_shape(input_shape, ndim)
    geometry = ConvGeometry(channels, channels, kernel_size, stride, padding, dilation,
                            padding_mode=padding_mode, ndim=len(size))
    return unfold_structure(geometry, size).matrix(copy=True)


def conv_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros") -> sp.csr_array:
    """The whole convolution as one sparse matrix: ``A @ x.ravel() == conv(x).ravel()``.

    Cross-correlation as in PyTorch (no bias), for one example ``x`` of shape ``input_shape``.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in // groups, *kernel_size)
        1-D, 2-D or 3-D kernels; the rank decides.
    input_shape : tuple of int
        ``(C_in, *spatial)``.
    stride, padding, dilation, groups, padding_mode
        As for :class:`~matconv.nn.Conv2d`.

    Returns
    -------
    scipy.sparse.csr_array of shape (C_out*prod(out), C_in*prod(spatial))
        Row ``(o, position)`` holds the weights of output channel ``o`` at the columns its window
        reads. dtype follows ``weight``.

    Notes
    -----
    The transpose ``A.T`` is the input gradient and, as a map, the transposed convolution.

    Examples
    --------
    The slide example: a 3x3 kernel over a 4x4 input.

    >>> w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> A = conv_matrix(w, (1, 4, 4))
    >>> A.shape
    (4, 16)
    >>> A.toarray()[0]
    array([1., 2., 3., 0., 4., 5., 6., 0., 7., 8., 9., 0., 0., 0., 0., 0.])
    """
    weight = _check_weight(weight)
    ndim = weight.ndim - 2
    channels, size = split_input_shape(input_shape, ndim)
    geometry = ConvGeometry(channels, weight.shape[0], weight.shape[2:], stride, padding,
                            dilation, groups, padding_mode)
    check_weight_shape(weight, geometry)
    return conv_structure(geometry, size).matrix(weight, copy=True)


def _check_weight(weight) -> np.ndarray:
    if not isinstance(weight, np.ndarray):
        weight = np.asarray(weight)
    if weight.dtype.kind not in "fc":
        if weight.dtype.kind not in "iub":
            raise TypeError(f"weight must be a real float array, got dtype {weight.dtype}")
        weight = weight.astype(np.float64)
    if weight.dtype.kind == "c":
        raise TypeError(f"weight must be a real float array, got dtype {weight.dtype}")
    if weight.ndim not in (3, 4, 5):
        raise ValueError(f"weight must have shape (C_out, C_in/groups, *kernel_size) with 1 to 3 "
                         f"kernel dimensions, got shape {weight.shape}")
    return weight


def check_weight_shape(weight: np.ndarray, geometry: ConvGeometry) -> None:
    """Raise ``ValueError`` unless ``weight.shape == geometry.weight_shape``."""
    if tuple(weight.shape) != geometry.weight_shape:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit in_channels="
                         f"{geometry.in_channels}, groups={geometry.groups}: expected "
                         f"{geometry.weight_shape}")
