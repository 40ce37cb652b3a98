"""Lipschitz constants (each closed form attained at a point, bounds that hold on random pairs),
and clip_operator_norm_ checked by dense SVD."""
import math

import numpy as np
import pytest

from matconv import nn
from matconv.spectral import (
    clip_operator_norm_,
    lipschitz_bound,
    lipschitz_report,
    local_lipschitz,
    plot_spectrum,
    singular_values,
)


def sigma(A):
    return np.linalg.svd(np.asarray(A, dtype=np.float64), compute_uv=False)


def dense_norm(layer, shape):
    return sigma(layer.matrix(shape).toarray())[0]


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("module, x, constant", [
    (nn.ReLU(), np.array([1.0, 2.0]), 1.0),
    (nn.Tanh(), np.array([0.0, 0.0]), 1.0),
    (nn.Sigmoid(), np.array([0.0, 0.0]), 0.25),
    (nn.LeakyReLU(3.0), np.array([-1.0, 2.0]), 3.0),
    (nn.Softmax(dim=1), np.array([0.0, 0.0, -40.0]), 0.5),           # p = (1/2, 1/2, ~0)
    (nn.LogSoftmax(dim=1), np.array([40.0, 0.0, 0.0, 0.0]), 2.0),   # p ~ e_1: sqrt(4)
    (nn.MaxPool2d(3, stride=1), np.pad([[1.0]], 2)[None], 3.0),     # the centre is in 9 windows
    (nn.MaxPool1d(2), np.array([[1.0, 0.0, 2.0, 0.0]]), 1.0),
    (nn.AdaptiveMaxPool2d(3), np.pad([[1.0]], ((1, 3), (1, 3)))[None], 2.0),  # bins overlap 2x2
    (nn.LPPool2d(2, 2), np.pad([[1.0]], ((0, 3), (0, 3)))[None], 1.0),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_closed_form_constant_is_attained(module, x, constant):
    factor = lipschitz_bound(module, x.shape).factors[0]
    assert factor.factor == pytest.approx(constant, rel=1e-14)
    assert not factor.how.startswith("operator norm")
    # the Jacobian's norm reaches the constant at x (up to the ~e^-40 tails)
    assert local_lipschitz(module, x) == pytest.approx(constant, rel=1e-12)


@pytest.mark.parametrize("module, n", [(nn.Softmax(dim=1), 5), (nn.LogSoftmax(dim=-1), 5),
                                       (nn.Sigmoid(), 5), (nn.MaxPool1d(3, 1), 9)])
def test_closed_form_constant_bounds_random_jacobians(module, n, rng):
    c = lipschitz_bound(module, (1, n) if "Pool" in type(module).__name__ else (n,)).bound
    for _ in range(20):
        x = rng.standard_normal((1, n) if "Pool" in type(module).__name__ else (n,)) * 3
        assert local_lipschitz(module, x) <= c * (1 + 1e-12)


def test_dropout_and_unsupported_modules():
    drop = nn.Dropout(0.5)
    assert lipschitz_bound(drop, (3,)).bound == 2.0
    with pytest.raises(ValueError, match="Dropout is not a fixed linear map"):
        singular_values(drop, (3,))
    drop.eval()
    assert lipschitz_bound(drop, (3,)).factors[0].how == "identity in evaluation mode"
    assert np.array_equal(singular_values(nn.Sequential(drop, nn.Flatten()), (3,), which="all"),
                          np.ones(3))
    with pytest.raises(TypeError, match=r"LPPool1d\(norm_type=3\) has no global Lipschitz"):
        lipschitz_bound(nn.LPPool1d(3, 2), (1, 4))
    with pytest.raises(TypeError, match="CrossEntropyLoss is not supported.*Sequential"):
        lipschitz_bound(nn.Sequential(nn.Linear(2, 2), nn.CrossEntropyLoss()), (2,))
    with pytest.raises(ValueError, match=r"Softmax\(dim=0\) must act along one example"):
        lipschitz_bound(nn.Softmax(dim=0), (3,))


# --------------------------------------------------------------------------- bounds
def small_net(rng, dtype=np.float64):
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=rng), nn.Tanh()),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 5, dtype=dtype, rng=rng), nn.Softmax(dim=1))


def test_bound_is_the_product_of_dense_layer_norms(rng):
    net = small_net(rng)
    result = lipschitz_bound(net, (1, 8, 8))
    expected = [dense_norm(net[0], (1, 8, 8)), 1.0, 1.0, dense_norm(net[3][0], (3, 4, 4)), 1.0,
                dense_norm(net[4], (4, 4, 4)), 1.0, sigma(net[6].weight.data)[0], 0.5]
    assert [f.factor for f in result.factors] == pytest.approx(expected, rel=1e-12)
    assert float(result) == pytest.approx(math.prod(expected), rel=1e-12)
    assert [f.layer for f in result.factors][:4] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d"]
    assert "Lipschitz bound (product)" in str(result)


def test_bound_holds_on_random_pairs_and_above_local(rng):
    net = small_net(rng)
    bound = float(lipschitz_bound(net, (1, 8, 8)))
    for _ in range(10):
        x, y = rng.standard_normal((2, 1, 8, 8))
        ratio = np.linalg.norm(net(x[None]) - net(y[None])) / np.linalg.norm(x - y)
        assert ratio <= bound
        report = lipschitz_report(net, x)
        assert report.local <= report.bound.bound and report.gap >= 1
        assert report.gap == pytest.approx(report.bound.bound / report.local)


