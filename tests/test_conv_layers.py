"""Conv layers against the direct-loop oracle, finite differences and their own transposes."""
from typing import NamedTuple

import numpy as np
import pytest

import matconv as mc
from matconv import nn
from matconv.geometry import ConvGeometry
from matconv.lowering import conv_structure

from . import reference as ref

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


class Case(NamedTuple):
    ndim: int
    cin: int
    cout: int
    k: object
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    spatial: tuple = None

    def __str__(self):
        return (f"{self.ndim}d-{self.cin}to{self.cout}-k{self.k}-s{self.stride}-p{self.padding}-"
                f"d{self.dilation}-g{self.groups}")


CASES = [
    Case(1, 1, 1, 3, spatial=(8,)),
    Case(1, 2, 4, 4, 2, "full", 1, 2, (9,)),
    Case(1, 3, 3, 2, 1, "causal", 3, 3, (10,)),
    Case(2, 1, 2, 3, 1, "same", spatial=(5, 6)),
    Case(2, 4, 2, (2, 3), (2, 1), ((1, 0), (0, 2)), (1, 2), 2, (6, 7)),
    Case(2, 2, 3, 3, 3, 2, 1, 1, (7, 8)),
    Case(3, 2, 2, 2, (1, 2, 1), 1, 1, 2, (3, 4, 3)),
]


def make(case, lowering, dtype=np.float64, seed=0):
    return CONV[case.ndim](case.cin, case.cout, case.k, case.stride, case.padding, case.dilation,
                           case.groups, lowering=lowering, dtype=dtype,
                           rng=np.random.default_rng(seed))


@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_and_gradients_match_direct_loops(case, lowering, rng):
    layer = make(case, lowering)
    x = rng.standard_normal((2, case.cin, *case.spatial))
    y = layer(x)
    args = (case.stride, case.padding, case.dilation, case.groups)
    expected = ref.conv_forward(x, layer.weight.data, *args)
    expected += layer.bias.data.reshape(-1, *(1,) * case.ndim)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref = ref.conv_backward(x, layer.weight.data, dy, *args)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(axis=tuple(i for i in range(dy.ndim)
                                                                    if i != 1)), rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_lowerings_agree_and_backward_is_matrix_transpose(case, rng):
    a, b = make(case, "im2col"), make(case, "sparse")
    x = rng.standard_normal((3, case.cin, *case.spatial))
    ya, yb = a(x), b(x)
    np.testing.assert_allclose(ya, yb, rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal(ya.shape)
    dxa, dxb = a.backward(dy), b.backward(dy)
    np.testing.assert_allclose(dxa, dxb, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(a.weight.grad, b.weight.grad, rtol=1e-12, atol=1e-12)
    # A built independently from the geometry, not through the layer
    A = mc.conv_matrix(a.weight.data, x.shape[1:], case.stride, case.padding, case.dilation,
                       case.groups)
    for n in range(x.shape[0]):
        np.testing.assert_allclose(A.T @ dy[n].ravel(), dxa[n].ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
def test_finite_differences_all_padding_modes(mode, lowering, rng):
    layer = nn.Conv2d(2, 3, 3, stride=(1, 2), padding=(2, 1), padding_mode=mode,
                      lowering=lowering, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 2, 5, 6))
    y = layer(x)
    v = rng.standard_normal(y.shape)
    dx = layer.backward(v)
    u = rng.standard_normal(x.shape)
    fd = ref.finite_difference(lambda z: np.sum(layer(z) * v), x, u)
    assert np.isclose(fd, np.sum(dx * u), rtol=1e-7, atol=1e-8)
    w0, du = layer.weight.data.copy(), rng.standard_normal(layer.weight.shape)

    def loss_of_weight(w):
        layer.weight.data = w
        return np.sum(layer(x) * v)

    fd_w = ref.finite_difference(loss_of_weight, w0, du)
    assert np.isclose(fd_w, np.sum(layer.weight.grad * du), rtol=1e-7, atol=1e-8)


def test_sparse_weight_gradient_is_the_sampled_product(rng):
    """dW[m] = sum over nonzeros (r, c) of A carrying weight m of dY[r] X[c], literally."""
    g = ConvGeometry(2, 4, 3, stride=2, padding=1, groups=2)
    layer = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, lowering="sparse",
                      dtype=np.float64, rng=rng)
    x = rng.standard_normal((3, 2, 7, 6))
    dy = rng.standard_normal(layer(x).shape)
    layer.backward(dy)
    s = conv_structure(g, (7, 6))
    rows = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
    X, dY = x.reshape(3, -1), dy.reshape(3, -1)
    sampled = np.einsum("nj,nj->j", dY[:, rows], X[:, s.indices])
    dW = np.bincount(s.weight_index, sampled, minlength=layer.weight.data.size)
    np.testing.assert_allclose(layer.weight.grad.ravel(), dW, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls, transposed", [(nn.Conv2d, False), (nn.ConvTranspose2d, True)])
def test_dot_test_of_layer_maps(cls, transposed, rng):
    layer = cls(3, 3, 3, stride=2, padding=1, groups=3, bias=False, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 5, 5))
    y = layer(x)
    v = rng.standard_normal(y.shape)
    assert np.isclose(np.sum(y * v), np.sum(x * layer.backward(v)), rtol=1e-12)


def test_transposed_matrix_is_exactly_conv_matrix_transposed(rng):
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1, dtype=np.float64,
                               rng=rng)
    A = mc.conv_matrix(layer.weight.data, (3, 8, 8), stride=2, padding=1)
    B = layer.matrix((2, 4, 4))
    assert B.shape == A.T.shape
    np.testing.assert_array_equal(B.toarray(), A.T.toarray())


