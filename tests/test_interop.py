"""Models across the border: from_torch / to_torch round trips over a grid of convolution
arguments and a nested Sequential of every supported layer (outputs and all gradients against
PyTorch in float64, train and eval), matrix_of against PyTorch's own Jacobian, torch sparse
tensors, and the errors (unsupported modules by type and path, no PyTorch installed)."""
import sys
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp

import matconv as mc
from matconv import nn


def test_without_torch_every_entry_point_says_pip_install_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    calls = [lambda: mc.from_torch(object()), lambda: mc.to_torch(nn.ReLU()),
             lambda: mc.matrix_of(object(), (1, 4)),
             lambda: mc.to_torch_sparse(sp.eye_array(2)), lambda: mc.from_torch_sparse(None)]
    for call in calls:
        with pytest.raises(ImportError, match=r"needs PyTorch, which is not installed: pip "
                                              r"install torch"):
            call()


torch = pytest.importorskip("torch")


def assert_same_state(ours, theirs):
    mine, other = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(other)
    for key, value in other.items():
        assert mine[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(mine[key], value.numpy(), err_msg=key)


def assert_same_function(ours, theirs, x, rng, rtol=1e-10, atol=1e-12):
    """Outputs, the input gradient and every parameter gradient agree."""
    ours.zero_grad()
    theirs.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=rtol, atol=atol)
    for (name, p), (name_t, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == name_t
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for (name, b), (_, bt) in zip(ours.named_buffers(), theirs.named_buffers()):
        np.testing.assert_allclose(b, bt.numpy(), rtol=1e-12, err_msg=name)


def conv_arguments(m):
    """A torch convolution's arguments, its padding as the cells it adds (``'same'`` and the
    ints it means are one padding)."""
    out = {n: getattr(m, n) for n in ("in_channels", "out_channels", "kernel_size", "stride",
                                      "dilation", "groups", "padding_mode", "output_padding")}
    return out | {"cells": tuple(m._reversed_padding_repeated_twice),
                  "bias": m.bias is not None, "dtype": m.weight.dtype}


CONV_CASES = [
    dict(stride=2), dict(padding=1, dilation=2), dict(padding="same", dilation=(1, 2)),
    dict(padding="valid", bias=False), dict(padding=(2, 1), stride=(1, 2)),
    dict(groups=2, padding=1), dict(padding=2, padding_mode="reflect"),
    dict(padding=(1, 2), padding_mode="replicate"), dict(padding=1, padding_mode="circular",
                                                         stride=2),
    dict(padding="same", padding_mode="reflect", groups=4),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kwargs", CONV_CASES, ids=str)
def test_conv_round_trip(nd, kwargs, rng):
    kw = {k: (v[:nd] if isinstance(v, tuple) and nd < 2 else v) for k, v in kwargs.items()}
    kw = {k: (v + v[-1:] if isinstance(v, tuple) and nd == 3 else v) for k, v in kw.items()}
    theirs = getattr(torch.nn, f"Conv{nd}d")(4, 8, 3, **kw).double()
    ours = mc.from_torch(theirs)
    assert type(ours) is getattr(nn, f"Conv{nd}d") and ours.dtype == np.float64
    assert_same_state(ours, theirs)
    x = rng.standard_normal((2, 4, *(7, 6, 5)[:nd]))
    assert_same_function(ours, theirs, x, rng)
    back = mc.to_torch(ours)
    assert conv_arguments(back) == conv_arguments(theirs)
    assert_same_state(ours, back)
    again = mc.from_torch(back)
    assert repr(again) == repr(ours)


CONV_T_CASES = [dict(stride=2, output_padding=1), dict(padding=1, dilation=2),
                dict(groups=2, stride=(2, 1), bias=False), dict(stride=3, padding=2,
                                                                output_padding=(2, 0))]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kwargs", CONV_T_CASES, ids=str)
def test_conv_transpose_round_trip(nd, kwargs, rng):
    kw = {k: (v[:nd] if isinstance(v, tuple) and nd < 2 else v) for k, v in kwargs.items()}
    kw = {k: (v + v[-1:] if isinstance(v, tuple) and nd == 3 else v) for k, v in kw.items()}
    theirs = getattr(torch.nn, f"ConvTranspose{nd}d")(4, 6, 3, **kw).double()
    ours = mc.from_torch(theirs)
    assert_same_state(ours, theirs)
    assert_same_function(ours, theirs, rng.standard_normal((2, 4, *(4, 3, 3)[:nd])), rng)
    back = mc.to_torch(ours)
    assert repr(back) == repr(theirs)
    assert_same_state(ours, back)


def every_layer(T):
    """A nested Sequential of every kind of layer, in ``T`` (torch.nn or matconv.nn)."""
    kw = {"dtype": torch.float64} if T is torch.nn else {"dtype": np.float64}
    return T.Sequential(
        T.Sequential(T.Conv2d(2, 4, 3, padding=1, **kw), T.BatchNorm2d(4, **kw), T.ReLU()),
        T.GroupNorm(2, 4, **kw), T.GELU("tanh"), T.MaxPool2d(2, 1),
        T.Upsample(scale_factor=2, mode="bilinear"), T.AvgPool2d(3, 2, 1),
        T.LPPool2d(2, 2), T.ELU(0.5), T.Upsample(size=(3, 3), mode="nearest-exact"),
        T.AdaptiveAvgPool2d(2), T.SiLU(), T.AdaptiveMaxPool2d((2, 1)), T.Softplus(2.0),
        T.Flatten(), T.Dropout(0.0), T.Identity(), T.Linear(8, 6, **kw), T.LayerNorm(6, **kw),
        T.Hardtanh(-2.0, 2.0), T.LeakyReLU(0.1), T.Tanh(), T.Linear(6, 5, **kw),
        T.BatchNorm1d(5, momentum=None, **kw), T.Sigmoid(), T.LogSoftmax(dim=1))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_nested_sequential_of_every_layer(mode, rng):
    theirs = every_layer(torch.nn)
    for p in theirs.parameters():
        with torch.no_grad():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    theirs.train(mode == "train")
    ours = mc.from_torch(theirs)
    assert_same_state(ours, theirs)
    assert all(m.training == (mode == "train") for m in ours.modules())
    for _ in range(2):  # twice: running statistics move in training
        assert_same_function(ours, theirs, rng.standard_normal((4, 2, 8, 8)) + 0.5, rng)
    back = mc.to_torch(ours)
    assert repr(back) == repr(theirs)
    assert_same_state(ours, back)
    assert [m.training for m in back.modules()] == [m.training for m in theirs.modules()]


def test_more_layers_round_trip(rng):
    """The pools, unpooling and activations not in the big model, one by one."""
    samples = torch.tensor(rng.random((2, 3, 2)))
    d1, d2, d3 = (2, 3, 9), (2, 3, 7, 8), (2, 3, 4, 5, 6)
    layers = [
        (torch.nn.MaxPool1d(3, 2, 1, ceil_mode=True), d1), (torch.nn.AvgPool1d(3, 2, 1), d1),
        (torch.nn.AvgPool3d(2, divisor_override=-3), d3), (torch.nn.LPPool1d(float("inf"), 2), d1),
        (torch.nn.LPPool3d(1.5, 2), d3), (torch.nn.AdaptiveAvgPool1d(3), d1),
        (torch.nn.AdaptiveMaxPool3d(2), d3), (torch.nn.AdaptiveAvgPool3d((None, 2, 1)), d3),
        (torch.nn.MaxPool3d(2, return_indices=True), d3),
        (torch.nn.FractionalMaxPool2d(2, (3, 4), _random_samples=samples), d2),
        (torch.nn.UpsamplingBilinear2d(scale_factor=1.5), d2),
        (torch.nn.UpsamplingNearest2d(size=7), d2),
        (torch.nn.Upsample(scale_factor=0.6, mode="bicubic", recompute_scale_factor=True), d2),
        (torch.nn.Upsample(size=(3, 4, 2), mode="area"), d3), (torch.nn.ReLU6(), d2),
        (torch.nn.Softmax(dim=-1), d2), (torch.nn.GELU(), d2), (torch.nn.Flatten(0, -1), d2),
        (torch.nn.LayerNorm((7, 8), bias=False).double(), d2),
        (torch.nn.BatchNorm3d(3, affine=False, track_running_stats=False).double(), d3),
        (torch.nn.BatchNorm2d(3, bias=False).double().eval(), d2),
    ]
    for theirs, shape in layers:
        ours = mc.from_torch(theirs)
        back = mc.to_torch(ours)
        name = type(theirs).__name__
        if not name.startswith("Upsampling") and name != "ReLU6":  # become Upsample, Hardtanh
            assert repr(back) == repr(theirs)
        assert_same_state(ours, back)
        x = rng.standard_normal(shape)
        y, yt = ours(x), theirs(torch.tensor(x))
        y, yt = (y[0], yt[0]) if isinstance(y, tuple) else (y, yt)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
        np.testing.assert_allclose(y, back(torch.tensor(x))[0].detach().numpy()
                                   if isinstance(back(torch.tensor(x)), tuple)
                                   else back(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    assert repr(mc.to_torch(mc.from_torch(torch.nn.MaxUnpool2d(2, 1)))) == \
        repr(torch.nn.MaxUnpool2d(2, 1))


def test_unpool_after_a_converted_pool_in_a_custom_module(rng):
    pool = mc.from_torch(torch.nn.MaxPool2d(2, return_indices=True))
    unpool = mc.from_torch(torch.nn.MaxUnpool2d(2))
    x = rng.standard_normal((2, 3, 4, 6))
    y, indices = pool(x)
    np.testing.assert_array_equal(unpool(y, indices),
                                  torch.nn.functional.max_unpool2d(
                                      torch.tensor(y), torch.tensor(indices), 2).numpy())


def test_named_sequential_shared_modules_and_dtype(rng):
    relu = torch.nn.ReLU()
    theirs = torch.nn.Sequential(OrderedDict(conv=torch.nn.Conv1d(1, 2, 3), act=relu,
                                             lin=torch.nn.Linear(4, 3), again=relu))
    ours = mc.from_torch(theirs)
    assert list(ours.state_dict()) == ["conv.weight", "conv.bias", "lin.weight", "lin.bias"]
    assert ours.act is ours.again and ours.conv.dtype == np.float32
    x = rng.standard_normal((2, 1, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    back = mc.to_torch(ours)
    assert back.act is back.again and back.conv.weight.dtype == torch.float32
    with pytest.raises(TypeError, match=r"Conv1d at 'conv' has dtype torch.float16; matconv "
                                        r"computes in float32 or float64"):
        mc.from_torch(theirs.half())


class MyBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return x + self.conv(x)


def test_unsupported_modules_are_named_with_their_path():
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3),
                                torch.nn.Sequential(torch.nn.ReLU(), torch.nn.LSTM(2, 2)))
    with pytest.raises(mc.interop.NotConvertible, match=r"torch.nn.LSTM at '1.1': matconv has "
                                                        r"no such layer"):
        mc.from_torch(model)
    with pytest.raises(TypeError, match=r"MyBlock at '0': it is a custom torch.nn.Module "
                                        r"subclass, and its forward\(\) is arbitrary Python"):
        mc.from_torch(torch.nn.Sequential(MyBlock()))
    with pytest.raises(TypeError, match=r"MyBlock \(the model itself\)"):
        mc.from_torch(MyBlock())
    with pytest.raises(mc.interop.NotConvertible, match=r"Residual at '1': PyTorch has no "
                                                        r"equivalent layer"):
        mc.to_torch(nn.Sequential(nn.ReLU(), nn.Residual(nn.ReLU())))
    with pytest.raises(mc.interop.NotConvertible, match=r"Conv1d at '0': padding \(\(2, 0\),\) "
                                                        r"\(per side\) has no"):
        mc.to_torch(nn.Sequential(nn.Conv1d(1, 1, 3, padding="causal")))
    with pytest.raises(mc.interop.NotConvertible, match=r"ChannelMaxPool \(the model itself\)"):
        mc.to_torch(nn.ChannelMaxPool(2))
    with pytest.raises(mc.interop.NotConvertible, match=r"implicit dim"):
        mc.from_torch(torch.nn.Softmax())
    with pytest.raises(TypeError, match=r"module must be a torch.nn.Module, got int"):
        mc.from_torch(3)
    with pytest.raises(TypeError, match=r"model must be a matconv.nn.Module, got Conv2d"):
        mc.to_torch(torch.nn.Conv2d(1, 1, 1))


def test_matrix_of_a_strided_multichannel_conv_is_torchs_jacobian(rng):
    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="reflect").double()
    A = mc.matrix_of(conv, (2, 6, 7))
    assert isinstance(A, sp.csr_array) and A.shape == (3 * 3 * 4, 2 * 6 * 7)
    J = torch.autograd.functional.jacobian(lambda t: conv(t), torch.zeros(1, 2, 6, 7,
                                                                          dtype=torch.float64))
    np.testing.assert_allclose(A.toarray(), J.numpy().reshape(A.shape), rtol=1e-12, atol=1e-14)
    up = torch.nn.ConvTranspose1d(2, 1, 4, stride=2, padding=1).double()
    x = torch.tensor(rng.standard_normal((1, 2, 5)))
    np.testing.assert_allclose(mc.matrix_of(up, (2, 5)) @ x.numpy().ravel() + up.bias.item(),
                               up(x).detach().numpy().ravel(), rtol=1e-12)
    linear_part = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.AvgPool1d(2),
                                      torch.nn.Flatten(), torch.nn.Linear(4, 2)).double()
    assert mc.matrix_of(linear_part, (1, 6)).shape == (2, 6)
    assert linear_part.training  # the torch module is untouched
    with pytest.raises(ValueError, match=r"ReLU is not a fixed linear map"):
        mc.matrix_of(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 3), torch.nn.ReLU()), (1, 6))


