"""The operator protocol, in scipy's words, and the operators that combine others.

An :class:`Operator` is a linear map on the unrolled vector of *one example* (``shape = (m, n)``),
applied to batch-last 2-D arrays whose columns are examples: ``matmat(X)`` takes ``(n, N)`` and
returns ``(m, N)``; ``rmatmat(Y)`` applies the transpose. ``op.T`` is a cheap view that swaps the
two (never a copy of data), ``op.matrix()`` the ``scipy.sparse.csr_array`` of the map (a copy the
caller owns), ``op.linear_operator()`` a ``scipy.sparse.linalg.LinearOperator``, and ``A @ B`` a
lazy product. A data-dependent operator (a ReLU mask, a max pool's selection) differs per example:
its ``batch`` is the number of columns it was built for, and ``matrix(example=k)`` is example
``k``'s matrix. ``fixed`` says whether the map is independent of the values it was recorded at.

>>> import numpy as np
>>> D = Diagonal(np.array([1.0, 2.0]), fixed=True)
>>> P = Identity(2, scale=3.0) @ D
>>> P.matmat(np.ones((2, 1))).ravel()
array([3., 6.])
>>> P.T.matrix().toarray()
array([[3., 0.],
       [0., 6.]])
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from ..memory import check_memory
from .buffers import shared_pool

__all__ = ["Operator", "Transposed", "Product", "Sum", "Scaled", "Identity", "Diagonal",
           "BlockRow"]


def _check_example(example, batch):
    if example is None:
        return 0
    if batch is None:
        raise ValueError(f"example= applies to data-dependent operators (recorded for a batch); "
                         f"this operator is the same for every example, got example={example!r}")
    if not isinstance(example, numbers.Integral) or isinstance(example, bool) or example < 0 \
            or (batch is not None and example >= batch):
        allowed = f"an int in [0, {batch})" if batch is not None else "an int >= 0"
        raise ValueError(f"example must be {allowed} (the example of the recorded batch), got "
                         f"{example!r}")
    return int(example)


class Operator:
    """Base class: subclasses set ``shape`` and ``dtype`` and implement ``_matmat``,
    ``_rmatmat`` and ``_matrix(example)`` (a fresh CSR array the caller may keep)."""

    shape: tuple = (0, 0)
    dtype = np.dtype(np.float64)
    #: number of columns a data-dependent operator was built for (None: the same map for all)
    batch = None
    #: True when the map does not depend on the values it was recorded at
    fixed = True
    #: True for operators that cast their input to ``dtype`` (weights decide the precision)
    casts_input = False

    # ---- the protocol
    def matmat(self, X: np.ndarray) -> np.ndarray:
        """``A X`` for a batch-last array ``X`` of shape ``(n, N)``."""
        return self._matmat(self._check(X, self.shape[1], "matmat"))

    def rmatmat(self, Y: np.ndarray) -> np.ndarray:
        """``A.T Y`` for a batch-last array ``Y`` of shape ``(m, N)``."""
        return self._rmatmat(self._check(Y, self.shape[0], "rmatmat"))

    def matvec(self, x) -> np.ndarray:
        """``A x`` for one example's vector."""
        return self.matmat(np.reshape(x, (-1, 1)))[:, 0]

    def rmatvec(self, y) -> np.ndarray:
        """``A.T y`` for one example's vector."""
        return self.rmatmat(np.reshape(y, (-1, 1)))[:, 0]

    @property
    def T(self) -> Operator:
        """The transpose: a view that swaps ``matmat`` and ``rmatmat``."""
        return Transposed(self)

    H = T

    def transpose(self) -> Operator:
        return self.T

    def matrix(self, example=None) -> sp.csr_array:
        """The map as a CSR array of its own (for a data-dependent operator, of ``example``)."""
        return sp.csr_array(self._matrix(_check_example(example, self.batch)))

    def check_matrix(self) -> None:
        """Raise ``ValueError`` if :meth:`matrix` would exceed the memory budget (an estimate:
        nothing is built)."""

    def toarray(self, example=None) -> np.ndarray:
        return self.matrix(example).toarray()

    def pattern(self) -> sp.csr_array:
        """Where the map *can* be nonzero, whatever the data: 1 at every possible path."""
        M = sp.csr_array(self._pattern())
        M.data = np.ones_like(M.data)
        return M

    def linear_operator(self, example=None):
        """The map as a ``scipy.sparse.linalg.LinearOperator`` on one example's vector.

        Shared operators stay matrix-free (``matvec`` is ``matmat`` of one column); a
        data-dependent operator is the matrix of ``example``.
        """
        from scipy.sparse.linalg import LinearOperator, aslinearoperator

        if self.batch is not None and self.batch != 1:
            return aslinearoperator(self.matrix(example))
        dtype = np.dtype(np.float64) if self.dtype.kind != "f" else self.dtype
        return LinearOperator(self.shape, dtype=dtype, matvec=self.matvec, rmatvec=self.rmatvec,
                              matmat=self.matmat, rmatmat=self.rmatmat)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this operator keeps (for the structure cache)."""
        return 0

    @property
    def nnz(self):
        """Stored entries of one example's matrix, when known without building it (else None)."""
        return None

    # ---- composition
    def __matmul__(self, other):
        if isinstance(other, Operator):
            return Product(self, other)
        if isinstance(other, np.ndarray):
            return self.matvec(other) if other.ndim == 1 else self.matmat(other)
        return NotImplemented

    def __add__(self, other):
        return Sum(self, other) if isinstance(other, Operator) else NotImplemented

    def __sub__(self, other):
        return Sum(self, Scaled(other, -1.0)) if isinstance(other, Operator) else NotImplemented

    def __neg__(self):
        return Scaled(self, -1.0)

    def __mul__(self, scalar):
        if isinstance(scalar, numbers.Real) and not isinstance(scalar, bool):
            return Scaled(self, float(scalar))
        return NotImplemented

    __rmul__ = __mul__

    def __repr__(self) -> str:
        extra = f" batch={self.batch}" if self.batch is not None else ""
        return f"<{type(self).__name__} {self.shape[0]}x{self.shape[1]}{extra}>"

    # ---- defaults for subclasses
    def _matrix_t(self, example) -> sp.csr_array:
        return sp.csr_array(self._matrix(example)).T.tocsr()

    def _pattern(self):
        return self._matrix(0)

    def _check_output(self, rows: int, X: np.ndarray, what: str = "the output") -> None:
        """Estimate a product's output ``(rows, N)`` against the memory budget first."""
        check_memory(rows * X.shape[1] * max(X.itemsize, self.dtype.itemsize),
                     f"{what} of {type(self).__name__} ({rows} x {X.shape[1]})",
                     "use a smaller batch")

    def _check(self, X, rows: int, what: str) -> np.ndarray:
        if not isinstance(X, np.ndarray):
            raise TypeError(f"{type(self).__name__}.{what} expects a numpy ndarray of shape "
                            f"({rows}, N), got {type(X).__name__}")
        if X.ndim != 2 or X.shape[0] != rows:
            raise ValueError(f"{type(self).__name__}.{what} expects an array of shape ({rows}, N) "
                             f"(one column per example), got shape {X.shape}")
        if self.batch is not None and X.shape[1] != self.batch:
            raise ValueError(f"{type(self).__name__}.{what}: this data-dependent operator was "
                             f"recorded for {self.batch} examples, got {X.shape[1]} columns")
        if X.dtype.kind not in "fiub":
            raise TypeError(f"{type(self).__name__}.{what} expects a real numeric array, got "
                            f"dtype {X.dtype}")
        if self.casts_input and X.dtype != self.dtype:
            return X.astype(self.dtype)
        return X if X.dtype.kind == "f" else X.astype(np.float64)