def test_transposed_matrix_drops_extra_positions_when_output_padding_exceeds_stride(rng):
    layer = nn.ConvTranspose1d(1, 1, 3, stride=1, dilation=3, output_padding=2, bias=False,
                               dtype=np.float64, rng=rng)
    # output size (4-1) + 3*2 + 2 + 1 = 12; the matching conv on 12 cells has 6 positions
    A = mc.conv_matrix(layer.weight.data, (1, 12), dilation=3)
    assert A.shape == (6, 12)
    B = layer.matrix((1, 4))
    np.testing.assert_array_equal(B.toarray(), A.toarray()[:4].T)
    x = rng.standard_normal((1, 1, 4))
    np.testing.assert_allclose(layer(x)[0, 0], B @ x.ravel(), rtol=1e-12)


def test_transposed_forward_matches_direct_scatter(rng):
    layer = nn.ConvTranspose2d(4, 2, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                               groups=2, dilation=(1, 2), dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 4, 3, 4))
    expected = ref.conv_transpose_forward(x, layer.weight.data, (2, 3), (1, 0), (1, 2), (1, 2), 2)
    np.testing.assert_allclose(layer(x) - layer.bias.data[:, None, None], expected, rtol=1e-12,
                               atol=1e-12)


def test_float32_is_float32_and_close_to_float64(rng):
    x = rng.standard_normal((4, 3, 9, 9))
    l64 = nn.Conv2d(3, 8, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(1))
    l32 = nn.Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(1))
    assert l32.weight.data.dtype == np.float32 and l32.bias.data.dtype == np.float32
    y32 = l32(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, l64(x), rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y32.shape)
    dx32 = l32.backward(dy.astype(np.float32))
    assert dx32.dtype == l32.weight.grad.dtype == np.float32
    np.testing.assert_allclose(dx32, l64.backward(dy), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(l32.weight.grad, l64.weight.grad, rtol=1e-4, atol=1e-4)
    # a float64 input to a float32 layer is computed in the layer's precision
    assert l32(x).dtype == np.float32


def test_batch_last_views_chain_without_changing_values(rng):
    a = nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, rng=rng)
    b = nn.Conv2d(4, 3, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 6, 6))
    h = a(x)
    assert not h.flags.c_contiguous  # a view of batch-last memory
    y = b(h)
    np.testing.assert_allclose(y, b(np.ascontiguousarray(h)), rtol=1e-13)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(b.backward(dy), b.backward(np.ascontiguousarray(dy)), rtol=1e-13)


def test_unbatched_input_like_pytorch(rng):
    layer = nn.Conv1d(2, 3, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 7))
    y = layer(x)
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y, layer(x[None])[0], rtol=1e-13)
    layer(x)
    assert layer.backward(np.ones((3, 5))).shape == (2, 7)


def test_gradients_accumulate_until_zero_grad(rng):
    layer = nn.Conv2d(1, 2, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 1, 5, 5))
    dy = np.ones((2, 2, 3, 3))
    layer(x)
    layer.backward(dy)
    g1 = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * g1)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()
    assert [p.shape for p in layer.parameters()] == [(2, 1, 3, 3), (2,)]


def test_weight_assignment_is_honoured(rng):
    for lowering in ("im2col", "sparse"):
        layer = nn.Conv2d(1, 1, 2, bias=False, lowering=lowering, dtype=np.float64)
        x = rng.standard_normal((1, 1, 3, 3))
        layer(x)
        layer.weight.data[...] = 0
        layer.weight.data[0, 0, 1, 1] = 1.0  # the next forward picks the bottom-right cell
        np.testing.assert_array_equal(layer(x)[0, 0], x[0, 0, 1:, 1:])
        assert layer.bias is None and len(layer.parameters()) == 1


