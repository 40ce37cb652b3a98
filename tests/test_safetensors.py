"""Checkpoints as .safetensors: round trips of models (buffers included) and optimizer state,
atomic saves, and hostile files refused from their header before anything is read."""
import json
import struct
import sys

import numpy as np
import pytest

from matconv import checkpoint, nn, set_memory_budget
from matconv.checkpoint import CheckpointError

from .test_checkpoint import StandInOptimizer, adam_like_state

pytest.importorskip("safetensors")


def model(seed=0):
    rng = np.random.default_rng(seed)
    m = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64, rng=rng),
                      nn.BatchNorm2d(2, dtype=np.float64), nn.Flatten(),
                      nn.Linear(8, 3, dtype=np.float32, rng=rng))
    m(rng.standard_normal((4, 1, 4, 4)))  # the batch norm's buffers move
    return m


def test_model_and_optimizer_round_trip(tmp_path):
    path = tmp_path / "net.safetensors"
    ours = model(0)
    checkpoint.save(ours, path, optimizer=StandInOptimizer(), epoch=3, note="hi")
    assert path.read_bytes()[8:9] == b"{"  # the format: length, JSON header, data
    other, target = model(1), StandInOptimizer(state={})
    _, meta = checkpoint.load(path, model=other, optimizer=target)
    assert meta["epoch"] == 3 and meta["note"] == "hi"
    for key, value in ours.state_dict().items():
        loaded = other.state_dict()[key]
        assert loaded.dtype == value.dtype and loaded.shape == value.shape, key
        np.testing.assert_array_equal(loaded, value, err_msg=key)
    expected = adam_like_state()
    # repr: the same values and Python types (tuples stay tuples; NaN != NaN for ==)
    assert repr(target.state["param_groups"]) == repr(expected["param_groups"])
    np.testing.assert_array_equal(target.state["state"][0]["exp_avg"],
                                  expected["state"][0]["exp_avg"])


def test_npz_and_safetensors_hold_the_same_checkpoint(tmp_path):
    ours = model(0)
    checkpoint.save(ours, tmp_path / "a.npz")
    checkpoint.save(ours, tmp_path / "a.SAFETENSORS")  # the suffix in any case
    a, _ = checkpoint.load(tmp_path / "a.npz", model=model(1))
    b, _ = checkpoint.load(tmp_path / "a.SAFETENSORS", model=model(2))
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[key], value)


def test_failed_save_leaves_the_previous_file(tmp_path):
    path = tmp_path / "net.safetensors"
    checkpoint.save(model(0), path, epoch=1)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"JSON-serialisable"):
        checkpoint.save(model(1), path, epoch=object())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


def safetensors_bytes(header: dict, data: bytes = b"", length=None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


META = {"__metadata__": {"__matconv__": json.dumps({"format": 2, "spec": None})}}


@pytest.mark.parametrize("content, match", [
    (b"\x01\x02", r"ends before its header length"),
    (safetensors_bytes(META, length=10**9), r"header claims 1000000000 bytes"),
    (struct.pack("<Q", 5) + b"{oops", r"header is not JSON"),
    (safetensors_bytes([1, 2]), r"header is a JSON list"),
    (safetensors_bytes({"__metadata__": {"a": 1}}), r"__metadata__ is not a map of strings"),
    (safetensors_bytes({**META, "w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}},
                       bytes(8)), r"entry 'w' has dtype 'C64'; allowed: BOOL, F16, F32"),
    (safetensors_bytes({**META, "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}},
                       bytes(16)), r"byte range \[0, 64\] outside the 16 bytes"),
    (safetensors_bytes({**META, "w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}},
                       bytes(16)), r"holds 16 bytes but its shape \[3\] of F32 needs 12"),
    (safetensors_bytes({**META, "w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
                       bytes(4)), r"invalid shape"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
     r"not a matconv checkpoint \(no '__matconv__' metadata\)"),
])
def test_hostile_files_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path, model=model(0))


def test_sizes_are_checked_against_the_budget_before_reading(tmp_path):
    path = tmp_path / "big.safetensors"
    checkpoint.save(model(0), path)
    target = model(1)
    old = set_memory_budget(64)
    try:
        with pytest.raises(CheckpointError, match=r"over the memory budget"):
            checkpoint.load(path, model=target)
    finally:
        set_memory_budget(old)


def test_without_the_package_the_error_says_pip_install_safetensors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install safetensors"):
        checkpoint.save(model(0), tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