def _common(ops, what):
    batches = {op.batch for op in ops if op.batch is not None}
    if len(batches) > 1:
        raise ValueError(f"cannot {what} operators recorded for different batch sizes "
                         f"{sorted(batches)}")
    return (batches.pop() if batches else None, all(op.fixed for op in ops),
            np.result_type(*[op.dtype for op in ops]))


class Transposed(Operator):
    """``A.T``: the same operator read the other way (no data is copied)."""

    def __init__(self, op: Operator):
        self.op = op
        self.shape = op.shape[::-1]
        self.dtype, self.batch, self.fixed = op.dtype, op.batch, op.fixed
        self.casts_input = op.casts_input

    @property
    def T(self):
        return self.op

    @property
    def nnz(self):
        return self.op.nnz

    def check_matrix(self):
        self.op.check_matrix()

    def _matmat(self, X):
        return self.op._rmatmat(X)

    def _rmatmat(self, Y):
        return self.op._matmat(Y)

    def _matrix(self, example):
        return self.op._matrix_t(example)

    def _matrix_t(self, example):
        return self.op._matrix(example)

    def _pattern(self):
        return sp.csr_array(self.op._pattern()).T

    def __repr__(self):
        return f"{self.op!r}.T"


class Product(Operator):
    """The lazy product ``A @ B``: ``matmat`` applies ``B`` then ``A``."""

    def __init__(self, a: Operator, b: Operator):
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"cannot compose operators of shapes {a.shape} @ {b.shape}: "
                             f"{a.shape[1]} != {b.shape[0]}")
        self.a, self.b = a, b
        self.shape = (a.shape[0], b.shape[1])
        self.batch, self.fixed, self.dtype = _common((a, b), "compose")

    def check_matrix(self):
        self.a.check_matrix()
        self.b.check_matrix()

    def _matmat(self, X):
        return self.a._matmat(self.b._matmat(X))

    def _rmatmat(self, Y):
        return self.b._rmatmat(self.a._rmatmat(Y))

    def _matrix(self, example):
        return sp.csr_array(self.a._matrix(example) @ self.b._matrix(example))

    def _pattern(self):
        return self.a.pattern() @ self.b.pattern()


