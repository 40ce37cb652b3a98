"""Optimizers: trajectories against ``torch.optim`` in float64 (every variant, param groups),
state dicts crossing the border both ways, hand-computed steps, dtype and identity preservation,
and the hyperparameter errors."""
from typing import NamedTuple

import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import SGD, Adam, AdamW, Optimizer, RMSprop

SHAPES = [(3,), (2, 3), (4, 1, 2)]
N_STEPS = 12
OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}


def _gradient_sequence(rng, shapes, n_steps):
    """A fixed list of per-step gradient lists, different at every step."""
    return [[rng.standard_normal(s) * (1 + t) for s in shapes] for t in range(n_steps)]


def _groups(params, group_options):
    """``params`` as they are, or split round-robin into one group per options dict."""
    if group_options is None:
        return list(params)
    groups = [dict(options, params=[]) for options in group_options]
    for i, p in enumerate(params):
        groups[i % len(groups)]["params"].append(p)
    return groups


def _run_matconv(make_opt, init, grads, group_options=None, params=None, opt=None):
    params = params or [Parameter(x.copy()) for x in init]
    opt = opt or make_opt(_groups(params, group_options))
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad += g
        opt.step()
        history.append([p.data.copy() for p in params])
    return history, params, opt


def _run_torch(torch, make_opt, init, grads, group_options=None, params=None, opt=None):
    params = params or [torch.tensor(x.copy(), requires_grad=True) for x in init]
    opt = opt or make_opt(_groups(params, group_options))
    history = []
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, params, opt


def _assert_same_trajectory(ours, theirs, rtol=1e-12):
    assert len(ours) == len(theirs)
    for step, (a_step, b_step) in enumerate(zip(ours, theirs)):
        for a, b in zip(a_step, b_step):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=f"step {step}")


# -- trajectories against PyTorch ---------------------------------------------------------------

class Case(NamedTuple):
    name: str
    kwargs: dict

    def __str__(self):
        return self.name + "-" + "-".join(f"{k}{v}" for k, v in self.kwargs.items())


