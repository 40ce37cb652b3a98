"""The optimizers' flat (multi-tensor) path against their per-parameter ``_update``: the same
results bit for bit, in float32 and float64, through everything that makes the flat buffers
stale (state dicts loaded mid-training, replaced arrays, diverging step counts, mixed dtypes)."""
import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import SGD, Adam, AdamW, RMSprop

SHAPES = [(3,), (2, 3), (4, 1, 2), (5,)]


def _params(rng, dtypes=(np.float64,)):
    return [Parameter(rng.standard_normal(s).astype(dtypes[i % len(dtypes)]))
            for i, s in enumerate(SHAPES)]


def _twins(make_opt, params):
    """Two optimizers on copies of ``params``: the flat path and the per-parameter path."""
    copies = [[Parameter(p.data.copy()) for p in params] for _ in range(2)]
    flat, single = make_opt(copies[0]), make_opt(copies[1])
    single._flat_path = False
    return (flat, copies[0]), (single, copies[1])


def _assert_identical(flat, single):
    (opt_a, params_a), (opt_b, params_b) = flat, single
    for p, q in zip(params_a, params_b):
        assert p.data.dtype == q.data.dtype and np.array_equal(p.data, q.data)
    state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert state_a.keys() == state_b.keys()
    for i, buffers in state_a.items():
        assert buffers.keys() == state_b[i].keys()
        for name, value in buffers.items():
            other = state_b[i][name]
            if isinstance(value, np.ndarray):
                assert value.dtype == other.dtype and np.array_equal(value, other), (i, name)
            else:
                assert value == other and type(value) is type(other), (i, name)


def _step_both(twins, rng, n_steps=4):
    for _ in range(n_steps):
        grads = [rng.standard_normal(p.shape) for p in twins[0][1]]
        for opt, params in twins:
            opt.zero_grad()
            for p, g in zip(params, grads):
                p.grad += g.astype(p.grad.dtype)
            opt.step()
        _assert_identical(*twins)


def _buckets(opt, group=0):
    return opt._flat_plans[group].buckets