class Sum(Operator):
    """``A + B + ...`` of operators of one shape."""

    def __init__(self, *ops: Operator):
        if len({op.shape for op in ops}) != 1:
            raise ValueError(f"cannot add operators of shapes {[op.shape for op in ops]}")
        self.ops = ops
        self.shape = ops[0].shape
        self.batch, self.fixed, self.dtype = _common(ops, "add")

    def _matmat(self, X):
        return sum(op._matmat(X) for op in self.ops)

    def _rmatmat(self, Y):
        return sum(op._rmatmat(Y) for op in self.ops)

    def _matrix(self, example):
        return sp.csr_array(sum(op._matrix(example) for op in self.ops))

    def _pattern(self):
        return sum(op.pattern() for op in self.ops)


class Scaled(Operator):
    """``c A`` for a number ``c``."""

    def __init__(self, op: Operator, scale: float):
        self.op, self.scale = op, float(scale)
        self.shape, self.batch, self.fixed, self.dtype = op.shape, op.batch, op.fixed, op.dtype

    def _matmat(self, X):
        return self.scale * self.op._matmat(X)

    def _rmatmat(self, Y):
        return self.scale * self.op._rmatmat(Y)

    def _matrix(self, example):
        return self.scale * sp.csr_array(self.op._matrix(example))

    def _pattern(self):
        return self.op.pattern()


