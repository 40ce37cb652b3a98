"""The operator protocol, without torch: for every operator kind and both lowerings the dot test
``<A u, v> == <u, A.T v>``, ``op.T.matrix() == op.matrix().T`` exactly, ``matmat`` equal to
``matrix() @``, composition; and for every layer kind ``backward(dy) == matrix(shape).T @ dy``."""
from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp

import matconv as mc
from matconv import nn
from matconv import operators as ops
from matconv.geometry import ConvGeometry, PoolGeometry


class Case(NamedTuple):
    name: str
    build: object  # rng -> Operator

    def __str__(self):
        return self.name


def _conv(lowering, *args, transpose=False, **kw):
    def build(rng):
        g = ConvGeometry(*args, **kw)
        size = (7,) * g.ndim if g.ndim < 3 else (5, 4, 6)
        op = ops.conv_plan(g, size, lowering=lowering).at(rng.standard_normal(g.weight_shape))
        return op.T if transpose else op
    return build


def _node(size):
    class Node:
        pass
    n = Node()
    n.size = size
    return n


def _graph(rng):
    """``y = A x + diag(d) x``: a residual-like graph of two records."""
    class Record:
        def __init__(self, op, inputs, output):
            self.op, self.inputs, self.output = op, inputs, output
    x, h, y = _node(6), _node(6), _node(6)
    A = ops.Dense(rng.standard_normal((6, 6)))
    join = ops.BlockRow(ops.Identity(6), ops.Diagonal(rng.standard_normal(6), fixed=True))
    return ops.Graph([Record(A, (x,), h), Record(join, (h, x), y)], [x], [y])


def _sprand(shape, density, rng):
    return sp.csr_array(rng.standard_normal(shape) * (rng.random(shape) < density))


def _selection(rng):
    return ops.Selection(rng.integers(0, 9, (5, 3)), 9)


CASES = []
for lowering in ops.LOWERINGS:
    CASES += [
        Case(f"conv1d-{lowering}", _conv(lowering, 2, 3, 3, 2, 1, ndim=1)),
        Case(f"conv2d-dilated-groups-{lowering}", _conv(lowering, 4, 2, 3, 1, "same", 2, 2)),
        Case(f"conv2d-reflect-{lowering}", _conv(lowering, 1, 2, 3, 1, 2, padding_mode="reflect")),
        Case(f"conv2d-circular-stride-{lowering}",
             _conv(lowering, 2, 2, (3, 2), 2, 1, padding_mode="circular")),
        Case(f"conv3d-replicate-{lowering}", _conv(lowering, 1, 2, 2, 1, 1,
                                                   padding_mode="replicate", ndim=3)),
        Case(f"conv2d-transposed-{lowering}", _conv(lowering, 3, 2, 3, 2, 1, transpose=True)),
    ]
CASES += [
    Case("sparse", lambda rng: ops.SparseOperator(_sprand((6, 9), 0.4, rng))),
    Case("avg-pool", lambda rng: ops.avg_pool_operator(PoolGeometry(2, 1, 1), 2, (5, 5))),
    Case("adaptive-avg", lambda rng: ops.adaptive_avg_operator(3, (7, 5), (3, 2))),
    Case("upsample-bilinear", lambda rng: ops.upsample_operator(
        "bilinear", 2, (3, 4), (7, 9), False, (None, None), np.float64)),
    Case("selection", _selection),
    Case("diagonal-shared", lambda rng: ops.Diagonal(rng.standard_normal(7), fixed=True)),
    Case("diagonal-per-example", lambda rng: ops.Diagonal(rng.standard_normal((7, 3)))),
    Case("dense", lambda rng: ops.Dense(rng.standard_normal((4, 6)))),
    Case("dense-repeated", lambda rng: ops.Dense(rng.standard_normal((4, 3)), repeat=2)),
    Case("softmax", lambda rng: ops.SoftmaxJacobian(_softmax(rng, (3, 2, 4), 2), 2)),
    Case("log-softmax", lambda rng: ops.SoftmaxJacobian(_softmax(rng, (3, 5), 1), 1, log=True)),
    Case("identity-scaled", lambda rng: ops.Identity(5, scale=-2.5)),
    Case("scaled", lambda rng: 3.0 * ops.Dense(rng.standard_normal((2, 3)))),
    Case("sum", lambda rng: ops.Dense(rng.standard_normal((3, 3))) - ops.Identity(3)),
    Case("product", lambda rng: ops.Dense(rng.standard_normal((2, 4))) @ ops.SparseOperator(
        _sprand((4, 5), 0.5, rng))),
    Case("block-row", lambda rng: ops.BlockRow(ops.Dense(rng.standard_normal((3, 2))),
                                               ops.Diagonal(rng.standard_normal((3, 4)))
                                               @ ops.Dense(rng.standard_normal((3, 5))))),
    Case("graph", _graph),
]