CASES = [
    (Adam, {}),
    (Adam, {"lr": 0.05, "weight_decay": 0.1}),
    (Adam, {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (Adam, {"lr": 0.05, "amsgrad": True}),
    (Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    (Adam, {"lr": 0.02, "betas": (0.3, 0.9), "eps": 1e-3}),   # lerp's other branch
    (AdamW, {}),
    (AdamW, {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True, "maximize": True}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    (SGD, {"lr": 0.1}),                                        # no momentum: per parameter
    (RMSprop, {}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.05}),
    (RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5, "maximize": True}),
    (RMSprop, {"lr": 0.01, "centered": True, "alpha": 0.3}),   # lerp's other branch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kwargs", CASES, ids=lambda v: getattr(v, "__name__", None))
def test_flat_path_equals_per_parameter_path(cls, kwargs, dtype, rng):
    twins = _twins(lambda ps: cls(ps, **kwargs), _params(rng, (dtype,)))
    _step_both(twins, rng, n_steps=6)
    opt = twins[0][0]
    if cls is SGD and "momentum" not in kwargs:
        assert _buckets(opt) == []
        return
    [bucket] = _buckets(opt)                  # one bucket, state arrays viewing its buffers
    for state in opt.state:
        for name, flat in bucket.buffers.items():
            assert state[name].base is flat
    plan = opt._flat_plans[0]
    twins[0][0].step()
    assert opt._flat_plans[0] is plan         # steady state: the plan is reused


def test_mixed_dtypes_get_one_bucket_each(rng):
    twins = _twins(lambda ps: Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.1),
                   _params(rng, (np.float32, np.float64)))
    _step_both(twins, rng)
    buckets = _buckets(twins[0][0])
    assert sorted(b.dtype.name for b in buckets) == ["float32", "float64"]
    for opt, params in twins:
        for p, state in zip(params, opt.state):
            assert state["exp_avg"].dtype == p.dtype


def test_parameter_groups_and_different_step_counts(rng):
    """A state loaded for some parameters only: their step counts differ from the others'."""
    params = _params(rng)

    def make(ps):
        return AdamW([{"params": ps[:3]}, {"params": ps[3:], "lr": 0.1}], lr=0.05)

    donor, _ = _twins(make, params)[0]
    for p in donor.params:
        p.grad += 1.0
    for _ in range(3):
        donor.step()
    saved = donor.state_dict()
    del saved["state"][1], saved["state"][3]              # parameters 1 and 3 start afresh
    twins = _twins(make, params)
    for opt, _ in twins:
        opt.load_state_dict(saved)
    _step_both(twins, rng)
    assert sorted(b.key for b in _buckets(twins[0][0])) == [4, 7]
    assert [b.key for b in _buckets(twins[0][0], 1)] == [4]
    assert [s["step"] for s in twins[0][0].state] == [7, 4, 7, 4]


def test_replaced_state_arrays_and_edited_step_counts(rng):
    twins = _twins(lambda ps: Adam(ps, lr=0.05, amsgrad=True), _params(rng, (np.float32,)))
    _step_both(twins, rng, n_steps=2)
    for opt, _ in twins:
        opt.state[0]["exp_avg"] = np.full(SHAPES[0], 0.5, np.float32)
    _step_both(twins, rng, n_steps=1)
    for opt, _ in twins:
        opt.state[1]["exp_avg_sq"][...] = 2.0          # in place: lands in the flat buffer
    _step_both(twins, rng, n_steps=1)
    assert len(_buckets(twins[0][0])) == 1
    for opt, _ in twins:
        opt.state[2]["step"] = 10
    _step_both(twins, rng, n_steps=2)
    assert sorted(b.key for b in _buckets(twins[0][0])) == [6, 12]


def test_amsgrad_switched_on_mid_training(rng):
    twins = _twins(lambda ps: Adam(ps, lr=0.05), _params(rng))
    _step_both(twins, rng, n_steps=2)
    for opt, _ in twins:
        opt.param_groups[0]["amsgrad"] = True
    _step_both(twins, rng, n_steps=3)
    assert "max_exp_avg_sq" in _buckets(twins[0][0])[0].buffers


@pytest.mark.parametrize("cls, kwargs", [(Adam, {"lr": 0.05, "weight_decay": 0.1}),
                                         (SGD, {"lr": 0.05, "momentum": 0.9}),
                                         (RMSprop, {"centered": True, "momentum": 0.5})],
                         ids=["adam", "sgd", "rmsprop"])
def test_replaced_grad_and_data_arrays(cls, kwargs, rng):
    twins = _twins(lambda ps: cls(ps, **kwargs), _params(rng, (np.float32,)))
    _step_both(twins, rng, n_steps=2)
    for opt, params in twins:                          # new arrays, same dtype: stays flat
        params[1].grad = params[1].grad.copy()
        params[2].data = params[2].data.copy()
        opt.step()
    _assert_identical(*twins)
    assert len(_buckets(twins[0][0])) == 1
    grad64 = rng.standard_normal(SHAPES[0])
    for opt, params in twins:                          # a float64 grad: that one goes alone
        params[0].grad = grad64.copy()
        opt.step()
    _assert_identical(*twins)
    assert twins[0][0]._flat_plans[0].single == [0]
    for _, params in twins:
        params[0].grad = np.zeros(SHAPES[0], np.float32)
    _step_both(twins, rng, n_steps=2)                  # float32 again: back in the bucket
    assert twins[0][0]._flat_plans[0].single == []


@pytest.mark.parametrize("cls, kwargs, keys", [
    (Adam, {"lr": 0.05, "amsgrad": True}, {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    (AdamW, {"lr": 0.05}, {"step", "exp_avg", "exp_avg_sq"}),
    (SGD, {"lr": 0.05, "momentum": 0.9}, {"momentum_buffer"}),
    (RMSprop, {"centered": True, "momentum": 0.5},
     {"step", "square_avg", "momentum_buffer", "grad_avg"}),
], ids=["adam", "adamw", "sgd", "rmsprop"])
def test_state_dict_round_trip_mid_training(cls, kwargs, keys, rng):
    twins = _twins(lambda ps: cls(ps, **kwargs), _params(rng, (np.float32,)))
    _step_both(twins, rng, n_steps=3)
    flat_opt, flat_params = twins[0]
    saved = flat_opt.state_dict()
    for i, p in enumerate(flat_params):                # per-parameter copies, PyTorch's names
        assert set(saved["state"][i]) == keys
        for name in keys - {"step"}:
            value = saved["state"][i][name]
            assert value.shape == p.shape and value.dtype == np.float32 and value.base is None
    # loaded into a fresh optimizer and into the running ones: the next steps use the values
    saved["state"][0][cls.state_keys[0]] += 0.25
    fresh = [Parameter(p.data.copy()) for p in flat_params]
    resumed = cls(fresh, **kwargs)
    resumed.load_state_dict(saved)
    for opt, _ in twins:
        opt.load_state_dict(saved)
    for _ in range(3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        for opt, params in [*twins, (resumed, fresh)]:
            opt.zero_grad()
            for p, g in zip(params, grads):
                p.grad += g
            opt.step()
        _assert_identical(*twins)
        _assert_identical((resumed, fresh), twins[1])


@pytest.mark.parametrize("cls, kwargs", [(Adam, {"lr": 0.1, "weight_decay": 0.1}),
                                         (SGD, {"lr": 0.1, "momentum": 0.9}),
                                         (RMSprop, {"centered": True, "alpha": 0.2})],
                         ids=["adam", "sgd", "rmsprop"])
def test_scalar_empty_and_non_contiguous_parameters(cls, kwargs, rng):
    shapes = [(), (0, 3), (3, 4), (3, 4)]
    twins = _twins(lambda ps: cls(ps, **kwargs), [Parameter(rng.standard_normal(s))
                                                    for s in shapes])
    for _, params in twins:                             # Fortran order, a strided view
        params[2].data = np.asfortranarray(params[2].data)
        params[3].data = np.zeros((3, 8))[:, ::2]
        params[3].data[...] = 1.0
    for step in range(4):
        grads = [rng.standard_normal(s) for s in shapes]
        for opt, params in twins:                       # Fortran-ordered grads every other
            for p, g in zip(params, grads):
                p.grad = np.array(g, order="F" if step % 2 else "C")
            opt.step()
        _assert_identical(*twins)
    assert len(_buckets(twins[0][0])) == 1 and not twins[0][1][3].data.flags.contiguous


def test_a_reshaped_parameter_is_refused_as_before(rng):
    twins = _twins(lambda ps: Adam(ps), _params(rng))
    _step_both(twins, rng, n_steps=1)
    for opt, params in twins:
        params[1].data = params[1].data.reshape(-1)         # state arrays keep the old shape
        params[1].grad = np.zeros(6)
        with pytest.raises(ValueError, match="could not be broadcast"):
            opt.step()
