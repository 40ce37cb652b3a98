"""The pooling and upsampling layers PyTorch users expect, against PyTorch in float64: adaptive
max/avg pools in 1-D and 3-D, LPPool3d and Lp pooling at inf, zero and NaN, return_indices and
MaxUnpool, fractional max pooling, every Upsample mode, PyTorch's argument shorthands."""
import itertools

import numpy as np
import pytest

from matconv import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional


def check(layer, torch_fn, x, rng, rtol=1e-10, atol=1e-12, dy=None, call=None):
    """Forward and input gradient of ``layer`` (called as ``call(x)`` if given) equal
    ``torch_fn``'s; returns (y, dy, dx)."""
    y = layer(x) if call is None else call(x)
    y = y[0] if isinstance(y, tuple) else y
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_fn(xt)
    yt = yt[0] if isinstance(yt, tuple) else yt
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    dy = rng.standard_normal(y.shape) if dy is None else dy
    yt.backward(torch.tensor(dy))
    with np.errstate(invalid="ignore"):  # inf * 0 in a backward is NaN, as in PyTorch
        dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol)
    return y, dy, dx


def transpose_invariant(layer, x, dy, dx, per_example=True):
    """``backward(dy) == matrix().T @ dy`` for every example."""
    for n in range(x.shape[0]):
        M = layer.matrix(x.shape[1:], example=n) if per_example else layer.matrix(x.shape[1:])
        np.testing.assert_allclose(M.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- adaptive pools
ADAPTIVE = [(1, (11,), 4), (1, (5,), 7), (3, (5, 6, 7), (2, 3, 4)), (3, (4, 4, 4), 1),
            (3, (3, 5, 4), (None, 2, 3)), (2, (7, 9), (3, 4))]


@pytest.mark.parametrize("nd, size, out", ADAPTIVE, ids=str)
def test_adaptive_max_pools_and_indices(nd, size, out, rng):
    cls = getattr(nn, f"AdaptiveMaxPool{nd}d")
    fn = getattr(F, f"adaptive_max_pool{nd}d")
    x = rng.integers(0, 4, (2, 3, *size)).astype(np.float64)  # ties: the first maximum wins
    layer = cls(out, return_indices=True)
    y, dy, dx = check(layer, lambda t: fn(t, out, return_indices=True), x, rng)
    transpose_invariant(layer, x, dy, dx)
    _, indices = layer(x)
    np.testing.assert_array_equal(indices, fn(torch.tensor(x), out, True)[1].numpy())
    assert indices.dtype == np.int64


@pytest.mark.parametrize("nd, size, out", ADAPTIVE, ids=str)
def test_adaptive_avg_pools(nd, size, out, rng):
    cls = getattr(nn, f"AdaptiveAvgPool{nd}d")
    x = rng.standard_normal((2, 3, *size))
    layer = cls(out)
    y, dy, dx = check(layer, lambda t: getattr(F, f"adaptive_avg_pool{nd}d")(t, out), x, rng)
    transpose_invariant(layer, x, dy, dx, per_example=False)


# --------------------------------------------------------------------------- return_indices
@pytest.mark.parametrize("nd, k, stride, padding, dilation, ceil", [
    (1, 3, 2, 1, 1, False), (1, 2, None, 0, 2, True), (2, 2, None, 0, 1, False),
    (2, 3, 2, 1, 1, True), (2, (2, 3), 1, (1, 0), (1, 2), False), (3, 2, None, 0, 1, False),
    (3, 3, 2, 1, 1, True)], ids=str)
def test_max_pool_indices_and_unpool(nd, k, stride, padding, dilation, ceil, rng):
    x = rng.integers(0, 5, (2, 3, *[(9, 8, 7)[d] - 2 * (nd == 3) for d in range(nd)]))
    x = x.astype(np.float64)
    pool = getattr(nn, f"MaxPool{nd}d")(k, stride, padding, dilation, True, ceil)
    y, indices = pool(x)
    yt, it = getattr(F, f"max_pool{nd}d")(torch.tensor(x), k, stride, padding, dilation, ceil,
                                          True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(pool.backward(dy), pool.backward(dy, None))  # indices: no grad
    # unpooling non-overlapping windows (stride = kernel) reproduces PyTorch exactly
    if stride is None and padding == 0 and dilation == 1 and not ceil:
        unpool = getattr(nn, f"MaxUnpool{nd}d")(k)
        size = x.shape[2:]
        z = unpool(y, indices, output_size=size)
        zt = getattr(F, f"max_unpool{nd}d")(torch.tensor(y), it, k, output_size=size)
        np.testing.assert_array_equal(z, zt.numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_is_the_transpose_of_the_selection(nd, rng):
    """Forward ``P.T y``, backward ``P dz``: PyTorch's values and gradients."""
    size = (8, 6, 4)[:nd]
    x = rng.standard_normal((2, 3, *size))
    pool = getattr(nn, f"MaxPool{nd}d")(2, return_indices=True)
    y, indices = pool(x)
    P = pool.matrix(x.shape[1:], example=1)
    unpool = getattr(nn, f"MaxUnpool{nd}d")(2)
    it = torch.tensor(indices)
    z, dz, dy = check(unpool, lambda t: getattr(F, f"max_unpool{nd}d")(t, it, 2), y, rng,
                      call=lambda v: unpool(v, indices))
    np.testing.assert_allclose(unpool.matrix(y.shape[1:], example=1).toarray(), P.T.toarray())
    transpose_invariant(unpool, y, dz, dy)
    assert unpool.output_shape(y.shape[1:]) == x.shape[1:]


def test_unpool_output_size_and_bad_indices(rng):
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    x = rng.standard_normal((1, 2, 5, 5))
    y, indices = pool(x)
    z = unpool(y, indices, output_size=(1, 2, 5, 5))  # the full shape, as PyTorch allows
    zt = F.max_unpool2d(torch.tensor(y), torch.tensor(indices), 2, output_size=(5, 5))
    np.testing.assert_array_equal(z, zt.numpy())
    with pytest.raises(ValueError, match=r"output_size \(6, 5\) is invalid: dim 0 must be "
                                         r"between 2 and 6"):
        unpool(y, indices, output_size=(6, 5))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        unpool(y, indices + 20)
    with pytest.raises(TypeError, match=r"indices must be an integer ndarray"):
        unpool(y, indices.astype(float))
    with pytest.raises(ValueError, match=r"indices must have the input's shape"):
        unpool(y, indices[:, :1])


def test_unpool_of_overlapping_windows_adds_where_torch_keeps_one(rng):
    """Overlapping windows give repeated indices: ``P.T`` adds them (documented); the gradient
    is PyTorch's."""
    x = np.array([[[1.0, 3.0, 2.0, 0.0]]])
    pool, unpool = nn.MaxPool1d(3, 1, return_indices=True), nn.MaxUnpool1d(3, 1)
    y, indices = pool(x)
    np.testing.assert_array_equal(indices, [[[1, 1]]])
    np.testing.assert_array_equal(unpool(y, indices, output_size=(4,)), [[[0, 6, 0, 0]]])
    dz = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    np.testing.assert_array_equal(unpool.backward(dz), [[[2.0, 2.0]]])  # torch's gather


# --------------------------------------------------------------------------- fractional
@pytest.mark.parametrize("nd, k, out, ratio", [
    (2, 2, (4, 5), None), (2, (3, 2), 3, None), (2, 2, None, 0.6), (2, 1, (5, 7), None),
    (3, 2, (3, 4, 2), None), (3, (1, 2, 3), None, (0.5, 0.7, 0.5))], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fractional_max_pool(nd, k, out, ratio, dtype, rng):
    size = (9, 10, 7)[:nd] if nd == 3 else (9, 11)
    x = rng.integers(0, 6, (2, 3, *size)).astype(dtype)
    samples = rng.random((2, 3, nd)).astype(dtype)
    layer = getattr(nn, f"FractionalMaxPool{nd}d")(k, out, ratio, True, samples)
    fn = getattr(F, f"fractional_max_pool{nd}d")
    ratio = (ratio,) * nd if isinstance(ratio, float) else ratio  # F wants one per dim
    y, indices = layer(x)
    yt, it = fn(torch.tensor(x), k, out, ratio, True, _random_samples=torch.tensor(samples))
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    if dtype == np.float64:
        tol = dict(rtol=0, atol=0)
        _, dy, dx = check(layer, lambda t: fn(t, k, out, ratio, True,
                                              _random_samples=torch.tensor(samples)), x, rng,
                          **tol)
        transpose_invariant(layer, x, dy, dx)


def test_fractional_max_pool_draws_fresh_windows_from_rng(rng):
    layer = nn.FractionalMaxPool2d(2, output_ratio=0.45, rng=np.random.default_rng(0))
    x = rng.standard_normal((4, 2, 16, 16))
    a, b = layer(x), layer(x)
    assert a.shape == (4, 2, 7, 7) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"_random_samples must have shape \(N, C, 2\) = "
                                         r"\(4, 2, 2\)"):
        nn.FractionalMaxPool2d(2, 3, _random_samples=np.zeros((1, 2, 2)))(x)


# --------------------------------------------------------------------------- Lp pooling
@pytest.mark.parametrize("p, k, stride, ceil", [(2, 2, None, False), (3, (1, 2, 3), 1, False),
                                                (1.5, 2, 1, True)], ids=str)
def test_lp_pool_3d(p, k, stride, ceil, rng):
    x = rng.uniform(0.1, 2.0, (2, 3, 4, 5, 6))
    layer = nn.LPPool3d(p, k, stride, ceil)
    check(layer, lambda t: F.lp_pool3d(t, p, k, stride, ceil), x, rng)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 0.5, -1.0, float("inf"), -float("inf")])
def test_lp_pool_at_zero_inf_and_nan_like_torch(p, rng):
    """Windows summing to zero get a zero gradient; inf and NaN propagate as in PyTorch."""
    x = np.array([[[0.0, 0.0, 1.0, np.inf, 2.0, 3.0, np.nan, 1.0, -1.0, 2.0, -0.0, 4.0]]])
    if np.isfinite(p) and (p != int(p) or p < 0):
        x = np.abs(x)  # x ** p of a negative number is NaN for fractional p
    check(nn.LPPool1d(p, 2), lambda t: F.lp_pool1d(t, p, 2), x, rng,
          dy=rng.standard_normal((1, 1, 6)))


def test_lp_pool_inf_is_max_of_abs(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    layer = nn.LPPool2d(float("inf"), (2, 3), 2, ceil_mode=True)
    y, dy, dx = check(layer, lambda t: F.lp_pool2d(t, float("inf"), (2, 3), 2, True), x, rng)
    transpose_invariant(layer, x, dy, dx)


# --------------------------------------------------------------------------- arguments
def test_pytorch_shorthands_and_negative_divisor(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    check(nn.MaxPool2d((2,), stride=()), lambda t: F.max_pool2d(t, (2,), ()), x, rng)
    check(nn.MaxPool2d(3, (1,), (1,), (2,)), lambda t: F.max_pool2d(t, 3, (1,), (1,), (2,)), x,
          rng)
    check(nn.AvgPool2d((2,), ()), lambda t: F.avg_pool2d(t, (2,), ()), x, rng)
    check(nn.MaxPool1d((2,), ()), lambda t: F.max_pool1d(t, (2,), ()), x[0], rng)
    layer = nn.AvgPool2d(2, divisor_override=-3)
    y, dy, dx = check(layer, lambda t: F.avg_pool2d(t, 2, divisor_override=-3), x, rng)
    transpose_invariant(layer, x, dy, dx, per_example=False)


def test_max_pool_all_minus_inf_window_starting_in_padding(rng):
    """The gradient of a window of -inf goes to its first cell in the input, like PyTorch."""
    x = np.full((1, 2, 4), -np.inf)
    x[0, 1, 3] = 1.0
    check(nn.MaxPool1d(3, 2, 1), lambda t: F.max_pool1d(t, 3, 2, 1), x, rng,
          dy=np.array([[[1.0, 2.0], [3.0, 4.0]]]))
    x2 = np.full((1, 1, 3, 3), -np.inf)
    check(nn.MaxPool2d(2, 2, 1), lambda t: F.max_pool2d(t, 2, 2, 1), x2, rng)


# --------------------------------------------------------------------------- upsampling
def upsample_cases():
    rng = np.random.default_rng(7)
    for mode, count in (("nearest", 8), ("nearest-exact", 8), ("linear", 6), ("bilinear", 6),
                        ("bicubic", 10), ("trilinear", 4), ("area", 8)):
        for i in range(count):
            nd = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(mode, 1 + i % 3)
            spatial = tuple(int(v) for v in rng.integers(1, 7 if nd < 3 else 4, nd))
            if i % 2:
                scale = tuple(float(v) for v in rng.choice([0.5, 0.7, 1.3, 1.5, 2.0, 2.5, 3.0],
                                                            nd))
                if min(int(a * b) for a, b in zip(spatial, scale)) < 1:
                    continue
                size = None
            else:
                size, scale = tuple(int(v) for v in rng.integers(1, 9, nd)), None
            align = bool(i % 4 == 1) if mode in ("linear", "bilinear", "bicubic",
                                                 "trilinear") else None
            recompute = bool(i % 3 == 0) if scale is not None else None
            yield mode, size, scale, align, recompute, spatial


def torch_nearest_backward_is_a_shortcut(mode, scale, recompute, spatial):
    """PyTorch's nearest *backward* copies when the output is as long as the input and halves
    indices when it is twice as long, whatever the scale factor; its forward uses
    ``1 / scale_factor``. Then its gradient is not the transpose of its forward."""
    if mode != "nearest" or scale is None or recompute:
        return False
    return any((int(n * s) == n and s != 1) or (int(n * s) == 2 * n and s != 2)
               for n, s in zip(spatial, scale))


@pytest.mark.parametrize("mode, size, scale, align, recompute, spatial", list(upsample_cases()),
                         ids=str)
def test_upsample_modes(mode, size, scale, align, recompute, spatial, rng):
    layer = nn.Upsample(size, scale, mode, align, recompute)
    x = rng.standard_normal((2, 3, *spatial))
    if torch_nearest_backward_is_a_shortcut(mode, scale, recompute, spatial):
        y = layer(x)
        np.testing.assert_array_equal(y, F.interpolate(torch.tensor(x), size, scale, mode).numpy())
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
    else:
        y, dy, dx = check(layer, lambda t: F.interpolate(t, size, scale, mode, align, recompute),
                          x, rng)
    transpose_invariant(layer, x, dy, dx, per_example=False)
    x32 = x.astype(np.float32)
    y32 = layer(x32)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, F.interpolate(torch.tensor(x32), size, scale, mode, align,
                                                  recompute).numpy(), rtol=1e-5, atol=1e-5)


def test_nearest_backward_is_our_forward_transposed_where_torch_takes_a_shortcut(rng):
    """Output as long as the input with scale_factor 1.3: both forwards read cell
    ``floor(i / 1.3)``; PyTorch's backward sends every gradient to cell ``i``, matconv's to the
    cell the forward read (the transpose)."""
    x = rng.standard_normal((1, 1, 2))
    layer = nn.Upsample(scale_factor=1.3)
    y = layer(x)
    np.testing.assert_array_equal(y[0, 0], [x[0, 0, 0], x[0, 0, 0]])
    np.testing.assert_array_equal(y, F.interpolate(torch.tensor(x), scale_factor=1.3).numpy())
    np.testing.assert_array_equal(layer.backward(np.array([[[1.0, 2.0]]])), [[[3.0, 0.0]]])
    xt = torch.tensor(x, requires_grad=True)
    F.interpolate(xt, scale_factor=1.3).backward(torch.tensor([[[1.0, 2.0]]]))
    np.testing.assert_array_equal(xt.grad.numpy(), [[[1.0, 2.0]]])  # not its forward's transpose


@pytest.mark.parametrize("n, out", list(itertools.product([1, 2, 3, 7, 10], [1, 4, 7, 15, 23])))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_indices_match_torch_exactly(n, out, dtype):
    """PyTorch rounds the source position through float32; so do we, in both modes."""
    x = np.arange(n, dtype=dtype).reshape(1, 1, n)
    for mode in ("nearest", "nearest-exact"):
        np.testing.assert_array_equal(
            nn.Upsample(out, mode=mode)(x),
            F.interpolate(torch.tensor(x), out, mode=mode).numpy())


@pytest.mark.parametrize("mode, align", [("bilinear", True), ("bilinear", False),
                                         ("bicubic", False), ("bicubic", True)])
def test_interpolation_keeps_zero_weight_taps_so_nan_spreads_like_torch(mode, align):
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 2] = np.nan
    y = nn.Upsample((5, 4), mode=mode, align_corners=align)(x)
    yt = F.interpolate(torch.tensor(x), (5, 4), mode=mode, align_corners=align).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-14)
