"""Optimizer state dicts: PyTorch's layout, exact round trips, state crossing the border to and
from ``torch.optim`` mid-training, and the load errors."""
import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import SGD, Adam

from .test_optim import (
    OURS,
    SHAPES,
    _assert_same_trajectory,
    _gradient_sequence,
    _run_matconv,
    _run_torch,
)

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


def test_torch_state_dict_loads_directly_without_conversion(rng):
    """Tensors (0-d float ``step`` included) are read through numpy, no ``.numpy()`` needed."""
    torch = pytest.importorskip("torch")
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_sequence(rng, SHAPES, 6)
    make = lambda ps: torch.optim.Adam(ps, lr=0.05, amsgrad=True)
    _, tparams, topt = _run_torch(torch, make, init, grads[:3])
    params = [Parameter(p.detach().numpy().copy()) for p in tparams]
    opt = Adam(params)
    opt.load_state_dict(topt.state_dict())
    assert opt.state[0]["step"] == 3 and isinstance(opt.state[0]["exp_avg"], np.ndarray)
    ours, _, _ = _run_matconv(None, None, grads[3:], params=params, opt=opt)
    theirs, _, _ = _run_torch(torch, None, None, grads[3:], params=tparams, opt=topt)
    _assert_same_trajectory(ours, theirs, rtol=1e-9)
