"""Networks that are graphs of operators — residual additions, a concatenation skip, a layer used
twice, WaveNet's gated stack — against PyTorch in float64 (forward, input gradient, every
parameter gradient, the Jacobian) and against finite differences without torch."""
import numpy as np
import pytest

import matconv as mc
from matconv import nn

F64 = dict(dtype=np.float64)


# ---------------------------------------------------------------- the models, in matconv
class ResNetTiny(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, rng=rng, **F64)
        self.block1 = nn.ResidualBlock(4, 4, rng=rng, **F64)
        self.block2 = nn.ResidualBlock(4, 6, stride=2, rng=rng, **F64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 3, rng=rng, **F64)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.block2(self.block1(self.stem(x))))))


class UNetTiny(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 3, 3, padding=1, rng=rng, **F64)
        self.relu = nn.ReLU()
        self.down = nn.MaxPool2d(2)
        self.enc2 = nn.Conv2d(3, 4, 3, padding=1, rng=rng, **F64)
        self.up = nn.ConvTranspose2d(4, 3, 2, stride=2, rng=rng, **F64)
        self.dec = nn.Conv2d(6, 2, 3, padding=1, rng=rng, **F64)

    def forward(self, x):
        skip = self.relu(self.enc1(x))                # the same ReLU module, used twice
        h = self.relu(self.enc2(self.down(skip)))
        return self.dec(mc.cat([self.up(h), skip], dim=1))


class Twice(nn.Module):
    """One convolution applied twice, slicing, a product and a difference."""

    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1, rng=rng, **F64)
        self.act = nn.Tanh()

    def forward(self, x):
        h = self.conv(self.act(self.conv(x)))
        return h[:, :1] * h[:, 1:] - 0.5 * x[:, 1:] / 3.0


class WaveNetTiny(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.stack = nn.WaveNetStack(3, 2, dilations=(1, 2, 4), rng=rng, **F64)

    def forward(self, x):
        return self.stack(x)


MODELS = {"resnet": (ResNetTiny, (2, 1, 8, 8)), "unet": (UNetTiny, (2, 1, 6, 6)),
          "twice": (Twice, (2, 2, 5, 5)), "wavenet": (WaveNetTiny, (2, 3, 16))}


def reused_sequential(rng):
    """``relu = ReLU(); Sequential(c1, relu, c2, relu)``: the everyday PyTorch idiom."""
    relu = nn.ReLU()
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng, **F64), relu,
                         nn.Conv2d(3, 2, 3, padding=1, rng=rng, **F64), relu)


