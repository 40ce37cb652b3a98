"""Learning-rate schedulers: curves against ``torch.optim.lr_scheduler`` for 40 steps (two
parameter groups, momentum cycling of OneCycleLR), closed forms without torch, state-dict round
trips mid-way, and the argument errors."""
import math

import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import SGD, Adam, RMSprop, lr_scheduler

N_STEPS = 40

CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("MultiStepLR", {"milestones": [3, 10, 10, 25], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 12}),                       # past T_max: climbs back
    ("CosineAnnealingLR", {"T_max": 40, "eta_min": 1e-3}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": N_STEPS}),
    ("OneCycleLR", {"max_lr": [0.5, 2.0], "epochs": 4, "steps_per_epoch": 10,
                    "anneal_strategy": "linear", "pct_start": 0.25}),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": N_STEPS, "three_phase": True,
                    "div_factor": 10.0, "final_div_factor": 100.0, "base_momentum": 0.8,
                    "max_momentum": 0.9}),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": N_STEPS, "cycle_momentum": False}),
]
OPTIMIZERS = {"SGD": (SGD, {"momentum": 0.9}), "Adam": (Adam, {}), "RMSprop": (RMSprop, {})}


def _ids(case):
    return case[0] + "-" + "-".join(f"{k}{v}" for k, v in case[1].items())


def _momentum(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def _curve(opt, sched, n_steps):
    """``(lrs, momenta)`` per step, one entry per group, read before each step."""
    lrs, momenta = [], []
    for _ in range(n_steps):
        lrs.append(list(sched.get_last_lr()))
        momenta.append([_momentum(g) for g in opt.param_groups])
        opt.step()
        sched.step()
    return np.array(lrs), np.array(momenta)


def _ours(opt_name, case):
    cls, kwargs = OPTIMIZERS[opt_name]
    groups = [{"params": [Parameter(np.zeros(2))], "lr": 0.1},
              {"params": [Parameter(np.zeros(3))], "lr": 0.03}]
    opt = cls(groups, **kwargs)
    return opt, getattr(lr_scheduler, case[0])(opt, **case[1])


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_curve_matches_torch(case, opt_name):
    torch = pytest.importorskip("torch")
    opt, sched = _ours(opt_name, case)
    _cls, kwargs = OPTIMIZERS[opt_name]
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
              {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.03}]
    topt = getattr(torch.optim, opt_name)(groups, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, case[0])(topt, **case[1])
    lrs, momenta = _curve(opt, sched, N_STEPS)
    tlrs, tmomenta = _curve(topt, tsched, N_STEPS)
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(momenta, tmomenta, rtol=1e-12, atol=1e-15)
    assert len(set(map(tuple, lrs))) > 1                       # the schedule did move


def test_outside_change_carries_on_like_torch():
    """The recursive formulas continue from an lr changed by hand, as PyTorch's do."""
    torch = pytest.importorskip("torch")
    p = Parameter(np.zeros(1))
    opt = SGD([p], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10)
    a1, _ = _curve(opt, sched, 4)
    b1, _ = _curve(topt, tsched, 4)
    opt.param_groups[0]["lr"] *= 3
    topt.param_groups[0]["lr"] *= 3
    a2, _ = _curve(opt, sched, 8)
    b2, _ = _curve(topt, tsched, 8)
    np.testing.assert_allclose(np.vstack([a1, a2]), np.vstack([b1, b2]), rtol=1e-12)


# -- without PyTorch: the closed forms ----------------------------------------------------------

def _single(name, **kwargs):
    opt = SGD([Parameter(np.zeros(1))], lr=2.0, momentum=0.9)
    return opt, getattr(lr_scheduler, name)(opt, **kwargs)