def test_lowering_auto_follows_the_rule():
    assert nn.Conv2d(1, 1, 5).lowering == "sparse"  # a single filter
    assert nn.Conv2d(8, 8, 3, groups=8).lowering == "sparse"  # depthwise
    assert nn.Conv2d(1, 16, 3).lowering == "im2col"
    assert nn.Conv2d(16, 32, 3).lowering == "im2col"
    assert nn.Conv2d(8, 16, 3, groups=8).lowering == "im2col"
    assert nn.ConvTranspose2d(4, 4, 3, groups=4).lowering == "sparse"


def test_sparse_lowering_sees_in_place_weight_edits(rng):
    layer = nn.Conv1d(1, 1, 3, bias=False, lowering="sparse", dtype=np.float64)
    x = rng.standard_normal((2, 1, 6))
    layer(x)
    layer.weight.data *= 2  # same array, new values: the cached operator must notice
    np.testing.assert_allclose(layer(x), ref.conv_forward(x, layer.weight.data), rtol=1e-12)
    dy = np.ones((2, 1, 4))
    np.testing.assert_allclose(layer.backward(dy)[0].ravel(),
                               layer.matrix((1, 6)).T @ dy[0].ravel(), rtol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((3, 5), np.float32)), ValueError,
     r"Conv2d expects input of shape \(N, C, H, W\) or \(C, H, W\), got shape \(3, 5\)"),
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((2, 3, 5), np.float32)), ValueError,
     r"Conv2d expects 3 channels in input, got 2 \(shape \(2, 3, 5\)\)"),
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((2, 2, 5, 5), np.float32)), ValueError,
     r"Conv2d expects 3 channels in input, got 2"),
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((2, 3, 5, 5), np.int64)), TypeError,
     r"input must be a real floating-point array \(float32 or float64\), got dtype int64"),
    (lambda: nn.Conv2d(3, 4, 3)([[1.0]]), TypeError, r"input must be a numpy ndarray, got list"),
    (lambda: nn.Conv2d(3, 4, 7)(np.zeros((1, 3, 5, 5), np.float32)), ValueError,
     r"kernel_size \(7, 7\) with dilation \(1, 1\) spans 7 cells in spatial dim 0, more than"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride=1"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError,
     r"padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\), got 'mirror'"),
    (lambda: nn.Conv2d(3, 4, 3, lowering="fft"), ValueError,
     r"lowering must be 'auto' or one of \('im2col', 'sparse'\), got 'fft'"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError,
     r"dtype must be np.float32 or np.float64"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than max\(stride, dilation\)"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding="same"), ValueError,
     r"padding must be an int or a tuple for ConvTranspose2d"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), ValueError,
     r"padding_mode must be 'zeros' for ConvTranspose2d"),
    (lambda: nn.ConvTranspose2d(1, 1, 3, stride=2)(np.zeros((1, 1, 2, 2), np.float32),
                                                   output_size=(7, 7)), ValueError,
     r"output_size must be 2 spatial sizes between \(5, 5\) and \(6, 6\)"),
    (lambda: nn.Conv2d(1, 1, 3).backward(np.zeros((1, 1, 2, 2), np.float32)), RuntimeError,
     r"backward\(\) called before forward\(\)"),
    (lambda: nn.Conv2d(1, 1, 3).matrix((2, 5, 5)), ValueError,
     r"input_shape has 2 channels, the layer expects 1"),
])
def test_bad_input_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_grad_output_shape_is_checked(rng):
    layer = nn.Conv2d(1, 1, 3)
    layer(np.zeros((2, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"grad_output must have the shape of the last forward's "
                                         r"output \(2, 1, 3, 3\), got \(2, 1, 4, 4\)"):
        layer.backward(np.zeros((2, 1, 4, 4), np.float32))


def test_repr_reads_like_pytorch():
    assert repr(nn.Conv2d(1, 16, 5, padding=2)) == (
        "Conv2d(1, 16, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2), lowering='im2col', "
        "dtype=float32)")
    assert repr(nn.ConvTranspose1d(4, 2, 3, stride=2, output_padding=1, bias=False)) == (
        "ConvTranspose1d(4, 2, kernel_size=(3,), stride=(2,), output_padding=(1,), bias=False, "
        "lowering='im2col', dtype=float32)")
