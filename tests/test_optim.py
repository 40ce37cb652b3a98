"""Optimizers: trajectories against ``torch.optim`` in float64, hand-computed steps, dtype and
identity preservation, and the hyperparameter errors."""
from typing import NamedTuple

import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import SGD, Adam, Optimizer

SHAPES = [(3,), (2, 3), (4, 1, 2)]
N_STEPS = 7


def _gradient_sequence(rng, shapes, n_steps):
    """A fixed list of per-step gradient lists, different at every step."""
    return [[rng.standard_normal(s) * (1 + t) for s in shapes] for t in range(n_steps)]


def _run_matconv(make_opt, init, grads):
    params = [Parameter(x.copy()) for x in init]
    opt = make_opt(params)
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad += g
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


def _run_torch(torch, make_opt, init, grads):
    params = [torch.tensor(x.copy(), requires_grad=True) for x in init]
    opt = make_opt(params)
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


def _assert_same_trajectory(ours, theirs):
    for step, (a_step, b_step) in enumerate(zip(ours, theirs)):
        for a, b in zip(a_step, b_step):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"step {step}")


# -- against PyTorch ---------------------------------------------------------------------------

class SGDCase(NamedTuple):
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __str__(self):
        return (f"lr{self.lr}-m{self.momentum}-d{self.dampening}-wd{self.weight_decay}"
                f"{'-nesterov' if self.nesterov else ''}")


SGD_CASES = [
    SGDCase(0.1),
    SGDCase(0.05, momentum=0.9),
    SGDCase(0.05, momentum=0.9, dampening=0.5),
    SGDCase(0.05, momentum=0.8, nesterov=True),
    SGDCase(0.1, weight_decay=0.01),
    SGDCase(0.05, momentum=0.9, dampening=0.1, weight_decay=0.05),
    SGDCase(0.03, momentum=0.7, weight_decay=0.1, nesterov=True),
    SGDCase(0.0, momentum=0.9),
]


@pytest.mark.parametrize("case", SGD_CASES, ids=str)
def test_sgd_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, N_STEPS)
    kwargs = case._asdict()
    ours = _run_matconv(lambda ps: SGD(ps, **kwargs), init, grads)
    theirs = _run_torch(torch, lambda ps: torch.optim.SGD(ps, **kwargs), init, grads)
    _assert_same_trajectory(ours, theirs)


class AdamCase(NamedTuple):
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __str__(self):
        return f"lr{self.lr}-b{self.betas[0]},{self.betas[1]}-eps{self.eps}-wd{self.weight_decay}"


ADAM_CASES = [
    AdamCase(),
    AdamCase(lr=0.05),
    AdamCase(lr=0.05, weight_decay=0.1),
    AdamCase(lr=0.02, betas=(0.5, 0.9)),
    AdamCase(lr=0.02, betas=(0.0, 0.0), eps=1e-3),
    AdamCase(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
]


@pytest.mark.parametrize("case", ADAM_CASES, ids=str)
def test_adam_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, N_STEPS)
    kwargs = case._asdict()
    ours = _run_matconv(lambda ps: Adam(ps, **kwargs), init, grads)
    theirs = _run_torch(torch, lambda ps: torch.optim.Adam(ps, **kwargs), init, grads)
    _assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_float32_matches_torch_float32(name, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[g.astype(np.float32) for g in step]
             for step in _gradient_sequence(rng, SHAPES, N_STEPS)]
    if name == "sgd":
        ours = _run_matconv(lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                            init, grads)
        theirs = _run_torch(torch, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9,
                                                                weight_decay=0.01), init, grads)
    else:
        ours = _run_matconv(lambda ps: Adam(ps, lr=0.05, weight_decay=0.01), init, grads)
        theirs = _run_torch(torch, lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.01),
                            init, grads)
    for a_step, b_step in zip(ours, theirs):
        for a, b in zip(a_step, b_step):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- without PyTorch: hand-computed steps -------------------------------------------------------

def test_sgd_by_hand():
    w = Parameter(np.array([1.0, -2.0]))
    opt = SGD([w], lr=0.1, momentum=0.5, dampening=0.5, weight_decay=0.1)
    # step 1: g = 1 + 0.1 w = [1.1, 0.8]; buf = g; w -= 0.1 buf
    w.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(w.data, [1.0 - 0.11, -2.0 - 0.08], rtol=1e-15)
    # step 2: g = 1 + 0.1 w = [1.089, 0.792]; buf = 0.5 buf + 0.5 g; w -= 0.1 buf
    opt.step()
    buf = 0.5 * np.array([1.1, 0.8]) + 0.5 * np.array([1.089, 0.792])
    np.testing.assert_allclose(w.data, np.array([0.89, -2.08]) - 0.1 * buf, rtol=1e-15)


def test_sgd_nesterov_by_hand():
    w = Parameter(np.array([0.0]))
    opt = SGD([w], lr=1.0, momentum=0.5, nesterov=True)
    w.grad[...] = 2.0
    opt.step()                      # buf = 2, step = g + 0.5 buf = 3
    assert w.data[0] == -3.0
    opt.step()                      # buf = 0.5 * 2 + 2 = 3, step = 2 + 1.5 = 3.5
    assert w.data[0] == -6.5


