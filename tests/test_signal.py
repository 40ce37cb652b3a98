"""correlate / convolve against scipy.signal in all three modes, 1-D to 3-D."""
import itertools

import numpy as np
import pytest
import scipy.signal

import matconv as mc

SHAPES = [((9,), (3,)), ((8,), (4,)), ((3,), (5,)), ((6, 7), (3, 2)), ((5, 5), (4, 4)),
          ((4, 5, 6), (2, 3, 2)), ((7,), (7,))]


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_correlate_and_convolve_match_scipy(shapes, mode, rng):
    x, k = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    for ours, theirs in ((mc.correlate, scipy.signal.correlate),
                         (mc.convolve, scipy.signal.convolve)):
        expected = theirs(x, k, mode=mode, method="direct")
        got = ours(x, k, mode=mode)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_valid_with_larger_kernel_swaps_like_scipy(rng):
    x, k = rng.standard_normal((3, 2)), rng.standard_normal((5, 4))
    for ours, theirs in ((mc.correlate, scipy.signal.correlate),
                         (mc.convolve, scipy.signal.convolve)):
        np.testing.assert_allclose(ours(x, k, "valid"), theirs(x, k, "valid"), rtol=1e-12)
    with pytest.raises(ValueError, match=r"one of x \(3, 6\) and kernel \(5, 4\) must be at least"):
        mc.correlate(np.ones((3, 6)), np.ones((5, 4)), "valid")


def test_seed_004_true_convolution():
    """h11 = x11 w22 + x12 w21 + x21 w12 + x22 w11 (1-based, 3x3 input, 2x2 kernel)."""
    x = np.arange(1.0, 10.0).reshape(3, 3)
    w = np.array([[2.0, 3.0], [5.0, 7.0]])
    h = mc.convolve(x, w, mode="valid")
    assert h.shape == (2, 2)
    for i, j in itertools.product(range(2), range(2)):
        assert h[i, j] == (x[i, j] * w[1, 1] + x[i, j + 1] * w[1, 0]
                           + x[i + 1, j] * w[0, 1] + x[i + 1, j + 1] * w[0, 0])


def test_dtype_and_errors():
    assert mc.correlate(np.ones(4, np.float32), np.ones(2, np.float32)).dtype == np.float32
    assert mc.correlate(np.arange(4), np.ones(2, np.int64)).dtype == np.float64
    with pytest.raises(ValueError, match=r"mode must be one of \('full', 'valid', 'same'\), got 'x'"):
        mc.correlate(np.ones(4), np.ones(2), mode="x")
    with pytest.raises(ValueError, match=r"same number of dimensions, 1 to 3; got x.ndim=2"):
        mc.correlate(np.ones((4, 4)), np.ones(2))
    with pytest.raises(TypeError, match=r"x must be a real numeric array, got dtype complex128"):
        mc.correlate(np.ones(4, complex), np.ones(2))