# ---------------------------------------------------------------- the same models, in PyTorch
def torch_models(torch):
    tnn, F = torch.nn, torch.nn.functional

    class TBlock(tnn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1)
            self.relu1 = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1)
            self.shortcut = tnn.Conv2d(cin, cout, 1, stride) if (cin != cout or stride != 1) \
                else tnn.Identity()
            self.relu2 = tnn.ReLU()

        def forward(self, x):
            return self.relu2(self.shortcut(x) + self.conv2(self.relu1(self.conv1(x))))

    class TResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Conv2d(1, 4, 3, padding=1)
            self.block1, self.block2 = TBlock(4, 4), TBlock(4, 6, 2)
            self.pool, self.flat = tnn.AdaptiveAvgPool2d(1), tnn.Flatten()
            self.fc = tnn.Linear(6, 3)

        def forward(self, x):
            return self.fc(self.flat(self.pool(self.block2(self.block1(self.stem(x))))))

    class TUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = tnn.Conv2d(1, 3, 3, padding=1)
            self.relu, self.down = tnn.ReLU(), tnn.MaxPool2d(2)
            self.enc2 = tnn.Conv2d(3, 4, 3, padding=1)
            self.up = tnn.ConvTranspose2d(4, 3, 2, stride=2)
            self.dec = tnn.Conv2d(6, 2, 3, padding=1)

        def forward(self, x):
            skip = self.relu(self.enc1(x))
            h = self.relu(self.enc2(self.down(skip)))
            return self.dec(torch.cat([self.up(h), skip], dim=1))

    class TTwice(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = tnn.Conv2d(2, 2, 3, padding=1), tnn.Tanh()

        def forward(self, x):
            h = self.conv(self.act(self.conv(x)))
            return h[:, :1] * h[:, 1:] - 0.5 * x[:, 1:] / 3.0

    class TWaveBlock(tnn.Module):
        def __init__(self, c, s, d):
            super().__init__()
            self.c, self.d = c, d
            self.dilated = tnn.Conv1d(c, 2 * c, 2, dilation=d)
            self.res, self.skip = tnn.Conv1d(c, c, 1), tnn.Conv1d(c, s, 1)

        def forward(self, x):
            h = self.dilated(F.pad(x, (self.d, 0)))
            z = torch.tanh(h[:, :self.c]) * torch.sigmoid(h[:, self.c:])
            return x + self.res(z), self.skip(z)

    class TStack(tnn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = tnn.ModuleList([TWaveBlock(3, 2, d) for d in (1, 2, 4)])

        def forward(self, x):
            total = 0
            for b in self.blocks:
                x, s = b(x)
                total = total + s
            return total

    class TWaveNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stack = TStack()

        def forward(self, x):
            return self.stack(x)

    def reused():
        relu = tnn.ReLU()
        return tnn.Sequential(tnn.Conv2d(1, 3, 3, padding=1), relu, tnn.Conv2d(3, 2, 3, padding=1),
                              relu)

    return {"resnet": TResNet, "unet": TUNet, "twice": TTwice, "wavenet": TWaveNet,
            "reused": reused}


CASES = list(MODELS) + ["reused"]


def build(name, rng):
    if name == "reused":
        return reused_sequential(rng), (2, 1, 6, 6)
    cls, shape = MODELS[name]
    return cls(rng), shape


def _mirror(torch, name, model):
    t = torch_models(torch)[name]().double()
    t.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return t


@pytest.mark.parametrize("name", CASES)
def test_graph_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    model, shape = build(name, rng)
    t = _mirror(torch, name, model)
    x = rng.standard_normal(shape)
    y = model(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = t(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    model.zero_grad()
    dx = model.backward(dy)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    theirs = dict(t.named_parameters())
    mine = dict(model.named_parameters())
    assert set(mine) == set(theirs)
    for key, p in mine.items():
        g = theirs[key].grad  # None where no path reaches (WaveNet's last residual output)
        np.testing.assert_allclose(p.grad, 0.0 if g is None else g.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", CASES)
def test_jacobian_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    model, shape = build(name, rng)
    t = _mirror(torch, name, model)
    x = rng.standard_normal(shape[1:])
    J = mc.jacobian(model, x).toarray()
    Jt = torch.autograd.functional.jacobian(lambda v: t(v[None])[0], torch.tensor(x))
    np.testing.assert_allclose(J, Jt.reshape(J.shape).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_gradients_match_finite_differences(name, rng):
    """Directional derivatives of ``L = <r, model(x)>`` along random directions, input and
    every parameter, without torch."""
    model, shape = build(name, rng)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(model(x).shape)

    def loss():
        return float(np.sum(r * model(x)))

    model(x)
    model.zero_grad()
    dx = model.backward(r)
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}
    eps = 1e-6
    u = rng.standard_normal(x.shape)
    x0 = x.copy()
    x[...] = x0 + eps * u
    plus = loss()
    x[...] = x0 - eps * u
    minus = loss()
    x[...] = x0
    assert np.isclose((plus - minus) / (2 * eps), np.sum(dx * u), rtol=1e-6, atol=1e-8)
    for key, p in model.named_parameters():
        v = rng.standard_normal(p.shape)
        p0 = p.data.copy()
        p.data[...] = p0 + eps * v
        plus = loss()
        p.data[...] = p0 - eps * v
        minus = loss()
        p.data[...] = p0
        assert np.isclose((plus - minus) / (2 * eps), np.sum(grads[key] * v), rtol=1e-6,
                          atol=1e-8), key


@pytest.mark.parametrize("name", CASES)
def test_backward_is_the_transposed_jacobian(name, rng):
    """For any graph, ``backward(dy)`` is ``J.T dy`` with ``J`` the sums and products of the
    recorded operators (the network's Jacobian at each example)."""
    model, shape = build(name, rng)
    x = rng.standard_normal(shape)
    y = model(x)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    for n in range(shape[0]):
        J = mc.jacobian(model, x[n])
        np.testing.assert_allclose(J.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-11, atol=1e-12)


def test_linear_graph_has_a_matrix(rng):
    """A graph of fixed linear maps (a residual sum and a concatenation) has a matrix without a
    point, equal to its forward minus the bias."""
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(2, 2, 3, padding=1, bias=False, rng=rng, **F64)
            self.b = nn.AvgPool1d(2)

        def forward(self, x):
            h = x + self.a(x)
            return mc.cat([self.b(h), self.b(x)[:, :1]], dim=1)

    net = Linear()
    x = rng.standard_normal((3, 2, 8))
    y = net(x)
    M = net.matrix((2, 8))
    assert M.shape == (y[0].size, x[0].size) and net.output_shape((2, 8)) == y.shape[1:]
    for n in range(3):
        np.testing.assert_allclose(M @ x[n].ravel(), y[n].ravel(), rtol=1e-12)
    np.testing.assert_allclose(net.linear_operator((2, 8)).matvec(x[0].ravel()), y[0].ravel(),
                               rtol=1e-12)


def test_checkpoint_of_a_graph_module(tmp_path, rng):
    model, shape = build("unet", rng)
    x = rng.standard_normal(shape)
    y = model(x)
    path = tmp_path / "unet.npz"
    mc.checkpoint.save(model, path)
    other, _ = build("unet", np.random.default_rng(99))
    assert not np.allclose(other(x), y)
    mc.checkpoint.load(path, model=other)
    np.testing.assert_array_equal(other(x), y)
