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


# -- state dicts: PyTorch's layout, round trips, and across the border -------------------------

CROSS_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.9)}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
]
CROSS_IDS = [f"{n}-{'-'.join(map(str, k.values()))}" for n, k in CROSS_CASES]


def _torch_state_to_numpy(torch, state_dict):
    """What a user does: tensors to ``.numpy()`` copies (0-d step tensors to floats)."""
    def convert(value):
        if isinstance(value, torch.Tensor):
            return value.item() if value.ndim == 0 else value.detach().numpy().copy()
        return value
    return {"state": {i: {k: convert(v) for k, v in s.items()}
                      for i, s in state_dict["state"].items()},
            "param_groups": [dict(g) for g in state_dict["param_groups"]]}


def _numpy_state_to_torch(torch, state_dict):
    return {"state": {i: {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
                          for k, v in s.items()} for i, s in state_dict["state"].items()},
            "param_groups": state_dict["param_groups"]}


def _assert_same_state(ours, theirs_numpy, rtol=1e-9):
    assert ours["state"].keys() == theirs_numpy["state"].keys()
    for i, buffers in ours["state"].items():
        assert buffers.keys() == theirs_numpy["state"][i].keys()
        for name, value in buffers.items():
            np.testing.assert_allclose(value, theirs_numpy["state"][i][name], rtol=rtol,
                                       atol=rtol, err_msg=f"state[{i}][{name!r}]")


@pytest.mark.parametrize("name, kwargs", CROSS_CASES, ids=CROSS_IDS)
def test_state_from_torch_continues_in_matconv(name, kwargs, rng):
    """Five steps in PyTorch, its state dict into matconv, five more steps on both sides."""
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, 10)
    make_torch = lambda ps: getattr(torch.optim, name)(ps, **kwargs)
    _, tparams, topt = _run_torch(torch, make_torch, init, grads[:5])
    saved = _torch_state_to_numpy(torch, topt.state_dict())
    params = [Parameter(p.detach().numpy().copy()) for p in tparams]
    opt = OURS[name](params, lr=0.123)                       # options come from the state
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == kwargs["lr"]
    ours, _, opt = _run_matconv(None, None, grads[5:], params=params, opt=opt)
    theirs, _, topt = _run_torch(torch, None, None, grads[5:], params=tparams, opt=topt)
    _assert_same_trajectory(ours, theirs, rtol=1e-9)
    _assert_same_state(opt.state_dict(), _torch_state_to_numpy(torch, topt.state_dict()))


@pytest.mark.parametrize("name, kwargs", CROSS_CASES, ids=CROSS_IDS)
def test_state_from_matconv_continues_in_torch(name, kwargs, rng):
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, 10)
    _, params, opt = _run_matconv(lambda ps: OURS[name](ps, **kwargs), init, grads[:5])
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, lr=0.123)
    topt.load_state_dict(_numpy_state_to_torch(torch, opt.state_dict()))
    ours, _, opt = _run_matconv(None, None, grads[5:], params=params, opt=opt)
    theirs, _, topt = _run_torch(torch, None, None, grads[5:], params=tparams, opt=topt)
    _assert_same_trajectory(ours, theirs, rtol=1e-9)
    _assert_same_state(opt.state_dict(), _torch_state_to_numpy(torch, topt.state_dict()))


@pytest.mark.parametrize("name, kwargs", CROSS_CASES, ids=CROSS_IDS)
def test_state_dict_round_trip_resumes_exactly(name, kwargs, rng):
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, 8)
    straight, _, _ = _run_matconv(lambda ps: OURS[name](ps, **kwargs), init, grads)
    _, params, opt = _run_matconv(lambda ps: OURS[name](ps, **kwargs), init, grads[:4])
    saved = opt.state_dict()
    saved_copy = {"state": {i: {k: np.copy(v) for k, v in s.items()}
                            for i, s in saved["state"].items()}}
    opt.step()                                               # state_dict() returned copies
    for i, s in saved["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(v, saved_copy["state"][i][k])
    again = [Parameter(p.data.copy()) for p in params]
    for p, q in zip(again, straight[3]):
        p.data[...] = q
    resumed = OURS[name](again)
    resumed.load_state_dict(saved)
    rest, _, _ = _run_matconv(None, None, grads[4:], params=again, opt=resumed)
    for a_step, b_step in zip(rest, straight[4:]):
        for a, b in zip(a_step, b_step):
            np.testing.assert_array_equal(a, b)


def test_state_dict_layout_is_pytorchs():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros((2, 2), np.float32))
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5, "amsgrad": True}], lr=0.1)
    a.grad += 1.0
    b.grad += 1.0
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"] == [
        {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "maximize": False, "decoupled_weight_decay": False, "params": [0]},
        {"lr": 0.5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True,
         "maximize": False, "decoupled_weight_decay": False, "params": [1]}]
    assert set(sd["state"]) == {0, 1}
    assert sd["state"][0]["step"] == 1 and type(sd["state"][0]["step"]) is int
    assert set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][1]["exp_avg"].dtype == np.float32
    np.testing.assert_allclose(sd["state"][0]["exp_avg"], [0.1, 0.1])


