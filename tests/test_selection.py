"""Max selection: the branch-free first maximum against a loop written from PyTorch's rule, the
backward scatter of disjoint and overlapping windows against the dense ``P.T``, and a ReLU's
boolean Jacobian against its float diagonal."""
import numpy as np
import pytest

from matconv import nn
from matconv.operators import Diagonal, Selection, first_max, max_pool_plan
from matconv.operators.selection import MaxPlan
from matconv.geometry import PoolGeometry


def reference_first_max(cols):
    """PyTorch's max-pool rule, one window at a time: a strictly greater value or a NaN
    replaces the current winner."""
    B, K, M = cols.shape
    best = np.empty((B, M), cols.dtype)
    arg = np.empty((B, M), np.intp)
    for b in range(B):
        for m in range(M):
            v, a = cols[b, 0, m], 0
            for k in range(1, K):
                c = cols[b, k, m]
                if c > v or np.isnan(c):
                    v, a = c, k
            best[b, m], arg[b, m] = v, a
    return best, arg


@pytest.mark.parametrize("nan", [True, False], ids=["with-nan", "without-nan"])
@pytest.mark.parametrize("K", [1, 2, 3, 4, 9, 130])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_max_is_the_first_maximum_and_the_last_nan(K, dtype, nan):
    """Both paths: the scan (some window holds a NaN) and the first tap equal to the maximum."""
    rng = np.random.default_rng(K)
    cols = rng.integers(-3, 4, size=(3, K, 40)).astype(dtype)   # many ties
    cols[rng.random(cols.shape) < 0.1] = -0.0                   # ties of 0.0 and -0.0
    cols[:, :, 0] = -np.inf                                     # a window of padding only
    if nan:
        cols[rng.random(cols.shape) < 0.05] = np.nan
        cols[0, :, 1] = np.nan                                  # NaN everywhere: the last wins
    best, arg = first_max(cols)
    want_best, want_arg = reference_first_max(cols)
    np.testing.assert_array_equal(arg, want_arg)
    np.testing.assert_array_equal(best, want_best)
    assert best.dtype == dtype and arg.dtype == np.intp
    if K > 1 and nan:
        assert arg[0, 1] == K - 1


@pytest.mark.parametrize("kernel,stride", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((3, 2), (2, 1))])
def test_the_backward_scatter_is_the_dense_transpose(kernel, stride):
    pool = PoolGeometry(kernel, stride, (0, 0), (1, 1), False)
    plan = max_pool_plan(pool, 2, (6, 5))
    assert plan.disjoint == (kernel == stride)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((plan.n_in, 3))
    Y, P = plan.apply(X)
    dY = rng.standard_normal(Y.shape)
    dX = P.rmatmat(dY)
    for n in range(3):
        dense = P.matrix(example=n).toarray()
        np.testing.assert_allclose(dense @ X[:, n], Y[:, n], rtol=0, atol=0)
        np.testing.assert_allclose(dense.T @ dY[:, n], dX[:, n], rtol=1e-14, atol=1e-14)
    # the same selection without its plan takes the general (sparse) path
    np.testing.assert_allclose(Selection(P.winners, P.shape[1]).rmatmat(dY), dX, atol=1e-14)


def test_relu_jacobian_is_a_boolean_mask_with_the_float_diagonal():
    x = np.array([[-1.0, 0.0, 2.0, np.nan]], dtype=np.float32)
    relu = nn.ReLU()
    relu(x)
    np.testing.assert_array_equal(relu.derivative(), [[0, 0, 1, 1]])
    assert relu.derivative().dtype == np.float32
    J = relu.matrix((4,))
    assert J.dtype == np.float32
    np.testing.assert_array_equal(J.toarray(), np.diag([0, 0, 1, 1]).astype(np.float32))
    D = Diagonal(np.array([[True], [False]]), dtype=np.float64)
    y = np.array([[3.0], [4.0]])
    np.testing.assert_array_equal(D.rmatmat(y), [[3.0], [0.0]])
    assert D.nbytes == 2 and D.dtype == np.float64


@pytest.mark.parametrize("kernel,size", [((2, 2), (8, 8)), ((2, 2), (7, 9)), ((3, 2), (9, 5)),
                                         ((2,), (11,)), ((2, 2, 2), (4, 5, 4)), ((1, 1), (3, 3))],
                         ids=str)
@pytest.mark.parametrize("nan", [False, True], ids=["finite", "with-nan"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiling_windows_read_x_in_place_like_the_gathered_windows(kernel, size, nan, dtype):
    """Windows that tile the input (stride = kernel, no padding, the remainder left out) are
    strided views of X: the same maxima, winners and backward as the gathered windows."""
    d = len(kernel)
    pool = PoolGeometry(kernel, kernel, (0,) * d, (1,) * d, False, ndim=d)
    plan = max_pool_plan(pool, 3, size)
    assert plan.tiling == (size, kernel)
    gathered = MaxPlan(plan.windows, plan.channels, plan.out_shape)   # the general path
    rng = np.random.default_rng(len(size))
    X = rng.integers(-2, 3, size=(plan.n_in, 5)).astype(dtype)       # many ties
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    Y, P = plan.apply(X)
    Y_ref, P_ref = gathered.apply(X)
    np.testing.assert_array_equal(Y, Y_ref)
    dY = rng.standard_normal(Y.shape).astype(dtype)
    dX = P.rmatmat(dY)  # a product per tap, from the won taps, before any index exists
    np.testing.assert_array_equal(dX, P_ref.rmatmat(dY))
    assert P._flat_index is None
    np.testing.assert_array_equal(P.winners, P_ref.winners)
    np.testing.assert_array_equal(P.matrix(example=1).toarray(),
                                  P_ref.matrix(example=1).toarray())
    # inf and NaN in the gradient: a product would spread NaN (inf * 0) over the losers
    dY[::3, 1], dY[1::4, 2] = np.inf, np.nan
    dX = P.rmatmat(dY)
    np.testing.assert_array_equal(dX, P_ref.rmatmat(dY))
    assert np.isnan(dX).sum() == np.isnan(dY).sum() and np.isinf(dX).sum() == np.isinf(dY).sum()
    assert Y.dtype == dtype and dX.dtype == dtype


@pytest.mark.parametrize("kernel,stride,padding,ceil", [((2, 2), (1, 1), (0, 0), False),
                                                         ((2, 2), (2, 2), (1, 1), False),
                                                         ((2, 2), (2, 2), (0, 0), True)])
def test_windows_that_do_not_tile_are_gathered(kernel, stride, padding, ceil):
    pool = PoolGeometry(kernel, stride, padding, (1, 1), ceil)
    assert max_pool_plan(pool, 2, (5, 5)).tiling is None
