"""Singular values of any operator: dense SVD, ARPACK on the explicit or matrix-free map, or FFT.

``method='auto'`` picks, in this order:

1. ``'fft'`` when Sedghi et al.'s formula describes the map (a single convolution layer with
   circular padding whose stride divides the input) and the kernel's transform on the input grid
   fits in the memory budget: every value from small per-frequency SVDs;
2. ``'dense'`` (LAPACK's SVD of the whole matrix) for ``which='all'``, for small operators (at
   most ``DENSE_CELLS`` cells), and when ``k`` is too large for ARPACK;
3. ``'svds-matrix-free'``: ``scipy.sparse.linalg.svds`` (ARPACK on ``A.T A`` or ``A A.T``,
   then a Rayleigh-Ritz step on ``A``) on the layers' ``linear_operator``, whenever a
   convolution uses ``lowering='im2col'`` (its im2col products beat products with the explicit
   ``A``, as for the layer's own forward: 4-13x in ``benchmarks/bench_spectral.py``) or the
   explicit matrix is over the memory budget; ``A`` is never built;
4. ``'svds'``: the same with the explicit ``scipy.sparse`` matrix otherwise (matrices, fixed
   pools, ``Linear``, convolutions with ``lowering='sparse'``, Jacobians).

Every answer carries its ``method`` and a ``residual`` checked against the operator (see
:mod:`matconv.spectral.result`).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, aslinearoperator, svds

from ..memory import check_memory, get_memory_budget
from ..operators.parallel import other_blas_single_threaded
from .fourier import fourier_apply, fourier_blocks, fourier_nbytes
from .result import METHODS, SingularValues
from .sources import resolve

__all__ = ["DENSE_CELLS", "WHICH", "condition_number", "operator_norm", "singular_values"]

#: ``method='auto'`` takes the dense SVD up to this many matrix cells (8 MiB in float64).
DENSE_CELLS = 1 << 20
WHICH = ("largest", "smallest", "all")


def _check_which(which):
    if not isinstance(which, str) or which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    return which


def _check_k(k, which, r):
    if which == "all":
        if k is not None:
            raise ValueError(f"k is not used with which='all' (all {r} values), got k={k!r}")
        return r
    if k is None:
        return 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= r:
        raise ValueError(f"k must be an int from 1 to min(m, n) = {r} for this operator, got "
                         f"{k!r}")
    return int(k)


def _choose(src, which, k, method):
    m, n = src.shape
    r = min(m, n)
    if method == "auto":
        if src.fourier is not None and fourier_nbytes(src.fourier[0].shape,
                                                      src.fourier[1]) <= get_memory_budget():
            return "fft"
        if which == "all" or m * n <= DENSE_CELLS or k >= r - 1:
            return "dense"
        return "svds" if src.explicit_fits and not src.prefer_matrix_free \
            else "svds-matrix-free"
    if method not in METHODS:
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    if method == "fft" and src.fourier is None:
        raise ValueError(f"method='fft' does not apply to this operator: {src.fourier_reason}")
    if method.startswith("svds"):
        if k >= r:
            raise ValueError(f"svds finds fewer than min(m, n) = {r} singular values; for "
                             f"{'all of them' if which == 'all' else f'k={k}'} use "
                             f"method='dense'")
        if method == "svds" and not src.explicit_fits:
            raise ValueError("method='svds' needs the explicit matrix, which does not fit in the "
                             "memory budget: use method='svds-matrix-free'")
    return method


def _pick(n_values, which, k) -> slice:
    """Indices, into values sorted descending, of what was asked for."""
    if which == "smallest":
        return slice(n_values - k, n_values)
    return slice(0, k)


def _triplet_residual(L, u, s, vt) -> float:
    """``max_i sqrt((||A v_i - s_i u_i||^2 + ||A.T u_i - s_i v_i||^2) / 2) / max(s)``."""
    if s.size == 0:
        return 0.0
    right = L.matmat(vt.T) - u * s
    left = L.rmatmat(u) - vt.T * s
    r = np.sqrt((np.sum(right ** 2, axis=0) + np.sum(left ** 2, axis=0)) / 2)
    scale = s.max()
    return float(r.max() / scale) if scale > 0 else float(r.max())


def _dense(src, which, k):
    m, n = src.shape
    r = min(m, n)
    check_memory(8 * (2 * m * n + 2 * (m + n) * r), f"the dense SVD of the {m} x {n} operator",
                 "ask for a few of the largest or smallest singular values instead (svds)")
    D = src.dense()
    U, s, Vt = np.linalg.svd(D, full_matrices=False)
    pick = _pick(r, which, k)
    U, s, Vt = U[:, pick], s[pick], Vt[pick]
    return s, _triplet_residual(aslinearoperator(D), U, s, Vt)


def _svds(src, which, k, method, tol, maxiter):
    L = aslinearoperator(src.explicit() if method == "svds" else src.matrix_free())
    r = min(src.shape)
    v0 = np.random.default_rng(0).standard_normal(r)  # reproducible answers
    try:
        with other_blas_single_threaded():  # ARPACK's BLAS (scipy's) and the products' (numpy's)
            u, s, vt = svds(L, k=k, which="SM" if which == "smallest" else "LM", tol=tol,
                            v0=v0, maxiter=maxiter)
    except ArpackNoConvergence:
        raise RuntimeError(f"ARPACK did not converge to the {k} {which} singular values of the "
                           f"{src.shape[0]} x {src.shape[1]} operator within maxiter="
                           f"{maxiter}: raise maxiter or tol (smallest values of large "
                           f"operators converge slowly)") from None
    order = np.argsort(s)[::-1]
    u, s, vt = u[:, order], s[order], vt[order]
    return s, _triplet_residual(L, u, s, vt)


def _fft(src, which, k):
    weight, size, g = src.fourier
    blocks = fourier_blocks(weight, size, stride=g.stride, dilation=g.dilation, groups=g.groups,
                            padding_before=tuple(p for p, _ in g.padding))
    values = np.sort(np.linalg.svd(blocks, compute_uv=False).ravel())[::-1]
    # check the formula against the operator itself on one random input
    x = np.random.default_rng(0).standard_normal(src.shape[1])
    explicit = src.explicit_fits and not src.prefer_matrix_free
    Ax = aslinearoperator(src.explicit() if explicit else src.matrix_free()).matvec(x)
    Fx = fourier_apply(blocks, x.reshape(g.in_channels, *size), g.stride).ravel()
    norm = np.linalg.norm(Ax)
    residual = np.linalg.norm(Ax - Fx) / (norm if norm > 0 else 1.0)
    return values[_pick(values.size, which, k)], float(residual)


def _compute(src, which, k, method, tol, maxiter) -> SingularValues:
    if method == "fft":
        s, residual = _fft(src, which, k)
    elif method == "dense":
        s, residual = _dense(src, which, k)
    else:
        s, residual = _svds(src, which, k, method, tol, maxiter)
    return SingularValues(s, method=method, residual=residual, operator_shape=src.shape)


def _check_tol(tol, maxiter):
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise ValueError(f"tol must be a number in [0, 1) (0: machine precision), got {tol!r}")
    if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, int)
                                or maxiter < 1):
        raise ValueError(f"maxiter must be a positive int or None, got {maxiter!r}")


def singular_values(op, input_shape=None, k=None, which="largest", *, at=None, method="auto",
                    tol=0.0, maxiter=None) -> SingularValues:
    """Singular values of a convolution, a model's linear map or Jacobian, or any linear operator.

    Parameters
    ----------
    op : layer, Sequential, scipy.sparse matrix, 2-D ndarray or LinearOperator
        A layer (``Conv*d``, ``ConvTranspose*d``, ``Linear``, pools, ``Upsample``, ...) or a
        ``Sequential`` (nested too) of fixed linear maps: the map for one example, bias left
        out. A model with nonlinear layers needs ``at``.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example (optional for a ``Linear`` first layer, or with ``at``).
    k : int, optional
        How many values (default 1); not used with ``which='all'``.
    which : {'largest', 'smallest', 'all'}
    at : ndarray of shape input_shape, optional, keyword-only
        A point: decompose the model's Jacobian there (:func:`matconv.jacobian`).
    method : {'auto', 'dense', 'svds', 'svds-matrix-free', 'fft'}, keyword-only
        See the module notes; ``'auto'`` picks.
    tol : float, keyword-only
        ``svds``'s tolerance (0: machine precision).
    maxiter : int, optional, keyword-only
        ``svds``'s iteration limit.

    Returns
    -------
    SingularValues of shape (k,), or (min(m, n),) for ``which='all'``
        Descending (so ``s[-1]`` is the smallest), float64, with ``method`` and ``residual``.

    Raises
    ------
    ValueError
        Bad ``which``, ``k``, ``method`` or shapes; a nonlinear model without ``at``; a dense
        SVD or an explicit matrix over the memory budget.
    TypeError
        An unsupported module or object, a complex operator.

    Examples
    --------
    >>> from matconv import nn
    >>> conv = nn.Conv1d(1, 1, 2, bias=False, dtype=np.float64)
    >>> conv.weight.data[...] = [[[1.0, 1.0]]]
    >>> s = singular_values(conv, (1, 3), which="all")
    >>> s.method, bool(np.allclose(s, [np.sqrt(3), 1.0], rtol=1e-14))  # A = [[1,1,0], [0,1,1]]
    ('dense', True)
    >>> s.residual < 1e-15
    True
    """
    which = _check_which(which)
    _check_tol(tol, maxiter)
    src = resolve(op, input_shape, at)
    k = _check_k(k, which, min(src.shape))
    return _compute(src, which, k, _choose(src, which, k, method), tol, maxiter)


def operator_norm(op, input_shape=None, *, at=None, method="auto", tol=0.0,
                  maxiter=None) -> float:
    """The operator norm (largest singular value) ``||A||_2`` of ``op`` (see
    :func:`singular_values`).

    Examples
    --------
    >>> from matconv import nn
    >>> pool = nn.AvgPool1d(2)
    >>> round(operator_norm(pool, (1, 4)), 12)   # each output averages 2 cells: 1/sqrt(2)
    0.707106781187
    """
    s = singular_values(op, input_shape, 1, "largest", at=at, method=method, tol=tol,
                        maxiter=maxiter)
    return float(s[0])


def condition_number(op, input_shape=None, *, at=None, method="auto", tol=0.0,
                     maxiter=None) -> float:
    """``sigma_max / sigma_min`` over the ``min(m, n)`` singular values, like ``numpy.linalg.cond``.

    ``inf`` when ``sigma_min`` is 0. Uses one dense SVD or FFT when ``method`` resolves to one,
    else two ``svds`` runs (largest and smallest).

    Examples
    --------
    >>> round(condition_number(np.diag([4.0, 2.0, 0.5])), 12)
    8.0
    """
    _check_tol(tol, maxiter)
    src = resolve(op, input_shape, at)
    chosen = _choose(src, "largest", 1, method)
    if chosen in ("dense", "fft"):
        s = _compute(src, "all", min(src.shape), chosen, tol, maxiter)
        largest, smallest = s[0], s[-1]
    else:
        largest = _compute(src, "largest", 1, chosen, tol, maxiter)[0]
        smallest = _compute(src, "smallest", 1, chosen, tol, maxiter)[0]
    return float(largest / smallest) if smallest > 0 else float("inf")
