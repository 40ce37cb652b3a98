"""``matconv.nn.init``: gains and fans against ``torch.nn.init``, exact bounds and moments of
large draws against the formulas, in-place semantics, determinism, and the argument errors."""
import math

import numpy as np
import pytest

from matconv import nn
from matconv.nn import init
from matconv.nn.module import Parameter

WEIGHT_SHAPES = [(40, 30), (16, 8, 5), (32, 3, 3, 3), (4, 6, 2, 3, 2)]
N_DRAWS = 200_000


def _draws(fill, shape=(400, 500), dtype=np.float64, **kwargs):
    return fill(np.empty(shape, dtype), generator=np.random.default_rng(7), **kwargs)


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity, param) == \
        torch.nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("shape", WEIGHT_SHAPES + [(3, 0, 2)], ids=str)
def test_fans_match_torch(shape):
    torch = pytest.importorskip("torch")
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(np.empty(shape)) == expected


def test_fans_by_the_formula():
    assert init.calculate_fan_in_and_fan_out(np.empty((16, 3, 5, 5))) == (75, 400)
    assert init.calculate_fan_in_and_fan_out(Parameter(np.empty((7, 2)))) == (2, 7)
    conv_t = nn.ConvTranspose2d(4, 6, 3)        # weight (in, out, k, k): PyTorch's reading
    assert init.calculate_fan_in_and_fan_out(conv_t.weight) == (6 * 9, 4 * 9)


# -- bounds and moments ------------------------------------------------------------------------

def _kaiming_std(shape, a, mode, nonlinearity):
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    if nonlinearity == "leaky_relu":
        gain = math.sqrt(2 / (1 + a ** 2))
    else:
        gain = {"relu": math.sqrt(2), "tanh": 5 / 3, "linear": 1.0}[nonlinearity]
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def _check_uniform(w, bound):
    """All draws inside ``[-bound, bound]`` (the dtype's rounding of it), the extremes reached
    within 0.1 %, and the variance ``bound^2 / 3`` within 1.5 %."""
    edge = w.dtype.type(bound)
    assert np.all(w >= -edge) and np.all(w <= edge)
    assert w.max() > 0.999 * bound and w.min() < -0.999 * bound
    assert np.var(w.astype(np.float64)) == pytest.approx(bound ** 2 / 3, rel=0.015)
    assert abs(float(np.mean(w))) < 5 * bound / math.sqrt(3 * w.size)


def _check_normal(w, std):
    """Sample std within 1 %, mean within 5 standard errors, kurtosis of a normal."""
    w = w.astype(np.float64)
    assert np.std(w) == pytest.approx(std, rel=0.01)
    assert abs(np.mean(w)) < 5 * std / math.sqrt(w.size)
    assert np.mean((w / std) ** 4) == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a, mode, nonlinearity", [
    (0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
    (0.2, "fan_out", "leaky_relu"), (0, "fan_in", "relu"), (0, "fan_out", "relu"),
    (0, "fan_in", "tanh"), (0, "fan_out", "linear"),
])
@pytest.mark.parametrize("shape", [(500, 400), (100, 8, 5, 5)], ids=str)
def test_kaiming(shape, a, mode, nonlinearity, dtype):
    std = _kaiming_std(shape, a, mode, nonlinearity)
    kwargs = {"a": a, "mode": mode, "nonlinearity": nonlinearity}
    uniform = _draws(init.kaiming_uniform_, shape, dtype, **kwargs)
    _check_uniform(uniform, math.sqrt(3) * std)
    normal = _draws(init.kaiming_normal_, shape, dtype, **kwargs)
    _check_normal(normal, std)
    assert uniform.dtype == normal.dtype == dtype


@pytest.mark.parametrize("gain", [1.0, 0.5, init.calculate_gain("relu")])
@pytest.mark.parametrize("shape", [(500, 400), (100, 8, 5, 5)], ids=str)
def test_xavier(shape, gain):
    fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    _check_uniform(_draws(init.xavier_uniform_, shape, gain=gain), math.sqrt(3) * std)
    _check_normal(_draws(init.xavier_normal_, shape, gain=gain), std)