def _softmax(rng, shape, axis):
    e = np.exp(rng.standard_normal(shape))
    return e / e.sum(axis=axis, keepdims=True)


def _columns(op):
    return op.batch if op.batch is not None else 3


@pytest.mark.parametrize("case", CASES, ids=str)
def test_dot_test(case, rng):
    op = case.build(rng)
    N = _columns(op)
    U = rng.standard_normal((op.shape[1], N))
    V = rng.standard_normal((op.shape[0], N))
    lhs, rhs = np.sum(op.matmat(U) * V), np.sum(U * op.rmatmat(V))
    assert np.isclose(lhs, rhs, rtol=1e-11, atol=1e-12)
    # .T is a view that swaps the two
    assert op.T.T is op or op.T.T.shape == op.shape
    np.testing.assert_array_equal(op.T.matmat(V), op.rmatmat(V))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_transpose_matrix_is_the_matrix_transposed(case, rng):
    op = case.build(rng)
    for k in range(op.batch or 1):
        example = k if op.batch is not None else None
        M = op.matrix(example).toarray()
        np.testing.assert_array_equal(op.T.matrix(example).toarray(), M.T)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matmat_is_matrix_times_columns(case, rng):
    op = case.build(rng)
    N = _columns(op)
    U = rng.standard_normal((op.shape[1], N))
    Y = op.matmat(U)
    assert Y.shape == (op.shape[0], N)
    for k in range(N):
        example = k if op.batch is not None else None
        np.testing.assert_allclose(Y[:, k], op.matrix(example) @ U[:, k], rtol=1e-12, atol=1e-12)
    lin = op.linear_operator(0 if op.batch is not None else None)
    np.testing.assert_allclose(lin.matvec(U[:, 0]), Y[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.rmatvec(Y[:, 0]), op.matrix(
        0 if op.batch is not None else None).T @ Y[:, 0], rtol=1e-12, atol=1e-12)


def test_composition_is_lazy_and_exact(rng):
    A = ops.conv_plan(ConvGeometry(1, 2, 3, ndim=1), (8,)).at(rng.standard_normal((2, 1, 3)))
    B = ops.SparseOperator(_sprand((8, 5), 0.5, rng))
    C = A @ B
    assert isinstance(C, ops.Product) and C.shape == (12, 5)
    X = rng.standard_normal((5, 2))
    np.testing.assert_allclose(C.matmat(X), A.matmat(B.matmat(X)), rtol=1e-12)
    np.testing.assert_allclose(C.matrix().toarray(), A.matrix().toarray() @ B.matrix().toarray(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match=r"cannot compose operators of shapes \(12, 5\) @ "):
        C @ A


def test_both_lowerings_give_the_same_operator(rng):
    g = ConvGeometry(3, 4, 3, 2, 1, 2, padding_mode="reflect")
    w = rng.standard_normal(g.weight_shape)
    a, b = (ops.conv_plan(g, (9, 8), lowering=lw).at(w) for lw in ops.LOWERINGS)
    X = rng.standard_normal((a.shape[1], 4))
    np.testing.assert_allclose(a.matmat(X), b.matmat(X), rtol=1e-12)
    Y = rng.standard_normal((a.shape[0], 4))
    np.testing.assert_allclose(a.rmatmat(Y), b.rmatmat(Y), rtol=1e-12)
    np.testing.assert_array_equal(a.matrix().toarray(), b.matrix().toarray())


def test_conv_weight_gradient_is_the_sampled_product(rng):
    """``dW_m = sum_n dy_n^T E_m x_n`` over the weight-index map, both lowerings."""
    g = ConvGeometry(2, 4, 3, 1, 1, groups=2, padding_mode="circular")
    w = rng.standard_normal(g.weight_shape)
    X = rng.standard_normal((2 * 36, 3))
    dY = rng.standard_normal((4 * 36, 3))
    s = mc.lowering.conv_structure(g, (6, 6))
    rows = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
    expected = np.zeros(w.size)
    np.add.at(expected, s.weight_index, np.sum(dY[rows] * X[s.indices], axis=1))
    for lowering in ops.LOWERINGS:
        op = ops.conv_plan(g, (6, 6), lowering=lowering).at(w)
        _, saved = op.apply(X)
        np.testing.assert_allclose(op.weight_grad(saved, dY).ravel(), expected, rtol=1e-12)
        op.release(saved)


def test_operator_errors_name_the_shape():
    op = ops.Dense(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dense.matmat expects an array of shape \(3, N\)"):
        op.matmat(np.ones((4, 1)))
    with pytest.raises(TypeError, match=r"expects a numpy ndarray"):
        op.matmat([[1.0]])
    with pytest.raises(TypeError, match=r"real numeric array, got dtype complex128"):
        op.matmat(np.ones((3, 1), complex))
    sel = ops.Selection(np.zeros((2, 4), int), 3)
    with pytest.raises(ValueError, match=r"recorded for 4 examples, got 2 columns"):
        sel.matmat(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"example must be an int in \[0, 4\)"):
        sel.matrix(example=4)


# ---------------------------------------------------------------- every layer: backward = M.T dy
F64 = dict(dtype=np.float64)


def _layers():
    yield "conv1d", lambda: nn.Conv1d(2, 3, 3, 2, 1, **F64), (2, 9)
    for lw in ops.LOWERINGS:
        yield f"conv2d-{lw}", lambda lw=lw: nn.Conv2d(2, 2, 3, 1, 1, 2, 2, lowering=lw, **F64), \
            (2, 6, 5)
    yield "conv2d-reflect", lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect", **F64), \
        (1, 5, 5)
    yield "conv3d", lambda: nn.Conv3d(1, 2, 2, **F64), (1, 3, 4, 3)
    yield "convT1d", lambda: nn.ConvTranspose1d(2, 3, 3, 2, 1, 1, **F64), (2, 4)
    yield "convT2d", lambda: nn.ConvTranspose2d(2, 2, 3, 2, 1, groups=2, **F64), (2, 3, 4)
    yield "maxpool1d", lambda: nn.MaxPool1d(3, 2, 1), (2, 9)
    yield "maxpool2d", lambda: nn.MaxPool2d(2, ceil_mode=True), (2, 5, 5)
    yield "maxpool3d", lambda: nn.MaxPool3d(2), (1, 4, 4, 4)
    yield "avgpool2d", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 6, 5)
    yield "adaptive-avg1d", lambda: nn.AdaptiveAvgPool1d(3), (2, 7)
    yield "adaptive-avg2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 5, 7)
    yield "adaptive-max2d", lambda: nn.AdaptiveMaxPool2d(2), (2, 5, 5)
    yield "channel-max", lambda: nn.ChannelMaxPool(2), (4, 3, 2)
    yield "lppool1d", lambda: nn.LPPool1d(2, 2), (2, 8)
    yield "lppool2d", lambda: nn.LPPool2d(3, 2), (1, 4, 4)
    yield "upsample-nearest", lambda: nn.Upsample(scale_factor=2), (2, 3, 2)
    yield "upsample-linear", lambda: nn.Upsample(size=7, mode="linear"), (2, 4)
    yield "upsample-bilinear", lambda: nn.Upsample(scale_factor=1.5, mode="bilinear",
                                                   align_corners=True), (1, 3, 4)
    for act in (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh):
        yield act.__name__, act, (3, 4)
    yield "softmax", lambda: nn.Softmax(dim=1), (4, 3)
    yield "log-softmax", lambda: nn.LogSoftmax(dim=-1), (2, 5)
    yield "linear", lambda: nn.Linear(4, 3, **F64), (4,)
    yield "linear-positions", lambda: nn.Linear(4, 3, **F64), (2, 4)
    yield "flatten", nn.Flatten, (2, 3, 2)
    yield "dropout", lambda: nn.Dropout(0.3, rng=np.random.default_rng(0)), (3, 4)
    yield "identity", nn.Identity, (2, 3)


LAYERS = list(_layers())


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_backward_is_the_matrix_transposed(name, make, shape, rng):
    layer = make()
    x = rng.standard_normal((3, *shape))
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    data_dependent = layer.operator(shape).batch is not None
    for n in range(3):
        M = layer.matrix(shape, example=n) if data_dependent else layer.matrix(shape)
        assert M.shape == (y[n].size, x[n].size)
        np.testing.assert_allclose(M.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-12, atol=1e-12)
        assert layer.output_shape(shape) == y.shape[1:]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_forward_is_the_matrix(name, make, shape, rng):
    """``y = M x (+ bias)``: the recorded operator is the map the forward applied (its
    Jacobian for a nonlinear layer, checked by a directional finite difference)."""
    layer = make()
    x = rng.standard_normal((2, *shape))
    y = layer(x)
    op = layer.operator(shape)
    u = rng.standard_normal(x.shape)
    if op.fixed:
        bias = layer(np.zeros_like(x))
        layer(x)
        for n in range(2):
            np.testing.assert_allclose(layer.matrix(shape) @ x[n].ravel() + bias[n].ravel(),
                                       y[n].ravel(), rtol=1e-11, atol=1e-12)
        return
    if isinstance(layer, nn.Dropout):
        return  # a fresh mask on every forward: checked by the transposition test above
    J = [layer.matrix(shape, example=n) for n in range(2)]
    eps = 1e-6
    plus, minus = layer(x + eps * u), layer(x - eps * u)
    for n in range(2):
        fd = (plus[n] - minus[n]).ravel() / (2 * eps)
        np.testing.assert_allclose(J[n] @ u[n].ravel(), fd, rtol=1e-5, atol=1e-6)
