"""Pools, upsampling, activations, Linear and Sequential against PyTorch in float64."""
import itertools

import numpy as np
import pytest

from matconv import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional


def check(layer, torch_fn, x, rng, rtol=1e-10, atol=1e-12, dy=None):
    """Forward and input gradient of ``layer`` equal ``torch_fn``'s; returns (y, dy, dx)."""
    y = layer(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_fn(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    dy = rng.standard_normal(y.shape) if dy is None else dy
    yt.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol)
    return y, dy, dx


def backward_is_matrix_transpose(layer, x, dy, dx):
    for n in range(x.shape[0]):
        M = layer.matrix(x.shape[1:], example=n) if _data_dependent(layer) else \
            layer.matrix(x.shape[1:])
        np.testing.assert_allclose(M.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-12, atol=1e-12)


def _data_dependent(layer):
    return isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d))


MAXPOOL = {1: (nn.MaxPool1d, F.max_pool1d), 2: (nn.MaxPool2d, F.max_pool2d),
           3: (nn.MaxPool3d, F.max_pool3d)}
AVGPOOL = {1: (nn.AvgPool1d, F.avg_pool1d), 2: (nn.AvgPool2d, F.avg_pool2d),
           3: (nn.AvgPool3d, F.avg_pool3d)}
SPATIAL = {1: (11,), 2: (7, 8), 3: (5, 6, 5)}


def pool_cases():
    for nd, k, stride, padding, dilation, ceil in itertools.product(
            (1, 2, 3), (2, 3), (None, 1, 2), (0, 1), (1, 2), (False, True)):
        if padding > (dilation * (k - 1) + 1) // 2:
            continue
        yield nd, k, stride, padding, dilation, ceil


@pytest.mark.parametrize("nd, k, stride, padding, dilation, ceil", list(pool_cases()), ids=str)
def test_max_pool(nd, k, stride, padding, dilation, ceil, rng):
    cls, fn = MAXPOOL[nd]
    layer = cls(k, stride, padding, dilation, ceil_mode=ceil)
    # small integers make ties common: the first maximum must win, like PyTorch
    x = rng.integers(0, 4, (2, 3, *SPATIAL[nd])).astype(np.float64)
    y, dy, dx = check(layer, lambda t: fn(t, k, stride, padding, dilation, ceil), x, rng)
    backward_is_matrix_transpose(layer, x, dy, dx)


AVG_CASES = [(nd, k, s, p, ceil) for nd, k, s, p, d, ceil in pool_cases()
             if d == 1 and p <= k // 2]  # no dilation in average pooling; PyTorch's padding limit


@pytest.mark.parametrize("nd, k, stride, padding, ceil", AVG_CASES, ids=str)
def test_avg_pool(nd, k, stride, padding, ceil, rng):
    cls, fn = AVGPOOL[nd]
    x = rng.standard_normal((2, 3, *SPATIAL[nd]))
    for include, override in ((True, None), (False, None), (True, 3)):
        if nd == 1 and override:
            continue  # torch's avg_pool1d has no divisor_override
        layer = cls(k, stride, padding, ceil, include, override)
        kw = dict(divisor_override=override) if nd > 1 else {}
        y, dy, dx = check(layer, lambda t, include=include, kw=kw: fn(
            t, k, stride, padding, ceil, include, **kw), x, rng)
        backward_is_matrix_transpose(layer, x, dy, dx)


def test_max_pool_nan_propagates_like_torch(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 2, 2] = x[0, 1, 3, 3] = np.nan
    check(nn.MaxPool2d(2), lambda t: F.max_pool2d(t, 2), x, rng, dy=np.ones((1, 2, 2, 2)))
    check(nn.MaxPool2d(3, 1), lambda t: F.max_pool2d(t, 3, 1), x, rng, dy=np.ones((1, 2, 2, 2)))


@pytest.mark.parametrize("nd, p, k, stride, ceil", [
    (1, 2, 3, None, False), (1, 1.5, 2, 1, True), (2, 2, 2, None, False), (2, 3, (2, 3), 1, False),
    (2, 1, 3, 2, True)])
def test_lp_pool(nd, p, k, stride, ceil, rng):
    cls, fn = (nn.LPPool1d, F.lp_pool1d) if nd == 1 else (nn.LPPool2d, F.lp_pool2d)
    x = rng.uniform(0.1, 2.0, (2, 3, *SPATIAL[nd]))  # positive: x**p is defined for any p
    check(cls(p, k, stride, ceil), lambda t: fn(t, p, k, stride, ceil), x, rng)


@pytest.mark.parametrize("in_size, out_size", [((7, 9), (3, 4)), ((5, 5), 1), ((4, 6), (5, 7)),
                                               ((8, 8), (None, 3))])
def test_adaptive_pools_2d(in_size, out_size, rng):
    x = rng.standard_normal((2, 3, *in_size))
    layer = nn.AdaptiveAvgPool2d(out_size)
    y, dy, dx = check(layer, lambda t: F.adaptive_avg_pool2d(t, out_size), x, rng)
    backward_is_matrix_transpose(layer, x, dy, dx)
    layer = nn.AdaptiveMaxPool2d(out_size)
    y, dy, dx = check(layer, lambda t: F.adaptive_max_pool2d(t, out_size), x, rng)
    backward_is_matrix_transpose(layer, x, dy, dx)


@pytest.mark.parametrize("n, out", [(10, 3), (5, 5), (3, 7), (9, 1)])
def test_adaptive_avg_pool_1d(n, out, rng):
    check(nn.AdaptiveAvgPool1d(out), lambda t: F.adaptive_avg_pool1d(t, out),
          rng.standard_normal((2, 3, n)), rng)


UPSAMPLE_CASES = [
    ("nearest", 2, None, None, (5, 6)), ("nearest", None, 1.5, None, (5, 6)),
    ("nearest", (7, 13), None, None, (5, 6)), ("nearest", None, (2.3, 0.6), None, (5, 6)),
    ("nearest", None, 3, None, (4,)), ("nearest", (3, 4, 5), None, None, (2, 3, 2)),
    ("linear", 9, None, False, (4,)), ("linear", None, 2.5, True, (4,)),
    ("bilinear", None, 2, False, (3, 4)), ("bilinear", (7, 5), None, True, (3, 4)),
    ("bilinear", None, (1.7, 0.5), False, (6, 6)), ("bilinear", (2, 1), None, True, (3, 4)),
    ("trilinear", None, 2, False, (2, 3, 2)), ("trilinear", (3, 5, 4), None, True, (2, 3, 2)),
]


@pytest.mark.parametrize("mode, size, scale, align, spatial", UPSAMPLE_CASES, ids=str)
def test_upsample(mode, size, scale, align, spatial, rng):
    layer = nn.Upsample(size, scale, mode, align)
    x = rng.standard_normal((2, 3, *spatial))
    y, dy, dx = check(layer, lambda t: F.interpolate(t, size, scale, mode, align), x, rng)
    backward_is_matrix_transpose(layer, x, dy, dx)


def test_upsample_float32_close_to_torch(rng):
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    for mode in ("nearest", "bilinear"):
        y = nn.Upsample(scale_factor=1.7, mode=mode)(x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, F.interpolate(torch.tensor(x), None, 1.7, mode).numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, fn", [
    (nn.ReLU(), F.relu), (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
    (nn.Sigmoid(), torch.sigmoid), (nn.Tanh(), torch.tanh),
    (nn.Softmax(dim=1), lambda t: F.softmax(t, 1)),
    (nn.LogSoftmax(dim=-1), lambda t: F.log_softmax(t, -1)),
    (nn.Softmax(dim=0), lambda t: F.softmax(t, 0)),
], ids=repr)
def test_activations(layer, fn, rng):
    x = rng.standard_normal((4, 5, 3)) * 3
    x[0, 0, 0] = 0.0  # ReLU's gradient at 0 is 0, like PyTorch
    check(layer, fn, x, rng)


def test_linear(rng):
    layer = nn.Linear(7, 4, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 7))
    w = torch.tensor(layer.weight.data, requires_grad=True)
    b = torch.tensor(layer.bias.data, requires_grad=True)
    check(layer, lambda t: F.linear(t, w, b), x, rng)
    np.testing.assert_allclose(layer.weight.grad, w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, b.grad.numpy(), rtol=1e-12)
    x3 = rng.standard_normal((2, 3, 7))  # leading dims, like torch
    assert layer(x3).shape == (2, 3, 4)


