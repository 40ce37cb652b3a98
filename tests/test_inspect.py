"""Inspection: weight-index matrices, symbolic rendering, composition, Jacobians, receptive
fields, LinearOperators, transposed convolution three ways, export."""
import itertools

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import matconv as mc
from matconv import nn

from . import reference as ref


# ---- weight-index matrix
@pytest.mark.parametrize("w_shape, in_shape, kw", [
    ((1, 1, 3, 3), (1, 4, 4), {}),
    ((4, 1, 2, 3), (2, 5, 6), dict(stride=(2, 1), padding=1, groups=2)),
    ((2, 3, 3), (3, 7), dict(dilation=2, padding="same")),
])
def test_weight_index_matrix_rebuilds_the_conv_matrix(w_shape, in_shape, kw, rng):
    w = rng.standard_normal(w_shape)
    index = mc.weight_index_matrix(w_shape, in_shape, **kw)
    A = mc.conv_matrix(w, in_shape, **kw).toarray()
    assert index.dtype == np.int64 and index.shape == A.shape
    np.testing.assert_array_equal(np.where(index >= 0, w.ravel()[index], 0.0), A)
    # every row of a full-size window holds each of its group's weights exactly once
    assert set(np.bincount(index[index >= 0], minlength=w.size)) != {0}


def test_weight_index_matrix_with_duplicates_holds_the_first_tap():
    """replicate padding: at output 0 taps 0 and 1 both read x0; the matrix holds w0 + w1."""
    index = mc.weight_index_matrix((1, 1, 3), (1, 4), padding=1, padding_mode="replicate")
    A = mc.conv_matrix(np.array([[[1.0, 10.0, 100.0]]]), (1, 4), padding=1,
                       padding_mode="replicate").toarray()
    assert index[0, 0] == 0 and A[0, 0] == 11.0
    assert index[3, 3] == 1 and A[3, 3] == 110.0


# ---- symbolic rendering
SLIDE = """\
w00 w01 w02 0   w10 w11 w12 0   w20 w21 w22 0   0   0   0   0
0   w00 w01 w02 0   w10 w11 w12 0   w20 w21 w22 0   0   0   0
0   0   0   0   w00 w01 w02 0   w10 w11 w12 0   w20 w21 w22 0
0   0   0   0   0   w00 w01 w02 0   w10 w11 w12 0   w20 w21 w22"""


def test_slide_matrix_text():
    assert mc.symbolic(nn.Conv2d(1, 1, 3), (1, 4, 4)).to_text() == SLIDE


def test_text_with_labels_and_transposed():
    sym = mc.symbolic(nn.ConvTranspose1d(1, 1, 2, stride=2), (1, 2))
    assert sym.to_text(labels=True) == (
        "       x(0,0) x(0,1)\n"
        "y(0,0) w0     0\n"
        "y(0,1) w1     0\n"
        "y(0,2) 0      w0\n"
        "y(0,3) 0      w1")


def test_channel_qualified_names():
    text = mc.symbolic(nn.Conv1d(2, 1, 2), (2, 3)).to_text()
    assert text == ("w[0,0,0] w[0,0,1] 0        w[0,1,0] w[0,1,1] 0\n"
                    "0        w[0,0,0] w[0,0,1] 0        w[0,1,0] w[0,1,1]")


def test_latex():
    assert mc.symbolic(nn.Conv1d(1, 1, 2), (1, 3)).to_latex() == (
        "\\begin{bmatrix}\nw_{0} & w_{1} & 0 \\\\\n0 & w_{0} & w_{1} \\\\\n\\end{bmatrix}")
    latex = mc.symbolic(nn.AvgPool1d(2), (1, 2)).to_latex()
    assert latex == "\\begin{bmatrix}\n\\frac{1}{2} & \\frac{1}{2} \\\\\n\\end{bmatrix}"


def test_sympy_multiplies_out():
    sympy = pytest.importorskip("sympy")
    sym = mc.symbolic(nn.Conv2d(1, 1, 2), (1, 2, 3))
    M = sym.to_sympy()
    x = sympy.Matrix(sympy.symbols("x0:6"))
    w00, w01, w10, w11 = sym.weight_symbols()
    y = M * x
    assert sympy.expand(y[0] - (w00 * x[0] + w01 * x[1] + w10 * x[3] + w11 * x[4])) == 0
    assert sympy.expand(y[1] - (w00 * x[1] + w01 * x[2] + w10 * x[4] + w11 * x[5])) == 0
    up = mc.symbolic(nn.Upsample(size=4, mode="linear"), (1, 2)).to_sympy()
    assert up[1, :].tolist() == [[sympy.Rational(3, 4), sympy.Rational(1, 4)]]


def test_fixed_maps_render_fractions():
    assert str(mc.symbolic(nn.Upsample(size=4, mode="linear"), (1, 2))) == (
        "1   0\n3/4 1/4\n1/4 3/4\n0   1")
    assert str(mc.symbolic(nn.AdaptiveAvgPool1d(2), (1, 3))) == "1/2 1/2 0\n0   1/2 1/2"


