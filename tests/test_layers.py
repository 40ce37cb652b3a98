"""Pools, upsampling, activations, dense layers and Sequential without PyTorch: finite
differences, the seed notes' examples, dynamic sizing, errors."""
import numpy as np
import pytest

from matconv import nn

from . import reference as ref


def _first(y):
    return y[0] if isinstance(y, tuple) else y  # (output, indices) with return_indices


def fd_check(layer, x, rng, rtol=1e-6, atol=1e-8):
    """<dx, u> equals the directional derivative of <layer(x), v> along u."""
    v = rng.standard_normal(_first(layer(x)).shape)
    dx = layer.backward(v)
    u = rng.standard_normal(x.shape)
    fd = ref.finite_difference(lambda z: np.sum(_first(layer(z)) * v), x, u)
    assert np.isclose(fd, np.sum(dx * u), rtol=rtol, atol=atol), (fd, np.sum(dx * u))


LAYERS = [
    (nn.MaxPool2d(2), (2, 3, 6, 6)), (nn.MaxPool1d(3, 2, 1), (2, 2, 9)),
    (nn.MaxPool3d(2, 1, dilation=(1, 2, 1)), (1, 2, 4, 5, 4)),
    (nn.MaxPool2d(3, 2, ceil_mode=True), (2, 2, 8, 7)),
    (nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 6)),
    (nn.AvgPool1d(2, ceil_mode=True), (2, 2, 7)), (nn.AvgPool3d(2), (1, 2, 4, 4, 4)),
    (nn.LPPool2d(2, 2), (2, 2, 6, 6)), (nn.LPPool1d(3, 3, 2), (2, 2, 9)),
    (nn.AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5)), (nn.AdaptiveAvgPool1d(4), (2, 2, 9)),
    (nn.AdaptiveMaxPool2d(3), (2, 2, 7, 8)), (nn.ChannelMaxPool(3), (2, 6, 4, 4)),
    (nn.Upsample(scale_factor=2), (2, 2, 3, 4)),
    (nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), (2, 2, 3, 4)),
    (nn.Upsample(scale_factor=1.5, mode="trilinear"), (1, 2, 2, 3, 2)),
    (nn.ReLU(), (3, 4)), (nn.LeakyReLU(0.3), (3, 4)), (nn.Sigmoid(), (3, 4)),
    (nn.Tanh(), (3, 4)), (nn.Softmax(dim=1), (3, 4)), (nn.LogSoftmax(dim=0), (3, 4)),
    (nn.Linear(4, 3, dtype=np.float64), (5, 4)), (nn.Flatten(), (2, 3, 2, 2)),
    (nn.GELU(), (3, 4)), (nn.GELU("tanh"), (3, 4)), (nn.ELU(0.7), (3, 4)), (nn.SiLU(), (3, 4)),
    (nn.Softplus(2.0, 1.5), (3, 4)), (nn.Hardtanh(-1.5, 1.7), (3, 4)),
    (nn.AdaptiveMaxPool1d(3), (2, 2, 7)), (nn.AdaptiveMaxPool3d((2, 1, 3)), (1, 2, 4, 3, 5)),
    (nn.AdaptiveAvgPool3d((2, 3, 2)), (1, 2, 5, 4, 3)), (nn.LPPool3d(2, 2), (1, 2, 4, 4, 4)),
    (nn.LPPool2d(float("inf"), 2, 1), (2, 2, 4, 5)),
    (nn.FractionalMaxPool2d(2, (3, 4), _random_samples=np.full((2, 2, 2), 0.3)), (2, 2, 7, 8)),
    (nn.MaxPool2d(2, return_indices=True), (2, 2, 4, 6)),
    (nn.Upsample(scale_factor=1.7, mode="bicubic", align_corners=False), (2, 2, 3, 4)),
    (nn.Upsample(size=(5, 2, 3), mode="nearest-exact"), (1, 2, 2, 3, 4)),
    (nn.Upsample(size=(2, 3), mode="area"), (2, 2, 5, 7)),
]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=lambda v: repr(v).split("(")[0])
def test_finite_differences(layer, shape, rng):
    x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)
    if isinstance(layer, (nn.LPPool1d, nn.LPPool2d, nn.LPPool3d)):
        x = np.abs(x)  # x**p needs x > 0 for non-integer results to stay real
    fd_check(layer, x, rng)


def test_ray_max_pool_routes_each_gradient_to_one_cell():
    """2x2/stride-2 max pooling; dy = [[dy1, dy3], [dy2, dy4]] lands where the maxima are."""
    x = np.array([[1.0, 2.0, 9.0, 3.0],
                  [0.0, 8.0, 4.0, 4.0],
                  [7.0, 5.0, 1.0, 2.0],
                  [7.0, 1.0, 0.0, 6.0]])  # a tie (7, 7) in the lower-left window
    pool = nn.MaxPool2d(2)
    np.testing.assert_array_equal(pool(x[None, None])[0, 0], [[8, 9], [7, 6]])
    dy1, dy2, dy3, dy4 = 1.0, 2.0, 3.0, 4.0
    dx = pool.backward(np.array([[[[dy1, dy3], [dy2, dy4]]]]))[0, 0]
    np.testing.assert_array_equal(dx, [[0, 0, dy3, 0], [0, dy1, 0, 0], [dy2, 0, 0, 0],
                                       [0, 0, 0, dy4]])
    P = pool.matrix((1, 4, 4))  # the selection matrix of this forward
    assert P.shape == (4, 16) and P.sum() == 4 and set(P.sum(axis=1)) == {1.0}


