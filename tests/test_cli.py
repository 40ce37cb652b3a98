"""The command line, end to end through a subprocess."""
import argparse
import json
import re
import importlib.util
import subprocess
import sys

import numpy as np
import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "matconv", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_show_prints_the_slide_matrix():
    r = run("show", "--input", "4x4", "--kernel", "3x3")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.strip().splitlines()]
    assert len(rows) == 4
    assert " ".join(rows[0]) == "w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22 0 0 0 0 0"
    assert " ".join(rows[3]) == "0 0 0 0 0 w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22"


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


# ---------------------------------------------------------------- the top-level parser


def test_no_arguments_prints_the_usage_and_the_commands():
    r = run()
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("usage: matconv [-h] [--version] COMMAND ...")
    for command in ("show", "train", "evaluate"):
        assert re.search(rf"^    {command} +\S", r.stderr, re.MULTILINE), command
    assert "Traceback" not in r.stderr


def test_version():
    import matconv

    r = run("--version")
    assert r.returncode == 0 and r.stdout == f"matconv {matconv.__version__}\n"
    assert re.fullmatch(r"matconv 0\.\d+\.\d+\n", r.stdout)


def parsers():
    from matconv.cli import build_parser

    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {"matconv": top, "show": sub.choices["show"]}


@pytest.mark.parametrize("name", ["matconv", "show"])
def test_every_flag_has_help_and_shows_its_default(name):
    parser = parsers()[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, action.option_strings
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if has_default and action.option_strings:
            assert "%(default)s" in action.help, action.option_strings
    text = parser.format_help()
    if name == "show":
        for shown in ("(default: 4x4)", "(default: 3)", "(default: zeros)", "(default: 1,1)",
                      "(default: 4096)", "(default: 0)"):
            assert shown in text, shown


def test_show_help_from_the_shell():
    r = run("show", "--help")
    assert r.returncode == 0
    assert "--gif PATH" in r.stdout and "--html PATH" in r.stdout and "examples:" in r.stdout


# ---------------------------------------------------------------- show: text


def slide_names(kernel):
    return ["w" + "".join(map(str, t)) for t in np.ndindex(*kernel)]


def dense_names(n, k):
    """The text the slides would draw for a k x k kernel on an n x n input, by a direct loop."""
    o = n - k + 1
    cells = np.full((o * o, n * n), "0", dtype=object)
    names = slide_names((k, k))
    for oy, ox in np.ndindex(o, o):
        for i, j in np.ndindex(k, k):
            cells[oy * o + ox, (oy + i) * n + ox + j] = names[i * k + j]
    return cells


def reassemble(text):
    """Glue column blocks ('columns a-b of n:' headers) back into one grid of cells."""
    blocks = text.split("\n\n")
    grids = []
    for block in blocks:
        lines = block.splitlines()
        assert re.fullmatch(r"columns \d+-\d+ of \d+:", lines[0]), lines[0]
        grids.append([line.split() for line in lines[1:]])
    return [[cell for g in grids for cell in g[r]] for r in range(len(grids[0]))]


def test_wide_text_is_wrapped_in_column_blocks_under_80_characters():
    r = run("show", "--input", "6x6", "--kernel", "3x3")
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80  # was 141
    assert r.stdout.startswith("columns 0-19 of 36:\n")
    np.testing.assert_array_equal(np.array(reassemble(r.stdout), dtype=object),
                                  dense_names(6, 3))


def test_wide_labelled_text_repeats_the_row_labels_in_each_block():
    r = run("show", "--input", "6x6", "--kernel", "3x3", "--labels")
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80  # was 332
    grid = reassemble(r.stdout)
    header = grid[0]
    assert header == [f"x(0,{i},{j})" for i, j in np.ndindex(6, 6)]
    rows = grid[1:]
    labels = [row[0] for row in rows]
    # each block starts its rows with the label: glued blocks repeat it once per block
    n_blocks = r.stdout.count("columns ")
    assert labels == [f"y(0,{i},{j})" for i, j in np.ndindex(4, 4)]
    cells = np.array([[c for c in row if not c.startswith("y(")] for row in rows], dtype=object)
    assert all(row.count(row[0]) == n_blocks for row in rows)
    np.testing.assert_array_equal(cells, dense_names(6, 3))


def test_small_outputs_are_unchanged_by_wrapping():
    r = run("show", "--input", "4x4", "--kernel", "3x3", "--labels")
    r2 = run("show", "--input", "4x4", "--kernel", "3x3")
    assert "columns" in r.stdout  # 153 characters wide with labels: wrapped
    assert "columns" not in r2.stdout and len(r2.stdout.splitlines()[0]) == 61


def test_output_padding_needs_transposed():
    r = run("show", "--input", "5", "--kernel", "3", "--output-padding", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--output-padding applies to --transposed only" in r.stderr
    r = run("show", "--input", "5", "--kernel", "3", "--stride", "2", "--transposed",
            "--output-padding", "1")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == (5 - 1) * 2 + 3 + 1  # PyTorch's output size


def test_unfold_with_labels():
    r = run("show", "--input", "4", "--kernel", "2", "--stride", "2", "--unfold", "--labels")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["         y(:,0) y(:,1)",
                                     "w(:,0,0) x0     x2",
                                     "w(:,0,1) x1     x3"]


def test_unfold_with_reflect_padding_reads_the_mirrored_cells():
    r = run("show", "--input", "3", "--kernel", "3", "--padding", "1", "--padding-mode",
            "reflect", "--unfold")
    assert r.returncode == 0, r.stderr
    # numpy.pad(..., mode="reflect") of [x0 x1 x2] by 1 is [x1 x0 x1 x2 x1]
    padded = ["x1", "x0", "x1", "x2", "x1"]
    expected = [[padded[pos + tap] for pos in range(3)] for tap in range(3)]
    assert [line.split() for line in r.stdout.splitlines()] == expected


def test_unfold_refuses_flags_it_cannot_honour():
    for flag in (["--latex"], ["--transposed"], ["--html", "x.html"]):
        r = run("show", "--unfold", *flag)
        assert r.returncode == 2 and "--unfold prints the im2col matrix" in r.stderr, flag
    r = run("show", "--latex", "--labels")
    assert r.returncode == 2 and "--labels labels the text output" in r.stderr


def test_unfold_png(tmp_path):
    pytest.importorskip("matplotlib")
    for size, name in (("4x4", "u2.png"), ("6", "u1.png")):
        path = tmp_path / name
        r = run("show", "--input", size, "--kernel", "3", "--unfold", "--png", str(path))
        assert r.returncode == 0, r.stderr
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u1.png", "u2.png"]


def test_pictures_without_matplotlib_say_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from matconv.cli import main\n"
            f"sys.exit(main(['show', '--png', {str(tmp_path / 'A.png')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr == ("matconv show: error: matconv show --png needs matplotlib: "
                        "pip install '.[plot]' in the matconv checkout (the directory holding "
                        "setup.cfg), or pip install matplotlib\n")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- show: animation and page


def page_json(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(text.split('id="matconv-data">', 1)[1].split("</script>", 1)[0])


def test_gif_and_html_from_the_shell(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    gif, page = tmp_path / "conv.gif", tmp_path / "conv.html"
    r = run("show", "--input", "5x5", "--stride", "2", "--padding", "1", "--gif", str(gif),
            "--html", str(page))
    assert r.returncode == 0, r.stderr
    assert len(reassemble(r.stdout)) == 9  # the 9 x 25 matrix is printed too
    with PIL.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 9
    assert gif.stat().st_size < 1 << 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.gif", "conv.html"]
    # the page's entries are the nonzeros of the layer the CLI describes, weights from --seed 0
    import matconv as mc

    conv = mc.nn.Conv2d(1, 1, 3, stride=2, padding=1, dtype=np.float64,
                        rng=np.random.default_rng(0))
    A = conv.matrix((1, 5, 5)).toarray()
    entries = {(row, col): value for row, col, value, *_ in page_json(page)["entries"]}
    assert set(entries) == set(zip(*np.nonzero(A)))
    assert all(abs(v - A[k]) < 1e-12 for k, v in entries.items())


def test_seed_makes_pages_reproducible(tmp_path):
    paths = [tmp_path / f"{name}.html" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("3", "3", "4")):
        r = run("show", "--input", "4", "--kernel", "2", "--padding-mode", "reflect",
                "--padding", "1", "--html", str(path), "--seed", seed)
        assert r.returncode == 0, r.stderr
    a, b, c = (p.read_text() for p in paths)
    assert a == b and a != c
    import matconv as mc

    conv = mc.nn.Conv1d(1, 1, 2, padding=1, padding_mode="reflect", dtype=np.float64,
                        rng=np.random.default_rng(3))
    A = conv.matrix((1, 4)).toarray()
    entries = {(row, col): value for row, col, value, *_ in page_json(paths[0])["entries"]}
    assert set(entries) == set(zip(*np.nonzero(A)))
    assert all(abs(v - A[k]) < 1e-12 for k, v in entries.items())


def test_transposed_gif_has_one_frame_per_input_cell(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    gif = tmp_path / "t.gif"
    r = run("show", "--input", "3x3", "--kernel", "3", "--stride", "2", "--transposed",
            "--gif", str(gif))
    assert r.returncode == 0, r.stderr
    with PIL.open(gif) as image:
        assert image.n_frames == 9


def test_pictures_of_large_or_3d_operators_are_refused_naming_the_flag(tmp_path):
    r = run("show", "--input", "64x64", "--html", str(tmp_path / "big.html"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--html: the page draws every cell of the 3844 x 4096 matrix" in r.stderr
    if importlib.util.find_spec("matplotlib") is not None:  # without it, the hint comes first
        r = run("show", "--input", "3x3x3", "--kernel", "2", "--gif", str(tmp_path / "a.gif"))
        assert r.returncode == 2 and "--gif: the animation draws 1-D and 2-D convolutions" in \
            r.stderr
    r = run("show", "--gif", str(tmp_path / "a.png"))
    assert r.returncode == 2 and "PATH must end in .gif" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "matconv", "show", "--input", "16x16",
                             "--max-cells", "100000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `matconv show ... | head -1`
    assert proc.wait(timeout=120) in (0, 1)
    assert proc.stderr.read() == b""
    proc.stderr.close()
