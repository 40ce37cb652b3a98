"""Training loop, checkpoints and the train/evaluate commands."""
import json
import subprocess
import sys

import numpy as np
import pytest

from matconv import checkpoint, data, models, nn, optim, train


def small_problem(seed=0):
    xtr, ytr = data.load_digits("train")
    xte, yte = data.load_digits("test")
    return xtr[:256], ytr[:256], xte[:100], yte[:100]


def run_fit(seed, epochs=2, lr=3e-3, **kw):
    xtr, ytr, xte, yte = small_problem()
    model = models.lenet(seed=seed, channels=(4, 8), hidden=16, **kw)
    opt = optim.Adam(model.parameters(), lr=lr)
    history = train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, xte, yte, epochs=epochs,
                        batch_size=32, seed=seed, progress=False)
    return model, history


def test_fit_is_deterministic_for_a_seed():
    _, h1 = run_fit(3)
    _, h2 = run_fit(3)
    _, h3 = run_fit(4)
    assert h1["train_loss"] == h2["train_loss"] and h1["test_accuracy"] == h2["test_accuracy"]
    assert h1["train_loss"] != h3["train_loss"]
    assert set(h1) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy",
                       "epoch_seconds", "eval_seconds"}
    assert all(len(v) == 2 for v in h1.values())


def test_training_reduces_the_loss():
    _, h = run_fit(0, epochs=8, lr=1e-2)
    assert h["train_loss"][-1] < 0.6 * h["train_loss"][0]
    assert h["test_accuracy"][-1] > 0.6


def test_lowerings_train_to_the_same_numbers():
    """float64 so that the two lowerings' different summation orders stay below 1e-9."""
    _, a = run_fit(1, lowering="im2col", dtype="float64")
    _, b = run_fit(1, lowering="sparse", dtype="float64")
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-9)
    assert a["test_accuracy"] == b["test_accuracy"]


def test_progress_bar_only_when_asked(capsys):
    xtr, ytr, _, _ = small_problem()
    model = models.lenet(seed=0, channels=(2, 2), hidden=4)
    opt = optim.SGD(model.parameters(), lr=0.1)
    train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, epochs=1, progress=None)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    train.fit(model, nn.CrossEntropyLoss(), opt, xtr, ytr, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "batch" in err


def test_evaluate_restores_mode_and_scores():
    model, _ = run_fit(0)
    _, _, xte, yte = small_problem()
    model.train()
    acc, loss = train.evaluate(model, xte, yte, loss_fn=nn.CrossEntropyLoss())
    assert model.training and 0 <= acc <= 1 and loss > 0
    model.eval()
    assert train.evaluate(model, xte, yte) == acc and not model.training


def test_fit_argument_errors():
    model = models.lenet(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = np.zeros((4, 1, 8, 8), np.float32), np.zeros(3, int)
    with pytest.raises(ValueError, match=r"one label per image, got 4 images and 3 labels"):
        train.fit(model, nn.CrossEntropyLoss(), opt, x, y)
    with pytest.raises(ValueError, match=r"epochs must be a positive int, got 0"):
        train.fit(model, nn.CrossEntropyLoss(), opt, x, np.zeros(4, int), epochs=0)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        list(train.iterate_minibatches(4, 0))
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        train.fit(model, nn.CrossEntropyLoss(), opt, x, np.zeros(4, int), batch_size=0)
    with pytest.raises(TypeError, match=r"batch_size must be a positive int, got True \(bool\)"):
        train.fit(model, nn.CrossEntropyLoss(), opt, x, np.zeros(4, int), batch_size=True)
    with pytest.raises(TypeError, match=r"batch_size must be a positive int, got 8\.0"):
        train.fit(model, nn.CrossEntropyLoss(), opt, x, np.zeros(4, int), batch_size=8.0)


# ---- checkpoints
def test_checkpoint_round_trip(tmp_path):
    model, _ = run_fit(0)
    path = tmp_path / "net.npz"
    checkpoint.save(model, path, note="hello")
    again, meta = checkpoint.load(path)
    assert meta["note"] == "hello" and meta["spec"]["builder"] == "lenet"
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), again.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.data, p2.data)
    x = data.load_digits("test")[0][:5]
    np.testing.assert_array_equal(model(x), again(x))
    # into a given model
    other = models.lenet(seed=9, channels=(4, 8), hidden=16)
    checkpoint.load(path, model=other)
    np.testing.assert_array_equal(other(x), model(x))