def test_ray_relu_example():
    relu = nn.ReLU()
    x = np.array([[-5.0, 4.0], [0.0, 2.0]])
    np.testing.assert_array_equal(relu(x), [[0, 4], [0, 2]])
    dy1, dy2, dy3, dy4 = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(relu.backward(np.array([[dy1, dy3], [dy2, dy4]])),
                                  [[0, dy3], [0, dy4]])
    np.testing.assert_array_equal(relu.matrix(example=0).toarray(), np.diag([0, 1]))


def test_overlapping_max_windows_accumulate():
    pool = nn.MaxPool1d(3, stride=1)
    x = np.array([[[0.0, 1.0, 9.0, 2.0, 0.0]]])
    np.testing.assert_array_equal(pool(x).ravel(), [9, 9, 9])
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 3))).ravel(), [0, 0, 3, 0, 0])


def test_dynamic_sizing_with_global_pooling(rng):
    """A model that ends in a global average pool accepts inputs of different sizes."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2, dtype=np.float64))
    for size in ((8, 8), (13, 5)):
        x = rng.standard_normal((3, 1, *size))
        assert model(x).shape == (3, 2)
        assert model.backward(np.ones((3, 2))).shape == x.shape


def test_avg_pool_matrix_is_scaled_ones_convolution():
    pool = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
    M = pool.matrix((1, 2, 2)).toarray()
    # 3x3 outputs; the corner windows see one real cell, edges two, the centre four
    np.testing.assert_allclose(M.sum(axis=1), np.ones(9))
    np.testing.assert_allclose(M[4], [0.25] * 4)
    np.testing.assert_allclose(M[0], [1, 0, 0, 0])


def test_sequential_protocol(rng):
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Tanh(),
                          nn.Linear(4, 2, dtype=np.float64))
    assert len(model) == 3 and isinstance(model[1], nn.Tanh) and len(model[1:]) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                        "2.bias"]
    x = rng.standard_normal((5, 3))
    y = model(x)
    assert "-> (5, 2)" in repr(model) and "(1): Tanh()  -> (5, 4)" in repr(model)
    model.backward(np.ones_like(y))
    assert all(p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert not any(p.grad.any() for p in model.parameters())
    state = model.state_dict()
    state["0.weight"][...] = 0  # a copy: the model is untouched
    assert model[0].weight.data.any()
    model.load_state_dict(state)
    assert not model[0].weight.data.any()
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\], unexpected keys \['9.w'\]"):
        model.load_state_dict({**{k: v for k, v in state.items() if k != "2.bias"},
                               "9.w": np.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatch for '0.bias': the model has \(4,\), "
                                         r"the state dict \(3,\)"):
        model.load_state_dict({**state, "0.bias": np.zeros(3)})
    with pytest.raises(TypeError, match=r"Sequential takes Module instances, got int at "
                                        r"position 1"):
        nn.Sequential(nn.ReLU(), 3)


def test_train_eval_switches_dropout(rng):
    model = nn.Sequential(nn.Dropout(0.5, rng=rng))
    x = np.ones((100, 10))
    assert (model(x) == 0).any()
    model.eval()
    assert not model.training and not model[0].training
    np.testing.assert_array_equal(model(x), x)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.MaxPool2d(2, padding=2), ValueError,
     r"padding should be at most half of the effective kernel size"),
    (lambda: nn.MaxPool2d(2)(np.zeros((1, 1, 1, 1))), ValueError,
     r"pooling window of 2 cells does not fit the padded input size 1"),
    (lambda: nn.AvgPool2d(2)(np.zeros((2, 3), np.float32)), ValueError,
     r"AvgPool2d expects input of shape \(N, C, H, W\) or \(C, H, W\)"),
    (lambda: nn.MaxPool2d(2)(np.zeros((1, 1, 4, 4), int)), TypeError,
     r"input must be a real floating-point array"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError,
     r"divisor_override must be a nonzero int or None \(like PyTorch\), got 0"),
    (lambda: nn.LPPool2d(0, 2), ValueError, r"norm_type must be a nonzero number"),
    (lambda: nn.AdaptiveAvgPool2d((0, 2)), ValueError, r"output_size must be a positive int"),
    (lambda: nn.ChannelMaxPool(2)(np.zeros((1, 3, 4))), ValueError,
     r"channels divisible by group_size=2, got 3"),
    (lambda: nn.Upsample(), ValueError, r"give exactly one of size and scale_factor"),
    (lambda: nn.Upsample(size=2, mode="lanczos"), ValueError, r"mode must be one of"),
    (lambda: nn.Upsample(size=2, align_corners=True), ValueError,
     r"align_corners can only be set with the interpolating modes"),
    (lambda: nn.Upsample(size=2, mode="bilinear")(np.zeros((1, 1, 4))), ValueError,
     r"Upsample expects a batch of shape \(N, C, \*spatial\) with 2 spatial dims for "
     r"mode='bilinear', got shape \(1, 1, 4\)"),
    (lambda: nn.Softmax(dim=3)(np.zeros((2, 3))), ValueError,
     r"dim must be an int in \[-2, 2\) for input with 2 dims, got 3"),
    (lambda: nn.Linear(3, 2)(np.zeros((4, 5), np.float32)), ValueError,
     r"Linear expects input of shape \(\.\.\., 3\), got shape \(4, 5\)"),
    (lambda: nn.Linear(0, 2), ValueError, r"in_features must be a positive int, got 0"),
    (lambda: nn.Dropout(1.0), ValueError, r"p must be in \[0, 1\), got 1.0"),
    (lambda: nn.MaxPool2d(2).backward(np.zeros(1)), RuntimeError, r"called before forward"),
    (lambda: nn.ReLU().matrix(), RuntimeError, r"called before forward"),
])
def test_bad_input_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()
