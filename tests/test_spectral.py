"""matconv.spectral: singular values against dense numpy.linalg.svd of independently built matrices,
the FFT formula against the dense SVD, the solvers against each other, and the errors.

Dense oracles for convolutions come from the direct loops of ``tests/reference.py`` applied to
every unit vector, not from matconv's lowering.
"""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from matconv import nn, set_memory_budget
from matconv.spectral import (
    SingularValues,
    condition_number,
    fft_singular_values,
    operator_norm,
    reshaped_weight_norm,
    singular_values,
)

from . import reference as ref

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def columns(apply, in_shape):
    """The dense matrix of a linear map of one example, one unit vector at a time."""
    n = math.prod(in_shape)
    y = apply(np.eye(n).reshape(n, *in_shape))
    return y.reshape(n, -1).T


def svd(A):
    return np.linalg.svd(A, compute_uv=False)


def close(a, b, rel=1e-10):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(b).max(), 1e-300)
    assert np.abs(a - b).max() <= rel * scale, np.abs(a - b).max() / scale


@pytest.fixture
def budget():
    """Set the memory budget for one test and restore the default after."""
    previous = []

    def set_to(nbytes):
        previous.append(set_memory_budget(nbytes))

    yield set_to
    set_memory_budget(None)


# --------------------------------------------------------------------------- every geometry
CONV_CASES = [  # ndim, C_in, C_out, kernel, stride, padding, dilation, groups, mode, spatial
    (1, 2, 3, 3, 1, 1, 1, 1, "zeros", (9,)),
    (1, 2, 4, 3, 2, 2, 1, 2, "zeros", (10,)),
    (1, 3, 2, 2, 1, "same", 2, 1, "reflect", (8,)),
    (1, 2, 2, 3, 1, ((2, 0),), 1, 1, "replicate", (7,)),
    (1, 1, 1, 4, 1, ((2, 1),), 1, 1, "circular", (9,)),
    (2, 2, 3, 3, 2, 1, 1, 1, "zeros", (6, 5)),
    (2, 2, 2, 3, 1, 1, 1, 2, "reflect", (5, 5)),
    (2, 1, 3, (2, 3), 1, 0, (2, 1), 1, "zeros", (6, 5)),
    (2, 2, 2, 3, (1, 2), 1, 1, 1, "replicate", (5, 6)),
    (2, 2, 2, 3, 2, 1, 1, 1, "circular", (5, 5)),
    (3, 1, 2, 2, 1, 1, 1, 1, "zeros", (3, 3, 3)),
    (3, 2, 2, (1, 2, 2), 1, 0, 1, 2, "circular", (3, 4, 3)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-{c[8]}-s{c[4]}-g{c[7]}")
def test_conv_all_singular_values_equal_dense_svd(case, rng):
    nd, cin, cout, k, s, p, d, g, mode, spatial = case
    conv = CONV[nd](cin, cout, k, s, p, d, g, bias=False, padding_mode=mode, dtype=np.float64,
                    rng=rng)
    shape = (cin, *spatial)
    A = columns(lambda x: ref.conv_forward(x, conv.weight.data, s, p, d, g, mode), shape)
    got = singular_values(conv, shape, which="all")
    assert isinstance(got, SingularValues) and got.operator_shape == A.shape
    close(got, svd(A))
    assert got.residual < 1e-12


@pytest.mark.parametrize("nd, stride, padding, output_padding, dilation, groups", [
    (1, 2, 1, 1, 1, 1), (2, 2, 0, 0, 1, 2), (2, 1, 1, 0, 2, 1), (3, 2, 1, 1, 1, 1)])
def test_transposed_convolution_equals_dense_svd(nd, stride, padding, output_padding, dilation,
                                                  groups, rng):
    up = CONV_T[nd](2, 4, 3, stride, padding, output_padding, groups, bias=False,
                    dilation=dilation, dtype=np.float64, rng=rng)
    shape = (2, *(3,) * nd)
    A = columns(lambda x: ref.conv_transpose_forward(x, up.weight.data, stride, padding,
                                                     output_padding, dilation, groups), shape)
    close(singular_values(up, shape, which="all"), svd(A))
    close(singular_values(up, shape, k=2, which="smallest"), svd(A)[-2:])


@pytest.mark.parametrize("layer, shape", [
    (nn.AvgPool2d(2), (2, 6, 4)),
    (nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False), (1, 7)),
    (nn.AvgPool3d(2, stride=1), (1, 3, 3, 3)),
    (nn.AdaptiveAvgPool2d((2, 3)), (2, 5, 7)),
    (nn.Upsample(scale_factor=2), (1, 3, 2)),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), (2, 3, 3)),
    (nn.Linear(5, 3, dtype=np.float64), None),
], ids=lambda v: type(v).__name__ if not isinstance(v, tuple) and v is not None else "")
def test_fixed_linear_layers_equal_dense_svd(layer, shape):
    in_shape = shape if shape is not None else (5,)
    # the layer's own forward on unit vectors, its bias taken off
    A = columns(lambda x: layer(x) - layer(np.zeros_like(x)), in_shape)
    close(singular_values(layer, shape, which="all"), svd(A))
    close(operator_norm(layer, shape), svd(A)[0])


