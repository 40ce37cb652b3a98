"""``matconv spectrum`` end to end through a subprocess, its numbers against dense SVD."""
import subprocess
import sys

import numpy as np

from matconv import nn


def run(*args):
    return subprocess.run([sys.executable, "-m", "matconv", "spectrum", *args],
                          check=False, capture_output=True, text=True, timeout=300)


def fields(stdout):
    """``{name: text}`` from the aligned ``name   value`` lines after the header."""
    out = {}
    for line in stdout.splitlines()[1:]:
        name, value = line[:21].strip(), line[21:].strip()
        out[name] = value
    return out


def dense_sigma(cin, cout, k, stride, padding, mode, seed, spatial):
    conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False, padding_mode=mode,
                     dtype=np.float64, rng=np.random.default_rng(seed))
    return np.linalg.svd(conv.matrix((cin, *spatial)).toarray(), compute_uv=False), conv


def test_prints_sigma_max_sigma_min_and_conditioning():
    r = run("--input", "8x8", "--kernel", "3x3", "--channels", "2,3", "--stride", "2",
            "--padding", "1", "--seed", "3")
    assert r.returncode == 0, r.stderr
    s, conv = dense_sigma(2, 3, 3, 2, 1, "zeros", 3, (8, 8))
    f = fields(r.stdout)
    assert r.stdout.startswith("Conv2d(2, 3, kernel_size=(3, 3), stride=(2, 2)")
    assert "A is 48 x 128" in r.stdout.splitlines()[0]
    assert abs(float(f["sigma_max"]) / s[0] - 1) < 1e-9  # printed to 10 digits
    assert abs(float(f["sigma_min"]) / s[-1] - 1) < 1e-9
    assert abs(float(f["condition number"]) / (s[0] / s[-1]) - 1) < 1e-5
    w = conv.weight.data.reshape(3, -1)
    assert abs(float(f["reshaped-weight norm"].split()[0]) / np.linalg.norm(w, 2) - 1) < 1e-9
    assert f["FFT formula"].startswith("not applicable: padding_mode is 'zeros'")
    assert f["method"].startswith("dense (residual ")
    assert f["time"].endswith(" s")


def test_circular_padding_prints_the_fft_formula():
    r = run("--input", "8x8", "--kernel", "3", "--channels", "2,2", "--padding", "1",
            "--padding-mode", "circular", "--method", "dense")
    assert r.returncode == 0, r.stderr
    s, _ = dense_sigma(2, 2, 3, 1, 1, "circular", 0, (8, 8))
    f = fields(r.stdout)
    fft_max = float(f["FFT formula"].split(",")[0].split()[1])
    assert abs(fft_max / s[0] - 1) < 1e-9 and abs(float(f["sigma_max"]) / s[0] - 1) < 1e-9
    assert f["FFT formula"].endswith("(Sedghi et al.)")


def test_help_shows_defaults_and_errors_are_one_line():
    r = run("--help")
    assert r.returncode == 0 and "(default: 32x32)" in r.stdout and "--padding-mode" in r.stdout
    for args, message in ((("--input", "4x"), "expected sizes like 4x4"),
                          (("--input", "2x2", "--kernel", "3x3"), "spans 3 cells"),
                          (("--input", "8", "--kernel", "3", "--channels", "1,1", "--method",
                            "fft"), "method='fft' does not apply"),
                          (("--padding-mode", "mirror"), "invalid choice")):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