def test_uniform_normal_constant():
    w = _draws(init.uniform_, a=-0.5, b=1.5)
    assert w.min() >= -0.5 and w.max() < 1.5
    assert np.var(w) == pytest.approx(4 / 12, rel=0.015)
    assert np.mean(w) == pytest.approx(0.5, abs=0.005)
    _check_normal(_draws(init.normal_, mean=0.0, std=0.02), 0.02)
    shifted = _draws(init.normal_, mean=3.0, std=2.0)
    assert np.mean(shifted) == pytest.approx(3.0, abs=0.02)
    np.testing.assert_array_equal(init.constant_(np.empty((2, 2)), -1.5), np.full((2, 2), -1.5))
    np.testing.assert_array_equal(init.zeros_(np.ones(3, np.float32)), np.zeros(3))
    np.testing.assert_array_equal(init.ones_(np.zeros(3)), np.ones(3))


# -- in place, dtype, determinism ---------------------------------------------------------------

@pytest.mark.parametrize("fill, kwargs", [
    (init.uniform_, {}), (init.normal_, {}), (init.constant_, {"val": 2.0}), (init.zeros_, {}),
    (init.ones_, {}), (init.kaiming_uniform_, {}), (init.kaiming_normal_, {}),
    (init.xavier_uniform_, {}), (init.xavier_normal_, {}),
], ids=lambda v: getattr(v, "__name__", ""))
def test_in_place_on_parameters_and_arrays(fill, kwargs):
    conv = nn.Conv2d(2, 3, 3)                           # float32 by default
    data = conv.weight.data
    assert fill(conv.weight, **kwargs) is conv.weight
    assert conv.weight.data is data and data.dtype == np.float32
    array = np.full((3, 4), np.nan)
    assert fill(array, **kwargs) is array
    assert np.all(np.isfinite(array))
    out = conv(np.ones((1, 2, 5, 5), np.float32))       # the layer sees the new weights
    expected = data.reshape(3, -1).sum(axis=1) + conv.bias.data
    np.testing.assert_allclose(out[0, :, 0, 0], expected, rtol=1e-5, atol=1e-6)


def test_generator_and_manual_seed_make_draws_reproducible():
    a = init.kaiming_uniform_(np.empty((5, 4)), generator=np.random.default_rng(3))
    b = init.kaiming_uniform_(np.empty((5, 4)), generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    init.manual_seed(11)
    c = init.normal_(np.empty(6))
    init.manual_seed(11)
    np.testing.assert_array_equal(c, init.normal_(np.empty(6)))
    assert not np.array_equal(c, init.normal_(np.empty(6)))


def test_zero_element_tensors_are_a_no_op():
    """PyTorch returns zero-element tensors untouched; a zero fan must not divide by zero."""
    for fill in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
                 init.xavier_normal_):
        for shape in [(0, 3), (3, 0), (2, 0, 3)]:
            array = np.empty(shape)
            assert fill(array) is array
    assert init.kaiming_normal_(np.empty((0, 3)), mode="fan_out").shape == (0, 3)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: init.uniform_([1.0, 2.0]), TypeError, (r"tensor must be a Parameter or a numpy "
                                                   r"ndarray, got list")),
    (lambda: init.normal_(np.zeros(3, np.int64)), TypeError,
     r"tensor must hold floating-point values to be initialised, got dtype int64"),
    (lambda: init.kaiming_uniform_(np.empty(5)), ValueError,
     (r"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions \(got "
     r"shape \(5,\)\)")),
    (lambda: init.kaiming_normal_(np.empty((2, 2)), mode="fan_avg"), ValueError,
     r"Mode 'fan_avg' not supported, please use one of 'fan_in', 'fan_out'"),
    (lambda: init.kaiming_normal_(np.empty((2, 2)), nonlinearity="gelu"), ValueError,
     r"Unsupported nonlinearity 'gelu'; allowed: "),
    (lambda: init.calculate_gain("leaky_relu", True), ValueError,
     r"negative_slope True not a valid number"),
    (lambda: init.xavier_uniform_(np.empty((2, 2)), generator=0), TypeError,
     (r"generator must be a numpy.random.Generator \(np.random.default_rng\(seed\)\) or None, got "
     r"int")),
    (lambda: init.uniform_(np.empty(2), a=1.0, b=0.0), ValueError,
     r"uniform_ expects a <= b, got a=1\.0, b=0\.0"),
    (lambda: init.normal_(np.empty(2), std=-1.0), ValueError,
     r"normal_ expects std >= 0\.0, got std=-1\.0"),
    (lambda: init.constant_(np.empty(2), float("nan")), ValueError,
     r"val must be a finite real number, got nan"),
    (lambda: init.xavier_normal_(np.empty((2, 2)), gain="1"), ValueError,
     r"gain must be a finite real number, got '1'"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
