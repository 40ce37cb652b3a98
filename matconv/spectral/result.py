"""The array of singular values that remembers how it was computed and how well.

Every function of :mod:`matconv.spectral` that returns singular values returns a
:class:`SingularValues`: an ``ndarray`` of float64, in descending order, with three attributes:

``method``
    ``'dense'``, ``'svds'``, ``'svds-matrix-free'`` or ``'fft'``.
``residual``
    How far the answer is from exact, relative to ``s.max()`` (see below).
``operator_shape``
    ``(m, n)``, the shape of the operator ``A``.

**What** ``residual`` **means.** For ``'dense'`` and the ``'svds'`` methods each returned value
``s_i`` comes with unit singular vectors ``u_i``, ``v_i``; its *triplet residual* is
``r_i = sqrt((||A v_i - s_i u_i||^2 + ||A.T u_i - s_i v_i||^2) / 2)``, checked against ``A``
itself. Some singular value of ``A`` lies within ``r_i`` of ``s_i`` (``[u; v] / sqrt(2)`` is an
approximate eigenvector, with residual ``r_i``, of the symmetric matrix ``[[0, A], [A.T, 0]]``
whose eigenvalues are ``+-sigma``), so ``residual = max_i r_i / s.max()`` bounds the error of every
returned value, relative to the largest one returned (absolute if all are 0). The values
themselves are usually far more accurate than this bound: a symmetric eigenvalue's error is of
the order of the residual squared over the gap to its neighbours.

For ``'fft'`` the singular values are those of small per-frequency matrices, unitarily similar
to ``A`` through the discrete Fourier transform; ``residual`` is then
``||A x - F(x)|| / ||A x||`` for a random ``x``, where ``F`` applies the per-frequency matrices
through FFTs: how exactly the Fourier form describes this operator.
"""
from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "SingularValues"]

#: What ``method`` can say, and what ``method=`` accepts besides ``'auto'``.
METHODS = ("dense", "svds", "svds-matrix-free", "fft")


class SingularValues(np.ndarray):
    """Singular values in descending order, with ``method``, ``residual`` and ``operator_shape``.

    It is an ``ndarray``: index it, compare it, pass it to numpy. Slices keep the attributes;
    arithmetic gives plain arrays (the result is no longer the singular values).

    Examples
    --------
    >>> s = SingularValues([3.0, 1.0], method="dense", residual=1e-16, operator_shape=(2, 2))
    >>> s
    SingularValues([3., 1.], method='dense', residual=1e-16, operator_shape=(2, 2))
    >>> float(s[0]), s[:1].method, type(s * 2).__name__
    (3.0, 'dense', 'ndarray')
    """

    def __new__(cls, values, *, method: str, residual: float, operator_shape: tuple):
        obj = np.asarray(values, dtype=np.float64).view(cls)
        obj.method = method
        obj.residual = float(residual)
        obj.operator_shape = tuple(operator_shape)
        return obj

    def __array_finalize__(self, obj):
        self.method = getattr(obj, "method", None)
        self.residual = getattr(obj, "residual", float("nan"))
        self.operator_shape = getattr(obj, "operator_shape", None)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # ufunc results (s * 2, s / s[0], s.max()) are new numbers, not singular values
        array = np.asarray(array).view(np.ndarray)
        return array[()] if return_scalar else array

    def __repr__(self) -> str:
        values = np.array2string(self.view(np.ndarray), separator=", ", prefix="SingularValues(")
        return (f"SingularValues({values}, method={self.method!r}, residual={self.residual:.3g}, "
                f"operator_shape={self.operator_shape})")

    @property
    def values(self) -> np.ndarray:
        """The numbers as a plain ``ndarray``."""
        return self.view(np.ndarray)
