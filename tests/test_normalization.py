"""BatchNorm1d/2d/3d, LayerNorm and GroupNorm: against PyTorch in float64 (outputs, input and
parameter gradients, running statistics after several training steps), finite differences, the
adjoint dot test, ``backward == matrix().T`` where a per-example matrix exists, state dicts."""
import numpy as np
import pytest

import matconv as mc
from matconv import nn
from matconv.nn.trace import NotLinearError

from . import reference as ref


def fd_check(layer, x, rng, rtol=1e-6, atol=1e-8):
    v = rng.standard_normal(layer(x).shape)
    dx = layer.backward(v)
    u = rng.standard_normal(x.shape)
    fd = ref.finite_difference(lambda z: np.sum(layer(z) * v), x, u)
    assert np.isclose(fd, np.sum(dx * u), rtol=rtol, atol=atol), (fd, np.sum(dx * u))


def randomize_affine(layer, rng):
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)


BATCH_SHAPES = {1: [(6, 3), (4, 3, 5)], 2: [(4, 3, 5, 2)], 3: [(3, 3, 2, 3, 2)]}


@pytest.mark.parametrize("nd, shape", [(nd, s) for nd, ss in BATCH_SHAPES.items() for s in ss],
                         ids=str)
@pytest.mark.parametrize("momentum, affine, track", [(0.1, True, True), (None, True, True),
                                                     (0.5, False, True), (0.1, True, False)],
                         ids=str)
def test_batch_norm_steps_like_torch(nd, shape, momentum, affine, track, rng):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, f"BatchNorm{nd}d")(3, eps=1e-3, momentum=momentum, affine=affine,
                                                  track_running_stats=track).double()
    ours = getattr(nn, f"BatchNorm{nd}d")(3, eps=1e-3, momentum=momentum, affine=affine,
                                          track_running_stats=track, dtype=np.float64)
    randomize_affine(ours, rng)
    ours_state = {k: v for k, v in ours.state_dict().items()}
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours_state.items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for mode in ("train", "train", "train", "eval"):
        ours.train(mode == "train"), theirs.train(mode == "train")
        x = rng.standard_normal(shape) * 2 + 1
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        y = ours(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        ours.zero_grad()
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
            q.grad = None
        for name, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12,
                                       err_msg=name)


def test_batch_norm_training_operator_is_the_exact_jacobian(rng):
    """``matmat`` is PyTorch's Jacobian-vector product, ``rmatmat`` its vector-Jacobian
    product, and the two are adjoint; ``matrix()`` refuses: the examples are coupled."""
    torch = pytest.importorskip("torch")
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    randomize_affine(bn, rng)
    x = rng.standard_normal((3, 2, 2, 3))
    bn(x)
    op = bn.operator((2, 2, 3))
    u, v = rng.standard_normal((12, 3)), rng.standard_normal((12, 3))
    assert np.isclose(np.sum(op.matmat(u) * v), np.sum(u * op.rmatmat(v)), rtol=1e-12)
    theirs = torch.nn.BatchNorm2d(2).double()
    theirs.load_state_dict({k: torch.tensor(a) for k, a in bn.state_dict().items()})

    def f(t):
        return theirs(t)

    ut = torch.tensor(mc.layout.from_batch_last(u, x.shape).copy())
    _, jvp = torch.autograd.functional.jvp(f, torch.tensor(x), ut)
    np.testing.assert_allclose(op.matmat(u), mc.layout.to_batch_last(jvp.numpy()), rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(ValueError, match=r"couples the examples of the batch"):
        bn.matrix((2, 2, 3))
    with pytest.raises(ValueError, match=r"couples the examples of the batch"):
        mc.jacobian(bn, x[0])
    with pytest.raises(ValueError, match=r"couples the examples of the batch"):
        nn.BatchNorm1d(2).matrix((2, 4))  # no forward yet: the same reason


@pytest.mark.parametrize("layer, shape", [
    (nn.BatchNorm1d(3, dtype=np.float64), (5, 3, 4)),
    (nn.BatchNorm2d(2, momentum=None, dtype=np.float64), (4, 2, 3, 3)),
    (nn.LayerNorm((3, 4), dtype=np.float64), (2, 5, 3, 4)),
    (nn.LayerNorm(6, bias=False, dtype=np.float64), (3, 6)),
    (nn.GroupNorm(2, 4, dtype=np.float64), (3, 4, 5)),
    (nn.GroupNorm(3, 3, affine=False, dtype=np.float64), (2, 3, 2, 2)),
], ids=repr)
def test_finite_differences_and_eval_matrix(layer, shape, rng):
    randomize_affine(layer, rng)
    x = rng.standard_normal(shape)
    fd_check(layer, x, rng)
    layer.eval()
    fd_check(layer, x, rng)
    dy = rng.standard_normal(shape)
    layer(x)
    dx = layer.backward(dy)
    for n in range(shape[0]):  # eval BatchNorm: one fixed matrix; Layer/GroupNorm: per example
        J = layer.matrix(shape[1:]) if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) \
            else layer.matrix(shape[1:], example=n)
        np.testing.assert_allclose(J.T @ dy[n].ravel(), dx[n].ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalized, shape, affine, bias", [
    (5, (4, 5), True, True), ((3, 4), (2, 6, 3, 4), True, True), (4, (3, 2, 4), False, True),
    ((2, 2), (3, 2, 2), True, False), (7, (7,), True, True)], ids=str)