def test_sequential_linear_part_nested(rng):
    inner = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng),
                          nn.AvgPool2d(2))
    model = nn.Sequential(inner, nn.Conv2d(3, 2, 2, stride=2, dtype=np.float64, rng=rng),
                          nn.Flatten(), nn.Linear(4, 3, dtype=np.float64, rng=rng))
    shape = (2, 8, 4)
    A = columns(lambda x: model(x) - model(np.zeros_like(x)), shape)  # bias removed
    close(singular_values(model, shape, which="all"), svd(A))
    for method in ("dense", "svds", "svds-matrix-free"):
        close(singular_values(model, shape, k=2, method=method), svd(A)[:2])


# --------------------------------------------------------------------------- the FFT formula
FFT_CASES = [  # weight shape, input size, stride, dilation, groups, padding (per-side pairs)
    ((3, 2, 3), (16,), 1, 1, 1, ((1, 1),)),
    ((2, 4, 4), (12,), 1, 1, 2, ((3, 0),)),
    ((3, 3, 3, 3), (6, 6), 1, 1, 1, ((1, 1), (1, 1))),
    ((2, 3, 2, 3), (6, 7), 1, (2, 1), 1, ((0, 2), (2, 0))),
    ((6, 1, 3, 3), (5, 6), 1, 1, 3, ((1, 1), (1, 1))),
    ((2, 1, 3, 3, 2), (4, 5, 4), 1, 1, 1, ((1, 1), (2, 0), (1, 0))),
    ((3, 2, 3, 3), (8, 6), 2, 1, 1, ((1, 1), (1, 1))),
    ((2, 2, 3), (9,), 3, 1, 1, ((2, 0),)),
]


@pytest.mark.parametrize("case", FFT_CASES, ids=lambda c: f"{len(c[1])}d-w{c[0]}-s{c[2]}")
def test_fft_formula_equals_dense_svd(case, rng):
    wshape, size, stride, dilation, groups, padding = case
    w = rng.standard_normal(wshape)
    cin = wshape[1] * groups
    A = columns(lambda x: ref.conv_forward(x, w, stride, padding, dilation, groups, "circular"),
                (cin, *size))
    close(fft_singular_values(w, size, stride=stride, dilation=dilation, groups=groups), svd(A))
    conv = CONV[len(size)](cin, wshape[0], wshape[2:], stride, padding, dilation, groups,
                           bias=False, padding_mode="circular", dtype=np.float64)
    conv.weight.data[...] = w
    got = singular_values(conv, (cin, *size), which="all")
    assert got.method == "fft" and got.residual < 1e-13
    close(got, svd(A))


def test_fft_of_a_float32_layer_is_exact_for_its_weights(rng):
    conv = nn.Conv2d(3, 2, 3, padding=1, padding_mode="circular", rng=rng)  # float32
    shape = (3, 6, 6)
    s = singular_values(conv, shape, which="all")
    assert s.method == "fft" and s.dtype == np.float64
    close(s, svd(conv.matrix(shape).toarray().astype(np.float64)))
    assert s.residual < 1e-6  # the probe goes through the layer's float32 products


def test_fft_formula_two_tap_average_by_hand():
    # P(f) = (1 + e^{2 pi i f / N}) / 2, |P(f)| = |cos(pi f / N)|
    N = 8
    expected = np.sort(np.abs(np.cos(np.pi * np.arange(N) / N)))[::-1]
    close(fft_singular_values(np.full((1, 1, 2), 0.5), N), expected, rel=1e-14)


def test_pointwise_convolution_uses_the_formula(rng):
    conv = nn.Conv2d(3, 2, 1, dtype=np.float64, rng=rng)
    s = singular_values(conv, (3, 4, 4), which="all")
    assert s.method == "fft"
    W = conv.weight.data[:, :, 0, 0]
    close(s, np.repeat(svd(W), 16))  # kron(W, I_16)


