"""Layers against PyTorch in float64: forward, input gradient, weight and bias gradients.

A parametrised grid over rank x stride x padding form x dilation x groups x padding mode (and
output_padding for the transposed layers), both lowerings.
"""
import itertools
from typing import NamedTuple

import numpy as np
import pytest

from matconv import nn

from . import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 6, 5)}
TORCH_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular",
              "zeros": "constant"}


class ConvCase(NamedTuple):
    ndim: int
    stride: int
    padding: object
    dilation: int
    groups: int
    mode: str

    def __str__(self):
        return (f"{self.ndim}d-s{self.stride}-p{self.padding}-d{self.dilation}-g{self.groups}-"
                f"{self.mode}")


def _paddings(ndim, stride):
    forms = [0, 1, "valid", "full", tuple(((1, 0), (0, 2), (2, 1))[:ndim])]
    if stride == 1:
        forms.append("same")
    if ndim == 1:
        forms.append("causal")
    return forms


def conv_cases():
    for ndim, stride, dilation, groups, mode in itertools.product(
            (1, 2, 3), (1, 2), (1, 2), (1, 2), ("zeros", "reflect", "replicate", "circular")):
        for padding in _paddings(ndim, stride):
            if mode != "zeros" and padding in (0, "valid"):
                continue  # the mode only matters where there is padding
            if mode == "reflect" and padding == "full" and dilation == 2:
                continue  # reflect needs padding < input size
            yield ConvCase(ndim, stride, padding, dilation, groups, mode)


CONV_CASES = list(conv_cases())


def torch_conv(x, w, b, case):
    pairs = ref.pad_pairs(case.padding, w.shape[2:], (case.dilation,) * case.ndim, case.ndim)
    conv = TORCH_CONV[case.ndim]
    if case.mode == "zeros" and isinstance(case.padding, (int, str)) and case.padding in (
            0, 1, "same", "valid"):
        # PyTorch's own padding argument, including its 'same'
        return conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    pad = [v for pair in reversed(pairs) for v in pair]
    x = F.pad(x, pad, mode=TORCH_MODE[case.mode])
    return conv(x, w, b, case.stride, 0, case.dilation, case.groups)


def _compare(layer, torch_fn, x, rng):
    """Run layer and torch on the same data; check forward and all three gradients."""
    y = layer(x)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.data, requires_grad=True)
    bt = torch.tensor(layer.bias.data, requires_grad=True)
    yt = torch_fn(xt, wt, bt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.weight.grad, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.bias.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-10)
    return y, dy, dx


@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_matches_torch(case, lowering, rng):
    layer = CONV[case.ndim](4, 6, 3, case.stride, case.padding, case.dilation, case.groups,
                            padding_mode=case.mode, lowering=lowering, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 4, *SPATIAL[case.ndim]))
    y, dy, dx = _compare(layer, lambda xt, wt, bt: torch_conv(xt, wt, bt, case), x, rng)
    # backward is the transpose of the layer's own matrix, example by example
    A = layer.matrix(x.shape[1:])
    for n in range(x.shape[0]):
        np.testing.assert_allclose(A.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-12, atol=1e-12)


class TransposeCase(NamedTuple):
    ndim: int
    stride: int
    padding: int
    output_padding: int
    dilation: int
    groups: int

    def __str__(self):
        return (f"{self.ndim}d-s{self.stride}-p{self.padding}-op{self.output_padding}-"
                f"d{self.dilation}-g{self.groups}")


def transpose_cases():
    for ndim, stride, padding, dilation, groups in itertools.product(
            (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2, 3), (1, 2)):
        for output_padding in range(max(stride, dilation)):
            if ndim == 3 and (stride, dilation) not in ((1, 1), (2, 1), (1, 3), (3, 2)):
                continue  # keep the 3-D share of the grid small
            yield TransposeCase(ndim, stride, padding, output_padding, dilation, groups)


@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
@pytest.mark.parametrize("case", list(transpose_cases()), ids=str)
def test_conv_transpose_matches_torch(case, lowering, rng):
    layer = CONV_T[case.ndim](4, 6, 3, case.stride, case.padding, case.output_padding,
                              case.groups, dilation=case.dilation, lowering=lowering,
                              dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 4, *(3,) * case.ndim))
    fn = TORCH_CONV_T[case.ndim]
    y, dy, dx = _compare(layer, lambda xt, wt, bt: fn(xt, wt, bt, case.stride, case.padding,
                                                      case.output_padding, case.groups,
                                                      case.dilation), x, rng)
    A = layer.matrix(x.shape[1:])
    np.testing.assert_allclose(A @ x[0].ravel() + np.repeat(layer.bias.data, y[0, 0].size),
                               y[0].ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.T @ dy[1].ravel(), dx[1].ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("output_size", [(7, 8), (8, 7), (1, 2, 8, 8)])
def test_conv_transpose_output_size_like_torch(output_size, rng):
    layer = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((1, 3, 4, 4))
    y = layer(x, output_size=output_size)
    expected = F.conv_transpose2d(torch.tensor(x), torch.tensor(layer.weight.data),
                                  torch.tensor(layer.bias.data), 2, 1,
                                  output_padding=tuple(o - 7 for o in output_size[-2:]))
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-12, atol=1e-12)


def test_default_initialisation_matches_torch_bounds():
    """PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from
    weight.size(1) * prod(kernel) for both conv and transposed conv."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for ours, theirs in [
        (nn.Conv2d(6, 256, 5, groups=2, rng=rng), torch.nn.Conv2d(6, 256, 5, groups=2)),
        (nn.ConvTranspose1d(8, 256, 3, groups=4, rng=rng),
         torch.nn.ConvTranspose1d(8, 256, 3, groups=4)),
    ]:
        assert ours.weight.shape == tuple(theirs.weight.shape)
        assert ours.bias.shape == tuple(theirs.bias.shape)
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)
        bound = 1 / np.sqrt(fan_in)
        for p, q in ((ours.weight.data, theirs.weight), (ours.bias.data, theirs.bias)):
            q = q.detach().numpy()
            assert np.abs(q).max() <= bound  # torch's own draw respects the bound we derive
            # ours fills the same interval (>= 256 draws: P(max < 0.9 bound) < 1e-11)
            assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
            assert abs(p.mean()) < 0.2 * bound