@pytest.mark.parametrize("layout", ["csr", "coo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_matrices_round_trip_exactly(layout, dtype, rng):
    A = mc.conv_matrix(rng.standard_normal((3, 2, 3, 3)).astype(dtype), (2, 5, 6), stride=2,
                       padding=1)
    T = mc.to_torch_sparse(A, layout=layout)
    assert T.layout == (torch.sparse_csr if layout == "csr" else torch.sparse_coo)
    assert T.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
    x = rng.standard_normal((A.shape[1], 2)).astype(dtype)
    np.testing.assert_allclose(torch.sparse.mm(T, torch.tensor(x)).numpy(), A @ x, rtol=1e-6)
    B = mc.from_torch_sparse(T)
    assert isinstance(B, sp.csr_array) and B.dtype == A.dtype and (A != B).nnz == 0
    np.testing.assert_array_equal(mc.from_torch_sparse(T.to_dense()).toarray(), A.toarray())
    np.testing.assert_array_equal(mc.from_torch_sparse(T.to_sparse_csc()
                                                       if layout == "csr" else T).toarray(),
                                  A.toarray())
    op = nn.Conv1d(1, 1, 2, dtype=np.float64).operator((1, 4))
    np.testing.assert_array_equal(mc.to_torch_sparse(op).to_dense().numpy(), op.toarray())


def test_malformed_torch_sparse_is_refused():
    bad = torch.sparse_csr_tensor(torch.tensor([0, 2, 1]), torch.tensor([0, 5]),
                                  torch.tensor([1.0, 2.0]), size=(2, 3), check_invariants=False)
    with pytest.raises(ValueError, match=r"t is not a valid sparse matrix of shape \(2, 3\)"):
        mc.from_torch_sparse(bad)
    with pytest.raises(ValueError, match=r"t must be 2-D"):
        mc.from_torch_sparse(torch.zeros(2, 2, 2))
    with pytest.raises(TypeError, match=r"t must hold real numbers"):
        mc.from_torch_sparse(torch.zeros(2, 2, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"A must be a 2-D scipy.sparse"):
        mc.to_torch_sparse(np.eye(2))
    with pytest.raises(ValueError, match=r"layout must be one of \('csr', 'coo'\)"):
        mc.to_torch_sparse(sp.eye_array(2), layout="bsr")