# --------------------------------------------------------------------------- the solvers
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_explicit_and_matrix_free_agree_with_dense(dtype, rng):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=dtype, rng=rng)
    shape = (3, 15, 15)
    full = svd(conv.matrix(shape).toarray().astype(np.float64))
    rel = 1e-10 if dtype == np.float64 else 1e-5  # float32 products in the matrix-free path
    for which, expect in (("largest", full[:3]), ("smallest", full[-3:])):
        dense = singular_values(conv, shape, k=3, which=which, method="dense")
        explicit = singular_values(conv, shape, k=3, which=which, method="svds")
        free = singular_values(conv, shape, k=3, which=which, method="svds-matrix-free")
        assert (dense.method, explicit.method, free.method) == ("dense", "svds",
                                                                "svds-matrix-free")
        close(dense, expect)
        close(explicit, expect)
        close(free, expect, rel)


def test_auto_follows_the_layers_lowering_and_the_budget(budget, rng):
    sparse = nn.Conv2d(2, 2, 3, padding=1, dtype=np.float64, lowering="sparse", rng=rng)
    im2col = nn.Conv2d(2, 2, 3, padding=1, dtype=np.float64, lowering="im2col")
    im2col.weight.data[...] = sparse.weight.data
    shape = (2, 24, 24)  # A is 1152 x 1152, over DENSE_CELLS
    expected = svd(sparse.matrix(shape).toarray())[:1]
    assert singular_values(sparse, shape).method == "svds"
    assert singular_values(im2col, shape).method == "svds-matrix-free"
    budget(400_000)  # below A and A.T (650 KiB, twice that to build), above one im2col column
    got = singular_values(im2col, shape)  # A cannot be built: the products never touch it
    assert got.method == "svds-matrix-free"
    close(got, expected)
    with pytest.raises(ValueError, match="does not fit in the memory budget"):
        singular_values(im2col, shape, method="svds")


def test_fft_past_the_budget_falls_back_to_svds(budget, rng):
    conv = nn.Conv1d(4, 4, 3, padding=1, padding_mode="circular", dtype=np.float64, rng=rng)
    shape = (4, 2048)
    expected = singular_values(conv, shape, which="all")
    assert expected.method == "fft"
    budget(1_000_000)  # below the kernel's transform and A, above the im2col structure
    got = singular_values(conv, shape)
    assert got.method == "svds-matrix-free"
    close(got, expected[:1])


def test_residual_bounds_the_error_of_a_loose_solve(rng):
    A = sp.random_array((300, 200), density=0.05, rng=rng) + sp.eye_array(300, 200)
    exact = svd(A.toarray())
    loose = singular_values(A, k=4, method="svds", tol=1e-2, maxiter=3)
    tight = singular_values(A, k=4, method="svds")
    assert tight.residual < 1e-13
    assert loose.residual > tight.residual
    for s in loose:  # every value within residual * max of some true singular value
        assert np.abs(exact - s).min() <= loose.residual * loose.max() * (1 + 1e-9)


def test_matrices_and_linear_operators(rng):
    M = rng.standard_normal((30, 20))
    expected = svd(M)
    close(singular_values(M, which="all"), expected)
    close(singular_values(sp.csr_array(M), k=3, which="smallest", method="svds"), expected[-3:])
    L = LinearOperator(M.shape, matvec=lambda x: M @ x, rmatvec=lambda y: M.T @ y,
                       dtype=np.float64)
    s = singular_values(L, which="all")
    assert s.method == "dense"
    close(s, expected)
    close(singular_values(L, k=2, method="svds-matrix-free"), expected[:2])
    close(singular_values(np.arange(6).reshape(2, 3), which="all"),
          svd(np.arange(6.0).reshape(2, 3)))  # integers are cast, like numpy.linalg.svd


def test_condition_number_like_numpy(rng):
    conv = nn.Conv1d(2, 2, 3, padding=1, dtype=np.float64, rng=rng)
    A = conv.matrix((2, 12)).toarray()
    assert condition_number(conv, (2, 12)) == pytest.approx(np.linalg.cond(A), rel=1e-10)
    assert condition_number(conv, (2, 12), method="svds") == pytest.approx(np.linalg.cond(A),
                                                                         rel=1e-8)
    assert condition_number(np.array([[1.0, 0.0], [0.0, 0.0]])) == math.inf


def test_jacobian_at_a_point_against_finite_differences(rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64, rng=rng), nn.Tanh(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3, dtype=np.float64,
                                                                     rng=rng))
    x = rng.standard_normal((1, 4, 4))
    eps = 1e-6
    J = np.stack([(model((x + eps * e)[None]) - model((x - eps * e)[None]))[0] / (2 * eps)
                  for e in np.eye(16).reshape(16, 1, 4, 4)], axis=1)
    close(singular_values(model, at=x, which="all"), svd(J), rel=1e-7)
    with pytest.raises(ValueError, match="Tanh is not a fixed linear map.*at=x"):
        singular_values(model, (1, 4, 4))