def test_max_pool_renders_its_last_selection():
    pool = nn.MaxPool1d(2)
    pool(np.array([[[1.0, 3.0, 5.0, 4.0]]]))
    assert str(mc.symbolic(pool, (1, 4))) == "0 1 0 0\n0 0 1 0"


def test_too_large_to_render():
    with pytest.raises(ValueError, match=r"too large to render"):
        mc.symbolic(nn.AvgPool2d(1), (1, 600, 600))


# ---- composition and receptive fields
def test_compose_linear_stack_equals_chained_forward(rng):
    stack = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64, rng=rng),
                          nn.AvgPool2d(2), nn.Upsample(scale_factor=2, mode="bilinear"),
                          nn.ConvTranspose2d(3, 1, 2, stride=2, bias=False, dtype=np.float64,
                                             rng=rng))
    x = rng.standard_normal((2, 6, 4))
    M = stack.matrix(x.shape)
    y = stack(x[None])[0]
    assert M.shape == (y.size, x.size)
    np.testing.assert_allclose(M @ x.ravel(), y.ravel(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"ReLU is not a fixed linear map: use jacobian"):
        mc.compose([nn.ReLU()], (1, 3))


@pytest.mark.parametrize("stack, shape", [
    ([nn.Conv1d(1, 1, 2, dilation=d, padding="causal") for d in (1, 2, 4, 8)], (1, 64)),
    ([nn.Conv1d(1, 1, 3, dilation=d) for d in (1, 2, 4)], (1, 40)),
    ([nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 1, 3, stride=2),
      nn.AvgPool2d(2, stride=1)], (1, 32, 32)),
    ([nn.Conv2d(1, 1, (3, 5), dilation=(2, 1), stride=(1, 2)), nn.MaxPool2d(3, 2)], (1, 30, 40)),
], ids=["wavenet", "dilated", "lenetish", "anisotropic"])
def test_receptive_field_matches_closed_form(stack, shape):
    out_shape = mc.nn.Sequential(*stack).output_shape(shape)
    centre = (0, *(o // 2 for o in out_shape[1:]))
    field = mc.receptive_field(stack, shape, centre)
    assert field.extent == mc.receptive_field_size(stack)
    assert len(field.inputs) == np.prod(field.extent)  # a dense box: every cell reaches it


def test_wavenet_receptive_field_grows_exponentially():
    for n in range(1, 6):
        stack = [nn.Conv1d(1, 1, 2, dilation=2 ** i, padding="causal") for i in range(n)]
        assert mc.receptive_field_size(stack) == (2 ** n,)
        field = mc.receptive_field(stack, (1, 64), (0, 63))
        assert field.positions[:, 1].min() == 64 - 2 ** n and field.positions[:, 1].max() == 63


def test_receptive_field_weights_are_the_composed_row(rng):
    stack = [nn.Conv1d(1, 1, 3, bias=False, dtype=np.float64, rng=rng),
             nn.Conv1d(1, 1, 2, dilation=3, bias=False, dtype=np.float64, rng=rng)]
    field = mc.receptive_field(stack, (1, 12), 2)
    row = mc.compose(stack, (1, 12)).toarray()[2]
    np.testing.assert_allclose(field.weights, row[field.inputs])
    assert set(np.flatnonzero(row)) == set(field.inputs)
    with pytest.raises(ValueError, match=r"output_index must address one of the 7 outputs"):
        mc.receptive_field(stack, (1, 12), 7)


# ---- Jacobian as a product of sparse matrices
def small_net(rng, dtype=np.float64):
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, dtype=dtype, rng=rng), nn.Tanh(), nn.Flatten(),
        nn.Linear(4, 5, dtype=dtype, rng=rng), nn.Sigmoid(), nn.Linear(5, 3, dtype=dtype, rng=rng),
        nn.LogSoftmax(dim=1))


def test_jacobian_equals_finite_differences_and_backward(rng):
    net = small_net(rng)
    x = rng.standard_normal((1, 6, 6))
    J = net.jacobian(x)
    assert J.shape == (3, 36)
    eps = 1e-6
    fd = np.stack([(net((x + eps * e)[None])[0] - net((x - eps * e)[None])[0]) / (2 * eps)
                   for e in np.eye(36).reshape(36, 1, 6, 6)], axis=1)
    np.testing.assert_allclose(J.toarray(), fd, rtol=1e-6, atol=1e-8)
    net(x[None])
    delta = rng.standard_normal(3)
    np.testing.assert_allclose(J.T @ delta, net.backward(delta[None])[0].ravel(), rtol=1e-12,
                               atol=1e-14)


def test_jacobian_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = small_net(rng)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4, 5),
        torch.nn.Sigmoid(), torch.nn.Linear(5, 3), torch.nn.LogSoftmax(dim=1)).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((1, 6, 6))
    expected = torch.autograd.functional.jacobian(lambda t: theirs(t[None])[0], torch.tensor(x))
    np.testing.assert_allclose(ours.jacobian(x).toarray(), expected.reshape(3, 36).numpy(),
                               rtol=1e-10, atol=1e-12)