def test_layer_norm_like_torch(normalized, shape, affine, bias, rng):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.LayerNorm(normalized, eps=1e-4, elementwise_affine=affine,
                                bias=bias).double()
    ours = nn.LayerNorm(normalized, eps=1e-4, elementwise_affine=affine, bias=bias,
                        dtype=np.float64)
    randomize_affine(ours, rng)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal(shape) * 3
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(shape)
    yt.backward(torch.tensor(dy))
    dx = ours.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12)
    if len(shape) > (1 if isinstance(normalized, int) else len(normalized)):
        J = ours.matrix(shape[1:], example=1).toarray()
        Jt = torch.autograd.functional.jacobian(theirs, torch.tensor(x[1:2]))
        np.testing.assert_allclose(J, Jt.numpy().reshape(J.shape), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("groups, channels, shape", [(1, 4, (3, 4, 5)), (2, 4, (3, 4, 2, 3)),
                                                     (6, 6, (2, 6, 3)), (3, 6, (2, 6, 2, 2, 2))],
                         ids=str)
def test_group_norm_like_torch(groups, channels, shape, rng):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.GroupNorm(groups, channels, eps=1e-4).double()
    ours = nn.GroupNorm(groups, channels, eps=1e-4, dtype=np.float64)
    randomize_affine(ours, rng)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal(shape) * 2
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_and_dtype_conversion(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    for ours, theirs in ((nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)),
                         (nn.GroupNorm(3, 3), torch.nn.GroupNorm(3, 3)),
                         (nn.LayerNorm((5, 5)), torch.nn.LayerNorm((5, 5)))):
        y = ours(x)
        assert y.dtype == np.float32 and ours.backward(np.ones_like(y)).dtype == np.float32
        np.testing.assert_allclose(y, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
    bn = nn.BatchNorm2d(3).double()
    assert bn.running_var.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


def test_tracing_leaves_running_statistics_alone(rng):
    """``output_shape`` and ``matrix`` of a model trace it; that is no training step."""
    conv = nn.Conv2d(1, 2, 3, bias=False, dtype=np.float64)
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    model = nn.Sequential(conv, bn)
    model(rng.standard_normal((4, 1, 5, 5)))
    before = bn.state_dict()
    assert model.output_shape((1, 5, 5)) == (2, 3, 3)
    with pytest.raises(NotLinearError):
        model.matrix((1, 5, 5))  # training: the map depends on the batch
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    model.eval()
    M = model.matrix((1, 5, 5))  # eval: diag(weight / sqrt(var + eps)) A, a fixed map
    alpha = bn.weight.data / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(M.toarray(), np.repeat(alpha, 9)[:, None]
                               * conv.matrix((1, 5, 5)).toarray(), rtol=1e-12)


def test_buffers_in_state_dict_and_checkpoint(tmp_path, rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64), nn.BatchNorm2d(2, dtype=np.float64),
                          nn.GroupNorm(1, 2, dtype=np.float64))
    model(rng.standard_normal((5, 1, 4, 4)))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked", "2.weight", "2.bias"]
    mc.checkpoint.save(model, tmp_path / "bn.npz")
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64),
                          nn.BatchNorm2d(2, dtype=np.float64), nn.GroupNorm(1, 2, dtype=np.float64))
    mc.checkpoint.load(tmp_path / "bn.npz", model=fresh)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)
    assert int(fresh[1].num_batches_tracked) == 1


