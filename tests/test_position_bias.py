"""PositionBias, the per-position (untied) bias b_{x,y} of Prayag & Amrutha's lecture: against
the formula, finite differences, the tied bias it generalises, and PyTorch in float64."""
import numpy as np
import pytest

import matconv as mc
from matconv import nn

from . import reference as ref


def _layer(shape, rng, dtype=np.float64):
    layer = nn.PositionBias(shape, dtype=dtype)
    layer.bias.data[...] = rng.standard_normal(shape)
    return layer


@pytest.mark.parametrize("shape", [(3,), (2, 5), (2, 3, 4), (1, 2, 3, 2)])
def test_forward_adds_one_value_per_channel_and_position(shape, rng):
    layer = _layer(shape, rng)
    x = rng.standard_normal((4, *shape))
    y = layer(x)
    assert y.shape == x.shape and y.dtype == np.float64
    for n in range(4):  # y[n] = x[n] + b, entry by entry
        for idx in np.ndindex(*shape):
            assert y[(n, *idx)] == x[(n, *idx)] + layer.bias.data[idx]
    assert not np.shares_memory(y, x)
    np.testing.assert_array_equal(layer(x[1]), y[1])  # one unbatched example


def test_backward_is_the_identity_and_the_bias_gradient_is_delta_summed_over_the_batch(rng):
    layer = _layer((2, 3, 4), rng)
    x = rng.standard_normal((5, 2, 3, 4))
    layer(x)
    dy = rng.standard_normal(x.shape)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx, dy)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(axis=0), rtol=1e-15)
    layer(x)
    layer.backward(dy)  # backward adds, like PyTorch
    np.testing.assert_allclose(layer.bias.grad, 2 * dy.sum(axis=0), rtol=1e-15)


def test_gradients_equal_finite_differences_through_a_conv_and_a_tanh(rng):
    """loss = <tanh(conv(x) + b), v>; dL/db, dL/dw and dL/dx against central differences."""
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64, rng=rng)
    bias = _layer((3, 5, 4), rng)
    net = nn.Sequential(conv, bias, nn.Tanh())
    x = rng.standard_normal((2, 2, 5, 4))
    v = rng.standard_normal((2, 3, 5, 4))
    net.zero_grad()
    net(x)
    dx = net.backward(v)

    def loss_of_bias(b):
        saved = bias.bias.data.copy()
        bias.bias.data[...] = b
        try:
            return np.sum(net(x) * v)
        finally:
            bias.bias.data[...] = saved

    def loss_of_weight(w):
        saved = conv.weight.data.copy()
        conv.weight.data[...] = w
        try:
            return np.sum(net(x) * v)
        finally:
            conv.weight.data[...] = saved

    for grad, f, point in [(bias.bias.grad, loss_of_bias, bias.bias.data),
                           (conv.weight.grad, loss_of_weight, conv.weight.data),
                           (dx, lambda z: np.sum(net(z) * v), x)]:
        for _ in range(3):
            u = rng.standard_normal(point.shape)
            fd = ref.finite_difference(f, point.copy(), u)
            assert np.isclose(fd, np.sum(grad * u), rtol=1e-7, atol=1e-9)
    # and entry by entry for the bias: dL/db[c, i, j] = delta[c, i, j] summed over the batch
    delta = v * (1 - np.tanh(conv(x) + bias.bias.data) ** 2)
    np.testing.assert_allclose(bias.bias.grad, delta.sum(axis=0), rtol=1e-12)


def test_a_constant_untied_bias_is_the_tied_bias(rng):
    """b[c, x, y] = b_c everywhere gives the conv's own bias; its gradient summed over the
    positions is the tied bias's gradient (Schmidt's sum over i', j' of delta)."""
    tied = nn.Conv2d(2, 3, 3, dtype=np.float64, rng=rng)
    untied = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False, dtype=np.float64),
                           nn.PositionBias((3, 4, 5), dtype=np.float64))
    untied[0].weight.data[...] = tied.weight.data
    untied[1].bias.data[...] = tied.bias.data[:, None, None]
    x = rng.standard_normal((2, 2, 6, 7))
    dy = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(untied(x), tied(x), rtol=1e-14, atol=1e-14)
    tied.backward(dy)
    untied.backward(dy)
    np.testing.assert_allclose(untied[1].bias.grad.sum(axis=(1, 2)), tied.bias.grad, rtol=1e-13)
    np.testing.assert_allclose(untied[0].weight.grad, tied.weight.grad, rtol=1e-13)


def test_matrix_is_the_identity_and_leaves_the_conv_matrix_unchanged(rng):
    layer = _layer((2, 3), rng)
    assert (layer.matrix() != mc.operators.Identity(6).matrix()).nnz == 0
    assert layer.matrix((2, 3)).shape == (6, 6)
    assert layer.operator().fixed
    assert layer.output_shape((2, 3)) == (2, 3)
    conv = nn.Conv1d(1, 2, 3, bias=False, dtype=np.float64, rng=rng)
    net = nn.Sequential(conv, layer)
    A = conv.matrix((1, 5))
    assert abs(net.matrix((1, 5)) - A).max() == 0          # the affine part is left out
    x = rng.standard_normal((1, 5))
    J = net.jacobian(x)
    assert abs(J - A).max() == 0
    np.testing.assert_allclose(net(x[None])[0].ravel(), A @ x.ravel() + layer.bias.data.ravel())


