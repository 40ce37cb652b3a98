"""The command line, end to end through a subprocess."""
import subprocess
import sys


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