def test_adam_by_hand():
    w = Parameter(np.array([0.0, 0.0]))
    opt = Adam([w], lr=0.1, betas=(0.5, 0.75), eps=0.0)
    w.grad[...] = [2.0, -4.0]
    opt.step()          # m = g / 2, v = g^2 / 4; corrected: m / .5 = g, sqrt(v / .25) = |g|
    np.testing.assert_allclose(w.data, [-0.1, 0.1], rtol=1e-15)
    w.grad[...] = [1.0, 1.0]
    opt.step()
    m = 0.5 * np.array([1.0, -2.0]) + 0.5 * np.array([1.0, 1.0])
    v = 0.75 * np.array([1.0, 4.0]) + 0.25 * np.array([1.0, 1.0])
    expected = np.array([-0.1, 0.1]) - 0.1 / (1 - 0.25) * m / np.sqrt(v / (1 - 0.75 ** 2))
    np.testing.assert_allclose(w.data, expected, rtol=1e-14)


@pytest.mark.parametrize("make_opt", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                      lambda ps: Adam(ps, lr=0.1)], ids=["sgd", "adam"])
def test_updates_in_place_and_keeps_float32(make_opt):
    data = np.ones((2, 3), np.float32)
    p = Parameter(data)
    opt = make_opt([p])
    for _ in range(3):
        p.grad[...] = 0.5
        opt.step()
    assert p.data is data and data.dtype == np.float32
    assert np.all(data < 1)
    for buffer in opt.state[0].values():
        if isinstance(buffer, np.ndarray):
            assert buffer.dtype == np.float32


def test_zero_grad_zeroes_in_place():
    a, b = Parameter(np.ones(3)), Parameter(np.ones((2, 2), np.float32))
    grad_a = a.grad
    a.grad += 5.0
    b.grad += 1.0
    opt = SGD(iter([a, b]), lr=0.1)
    opt.zero_grad()
    assert a.grad is grad_a
    assert not a.grad.any() and not b.grad.any()


def test_zero_lr_leaves_parameters_unchanged():
    p = Parameter(np.array([1.0, 2.0]))
    p.grad += 3.0
    Adam([p], lr=0.0).step()
    np.testing.assert_array_equal(p.data, [1.0, 2.0])


# -- errors ------------------------------------------------------------------------------------

def _param():
    return Parameter(np.zeros(2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), r"lr must be >= 0, got -0\.1"),
    (dict(lr=float("nan")), r"lr must be >= 0, got nan"),
    (dict(lr=0.1, momentum=-0.5), r"momentum must be >= 0, got -0\.5"),
    (dict(lr=0.1, weight_decay=-1e-4), r"weight_decay must be >= 0, got -0\.0001"),
    (dict(lr=0.1, nesterov=True), r"nesterov=True requires momentum > 0 and dampening == 0, "
                                  r"got momentum=0, dampening=0"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"nesterov=True requires .* got momentum=0\.9, dampening=0\.1"),
], ids=["lr", "lr-nan", "momentum", "weight_decay", "nesterov-no-momentum",
        "nesterov-dampening"])
def test_sgd_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD([_param()], **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1.0), r"lr must be >= 0, got -1\.0"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\] must be a real number in \[0, 1\), got 1\.0"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\] must be a real number in \[0, 1\), got -0\.1"),
    (dict(betas=(0.9,)), r"betas must be a pair \(beta1, beta2\) .* got \(0\.9,\)"),
    (dict(eps=-1e-8), r"eps must be >= 0, got -1e-08"),
    (dict(weight_decay=-0.1), r"weight_decay must be >= 0, got -0\.1"),
], ids=["lr", "beta1", "beta2", "betas-length", "eps", "weight_decay"])
def test_adam_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam([_param()], **kwargs)


def test_sgd_requires_lr():
    with pytest.raises(TypeError, match="lr"):
        SGD([_param()])


def test_lr_must_be_a_number():
    with pytest.raises(TypeError, match=r"lr must be a real number >= 0, got '0\.1' \(str\)"):
        SGD([_param()], lr="0.1")


@pytest.mark.parametrize("cls", [Optimizer, SGD, Adam])
def test_empty_parameter_list(cls):
    kwargs = {"lr": 0.1} if cls is not Optimizer else {}
    with pytest.raises(ValueError, match=r"params is an empty list: the optimizer needs at least "
                                         r"one Parameter"):
        cls([], **kwargs)


def test_bad_parameter_entries():
    with pytest.raises(TypeError, match=r"params\[1\] must be a Parameter, got ndarray"):
        SGD([_param(), np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"params must be an iterable of Parameter .* got "
                                        r"Parameter"):
        SGD(_param(), lr=0.1)
    p = _param()
    with pytest.raises(ValueError, match=r"params\[1\] appears more than once"):
        Adam([p, p])