# --------------------------------------------------------------------------- weights
def test_reshaped_weight_norm_under_estimates_a_positive_kernel():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False, dtype=np.float64)
    conv.weight.data[...] = 1.0 / 9
    # reshaped: ||w||_2 of a 1 x 9 row = 1/3; the blur keeps a constant image: sigma_max near 1
    assert reshaped_weight_norm(conv) == pytest.approx(1 / 3, rel=1e-14)
    s = operator_norm(conv, (1, 16, 16))
    assert 0.95 < s < 1.0
    up = nn.ConvTranspose2d(2, 3, 2, dtype=np.float64)
    w = up.weight.data  # (in, out, k, k): rows are the output channels, dim=1 as in PyTorch
    expected = np.linalg.norm(np.moveaxis(w, 1, 0).reshape(3, -1), 2)
    assert reshaped_weight_norm(up) == pytest.approx(expected, rel=1e-14)


def test_reshaped_weight_norm_is_what_torch_spectral_norm_divides_by(rng):
    torch = pytest.importorskip("torch")
    for layer, dim in ((torch.nn.Conv2d(3, 5, 3), 0), (torch.nn.ConvTranspose2d(3, 5, 3), 1)):
        layer = layer.double()
        w = layer.weight.detach().numpy().copy()
        sn = torch.nn.utils.parametrizations.spectral_norm(layer, n_power_iterations=500)
        sn(torch.zeros(1, 3, 6, 6, dtype=torch.float64))  # a training forward runs the iteration
        sigma = float((sn.parametrizations.weight.original / sn.weight).detach().flatten()[0])
        assert reshaped_weight_norm(w, dim=dim) == pytest.approx(sigma, rel=1e-8)


# --------------------------------------------------------------------------- errors
def test_argument_errors_name_the_argument(rng):
    conv = nn.Conv2d(2, 3, 3, dtype=np.float64, rng=rng)
    shape = (2, 5, 5)  # A is 27 x 50
    for k in (0, 28, 1.5, True):
        with pytest.raises(ValueError, match=r"k must be an int from 1 to min\(m, n\) = 27"):
            singular_values(conv, shape, k=k)
    with pytest.raises(ValueError, match="k is not used with which='all'"):
        singular_values(conv, shape, k=2, which="all")
    with pytest.raises(ValueError, match="which must be one of"):
        singular_values(conv, shape, which="biggest")
    with pytest.raises(ValueError, match="method must be 'auto' or one of"):
        singular_values(conv, shape, method="lanczos")
    with pytest.raises(ValueError, match="padding_mode is 'zeros', the formula needs"):
        singular_values(conv, shape, method="fft")
    with pytest.raises(ValueError, match="for all of them use method='dense'"):
        singular_values(conv, shape, which="all", method="svds")
    with pytest.raises(ValueError, match="input_shape is required for Conv2d"):
        singular_values(conv)
    with pytest.raises(ValueError, match="input_shape has 3 channels"):
        singular_values(conv, (3, 5, 5))
    with pytest.raises(ValueError, match="tol must be"):
        singular_values(conv, shape, tol=-1)
    with pytest.raises(ValueError, match="at= .* only applies to a model"):
        singular_values(np.eye(2), at=np.ones(2))


def test_type_errors_for_complex_integer_and_unknown_inputs(rng):
    with pytest.raises(TypeError, match="complex"):
        singular_values(sp.csr_array(np.eye(3) * 1j))
    with pytest.raises(TypeError, match="complex weights are not supported"):
        fft_singular_values(np.ones((1, 1, 3), complex), 8)
    with pytest.raises(TypeError, match=r"weight must be a real float array .* got dtype int64"):
        fft_singular_values(np.ones((1, 1, 3), np.int64), 8)
    with pytest.raises(TypeError, match="got dtype int64"):
        reshaped_weight_norm(np.ones((2, 2, 3), np.int64))
    with pytest.raises(TypeError, match="op must be a matconv layer"):
        singular_values("conv")
    with pytest.raises(TypeError, match="MSELoss is not supported .* supported are"):
        singular_values(nn.MSELoss(), (3,))
    L = LinearOperator((3, 3), matvec=lambda x: x, dtype=np.float64)
    with pytest.raises(TypeError, match="must provide rmatvec"):
        singular_values(L)


def test_dense_over_the_budget_is_refused_with_the_alternative(budget):
    budget(10_000)
    with pytest.raises(ValueError, match="dense SVD .* memory budget.*largest or smallest"):
        singular_values(sp.eye_array(200, format="csr"), which="all")


def test_result_behaves_as_the_array():
    s = singular_values(np.diag([3.0, 2.0, 1.0]), which="all")
    assert s.method == "dense" and s.operator_shape == (3, 3)
    assert s[:2].method == "dense" and type(s * 1).__name__ == "ndarray"
    assert isinstance(s.max(), float) and s.max() == 3.0
    assert "method='dense'" in repr(s)