def test_checkpoint_is_plain_npz_without_pickle(tmp_path):
    path = tmp_path / "net.npz"
    checkpoint.save(models.lenet(seed=0), path)
    with np.load(path, allow_pickle=False) as f:
        assert "0.weight" in f.files and f["0.weight"].dtype == np.float32


@pytest.mark.parametrize("damage, match", [
    (lambda p: p.write_bytes(p.read_bytes()[:200]), r"is not a readable matconv checkpoint"),
    (lambda p: p.write_bytes(b"\x00" * 64), r"is not a readable matconv checkpoint"),
    (lambda p: np.savez(p, a=np.zeros(2)), r"not a matconv checkpoint \(no '__matconv__' entry\)"),
    (lambda p: np.savez(p, __matconv__=np.array("{not json")), r"corrupted '__matconv__' entry"),
    (lambda p: np.savez(p, __matconv__=np.array('{"format": 99}')), r"checkpoint format 99"),
    (lambda p: np.savez(p, __matconv__=np.array('{"format": 1}')),
     r"does not record how to build its model"),
    (lambda p: np.savez(p, __matconv__=np.array('{"format": 1}'), x=np.array([{}], object)),
     r"is not a readable matconv checkpoint"),
])
def test_damaged_checkpoints_give_clear_errors(tmp_path, damage, match):
    path = tmp_path / "net.npz"
    checkpoint.save(models.lenet(seed=0), path)
    damage(path)
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.load(path)


def test_mismatched_checkpoint(tmp_path):
    path = tmp_path / "net.npz"
    checkpoint.save(models.lenet(seed=0, hidden=32), path)
    with pytest.raises(checkpoint.CheckpointError, match=r"does not fit the model: shape "
                                                         r"mismatch for '7.weight'"):
        checkpoint.load(path, model=models.lenet(seed=0))
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        checkpoint.load(tmp_path / "missing.npz")


# ---- the command line
def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "matconv", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_train_defaults_reach_097_and_evaluate_scores_the_checkpoint(tmp_path):
    path = tmp_path / "lenet.npz"
    r = cli("train", "--json", "--save", str(path))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["test_accuracy"] >= 0.97
    assert result["epochs"] == 30 and result["train_seconds"] > 0
    r = cli("evaluate", str(path), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == result["test_accuracy"]


def test_train_flags(tmp_path):
    r = cli("train", "--epochs", "1", "--batch-size", "128", "--lr", "0.05", "--optimizer",
            "sgd", "--seed", "2", "--lowering", "sparse", "--dtype", "float64", "--quiet")
    assert r.returncode == 0, r.stderr
    assert 0 <= float(r.stdout.strip()) <= 1 and r.stderr == ""


@pytest.mark.parametrize("args, match", [
    (("train", "--epochs", "zero"), "argument --epochs: expected a positive int, got 'zero'"),
    (("train", "--optimizer", "lbfgs"), "argument --optimizer: invalid choice: 'lbfgs'"),
    (("train", "--lr", "-1"), "argument --lr: expected a positive number"),
    (("evaluate", "/nonexistent/x.npz"), "checkpoint '/nonexistent/x.npz' does not exist"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
])
def test_cli_errors_are_one_line_with_status_2(args, match):
    r = cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and match in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # usage line + error line from argparse


def test_evaluate_corrupted_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04garbage")
    r = cli("evaluate", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "is not a readable matconv checkpoint" in r.stderr