def test_softmax_and_lppool_jacobians(rng):
    for layer, shape in ((nn.Softmax(dim=1), (4, 3)), (nn.LPPool2d(2, 2), (2, 4, 4))):
        x = np.abs(rng.standard_normal(shape)) + 0.1
        J = mc.jacobian(layer, x).toarray()
        eps = 1e-6
        fd = np.stack([(layer((x + eps * e)[None])[0] - layer((x - eps * e)[None])[0]).ravel()
                       / (2 * eps) for e in np.eye(x.size).reshape(x.size, *shape)], axis=1)
        np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)


# ---- LinearOperator
@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
@pytest.mark.parametrize("make, shape", [
    (lambda lw, rng: nn.Conv2d(2, 3, 3, stride=2, padding=1, lowering=lw, dtype=np.float64,
                               rng=rng), (2, 7, 6)),
    (lambda lw, rng: nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1, lowering=lw,
                                        dtype=np.float64, rng=rng), (2, 5)),
])
def test_linear_operator_is_the_matrix(make, shape, lowering, rng):
    layer = make(lowering, rng)
    op = layer.linear_operator(shape)
    A = layer.matrix(shape)
    assert op.shape == A.shape and op.dtype == np.float64
    u, v = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
    np.testing.assert_allclose(op.matvec(u), A @ u, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(op.rmatvec(v), A.T @ v, rtol=1e-12, atol=1e-14)
    assert np.isclose(op.matvec(u) @ v, u @ op.rmatvec(v), rtol=1e-12)  # dot test
    U = rng.standard_normal((A.shape[1], 3))
    np.testing.assert_allclose(op.matmat(U), A @ U, rtol=1e-12, atol=1e-14)


def test_deconvolution_with_lsqr_recovers_the_signal(rng):
    """Blur a signal with a known kernel; lsqr on the matrix-free operator undoes it."""
    blur = nn.Conv1d(1, 1, 3, padding="same", bias=False, lowering="im2col", dtype=np.float64)
    blur.weight.data[...] = [[[0.2, 1.0, 0.3]]]
    signal = np.cumsum(rng.standard_normal(200)) / 5
    blurred = blur(signal[None, None])[0, 0]
    op = blur.linear_operator((1, 200))
    recovered = spla.lsqr(op, blurred, atol=1e-14, btol=1e-14, iter_lim=2000)[0]
    assert np.abs(recovered - signal).max() < 1e-4
    x_cg, info = spla.cg(op.T @ op, op.rmatvec(blurred), rtol=1e-13, maxiter=2000)
    assert info == 0 and np.abs(x_cg - signal).max() < 1e-4


# ---- transposed convolution three ways
CASES = [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (1, 1, 0, 2, 1), (3, 2, 2, 1, 2), (2, 0, 1, 2, 1),
         (1, 2, 1, 3, 2)]  # (stride, padding, output_padding, dilation, groups)


@pytest.mark.parametrize("nd, stride, padding, output_padding, dilation, groups",
                         [(nd, *c) for nd, c in itertools.product((1, 2), CASES)], ids=str)
def test_transposed_convolution_three_ways(nd, stride, padding, output_padding, dilation,
                                           groups, rng):
    up = (nn.ConvTranspose1d, nn.ConvTranspose2d)[nd - 1](
        2, 4, 3, stride, padding, output_padding, groups, bias=False, dilation=dilation,
        dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 2, *(4,) * nd))
    y1 = up(x)
    # 2. the matching convolution's input gradient
    conv = (nn.Conv1d, nn.Conv2d)[nd - 1](4, 2, 3, stride, padding, dilation, groups,
                                          bias=False, dtype=np.float64)
    conv.weight.data[...] = up.weight.data
    conv_out = conv(np.zeros(y1.shape))
    # output_padding >= stride (allowed by dilation): the conv has extra positions, which the
    # transposed layer's matrix drops; a zero gradient there gives the same result
    dy = np.zeros(conv_out.shape)
    dy[(slice(None), slice(None)) + tuple(slice(0, n) for n in x.shape[2:])] = x
    y2 = conv.backward(dy)
    # 3. zero insertion, padding, flipped and channel-swapped kernel
    y3 = mc.transposed_conv_direct(x, up.weight.data, stride, padding, output_padding, dilation,
                                   groups)
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y3, y1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y1, ref.conv_transpose_forward(x, up.weight.data, stride, padding,
                                                              output_padding, dilation, groups),
                               rtol=1e-12, atol=1e-12)


# ---- export
@pytest.mark.parametrize("suffix", [".npz", ".mtx"])
def test_export_round_trip(tmp_path, suffix, rng):
    A = mc.conv_matrix(rng.standard_normal((2, 1, 3, 3)), (1, 5, 5), padding=1)
    path = tmp_path / f"A{suffix}"
    mc.save_matrix(A, path)
    B = mc.load_matrix(path)
    np.testing.assert_allclose(B.toarray(), A.toarray(), rtol=1e-15)
    with pytest.raises(ValueError, match=r"path must end in \.npz or \.mtx"):
        mc.save_matrix(A, tmp_path / "A.csv")
    with pytest.raises(TypeError, match=r"matrix must be a scipy.sparse matrix"):
        mc.save_matrix(A.toarray(), path)