def test_named_parameters_are_accepted_and_their_names_kept():
    from matconv import nn
    model = nn.Linear(2, 3, dtype=np.float64)
    opt = SGD(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.params == model.parameters()
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_loaded_buffers_take_the_parameters_dtype_and_are_copies():
    p = Parameter(np.zeros(3, np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    buffer = np.array([1.0, 2.0, 3.0])
    opt.load_state_dict({"state": {0: {"momentum_buffer": buffer}},
                         "param_groups": [{"lr": 0.2, "momentum": 0.5, "dampening": 0,
                                           "weight_decay": 0, "nesterov": False,
                                           "params": [0]}]})
    assert opt.state[0]["momentum_buffer"].dtype == np.float32
    assert opt.state[0]["momentum_buffer"] is not buffer
    assert opt.param_groups[0]["lr"] == 0.2 and opt.param_groups[0]["momentum"] == 0.5
    assert opt.param_groups[0]["params"] == [p]
    p.grad[...] = 1.0
    opt.step()                       # buf = 0.5 [1, 2, 3] + 1; p = -0.2 buf
    np.testing.assert_allclose(p.data, -0.2 * np.array([1.5, 2.0, 2.5]), rtol=1e-6)
    assert p.data.dtype == np.float32


def _sgd_state(**group):
    return {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0,
                                           "weight_decay": 0, "nesterov": False,
                                           "params": [0, 1], **group}]}


@pytest.mark.parametrize("state_dict, error, match", [
    ([], ValueError, r"state_dict must be a dict with the keys 'state' and 'param_groups'"),
    ({"state": {}}, ValueError, r"must be a dict with the keys 'state' and 'param_groups'"),
    ({"state": {}, "param_groups": []}, ValueError,
     r"loaded state dict has a different number of parameter groups: 0, this optimizer has 1"),
    (_sgd_state(params=[0]), ValueError,
     (r"doesn't match the size of optimizer's group: param_groups\[0\] has 1 parameters, this "
     r"optimizer's 2")),
    (_sgd_state(lr=-1.0), ValueError, r"Invalid learning rate: -1\.0"),
    (_sgd_state(nesterov="yes"), TypeError, r"nesterov must be True or False, got 'yes'"),
    ({**_sgd_state(), "state": {5: {}}}, ValueError, r"the key 5, which names no parameter"),
    ({**_sgd_state(), "state": {0: {"exp_avg": np.zeros(2)}}}, ValueError,
     r"state\[0\] has the buffer 'exp_avg'; SGD keeps \('step', 'momentum_buffer'\)"),
    ({**_sgd_state(), "state": {0: {"momentum_buffer": np.zeros(3)}}}, ValueError,
     (r"state\[0\]\['momentum_buffer'\] must be a real array of the parameter's shape \(2,\), "
     r"got dtype float64, shape \(3,\)")),
    ({**_sgd_state(), "state": {0: {"momentum_buffer": np.array(["a", "b"])}}}, ValueError,
     r"must be a real array .* got dtype <U1"),
    ({**_sgd_state(), "state": {0: {"step": -1}}}, ValueError,
     r"state\[0\]\['step'\] must be a step count \(an integer >= 0\), got -1"),
    ({**_sgd_state(), "state": {0: {"step": 1.5}}}, ValueError, r"got 1\.5"),
], ids=["not-a-dict", "missing-key", "groups", "group-size", "bad-lr", "bad-bool", "bad-index",
        "unknown-buffer", "buffer-shape", "buffer-dtype", "negative-step", "fractional-step"])
def test_load_state_dict_errors_leave_the_optimizer_unchanged(state_dict, error, match):
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    opt = SGD([a, b], lr=0.3, momentum=0.5)
    a.grad += 1.0
    opt.step()
    before = opt.state_dict()
    with pytest.raises(error, match=match):
        opt.load_state_dict(state_dict)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][0]["momentum_buffer"],
                                  before["state"][0]["momentum_buffer"])


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
