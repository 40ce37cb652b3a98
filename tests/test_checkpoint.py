"""Checkpoints for any module and its optimizer, exact round trips, and hostile checkpoints.

Oracles: the saved objects themselves (values *and* Python types must come back), a format 1
file written by hand as the previous writer did, and for hostile files the refusal (type,
file named, problem named) -- also through ``python -m matconv evaluate`` in subprocesses.
"""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from matconv import checkpoint, data, models, nn
from matconv.checkpoint import CheckpointError

from . import hostile_files as h
from .test_untrusted_files import run_isolated


# --------------------------------------------------------------------------- stand-ins
def adam_like_state():
    """PyTorch's optimizer state layout, with every type a state may hold."""
    return {
        "state": {
            0: {"step": 3, "exp_avg": np.arange(6, dtype=np.float32).reshape(2, 3),
                "exp_avg_sq": np.full(2, 0.5), "max_exp_avg_sq": np.zeros((0, 4))},
            2: {"step": np.float64(3.0), "momentum_buffer": None,
                "counts": np.array([1, 2], np.int64), "flag": np.bool_(True)},
        },
        "param_groups": [
            {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
             "amsgrad": False, "maximize": False, "foreach": None, "name": "convs",
             "nested": [(1, [2, (3.5, "x")]), {"k": (True,), 5: []}], "params": [0, 1]},
            {"lr": math.inf, "nan": math.nan, "big": 2**70, "params": [2]},
        ],
    }


class StandInOptimizer:
    """Has the two methods of the optimizer protocol; remembers what it was given."""

    def __init__(self, state=None, fail_with=None):
        self.state = adam_like_state() if state is None else state
        self.fail_with = fail_with

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        if self.fail_with is not None:
            raise self.fail_with
        self.state = state


class WithBuffers(nn.Module):
    """A module with its own state dict: parameters and int/bool/float buffers."""

    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.lin = nn.Linear(3, 2, dtype=np.float64, rng=rng)
        self.running_mean = rng.standard_normal(2)
        self.num_batches_tracked = np.array(seed, dtype=np.int64)
        self.mask = np.array([True, seed % 2 == 0])

    def state_dict(self):
        return {"lin.weight": self.lin.weight.data.copy(), "lin.bias": self.lin.bias.data.copy(),
                "running_mean": self.running_mean.copy(),
                "num_batches_tracked": self.num_batches_tracked.copy(), "mask": self.mask.copy()}

    def load_state_dict(self, state, strict=True):
        expected = self.state_dict()
        if strict and set(state) != set(expected):
            raise KeyError(f"missing {sorted(set(expected) - set(state))}")
        for name, value in state.items():
            if np.shape(value) != expected[name].shape:
                raise ValueError(f"shape mismatch for {name!r}")
        self.lin.weight.data[...] = state["lin.weight"]
        self.lin.bias.data[...] = state["lin.bias"]
        self.running_mean = np.array(state["running_mean"])
        self.num_batches_tracked = np.array(state["num_batches_tracked"])
        self.mask = np.array(state["mask"])


