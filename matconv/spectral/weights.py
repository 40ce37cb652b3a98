"""Weights as matrices: the checks every spectral function applies, and the reshaped-weight norm.

``torch.nn.utils.spectral_norm`` divides a convolution's weight by the largest singular value of
the weight *reshaped* to ``(C_out, C_in/groups * prod(k))``. That number is not the operator norm
of the convolution: it ignores how the taps overlap across output positions, and can be smaller
(so ``spectral_norm`` gives no Lipschitz bound) or larger. :func:`reshaped_weight_norm` computes
it exactly, to compare with :func:`matconv.spectral.operator_norm`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_weight", "reshaped_weight_norm"]


def check_weight(weight, name: str = "weight", ndims=(3, 4, 5)) -> np.ndarray:
    """``weight`` as a float64 array, after checking it is a real float array of an allowed rank.

    Raises
    ------
    TypeError
        Not an array, or complex, integer or boolean (a convolution weight here is real).
    ValueError
        Wrong number of dimensions, or an empty or non-finite weight.

    >>> check_weight(np.ones((1, 1, 3), np.float32)).dtype
    dtype('float64')
    """
    if not isinstance(weight, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(weight).__name__}")
    if not np.issubdtype(weight.dtype, np.floating):
        raise TypeError(f"{name} must be a real float array (float32 or float64), got dtype "
                        f"{weight.dtype}" + (": complex weights are not supported"
                                             if np.issubdtype(weight.dtype, np.complexfloating)
                                             else ": convert it with .astype(np.float64)"))
    if weight.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape "
                         f"{weight.shape}")
    if weight.size == 0 or not np.all(np.isfinite(weight)):
        raise ValueError(f"{name} must be non-empty and finite, got shape {weight.shape} with "
                         f"{int(np.size(weight) - np.isfinite(weight).sum())} non-finite values")
    return weight.astype(np.float64, copy=False)


def reshaped_weight_norm(weight, dim: int | None = None) -> float:
    """The largest singular value of the weight reshaped to a matrix, as ``spectral_norm`` uses.

    Parameters
    ----------
    weight : ndarray of shape (C_out, C_in / groups, *kernel_size), or a layer
        A layer's ``weight.data`` is used; for a ``ConvTranspose*d`` layer ``dim`` defaults to 1,
        as in PyTorch.
    dim : int, optional
        The weight dimension that becomes the rows (PyTorch's ``dim``); default 0.

    Returns
    -------
    float
        ``sigma_max(weight.moveaxis(dim, 0).reshape(weight.shape[dim], -1))``, exact (an SVD),
        where ``spectral_norm`` estimates it by power iteration.

    Examples
    --------
    >>> w = np.zeros((1, 1, 3)); w[0, 0] = [3.0, 0.0, 4.0]
    >>> reshaped_weight_norm(w)
    5.0
    """
    default_dim = 0
    if not isinstance(weight, np.ndarray) and hasattr(weight, "weight"):
        from ..nn import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

        if isinstance(weight, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)):
            default_dim = 1
        weight = weight.weight.data
    w = check_weight(weight, ndims=(2, 3, 4, 5))
    dim = default_dim if dim is None else dim
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not (
            -w.ndim <= dim < w.ndim):
        raise ValueError(f"dim must be an int in [{-w.ndim}, {w.ndim}) for a weight of shape "
                         f"{w.shape}, got {dim!r}")
    rows = np.moveaxis(w, dim, 0)
    return float(np.linalg.norm(rows.reshape(rows.shape[0], -1), 2))