class Identity(Operator):
    """``c I`` on vectors of ``n`` entries (``c = 1`` returns its input unchanged).

    >>> Identity(3).matrix().toarray().diagonal()
    array([1., 1., 1.])
    """

    def __init__(self, n: int, scale: float = 1.0, dtype=np.float64):
        self.shape, self.scale, self.dtype = (int(n), int(n)), float(scale), np.dtype(dtype)

    @property
    def nnz(self):
        return self.shape[0]

    def _matmat(self, X):
        return X if self.scale == 1.0 else self.scale * X

    _rmatmat = _matmat

    def _matrix(self, example):
        return self.scale * sp.eye_array(self.shape[0], dtype=self.dtype, format="csr")


class Diagonal(Operator):
    """``diag(d)``: the Jacobian of an element-wise map, a mask, a per-entry scale.

    Parameters
    ----------
    d : ndarray of shape (n,) or (n, N)
        One diagonal for every example, or one per column (a data-dependent operator).
    fixed : bool
        Whether ``d`` is independent of the data it was recorded at (a mask of ReLU is not;
        an evaluation-mode normalisation is).
    dtype : dtype, optional
        The operator's dtype when ``d`` is a boolean mask (kept as booleans: an eighth of the
        memory of a float32 diagonal); by default ``d.dtype``.

    >>> Diagonal(np.array([[1.0, 0.0], [2.0, 3.0]]), fixed=False).matrix(example=1).toarray()
    array([[0., 0.],
           [0., 3.]])
    >>> Diagonal(np.array([True, False]), dtype=np.float32).d
    array([1., 0.], dtype=float32)
    """

    def __init__(self, d: np.ndarray, fixed: bool = False, dtype=None):
        d = np.asarray(d)
        if d.ndim not in (1, 2):
            raise ValueError(f"d must have shape (n,) or (n, N), got {d.shape}")
        self._d = d
        self.shape = (d.shape[0], d.shape[0])
        self.batch = d.shape[1] if d.ndim == 2 else None
        self.dtype = np.dtype(d.dtype if dtype is None else dtype)
        self.fixed = bool(fixed)

    @property
    def d(self) -> np.ndarray:
        """The diagonal, in the operator's dtype."""
        return self._d.astype(self.dtype, copy=False)

    @property
    def nnz(self):
        return self.shape[0]

    def _matmat(self, X):
        d = self._d  # a boolean mask multiplies as 0/1 without a float copy of it
        dtype = np.result_type(self.dtype, X.dtype)
        return np.multiply(d if d.ndim == 2 else d[:, None], X, dtype=dtype,
                           out=shared_pool().result(X.shape, dtype, "the product"))

    _rmatmat = _matmat

    def _matrix(self, example):
        d = self.d[:, example] if self.d.ndim == 2 else self.d
        return sp.diags_array(d, format="csr")

    def _pattern(self):
        return sp.eye_array(self.shape[0], format="csr")

    @property
    def nbytes(self):
        return self._d.nbytes


class BlockRow(Operator):
    """``[A_1 A_2 ...]``: one output from several stacked inputs (``x + y``, ``a * b``).

    ``matmat`` takes the inputs stacked by rows; ``rmatmat`` returns each input's share stacked
    the same way.
    """

    def __init__(self, *ops: Operator):
        if len({op.shape[0] for op in ops}) != 1:
            raise ValueError(f"blocks of a row need one output size, got "
                             f"{[op.shape for op in ops]}")
        self.ops = ops
        self.splits = np.cumsum([op.shape[1] for op in ops])[:-1]
        self.shape = (ops[0].shape[0], sum(op.shape[1] for op in ops))
        self.batch, self.fixed, self.dtype = _common(ops, "stack")

    def _matmat(self, X):
        return sum(op._matmat(part) for op, part in zip(self.ops, np.split(X, self.splits)))

    def _rmatmat(self, Y):
        return np.concatenate([op._rmatmat(Y) for op in self.ops])

    def _matrix(self, example):
        return sp.hstack([op._matrix(example) for op in self.ops], format="csr")

    def _pattern(self):
        return sp.hstack([op.pattern() for op in self.ops], format="csr")
