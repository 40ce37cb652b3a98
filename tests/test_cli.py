"""The command line, end to end through a subprocess."""
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "matconv", *args], capture_output=True,
                          text=True, timeout=120)


def test_show_prints_the_slide_matrix():
    r = run("show", "--input", "4x4", "--kernel", "3x3")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.strip().splitlines()]
    assert len(rows) == 4
    assert rows[0] == "w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22 0 0 0 0 0".split()
    assert rows[3] == "0 0 0 0 0 w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22".split()


def test_show_summarises_large_operators():
    r = run("show", "--input", "64x64", "--kernel", "3x3", "--padding", "same")
    assert r.returncode == 0
    assert r.stdout.startswith("conv matrix 4096 x 4096: 36100 nonzeros, density 0.00215")


def test_bad_arguments_are_one_line_with_status_2():
    r = run("show", "--input", "4x", "--kernel", "3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "expected sizes like 4x4" in r.stderr
    r = run("show", "--input", "2x2", "--kernel", "3x3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "spans 3 cells" in r.stderr


def test_show_transposed_with_labels():
    r = run("show", "--input", "2", "--kernel", "2", "--stride", "2", "--transposed", "--labels")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["       x(0,0) x(0,1)", "y(0,0) w0     0",
                                     "y(0,1) w1     0", "y(0,2) 0      w0", "y(0,3) 0      w1"]


def test_show_unfold_names_the_cells_each_row_reads():
    r = run("show", "--input", "3x3", "--kernel", "2x2", "--unfold")
    assert r.returncode == 0, r.stderr
    assert [line.split() for line in r.stdout.splitlines()] == [
        ["x00", "x01", "x10", "x11"], ["x01", "x02", "x11", "x12"],
        ["x10", "x11", "x20", "x21"], ["x11", "x12", "x21", "x22"]]


def test_show_latex_channels_groups_and_padding():
    r = run("show", "--input", "3", "--kernel", "2", "--channels", "2,2", "--groups", "2",
            "--latex")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "\\begin{bmatrix}" and lines[-1] == "\\end{bmatrix}"
    assert lines[3] == "0 & 0 & 0 & w^{(1,0)}_{0} & w^{(1,0)}_{1} & 0 \\\\"
    r = run("show", "--input", "4", "--kernel", "3", "--padding", "same", "--dilation", "1")
    assert r.stdout.splitlines()[0].split() == ["w1", "w2", "0", "0"]
    r = run("show", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1")
    assert [line.split() for line in r.stdout.splitlines()] == [
        ["w1", "w2", "0", "0", "0"], ["0", "w0", "w1", "w2", "0"], ["0", "0", "0", "w0", "w1"]]


def test_show_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "A.png"
    r = run("show", "--input", "5x5", "--kernel", "3x3", "--channels", "2,3", "--png", str(path))
    assert r.returncode == 0, r.stderr
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