def test_empty_batch_gives_an_empty_output():
    for layer, shape in ((nn.BatchNorm2d(2), (0, 2, 3, 3)), (nn.BatchNorm1d(2), (0, 2)),
                         (nn.LayerNorm(3), (0, 3)), (nn.GroupNorm(1, 2), (0, 2, 4))):
        y = layer(np.zeros(shape, np.float32))
        assert y.shape == shape and y.dtype == np.float32
    bn = nn.BatchNorm2d(2)
    bn(np.zeros((0, 2, 3, 3), np.float32))
    assert int(bn.num_batches_tracked) == 1  # counted, statistics unchanged (as PyTorch)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert nn.BatchNorm2d(2).eval()(np.zeros((0, 2, 1, 1), np.float32)).shape == (0, 2, 1, 1)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.BatchNorm2d(0), ValueError, r"num_features must be a positive int, got 0"),
    (lambda: nn.BatchNorm2d(2, eps=0), ValueError, r"eps must be a finite number > 0, got 0"),
    (lambda: nn.BatchNorm2d(2, momentum=2), ValueError, r"momentum must be a number in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(2, affine="yes"), TypeError, r"affine must be a bool"),
    (lambda: nn.BatchNorm2d(2, dtype="f16"), TypeError, r"dtype must be np.float32"),
    (lambda: nn.BatchNorm2d(2)(np.zeros((1, 2, 1, 1), np.float32)), ValueError,
     r"more than 1 value per channel when training"),
    (lambda: nn.BatchNorm2d(2)(np.zeros((2, 3, 1, 1), np.float32)), ValueError,
     r"expects 2 channels \(num_features\), got 3"),
    (lambda: nn.BatchNorm1d(2)(np.zeros(2, np.float32)), ValueError,
     r"BatchNorm1d expects 2-D or 3-D input"),
    (lambda: nn.BatchNorm2d(2)(np.zeros((2, 2, 2, 2), int)), TypeError,
     r"input must be a real floating-point array"),
    (lambda: nn.BatchNorm2d(2).eval().matrix((3, 2, 2)), ValueError,
     r"input_shape must be \(2, \.\.\.\)"),
    (lambda: nn.LayerNorm(0), ValueError, r"normalized_shape must be a positive int"),
    (lambda: nn.LayerNorm("x"), ValueError, r"normalized_shape must be a positive int"),
    (lambda: nn.LayerNorm(3)(np.zeros((2, 4), np.float32)), ValueError,
     r"LayerNorm expects input of shape \(\.\.\., 3\)"),
    (lambda: nn.GroupNorm(2, 3), ValueError, r"num_channels \(3\) must be divisible by "
                                             r"num_groups \(2\)"),
    (lambda: nn.GroupNorm(1, 2)(np.zeros((2, 3), np.float32)), ValueError,
     r"GroupNorm expects input of shape \(N, 2, \.\.\.\)"),
    (lambda: nn.LayerNorm(3).matrix((3,)), ValueError, r"called before forward"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
