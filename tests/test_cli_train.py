"""``matconv train`` / ``evaluate`` on the user's data, through a subprocess: an ``.npz`` of
non-square images without a channel axis, IDX files, an MLP on features, malformed files, a
``--save`` that fails before training, refused numbers, the header, the help."""
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from matconv import data


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "matconv", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _bars(n, seed):
    """Three easy classes of 8x10 uint8 images: a horizontal bar, a vertical bar, a blank."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 8, 10)).astype(np.uint8)
    rows, cols = rng.integers(1, 7, n), rng.integers(1, 9, n)
    for i in range(n):
        if y[i] == 0:
            x[i, rows[i], :] = 255
        elif y[i] == 1:
            x[i, :, cols[i]] = 255
    return x, y


@pytest.fixture(scope="module")
def bars_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "bars.npz"
    x_train, y_train = _bars(120, 0)
    x_test, y_test = _bars(40, 1)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_on_an_npz_sized_to_the_data_then_evaluate(bars_npz, tmp_path):
    saved = tmp_path / "bars_model.npz"
    result = _json(cli("train", "--data", str(bars_npz), "--epochs", "4", "--batch-size", "16",
                       "--hidden", "16", "--lr", "0.01", "--json", "--save", str(saved)))
    assert result["classes"] == 3 and result["epochs"] == 4 and result["model"] == "lenet"
    assert result["test_accuracy"] >= 0.9
    assert result["lowering"] in ("im2col", "sparse", "im2col,sparse", "sparse,im2col")
    assert result["conv_lowerings"] and "auto" not in result["conv_lowerings"]
    assert result["train_seconds"] > 0 and result["eval_seconds"] > 0
    evaluated = _json(cli("evaluate", str(saved), "--data", str(bars_npz), "--json"))
    assert evaluated["accuracy"] == result["test_accuracy"] and evaluated["images"] == 40


def test_text_output_header_and_timings(bars_npz):
    r = cli("train", "--data", str(bars_npz), "--epochs", "1", "--batch-size", "32",
            "--hidden", "8", "--optimizer", "sgd")
    assert r.returncode == 0, r.stderr
    header, last = r.stdout.splitlines()[0], r.stdout.splitlines()[-1]
    assert header.startswith("training lenet (2 convolutions lowered to ")
    assert "120 examples of shape 1x8x10" in header and "3 classes" in header
    assert "(1 epoch, batch 32, sgd lr 0.05, float32)" in header     # sgd's own default lr
    assert "im2col/im2col" not in header and "1 epochs" not in r.stdout
    assert last.startswith("test accuracy ") and " after 1 epoch: training " in last
    assert "s, per-epoch evaluation " in last


def test_mlp_on_feature_vectors_with_validation_and_early_stopping(tmp_path):
    """Two clusters in 5-D with 30 % of the training labels flipped: the validation loss soon
    stops improving, and training stops long before 300 epochs."""
    rng = np.random.default_rng(0)
    centers = np.array([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0]])
    y_train, y_test = rng.integers(0, 2, 200), rng.integers(0, 2, 50)
    noisy = np.where(rng.uniform(size=200) < 0.3, 1 - y_train, y_train)
    path = tmp_path / "features.npz"
    np.savez(path, x_train=centers[y_train] + rng.standard_normal((200, 5)) * 0.5,
             y_train=noisy, x_test=centers[y_test] + rng.standard_normal((50, 5)) * 0.5,
             y_test=y_test)
    result = _json(cli("train", "--data", str(path), "--model", "mlp", "--hidden", "64",
                       "--epochs", "300", "--batch-size", "20", "--validation-split", "0.2",
                       "--patience", "5", "--lr", "0.01", "--dtype", "float64", "--json"))
    assert result["lowering"] is None and result["conv_lowerings"] == []
    assert result["test_accuracy"] >= 0.8 and "val_accuracy" in result
    assert result["epochs"] < 50                                       # stopped early
    result = _json(cli("train", "--data", str(path), "--model", "mlp", "--hidden", "8",
                       "--epochs", "3", "--optimizer", "adamw", "--weight-decay", "0.1",
                       "--scheduler", "cosine", "--json"))
    assert result["optimizer"] == "adamw" and result["epochs"] == 3


def test_train_on_idx_files(tmp_path):
    x_train, y_train = _bars(60, 2)
    x_test, y_test = _bars(20, 3)
    paths = [tmp_path / name for name in ("tr-img.gz", "tr-lab.gz", "te-img", "te-lab")]
    for path, array in zip(paths, (x_train, y_train.astype(np.uint8), x_test,
                                   y_test.astype(np.uint8))):
        data.write_idx(path, array)
    result = _json(cli("train", "--data-idx", *map(str, paths), "--epochs", "1",
                       "--hidden", "8", "--json", "--scheduler", "onecycle", "--lr", "0.01"))
    assert result["classes"] == 3 and result["scheduler"] == "onecycle"


def _npz(tmp_path, **arrays):
    x, y = _bars(10, 0)
    base = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    base.update(arrays)
    path = tmp_path / "data.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize("arrays, match", [
    ({"x_test": None}, (r"no array 'x_test'; expected the arrays x_train \(N, C, H, W\), "
                       r"y_train \(N,\), x_test \(M, C, H, W\), y_test \(M,\)")),
    ({"y_train": np.zeros(10)}, (r"y_train must hold integer class labels of shape \(N,\) = "
                                r"\(10,\), one per image, got dtype float64, shape \(10,\)")),
    ({"y_train": np.zeros(9, int)}, (r"y_train must hold integer class labels of shape \(N,\) = "
                                    r"\(10,\), one per image, got dtype int64, shape \(9,\)")),
    ({"y_test": np.full(10, -1)}, (r"y_test holds the label -1; class labels are integers from "
                                  r"0")),
    ({"x_train": np.zeros(10)}, (r"x_train must be a real array of images \(N, C, H, W\) or "
                                r"\(N, H, W\), got dtype float64, shape \(10,\)")),
    ({"x_train": np.array(["a"] * 10)}, r"x_train must be a real array of images"),
    ({"x_test": np.zeros((10, 8, 9))}, (r"the test images have shape \(1, 8, 9\) but the "
                                       r"training images \(1, 8, 10\)")),
    ({"x_train": np.full((10, 8, 10), np.nan)}, r"x_train holds non-finite values"),
    ({"x_train": np.zeros((0, 8, 10)), "y_train": np.zeros(0, int)}, r"x_train is empty"),
    ({"x_train": np.zeros((10, 3, 3)), "x_test": np.zeros((10, 3, 3))},
     (r"--model lenet needs images \(C, H, W\) of at least 4x4, got examples of shape "
     r"\(1, 3, 3\) in .*data.npz; use --model mlp")),
])
def test_malformed_npz_files_name_the_array_and_the_shape(tmp_path, arrays, match):
    path = _npz(tmp_path, **arrays)
    r = cli("train", "--data", str(path), "--epochs", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert str(path) in r.stderr
    assert re.search(match, r.stderr), r.stderr


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04garbage"])
def test_unreadable_npz_files(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    r = cli("train", "--data", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{path}: not a readable .npz file" in r.stderr


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    x, y = _bars(4, 0)
    np.savez(path, x_train=np.array([{}] * 4, dtype=object), y_train=y, x_test=x, y_test=y)
    r = cli("train", "--data", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not a readable .npz file of numeric arrays" in r.stderr


def test_save_into_a_missing_directory_fails_before_training(tmp_path):
    start = time.perf_counter()
    r = cli("train", "--epochs", "1000", "--save", str(tmp_path / "missing" / "m.npz"))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert "does not exist (create it first; checked before training)" in r.stderr
    assert time.perf_counter() - start < 60                  # 1000 epochs would take minutes


@pytest.mark.parametrize("args, match", [
    (("--lr", "inf"), "argument --lr: expected a finite positive number, got 'inf'"),
    (("--lr", "nan"), "argument --lr: expected a positive number, got 'nan'"),
    (("--weight-decay", "-1"), "argument --weight-decay: expected a finite number >= 0"),
    (("--validation-split", "1"), "argument --validation-split: expected a fraction in (0, 1)"),
    (("--patience", "2"), "--patience needs --validation-split"),
    (("--data", "a.npz", "--data-idx", "a", "b", "c", "d"), "not allowed with argument"),
    (("--data", "/nonexistent/d.npz"), "No such file or directory"),
])
def test_refused_arguments(args, match):
    r = cli("train", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and match in r.stderr, r.stderr


def test_help_describes_every_flag_with_its_default():
    r = cli("train", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for flag, default in [("--epochs", "30"), ("--batch-size", "64"), ("--model", "lenet"),
                          ("--optimizer", "adam"), ("--seed", "0"), ("--lowering", "auto"),
                          ("--dtype", "float32"), ("--scheduler", "none"), ("--hidden", "128")]:
        assert f"(default: {default})" in text.split(flag, 2)[2], flag
    assert "default per optimizer: adam 0.002, adamw 0.002, rmsprop 0.001, sgd 0.05" in text
    assert "x_train, y_train, x_test, y_test" in text
    options = [line.split()[0] for line in r.stdout.split("options:")[1].splitlines()
               if line.startswith("  -")]
    described = r.stdout.split("options:")[1]
    for option in options:                                   # a help text after every flag
        after = described.split(option, 1)[1].splitlines()
        assert any(part.strip() for part in [after[0].split(" ", 1)[-1]] + after[1:2]), option