def assert_same(a, b, where="state"):
    """Equal values *and* equal Python types, recursively (NaN equal to NaN)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert type(k) is type(next(x for x in b if x == k)), f"{where} key {k!r}"
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


# --------------------------------------------------------------------------- round trips
def test_optimizer_state_round_trips_exactly(tmp_path):
    model, path = models.lenet(seed=0, channels=(2, 2), hidden=4), tmp_path / "c.npz"
    checkpoint.save(model, path, optimizer=StandInOptimizer(), epoch=7)
    target = StandInOptimizer(state={})
    other = models.lenet(seed=1, channels=(2, 2), hidden=4)
    _, meta = checkpoint.load(path, model=other, optimizer=target)
    assert_same(target.state, adam_like_state())
    assert meta == {"format": 2, "spec": model.spec, "epoch": 7}
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), other.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.data, p2.data)


def test_any_module_with_buffers_round_trips(tmp_path):
    saved, path = WithBuffers(seed=3), tmp_path / "b.npz"
    checkpoint.save(saved, path)
    loaded = WithBuffers(seed=4)
    checkpoint.load(path, model=loaded)
    assert_same(loaded.state_dict(), saved.state_dict())
    with np.load(path, allow_pickle=False) as f:  # plain arrays under PyTorch's names
        assert f["num_batches_tracked"].dtype == np.int64 and f["mask"].dtype == np.bool_


def test_plain_module_subclass_round_trips(tmp_path):
    # Needs Module.state_dict()/load_state_dict() on every module (the core restructuring).
    class TwoLayers(nn.Module):
        def __init__(self, seed):
            super().__init__()
            rng = np.random.default_rng(seed)
            self.conv = nn.Conv2d(1, 2, 3, dtype=np.float64, rng=rng)
            self.fc = nn.Linear(8, 3, dtype=np.float64, rng=rng)

    saved, loaded = TwoLayers(0), TwoLayers(1)
    checkpoint.save(saved, tmp_path / "m.npz")
    checkpoint.load(tmp_path / "m.npz", model=loaded)
    for (n1, p1), (n2, p2) in zip(saved.named_parameters(), loaded.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.data, p2.data)


def test_format_1_files_still_load(tmp_path):
    model = models.lenet(seed=0, channels=(2, 2), hidden=4)
    path = tmp_path / "old.npz"
    meta = json.dumps({"format": 1, "spec": model.spec, "note": "v1", "optimizer": "adam"})
    np.savez(path, **{n: p.data for n, p in model.named_parameters()},
             __matconv__=np.array(meta))   # what the format 1 writer did
    again, got = checkpoint.load(path)
    assert got["note"] == "v1" and got["optimizer"] == "adam"   # user metadata in format 1
    x = data.load_digits("test")[0][:3]
    np.testing.assert_array_equal(again(x), model(x))


def test_metadata_round_trip_and_json_conventions(tmp_path):
    path = tmp_path / "m.npz"
    checkpoint.save(WithBuffers(), path, history={"loss": [1.5, np.float32(0.5)]}, pair=(1, 2),
                    none=None, nan=math.nan, epochs=np.int64(3), ok=np.bool_(True))
    _, meta = checkpoint.load(path, model=WithBuffers())
    assert meta["history"] == {"loss": [1.5, 0.5]} and meta["none"] is None
    assert type(meta["epochs"]) is int and meta["ok"] is True  # numpy scalars as Python
    assert meta["pair"] == [1, 2] and math.isnan(meta["nan"])   # JSON: tuples become lists


# --------------------------------------------------------------------------- save refuses first
def _int_weights():
    m = WithBuffers()
    m.lin.weight.data = np.ones((2, 3), np.int64)
    return m


def _complex_buffer():
    m = WithBuffers()
    m.running_mean = np.ones(2, complex)
    return m


class _Reserved(WithBuffers):
    def state_dict(self):
        return {**super().state_dict(), "__matconv__": np.zeros(1)}


class _ObjectParam(WithBuffers):
    def state_dict(self):
        return {**super().state_dict(), "lin.bias": np.array([None, 1.0], object)}


SAVE_REFUSALS = [
    ("reserved key", lambda p: checkpoint.save(_Reserved(), p), ValueError,
     "state dict key '__matconv__' cannot be stored"),
    ("int parameter", lambda p: checkpoint.save(_int_weights(), p), TypeError,
     "'lin.weight' has dtype int64; a checkpoint stores a parameter as floating"),
    ("object parameter", lambda p: checkpoint.save(_ObjectParam(), p), TypeError,
     "'lin.bias' has dtype object"),
    ("complex buffer", lambda p: checkpoint.save(_complex_buffer(), p), TypeError,
     "'running_mean' has dtype complex128; a checkpoint stores a buffer as bool, integer"),
    ("no state dict", lambda p: checkpoint.save(object(), p), TypeError,
     "model must have state_dict"),
    ("array metadata", lambda p: checkpoint.save(WithBuffers(), p, acc=np.ones(2)),
     TypeError, r"metadata\['acc'\] is a ndarray"),
    ("complex metadata", lambda p: checkpoint.save(WithBuffers(), p, z=[np.complex64(1)]),
     TypeError, r"metadata\['z'\]\[0\] is a complex64"),
    ("set metadata", lambda p: checkpoint.save(WithBuffers(), p, tags={1}), TypeError,
     "is a set"),
    ("int key metadata", lambda p: checkpoint.save(WithBuffers(), p, d={1: 2}), TypeError,
     "has the key 1; JSON keys are strings"),
    ("deep metadata", lambda p: checkpoint.save(WithBuffers(), p, deep=_nested(40)),
     ValueError, "nested more than 32 levels"),
    ("reserved metadata", lambda p: checkpoint.save(WithBuffers(), p, format=3), ValueError,
     r"metadata keys \['format'\] are reserved"),
    ("huge metadata", lambda p: checkpoint.save(WithBuffers(), p, text="x" * (1 << 22)),
     ValueError, "more than the 4194304 allowed"),
    ("optimizer set", lambda p: checkpoint.save(WithBuffers(), p, optimizer=StandInOptimizer(
        {"state": {0: {"s": {1}}}})), TypeError, r"state_dict\(\)\['state'\]\[0\]\['s'\] is a set"),
    ("optimizer complex", lambda p: checkpoint.save(WithBuffers(), p, optimizer=StandInOptimizer(
        {"state": {0: {"a": np.ones(2, complex)}}})), TypeError, "has dtype complex128"),
    ("optimizer not a dict", lambda p: checkpoint.save(WithBuffers(), p,
                                                       optimizer=StandInOptimizer([1])),
     TypeError, r"optimizer.state_dict\(\) must return a dict, got list"),
    ("optimizer without methods", lambda p: checkpoint.save(WithBuffers(), p, optimizer=3),
     TypeError, "optimizer must have state_dict"),
    ("malformed spec", lambda p: checkpoint.save(_with_spec({"builder": "lenet", "x": 1}), p),
     ValueError, "model.spec cannot be stored"),
    ("spec kwargs", lambda p: checkpoint.save(_with_spec({"builder": "lenet",
                                                          "kwargs": {"k": {"a": 1}}}), p),
     ValueError, r"kwargs\['k'\] must be a JSON number"),
]


def _nested(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def _with_spec(spec):
    m = WithBuffers()
    m.spec = spec
    return m


@pytest.mark.parametrize("label, save, error, problem", SAVE_REFUSALS,
                         ids=[c[0] for c in SAVE_REFUSALS])
def test_save_refuses_what_load_would_refuse_before_touching_the_file(tmp_path, label, save,
                                                                      error, problem):
    path = tmp_path / "c.npz"
    checkpoint.save(WithBuffers(), path, note="previous")
    before = path.read_bytes()
    with pytest.raises(error, match=problem):
        save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]


# --------------------------------------------------------------------------- load arguments
def test_load_argument_errors(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(WithBuffers(), path)
    with pytest.raises(ValueError, match="optimizer needs model"):
        checkpoint.load(path, optimizer=StandInOptimizer())
    with pytest.raises(TypeError, match="model must have state_dict"):
        checkpoint.load(path, model=[1])
    with pytest.raises(CheckpointError, match=re.escape(repr(str(path))) + " holds no optimizer "
                                              "state"):
        checkpoint.load(path, model=WithBuffers(), optimizer=StandInOptimizer())


@pytest.mark.parametrize("error", [KeyError("param group 0 lacks 'lr'"),
                                   ValueError("loaded state dict has 1 parameter groups"),
                                   TypeError("'NoneType' object is not subscriptable")])
def test_optimizer_mismatch_is_a_checkpoint_error_and_the_model_is_put_back(tmp_path, error):
    path = tmp_path / "c.npz"
    checkpoint.save(WithBuffers(seed=1), path, optimizer=StandInOptimizer())
    model = WithBuffers(seed=2)
    before = model.state_dict()
    with pytest.raises(CheckpointError, match=re.escape(repr(str(path))) + " does not fit the "
                                              "optimizer: " + re.escape(str(error.args[0]))):
        checkpoint.load(path, model=model, optimizer=StandInOptimizer(fail_with=error))
    assert_same(model.state_dict(), before)


def test_model_mismatch_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(WithBuffers(), path)
    with pytest.raises(CheckpointError, match=r"c\.npz' does not fit the model: .*'0\.weight'"):
        checkpoint.load(path, model=models.lenet(seed=0))


# --------------------------------------------------------------------------- hostile checkpoints
def meta(obj=None, text=None):
    return np.array(text if text is not None else json.dumps(obj))


V2 = {"format": 2, "spec": None}
SPEC = models.lenet(seed=0, channels=(2, 2), hidden=4).spec

HOSTILE = [
    ("metadata a list", {"__matconv__": meta([1, 2])}, "expected a JSON object, got list"),
    ("metadata null", {"__matconv__": meta(None)}, "expected a JSON object, got NoneType"),
    ("metadata deeply nested", {"__matconv__": meta(text="[" * 100_000 + "]" * 100_000)},
     "corrupted '__matconv__' entry: RecursionError"),
    ("metadata not JSON", {"__matconv__": meta(text="{not json")}, "corrupted '__matconv__'"),
    ("metadata several strings", {"__matconv__": np.array(["{}", "{}"])},
     r"corrupted '__matconv__' entry: ValueError: expected one string, got shape \(2,\)"),
    ("metadata bytes", {"__matconv__": np.array(b"{}")}, "'__matconv__' has dtype |S2"),
    ("metadata huge", {"__matconv__": meta(text=" " * ((1 << 22) + 1))}, "more than the 16777216"),
    ("format true", {"__matconv__": meta({"format": True})}, "checkpoint format True"),
    ("format string", {"__matconv__": meta({"format": "2"})}, "checkpoint format '2'"),
    ("spec a string", {"__matconv__": meta({**V2, "spec": "lenet"})},
     "malformed model spec: expected a dict"),
    ("spec builder not str", {"__matconv__": meta({**V2, "spec": {"builder": 1}})},
     "'builder' must be a string"),
    ("spec kwargs a list", {"__matconv__": meta({**V2, "spec": {"builder": "lenet",
                                                                 "kwargs": [1]}})},
     "'kwargs' must be a dict, got list"),
    ("spec kwargs a dict", {"__matconv__": meta({**V2, "spec": {"builder": "lenet", "kwargs": {
        "hidden": {"__class__": "os.system"}}}})}, r"kwargs\['hidden'\] must be a JSON number"),
    ("spec kwargs nested", {"__matconv__": meta({**V2, "spec": {"builder": "lenet", "kwargs": {
        "channels": _nested(6)}}})}, r"kwargs\['channels'\]"),
    ("spec unknown builder", {"__matconv__": meta({**V2, "spec": {"builder": "os.system",
                                                                   "kwargs": {}}})},
     "cannot rebuild the model from its spec: ValueError: unknown model builder 'os.system'"),
    ("spec bad argument", {"__matconv__": meta({**V2, "spec": {"builder": "lenet",
                                                                "kwargs": {"hidden": "x"}}})},
     "cannot rebuild the model from its spec"),
    ("spec unknown argument", {"__matconv__": meta({**V2, "spec": {"builder": "lenet", "kwargs": {
        "exec": "print(1)"}}})}, "cannot rebuild the model from its spec: ValueError: spec['kwargs'] has 'exec'"),
    ("datetime weights", {"0.weight": np.array(["2020-01-01"], "datetime64[D]"),
                          "__matconv__": meta(V2)}, "'0.weight' has dtype datetime64"),
    ("complex weights", {"0.weight": np.ones(2, complex), "__matconv__": meta(V2)},
     "'0.weight' has dtype complex128"),
    ("string weights", {"0.weight": np.array(["1.0"]), "__matconv__": meta(V2)},
     "'0.weight' has dtype <U3"),
    ("object weights", {"0.weight": np.array([{}], object), "__matconv__": meta(V2)},
     "'0.weight' has dtype object"),
    ("unknown reserved entry", {"__evil__": np.ones(1), "__matconv__": meta(V2)},
     "unknown reserved entry '__evil__'"),
    ("optimizer array missing", {"__matconv__": meta({**V2, "optimizer": {"__array__": 0}})},
     "malformed optimizer state: array 0 is missing or used twice"),
    ("optimizer array twice", {"__optimizer__.0": np.ones(1), "__matconv__": meta(
        {**V2, "optimizer": {"__dict__": [["a", {"__array__": 0}], ["b", {"__array__": 0}]]}})},
     "array 0 is missing or used twice"),
    ("optimizer orphan arrays", {"__optimizer__.0": np.ones(1), "__matconv__": meta(V2)},
     "optimizer arrays but no optimizer state"),
    ("optimizer unknown tag", {"__matconv__": meta({**V2, "optimizer": {"__set__": [1]}})},
     "unrecognised value"),
    ("optimizer unhashable key", {"__matconv__": meta({**V2, "optimizer": {"__dict__": [
        [[1], 2]]}})}, "unhashable dict key"),
    ("optimizer scalar shape", {"__optimizer__.0": np.ones(2), "__matconv__": meta(
        {**V2, "optimizer": {"__dict__": [["s", {"__scalar__": 0}]]}})},
     r"scalar 0 has shape \(2,\)"),
    ("optimizer not a dict", {"__matconv__": meta({**V2, "optimizer": [1]})},
     "expected a dict, got list"),
    ("optimizer deep", {"__matconv__": meta({**V2, "optimizer": _nested(40)})},
     "nested more than 32 levels"),
]


@pytest.mark.parametrize("label, arrays, problem", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_checkpoints_are_refused(tmp_path, label, arrays, problem):
    path = h.write_npz(tmp_path / "evil.npz", arrays)
    with pytest.raises(CheckpointError, match=re.escape(problem) if "\\" not in problem
                       and "(" not in problem else problem) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_corrupt_and_truncated_archives(tmp_path):
    entries = h.npz_entries({"0.weight": np.arange(500.0), "__matconv__": meta(V2)}, h.deflated)
    path = h.write_zip(tmp_path / "corrupt.npz", [h.corrupt_payload(entries[0]), entries[1]])
    with pytest.raises(CheckpointError, match=r"is not a readable matconv checkpoint: "
                                              r"(error|BadZipFile)"):
        checkpoint.load(path)
    good = h.write_zip(tmp_path / "good.npz", entries)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(CheckpointError, match="is not a readable matconv checkpoint: BadZip"):
        checkpoint.load(truncated)


def test_oversized_model_spec_is_refused_without_building(tmp_path):
    # lenet(hidden=10**12) asks for a 116 TiB layer. The layers refuse oversized parameters
    # with a ValueError (the memory guard in front of every parameter), which load turns into
    # a CheckpointError; run isolated under RLIMIT_AS so a regression cannot take the machine.
    spec = {"builder": "lenet", "kwargs": {**SPEC["kwargs"], "hidden": 10**12}}
    path = h.write_npz(tmp_path / "huge.npz", {"__matconv__": meta({**V2, "spec": spec})})
    kind, message, grown = run_isolated([("spec", "checkpoint", path, None)])["spec"]
    assert kind == "CheckpointError", f"{kind}: {message}"
    assert str(path) in message and "cannot rebuild the model" in message
    assert grown < 48 * h.MiB


# --------------------------------------------------------------------------- the command line
CLI_CASES = {
    "header": ({"0.weight": h.npy_header((10**7, 10**7), "<f4") + bytes(16),
                "__matconv__": meta(V2)}, "entry '0.weight' holds 144 bytes but its header"),
    "metadata": ({"__matconv__": meta([1, 2])}, "expected a JSON object, got list"),
    "object": ({"0.weight": np.array([{}], object), "__matconv__": meta(V2)},
               "'0.weight' has dtype object"),
    "spec": ({"__matconv__": meta({**V2, "spec": {"builder": "os.system", "kwargs": {}}})},
             "unknown model builder 'os.system'"),
    "deep": ({"__matconv__": meta(text="[" * 100_000)}, "RecursionError"),
}


def test_evaluate_refuses_hostile_checkpoints_in_one_line(tmp_path):
    root = os.path.dirname(os.path.dirname(checkpoint.__file__))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "1"}
    runs = {}
    for name, (arrays, _) in CLI_CASES.items():  # all at once: they mostly wait on imports
        path = h.write_npz(tmp_path / f"{name}.npz", arrays)
        runs[name] = (path, subprocess.Popen(
            [sys.executable, "-m", "matconv", "evaluate", str(path)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=root))
    for name, (path, proc) in runs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, f"{name}: {stderr}"
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert stderr.startswith("matconv evaluate: error: ") and str(path) in stderr
        assert CLI_CASES[name][1] in stderr, stderr
