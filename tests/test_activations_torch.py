"""The activations PyTorch users expect, against PyTorch in float64 and float32, NaN and inf
included."""
import numpy as np
import pytest

from matconv import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

ACTIVATIONS = [
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.3), torch.nn.ELU(0.3)), (nn.SiLU(), torch.nn.SiLU()),
    (nn.Softplus(), torch.nn.Softplus()), (nn.Softplus(2.0, 3.0), torch.nn.Softplus(2.0, 3.0)),
    (nn.Softplus(-0.5, 4.0), torch.nn.Softplus(-0.5, 4.0)),
    (nn.Hardtanh(), torch.nn.Hardtanh()), (nn.Hardtanh(-0.5, 2.0), torch.nn.Hardtanh(-0.5, 2.0)),
    (nn.ReLU(), torch.nn.ReLU()), (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Tanh(), torch.nn.Tanh()),
]


def special_values(rng, shape=(4, 5, 6)):
    x = rng.standard_normal(shape) * 4
    flat = x.reshape(-1)
    flat[:12] = [0.0, -0.0, 1.0, -1.0, 2.0, -0.5, 5.0, 20.0, 60.0, -60.0, 1e-8, 3.0]
    return x


@pytest.mark.parametrize("layer, module", ACTIVATIONS, ids=lambda v: repr(v))
def test_activation_matches_torch(layer, module, rng):
    x = special_values(rng)  # bounds, zeros, thresholds and large values on purpose
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    y = layer(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    J = layer.matrix(example=1)  # the diagonal Jacobian of example 1
    np.testing.assert_allclose(J.T @ dy[1].ravel(), dx[1].ravel(), rtol=1e-14)
    x32 = x.astype(np.float32)
    y32 = layer(x32)
    assert y32.dtype == np.float32 and layer.backward(dy.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(y32, module(torch.tensor(x32)).numpy(), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("layer, module", ACTIVATIONS, ids=lambda v: repr(v))
def test_activation_nan_and_inf_like_torch(layer, module):
    """NaN propagates; gradients at NaN and +-inf are PyTorch's (ReLU passes NaN's gradient)."""
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, 1.0]])
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    with np.errstate(invalid="ignore"):
        y = layer(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-14, atol=0)
    yt.backward(torch.ones_like(yt))
    with np.errstate(invalid="ignore"):
        dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-14, atol=0)


def test_relu_passes_the_gradient_at_nan():
    relu = nn.ReLU()
    relu(np.array([np.nan, -1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(4)), [1.0, 0.0, 0.0, 1.0])