def test_used_twice_in_one_forward_accumulates_both_gradients(rng):
    layer = _layer((2, 4), rng)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = layer

        def forward(self, x):
            return self.b(self.b(x)) * 3.0

    net = Twice()
    x = rng.standard_normal((3, 2, 4))
    np.testing.assert_allclose(net(x), 3 * (x + 2 * layer.bias.data), rtol=1e-14)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(net.backward(dy), 3 * dy, rtol=1e-14)
    np.testing.assert_allclose(layer.bias.grad, 2 * 3 * dy.sum(axis=0), rtol=1e-14)


def test_float32_and_dtype_conversion(rng):
    layer = nn.PositionBias((2, 3))
    assert layer.bias.data.dtype == np.float32 and not layer.bias.data.any()
    y = layer(rng.standard_normal((4, 2, 3)))          # float64 input, float32 layer
    assert y.dtype == np.float32
    layer.double()
    assert layer(rng.standard_normal((4, 2, 3))).dtype == np.float64
    layer.backward(np.ones((4, 2, 3)))
    assert layer.bias.grad.dtype == np.float64 and np.all(layer.bias.grad == 4)


def test_state_dict_round_trip(rng):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.PositionBias((2, 4, 4)))
    assert list(net.state_dict()) == ["0.weight", "1.bias"]
    b = rng.standard_normal((2, 4, 4)).astype(np.float32)
    net.load_state_dict({"0.weight": net[0].weight.data, "1.bias": b})
    np.testing.assert_array_equal(net[1].bias.data, b)
    with pytest.raises(ValueError):
        net.load_state_dict({"0.weight": net[0].weight.data, "1.bias": b[:, :3]})


@pytest.mark.parametrize("shape", [(), (0, 3), (2, -1), 0, (2.0, 3), "2x3", None, (True, 2)])
def test_bad_shape_is_refused_by_name(shape):
    with pytest.raises(ValueError, match="shape must be the shape"):
        nn.PositionBias(shape)


def test_bad_inputs_are_refused_with_the_expected_shape(rng):
    layer = nn.PositionBias((2, 3), dtype=np.float64)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 2, 3\) or \(2, 3\), got "
                                         r"\(4, 3, 3\)"):
        layer(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="expects input"):
        layer(np.zeros((1, 4, 2, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.zeros((4, 2, 3), dtype=int))
    with pytest.raises(TypeError, match="ndarray"):
        layer([[0.0] * 3] * 2)
    with pytest.raises(ValueError, match="input_shape"):
        layer.matrix((3, 2))
    with pytest.raises(ValueError, match="one example"):
        layer.matrix((1, 2, 3))
    with pytest.raises(TypeError, match="dtype"):
        nn.PositionBias((2, 3), dtype=np.int64)
    layer.bias.data = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"bias.data must be a float array of shape \(2, 3\)"):
        layer(np.zeros((1, 2, 3)))


def test_memory_budget_is_checked_before_allocating():
    previous = mc.set_memory_budget(1 << 20)
    try:
        with pytest.raises(ValueError, match=r"PositionBias \(64 x 256 x 256\).*memory budget"):
            nn.PositionBias((64, 256, 256))
    finally:
        mc.set_memory_budget(previous)


def test_against_pytorch_float64(rng):
    """Conv2d(bias=False) + an untied bias parameter, trained one SGD step in both libraries."""
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False, dtype=np.float64, rng=rng)
    net = nn.Sequential(conv, _layer((3, 4, 3), rng), nn.ReLU())
    x = rng.standard_normal((5, 2, 8, 6))
    target = rng.standard_normal((5, 3, 4, 3))

    tw = torch.tensor(conv.weight.data.copy(), requires_grad=True)
    tb = torch.tensor(net[1].bias.data.copy(), requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.relu(torch.nn.functional.conv2d(tx, tw, stride=2, padding=1) + tb)
    tloss = torch.nn.functional.mse_loss(ty, torch.tensor(target))
    tloss.backward()

    loss_fn = nn.MSELoss()
    loss = loss_fn(net(x), target)
    dx = net.backward(loss_fn.backward())
    assert abs(loss - tloss.item()) < 1e-12
    np.testing.assert_allclose(net[1].bias.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-13)

    opt = mc.optim.SGD(net.parameters(), lr=0.1)
    opt.step()
    with torch.no_grad():
        tb -= 0.1 * tb.grad
    np.testing.assert_allclose(net[1].bias.data, tb.detach().numpy(), rtol=1e-12, atol=1e-14)