CASES = [
    Case("SGD", {"lr": 0.1}),
    Case("SGD", {}),                                           # PyTorch's default lr
    Case("SGD", {"lr": 0.05, "momentum": 0.9}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    Case("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    Case("SGD", {"lr": 0.1, "weight_decay": 0.01}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.05}),
    Case("SGD", {"lr": 0.03, "momentum": 0.7, "weight_decay": 0.1, "nesterov": True}),
    Case("SGD", {"lr": 0.03, "momentum": 0.7, "maximize": True}),
    Case("SGD", {"lr": 0.0, "momentum": 0.9}),
    Case("Adam", {}),
    Case("Adam", {"lr": 0.05}),
    Case("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    Case("Adam", {"lr": 0.02, "betas": (0.5, 0.9)}),
    Case("Adam", {"lr": 0.02, "betas": (0.0, 0.0), "eps": 1e-3}),
    Case("Adam", {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    Case("Adam", {"lr": 0.05, "amsgrad": True}),
    Case("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    Case("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    Case("AdamW", {}),
    Case("AdamW", {"lr": 0.05, "weight_decay": 0.0}),
    Case("AdamW", {"lr": 0.05, "weight_decay": 0.2}),
    Case("AdamW", {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True, "betas": (0.7, 0.95)}),
    Case("RMSprop", {}),
    Case("RMSprop", {"lr": 0.01, "alpha": 0.9}),
    Case("RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
    Case("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    Case("RMSprop", {"lr": 0.01, "centered": True}),
    Case("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.05,
                     "eps": 1e-4}),
    Case("RMSprop", {"lr": 0.01, "maximize": True}),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_trajectory_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, N_STEPS)
    ours, _, _ = _run_matconv(lambda ps: OURS[case.name](ps, **case.kwargs), init, grads)
    theirs, _, _ = _run_torch(torch, lambda ps: getattr(torch.optim, case.name)(
        ps, **case.kwargs), init, grads)
    _assert_same_trajectory(ours, theirs)


GROUP_CASES = [
    ("SGD", {"lr": 0.1}, [{"lr": 0.05, "momentum": 0.9}, {"weight_decay": 0.1, "nesterov": True,
                                                               "momentum": 0.5}]),
    ("Adam", {"lr": 0.01}, [{}, {"lr": 0.1, "betas": (0.5, 0.9), "amsgrad": True}]),
    ("AdamW", {}, [{"weight_decay": 0.0}, {"lr": 0.05}]),
    ("RMSprop", {}, [{"centered": True}, {"momentum": 0.9, "lr": 0.001}]),
]


@pytest.mark.parametrize("name, defaults, groups", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_param_groups_match_torch(name, defaults, groups, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES + [(2, 2)]]
    grads = _gradient_sequence(rng, [x.shape for x in init], N_STEPS)
    ours, _, opt = _run_matconv(lambda gs: OURS[name](gs, **defaults), init, grads, groups)
    theirs, _, topt = _run_torch(torch, lambda gs: getattr(torch.optim, name)(gs, **defaults),
                                 init, grads, groups)
    _assert_same_trajectory(ours, theirs)
    assert len(opt.param_groups) == 2 and [len(g["params"]) for g in opt.param_groups] == [2, 2]
    for g, tg in zip(opt.param_groups, topt.param_groups):
        assert g["lr"] == tg["lr"]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_float32_matches_torch_float32(name, rng):
    torch = pytest.importorskip("torch")
    kwargs = {"SGD": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
              "Adam": {"lr": 0.05, "weight_decay": 0.01, "amsgrad": True},
              "RMSprop": {"lr": 0.01, "centered": True, "momentum": 0.5}}[name]
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[g.astype(np.float32) for g in step]
             for step in _gradient_sequence(rng, SHAPES, N_STEPS)]
    ours, _, _opt = _run_matconv(lambda ps: OURS[name](ps, **kwargs), init, grads)
    theirs, _, _ = _run_torch(torch, lambda ps: getattr(torch.optim, name)(ps, **kwargs),
                              init, grads)
    for a_step, b_step in zip(ours, theirs):
        for a, b in zip(a_step, b_step):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


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


def test_sgd_nesterov_and_maximize_by_hand():
    w = Parameter(np.array([0.0]))
    opt = SGD([w], lr=1.0, momentum=0.5, nesterov=True)
    w.grad[...] = 2.0
    opt.step()                      # buf = 2, step = g + 0.5 buf = 3
    assert w.data[0] == -3.0
    opt.step()                      # buf = 0.5 * 2 + 2 = 3, step = 2 + 1.5 = 3.5
    assert w.data[0] == -6.5
    v = Parameter(np.array([0.0]))
    v.grad[...] = 2.0
    SGD([v], lr=0.5, maximize=True).step()
    assert v.data[0] == 1.0


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


def test_amsgrad_divides_by_the_running_maximum():
    w = Parameter(np.array([0.0]))
    opt = Adam([w], lr=1.0, betas=(0.0, 0.5), eps=0.0, amsgrad=True)
    w.grad[...] = 4.0
    opt.step()                      # v = 8, max = 8; m = 4; step = 4 / sqrt(8 / 0.5) = 1
    assert w.data[0] == -1.0
    w.grad[...] = 1.0
    opt.step()                      # v = 4.5 < max 8; step = 1 / sqrt(8 / 0.75)
    np.testing.assert_allclose(w.data, [-1.0 - 1 / np.sqrt(8 / 0.75)], rtol=1e-15)
    np.testing.assert_array_equal(opt.state[0]["max_exp_avg_sq"], [8.0])


def test_adamw_decays_the_weights_not_the_gradient():
    w = Parameter(np.array([2.0]))
    opt = AdamW([w], lr=0.1, weight_decay=0.5, betas=(0.5, 0.5), eps=0.0)
    w.grad[...] = 3.0
    opt.step()                      # w = 2 (1 - 0.05) - 0.1 * sign(3)
    np.testing.assert_allclose(w.data, [1.9 - 0.1], rtol=1e-15)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], [1.5])   # the moment saw 3, not 4


def test_rmsprop_centered_momentum_by_hand():
    w = Parameter(np.array([0.0]))
    opt = RMSprop([w], lr=0.5, alpha=0.5, eps=0.0, momentum=0.5, centered=True)
    w.grad[...] = 2.0
    opt.step()                      # v = 2, gbar = 1, avg = sqrt(2 - 1) = 1; buf = 2; w = -1
    assert w.data[0] == -1.0
    w.grad[...] = 0.0
    opt.step()                      # v = 1, gbar = .5, avg = sqrt(.75); buf = 1; w = -1.5
    assert w.data[0] == -1.5
    assert set(opt.state[0]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}


@pytest.mark.parametrize("make_opt", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                      lambda ps: Adam(ps, lr=0.1, amsgrad=True),
                                      lambda ps: AdamW(ps, lr=0.1),
                                      lambda ps: RMSprop(ps, momentum=0.5, centered=True)],
                         ids=["sgd", "adam", "adamw", "rmsprop"])
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


def test_editing_a_groups_lr_takes_effect_and_closure_is_called():
    p = Parameter(np.array([1.0]))
    opt = SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = 1.0
    p.grad[...] = 1.0
    assert opt.step(closure=lambda: 42.0) == 42.0
    assert p.data[0] == 0.0


def test_add_param_group():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.params == [a, b] and opt.param_groups[1]["momentum"] == 0.9
    a.grad[...] = 1.0
    b.grad[...] = 1.0
    opt.step()
    assert (a.data[0], b.data[0]) == (-0.1, -0.5)
    with pytest.raises(ValueError, match=r"param_groups\[2\]\['params'\]\[0\] appears more than "
                                         r"once"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match=r"param_groups\[2\] has no 'params' entry"):
        opt.add_param_group({"lr": 0.1})


# -- errors ------------------------------------------------------------------------------------

def _param():
    return Parameter(np.zeros(2))


@pytest.mark.parametrize("cls, kwargs, match", [
    (SGD, {"lr": -0.1}, (r"Invalid learning rate: -0\.1 \(lr must be a finite real number "
                         r">= 0\)")),
    (SGD, {"lr": float("nan")}, r"Invalid learning rate: nan"),
    (SGD, {"lr": float("inf")}, r"Invalid learning rate: inf"),
    (SGD, {"lr": 0.1, "momentum": -0.5}, r"Invalid momentum value: -0\.5 \(momentum must be"),
    (SGD, {"lr": 0.1, "weight_decay": -1e-4}, r"Invalid weight_decay value: -0\.0001"),
    (SGD, {"lr": 0.1, "nesterov": True}, (r"Nesterov momentum requires a momentum and zero "
                                       r"dampening \(nesterov=True needs momentum > 0 and "
                                       r"dampening == 0, got momentum=0\.0, dampening=0\.0\)")),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
     r"Nesterov momentum requires .* got momentum=0\.9, dampening=0\.1"),
    (Adam, {"lr": -1.0}, r"Invalid learning rate: -1\.0"),
    (Adam, {"betas": (1.0, 0.999)}, (r"Invalid beta parameter at index 0: 1\.0 \(betas\[0\] "
                                     r"must be a real number in \[0, 1\)\)")),
    (Adam, {"betas": (0.9, -0.1)}, r"Invalid beta parameter at index 1: -0\.1"),
    (Adam, {"betas": (0.9,)}, (r"betas must be a pair \(beta1, beta2\), each in \[0, 1\), got "
                               r"\(0\.9,\)")),
    (Adam, {"eps": -1e-8}, r"Invalid epsilon value: -1e-08"),
    (AdamW, {"weight_decay": -0.1}, r"Invalid weight_decay value: -0\.1"),
    (RMSprop, {"alpha": -0.1}, r"Invalid alpha value: -0\.1"),
    (RMSprop, {"momentum": -1}, r"Invalid momentum value: -1\.0"),
    (RMSprop, {"eps": -1.0}, r"Invalid epsilon value: -1\.0"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([_param()], **kwargs)


@pytest.mark.parametrize("cls, kwargs, match", [
    (SGD, {"lr": "0.1"}, r"lr must be a finite real number >= 0, got '0\.1' \(str\)"),
    (SGD, {"lr": True}, r"lr must be a finite real number >= 0, got True \(bool\)"),
    (Adam, {"amsgrad": 1}, r"amsgrad must be True or False, got 1 \(int\)"),
    (RMSprop, {"centered": None}, r"centered must be True or False, got None"),
    (SGD, {"maximize": "no"}, r"maximize must be True or False"),
])
def test_hyperparameter_types(cls, kwargs, match):
    with pytest.raises(TypeError, match=match):
        cls([_param()], **kwargs)


def test_per_group_options_are_validated():
    with pytest.raises(ValueError, match=r"Invalid learning rate: -1\.0"):
        SGD([{"params": [_param()], "lr": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0: 2\.0"):
        Adam([{"params": [_param()]}, {"params": [_param()], "betas": (2.0, 0.5)}])


@pytest.mark.parametrize("cls", [Optimizer, SGD, Adam, AdamW, RMSprop])
def test_empty_parameter_list(cls):
    with pytest.raises(ValueError, match=r"params is an empty list: the optimizer needs at least "
                                         r"one Parameter"):
        cls([])


def test_bad_parameter_entries():
    with pytest.raises(TypeError, match=r"params\[1\] must be a Parameter, got ndarray"):
        SGD([_param(), np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"params must be an iterable of Parameter .* got "
                                        r"Parameter"):
        SGD(_param(), lr=0.1)
    p = _param()
    with pytest.raises(ValueError, match=r"params\[1\] appears more than once"):
        Adam([p, p])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\] appears more than "
                                         r"once"):
        Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\] is empty"):
        Adam([{"params": []}])
    with pytest.raises(ValueError, match=r"grad of shape \(3,\), expected the shape of its data "
                                         r"\(2,\)"):
        q = _param()
        q.grad = np.zeros(3)
        SGD([q]).step()