def test_linear_stack_bound_versus_its_true_norm(rng):
    stack = nn.Sequential(nn.Conv1d(2, 2, 3, padding=1, dtype=np.float64, rng=rng),
                          nn.Conv1d(2, 2, 3, padding=1, dtype=np.float64, rng=rng))
    true = singular_values(stack, (2, 16))[0]
    A = stack[1].matrix((2, 16)) @ stack[0].matrix((2, 16))
    assert true == pytest.approx(sigma(A.toarray())[0], rel=1e-12)
    assert lipschitz_bound(stack, (2, 16)).bound >= true


def test_local_lipschitz_is_the_jacobian_norm(rng):
    net = small_net(rng)
    x = rng.standard_normal((1, 8, 8))
    eps = 1e-6
    J = np.stack([(net((x + eps * e)[None]) - net((x - eps * e)[None]))[0] / (2 * eps)
                  for e in np.eye(64).reshape(64, 1, 8, 8)], axis=1)
    assert local_lipschitz(net, x) == pytest.approx(sigma(J)[0], rel=1e-6)


# --------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rescale_leaves_sigma_max_at_the_bound(dtype, rng):
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, dtype=dtype, rng=rng)
    shape = (2, 9, 9)
    before = conv.weight.data.astype(np.float64)
    s0 = dense_norm(conv, shape)
    after = clip_operator_norm_(conv, shape, 0.5 * s0)
    s1 = dense_norm(conv, shape)
    assert s1 <= 0.5 * s0 and after == pytest.approx(s1, rel=1e-6)
    assert s1 >= 0.5 * s0 * (1 - (1e-12 if dtype == np.float64 else 1e-6))
    ratio = conv.weight.data.astype(np.float64) / before
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-6)  # a uniform rescaling
    w = conv.weight.data.copy()
    clip_operator_norm_(conv, shape, 2 * s0)  # already below: untouched
    assert np.array_equal(conv.weight.data, w)


def test_rescale_linear_and_transposed_layers(rng):
    fc = nn.Linear(6, 4, dtype=np.float64, rng=rng)
    clip_operator_norm_(fc, (6,), 0.1)
    assert sigma(fc.weight.data)[0] <= 0.1
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, dtype=np.float64, rng=rng)
    clip_operator_norm_(up, (3, 4, 4), 0.2)
    assert dense_norm(up, (3, 4, 4)) <= 0.2


def test_sedghi_clipping_is_exact_when_the_kernel_covers_the_grid(rng):
    # a 3x3 kernel on a 3x3 circular grid: the projection onto the taps loses nothing
    conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", dtype=np.float64, rng=rng)
    shape = (2, 3, 3)
    before = sigma(conv.matrix(shape).toarray())
    bound = float(np.median(before))
    clip_operator_norm_(conv, shape, bound, method="sedghi")
    np.testing.assert_allclose(sigma(conv.matrix(shape).toarray()),
                               np.sort(np.minimum(before, bound))[::-1], rtol=0,
                               atol=1e-12 * before[0])


def test_sedghi_keeps_the_small_singular_values_that_rescaling_shrinks(rng):
    shape = (3, 8, 8)
    clipped = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular", dtype=np.float64, rng=rng)
    rescaled = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular", dtype=np.float64)
    rescaled.weight.data[...] = clipped.weight.data
    s0 = sigma(clipped.matrix(shape).toarray())
    bound = 0.5 * s0[0]
    clip_operator_norm_(clipped, shape, bound, method="sedghi", iterations=5)
    clip_operator_norm_(rescaled, shape, bound)
    s_clip = sigma(clipped.matrix(shape).toarray())
    s_rescale = sigma(rescaled.matrix(shape).toarray())
    assert s_clip[0] <= bound and s_rescale[0] <= bound
    # the rescaled spectrum is s0 / 2; the clipped one keeps its lower half closer to s0
    lower = slice(len(s0) // 2, None)
    assert np.linalg.norm(s_clip[lower] - s0[lower]) < np.linalg.norm(s_rescale[lower] - s0[lower])


def test_clipping_errors(rng):
    conv = nn.Conv2d(1, 1, 3, padding=1, dtype=np.float64, rng=rng)
    for bad in (0, -1.0, math.inf, True):
        with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
            clip_operator_norm_(conv, (1, 5, 5), bad)
    with pytest.raises(ValueError, match="method must be 'rescale' or 'sedghi'"):
        clip_operator_norm_(conv, (1, 5, 5), 1.0, method="clip")
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        clip_operator_norm_(conv, (1, 5, 5), 1.0, iterations=0)
    with pytest.raises(ValueError, match="needs a circular convolution: padding_mode is 'zeros'"):
        clip_operator_norm_(conv, (1, 5, 5), 1.0, method="sedghi")
    with pytest.raises(TypeError, match="takes a layer with a weight"):
        clip_operator_norm_(nn.ReLU(), (1, 5, 5), 1.0)
    # taps at -3, 0, 3 on a 6-cell circle: two of them share cell 3
    wide = nn.Conv1d(1, 1, 3, padding=3, dilation=3, padding_mode="circular", dtype=np.float64)
    with pytest.raises(ValueError, match="wraps around the input grid"):
        clip_operator_norm_(wide, (1, 6), 1.0, method="sedghi")


# --------------------------------------------------------------------------- the picture
def test_plot_spectrum_draws_the_values(rng):
    pytest.importorskip("matplotlib")
    conv = nn.Conv1d(1, 2, 3, padding=1, dtype=np.float64, rng=rng)
    s = singular_values(conv, (1, 10), which="all")
    ax = plot_spectrum(s, label="zeros")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), s)
    assert line.get_label() == "zeros" and ax.get_yscale() == "log"
    ax = plot_spectrum(conv, (1, 10), ax=ax, relative=True)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), s / s[0], rtol=1e-12)
    with pytest.raises(ValueError, match="non-empty 1-D array of finite numbers"):
        plot_spectrum(np.array([1.0, -1.0]))