def lenet(nn_mod, lowering=None):
    kw = {} if lowering is None else dict(lowering=lowering, dtype=np.float64)
    return nn_mod.Sequential(
        nn_mod.Conv2d(1, 4, 3, padding=1, **kw), nn_mod.ReLU(), nn_mod.MaxPool2d(2),
        nn_mod.Conv2d(4, 6, 3, padding=1, **kw), nn_mod.Tanh(), nn_mod.AvgPool2d(2),
        nn_mod.Flatten(), nn_mod.Linear(24, 10, **({} if lowering is None else
                                                    dict(dtype=np.float64))))


@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
def test_torch_state_dict_loads_unchanged_and_network_matches(lowering, rng):
    theirs = lenet(torch.nn).double()
    ours = lenet(nn, lowering)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = rng.standard_normal((3, 1, 8, 8))
    target = np.array([1, 5, 9])
    xt = torch.tensor(x, requires_grad=True)
    loss_t = F.cross_entropy(theirs(xt), torch.tensor(target))
    loss_t.backward()
    criterion = nn.CrossEntropyLoss()
    loss = criterion(ours(x), target)
    assert np.isclose(loss, loss_t.item(), rtol=1e-12)
    dx = ours.backward(criterion.backward())
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (name_t, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == name_t
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_resize_convolution_is_a_product_of_two_matrices(rng):
    up = nn.Upsample(scale_factor=2, mode="bilinear")
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64, rng=rng)
    x = rng.standard_normal((1, 2, 4, 5))
    y = conv(up(x))
    A, U = conv.matrix((2, 8, 10)), up.matrix((2, 4, 5))
    np.testing.assert_allclose((A @ U) @ x[0].ravel(), y[0].ravel(), rtol=1e-12)
    expected = F.conv2d(F.interpolate(torch.tensor(x), scale_factor=2, mode="bilinear"),
                        torch.tensor(conv.weight.data), padding=1)
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape, group", [((2, 6, 4, 5), 3), ((2, 4, 7), 2), ((1, 8, 2, 3, 2), 4)])
def test_channel_max_pool_is_max_over_channel_groups(shape, group, rng):
    x = rng.integers(0, 3, shape).astype(np.float64)  # ties: the first channel of a group wins

    def torch_fn(t):
        return t.reshape(t.shape[0], -1, group, *t.shape[2:]).max(dim=2).values

    check(nn.ChannelMaxPool(group), torch_fn, x, rng)


def test_dropout_backward_uses_the_forward_mask(rng):
    drop = nn.Dropout(0.3, rng=rng)
    x = rng.standard_normal((50, 20))
    y = drop(x)
    kept = y != 0
    dx = drop.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, kept / 0.7)
    np.testing.assert_allclose(y, x * kept / 0.7)