def test_closed_forms():
    t = np.arange(N_STEPS)
    cases = [
        (_single("StepLR", step_size=5, gamma=0.5), 2.0 * 0.5 ** (t // 5)),
        (_single("MultiStepLR", milestones=[4, 9, 9]), 2.0 * 0.1 ** ((t >= 4) + 2 * (t >= 9))),
        (_single("ExponentialLR", gamma=0.95), 2.0 * 0.95 ** t),
        (_single("CosineAnnealingLR", T_max=N_STEPS, eta_min=0.5),
         0.5 + 0.75 * (1 + np.cos(np.pi * t / N_STEPS))),
    ]
    for (opt, sched), expected in cases:
        lrs, _ = _curve(opt, sched, N_STEPS)
        np.testing.assert_allclose(lrs[:, 0], expected, rtol=1e-12, err_msg=repr(sched))


def test_one_cycle_by_hand():
    opt, sched = _single("OneCycleLR", max_lr=1.0, total_steps=11, pct_start=0.5,
                         anneal_strategy="linear", div_factor=4.0, final_div_factor=5.0)
    lrs, momenta = _curve(opt, sched, 11)
    # up from 0.25 to 1 over steps 0..4.5, then down to 0.05 at step 10 (linear)
    up = 0.25 + 0.75 * np.arange(5) / 4.5
    down = 1.0 + (0.05 - 1.0) * (np.arange(5, 11) - 4.5) / 5.5
    np.testing.assert_allclose(lrs[:, 0], np.concatenate([up, down]), rtol=1e-12)
    assert momenta[0, 0] == 0.95 and momenta[-1, 0] == pytest.approx(0.95)
    assert momenta[:, 0].min() == pytest.approx(0.85 + 0.1 * 0.5 / 5.5)
    with pytest.raises(ValueError, match=r"Tried to step 12 times. The specified number of "
                                         r"total steps is 11"):
        sched.step()


def test_one_cycle_zero_length_phase_does_not_divide_by_zero():
    _opt, sched = _single("OneCycleLR", max_lr=1.0, total_steps=10, pct_start=0.1)
    assert sched.get_last_lr() == [1.0]


# -- state dicts --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_state_dict_round_trip_mid_way(case):
    opt, sched = _ours("Adam", case)
    straight, straight_m = _curve(opt, sched, N_STEPS)
    opt, sched = _ours("Adam", case)
    first, _ = _curve(opt, sched, 15)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    sched.step()                                       # the saved state is a copy
    opt2, sched2 = _ours("Adam", case)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    rest, rest_m = _curve(opt2, sched2, N_STEPS - 15)
    np.testing.assert_array_equal(np.vstack([first, rest]), straight)
    np.testing.assert_array_equal(rest_m, straight_m[15:])


def test_resume_with_last_epoch():
    opt, sched = _single("StepLR", step_size=3)
    _curve(opt, sched, 5)
    opt2 = SGD([Parameter(np.zeros(1))], lr=2.0, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.StepLR(opt2, step_size=3, last_epoch=sched.last_epoch)
    assert sched2.last_epoch == 6 and math.isclose(sched2.get_last_lr()[0], 0.02)
    with pytest.raises(ValueError, match=r"param 'initial_lr' is not specified in "
                                         r"param_groups\[0\] when resuming with last_epoch=4"):
        lr_scheduler.StepLR(SGD([Parameter(np.zeros(1))]), step_size=3, last_epoch=4)


def test_load_state_dict_refuses_another_schedulers_state():
    _, step = _single("StepLR", step_size=3)
    _, cosine = _single("CosineAnnealingLR", T_max=3)
    with pytest.raises(ValueError, match=r"state_dict does not fit CosineAnnealingLR: missing "
                                         r"keys \['T_max', 'eta_min'\], unexpected keys "
                                         r"\['gamma', 'step_size'\]"):
        cosine.load_state_dict(step.state_dict())


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs, error, match", [
    ("StepLR", {"step_size": 0}, ValueError, r"step_size must be a positive int, got 0"),
    ("StepLR", {"step_size": 2.5}, ValueError, r"step_size must be a positive int, got 2\.5"),
    ("StepLR", {"step_size": 2, "gamma": -1}, ValueError,
     r"gamma must be a finite real number >= 0, got -1"),
    ("MultiStepLR", {"milestones": 3}, TypeError, r"milestones must be an iterable of int"),
    ("MultiStepLR", {"milestones": [1, -2]}, ValueError, r"milestones must hold ints >= 0"),
    ("ExponentialLR", {"gamma": float("nan")}, ValueError, r"gamma must be a finite real"),
    ("CosineAnnealingLR", {"T_max": 0}, ValueError, r"T_max must be a positive int, got 0"),
    ("CosineAnnealingLR", {"T_max": 5, "eta_min": -1.0}, ValueError, r"eta_min must be"),
    ("OneCycleLR", {"max_lr": 1.0}, ValueError,
     r"You must define either total_steps OR \(epochs AND steps_per_epoch\)"),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 0}, ValueError,
     r"total_steps must be a positive int, got 0"),
    ("OneCycleLR", {"max_lr": 0.0, "total_steps": 5}, ValueError,
     r"max_lr must be a finite real number > 0, got 0\.0"),
    ("OneCycleLR", {"max_lr": [1.0, 2.0], "total_steps": 5}, ValueError,
     (r"max_lr must have the same length as optimizer.param_groups. max_lr has 2 values, "
     r"param_groups has 1")),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 5, "pct_start": 1.5}, ValueError,
     r"Expected float between 0 and 1 pct_start, but got 1\.5"),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 5, "anneal_strategy": "cosine"}, ValueError,
     r"anneal_strategy must be one of 'cos' or 'linear', got 'cosine'"),
])
def test_bad_arguments(name, kwargs, error, match):
    opt = SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    with pytest.raises(error, match=match):
        getattr(lr_scheduler, name)(opt, **kwargs)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match=r"list is not an Optimizer"):
        lr_scheduler.StepLR([], step_size=1)


def test_one_cycle_needs_momentum_to_cycle():
    from matconv.optim import Optimizer

    class Plain(Optimizer):
        def _update(self, data, grad, state, group):
            data -= group["lr"] * grad

    opt = Plain([Parameter(np.zeros(1))], {"lr": 0.1})
    with pytest.raises(ValueError, match=r"optimizer must support momentum or beta1 with "
                                         r"`cycle_momentum` option enabled"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=4)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=4, cycle_momentum=False)
    assert sched.get_last_lr() == [pytest.approx(0.04, rel=1e-14)]
