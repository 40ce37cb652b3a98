"""Every notebook runs top to bottom (its asserts included) in a fresh kernel, writes nothing
outside its folder and leaves nothing behind; its stored cells are clean and cite their sources.

Each notebook is executed in a copy inside a temporary folder, with a Python audit hook
(``sys.addaudithook``) in the kernel that logs every file the notebook opens for writing, creates,
renames or removes. Imports that fill the environment's caches (matplotlib's font list) run
before the hook is installed: those writes belong to the installation, not to the notebook.

The kernels run OpenBLAS on one thread: the notebooks' products are small, and on a machine
whose cores are busy with other work OpenBLAS's waiting threads made them up to ten times
slower (a notebook of 45 s took 190 s), which would fail the time limit for no fault of the
notebook. Their results do not depend on it; their asserts leave margins for round-off.
"""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT = 180  # seconds per notebook; each takes about a minute or less on 2 cores

#: the sources the notebooks retell, as (title, author); the first cell of each notebook names
#: at least one of them by both
SOURCES = [
    ("Backpropagation in Convolutional Neural Network", "Kuwajima"),
    ("Convolutions in more detail", "Kuwajima"),  # the slides that follow the memo
    ("Training Convnet with Backprop", "Ray"),
    ("Convolutional Layer Backpropagation", "Schmidt"),
    ("the back-propagation equations for a convolutional network", "the decision blog"),
    ("Back propagation for CNN", "Prayag"),
    ("A guide to convolution arithmetic for deep learning", "Dumoulin"),
    ("Optical Recognition of Handwritten Digits", "Alpaydin"),
    ("The singular values of convolutional layers", "Sedghi"),
]

AUDIT = r'''
import os as _os, sys as _sys
import matplotlib.pyplot  # fills matplotlib's caches before the hook: not the notebook's writes

_nb_writes = []

def _nb_audit(event, args, _log=_nb_writes, _path=_os.path,
              _flags=_os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND):
    if event == "open":
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        writing = any(c in mode for c in "wax+") if mode else bool((flags or 0) & _flags)
        if writing:
            _log.append((event, _path.abspath(_os.fsdecode(path))))
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate", "os.symlink", "os.link",
                   "tempfile.mkstemp", "tempfile.mkdtemp", "shutil.rmtree"):
        if args and isinstance(args[0], (str, bytes, _os.PathLike)):
            _log.append((event, _path.abspath(_os.fsdecode(args[0]))))
    elif event in ("os.rename", "os.replace", "shutil.copyfile", "shutil.move"):
        for path in args[:2]:
            if isinstance(path, (str, bytes, _os.PathLike)):
                _log.append((event, _path.abspath(_os.fsdecode(path))))

_sys.addaudithook(_nb_audit)
'''

REPORT = "import json as _json\nprint(_json.dumps(_nb_writes))"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10, [p.name for p in NOTEBOOKS]


def _code(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_cites_its_sources(path):
    """No figure saved to a path, no debugging lines, no internal labels; executed in order."""
    nb = nbformat.read(path, as_version=4)
    for source in _code(nb):
        for bad in ("/tmp", "savefig(", "breakpoint(", "import pdb", "set_trace("):
            assert bad not in source, f"{path.name}: {bad!r} in a code cell:\n{source}"
    text = "\n".join(c.source for c in nb.cells)
    for label in (r"seed\s*0\d\d", r"\.\./shared", r"shared/se" + "eds"):
        assert not re.search(label, text, re.IGNORECASE), f"{path.name}: mentions {label!r}"
    first = " ".join(nb.cells[0].source.split())  # a title may wrap across lines
    assert nb.cells[0].cell_type == "markdown"
    assert any(title.lower() in first.lower() and re.search(rf"\b{author}\b", first, re.I)
               for title, author in SOURCES), \
        f"{path.name}: the first cell names none of the sources by title and author {SOURCES}"
    # stored outputs come from one run, top to bottom, without errors
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_writes_only_inside_its_folder(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # inherited by the kernel: see the docstring
    folder = tmp_path / "notebooks"
    folder.mkdir()
    copy = folder / path.name
    shutil.copyfile(path, copy)
    before = sorted(folder.rglob("*"))

    nb = nbformat.read(copy, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.insert(0, nbformat.v4.new_code_cell(AUDIT))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    start = time.monotonic()
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    seconds = time.monotonic() - start
    assert seconds < TIMEOUT
    assert len(nb.cells) == n_cells + 2
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors

    report = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                     if o.get("output_type") == "stream")
    writes = json.loads(report)
    outside = sorted({p for _, p in writes
                      if not Path(p).resolve().is_relative_to(folder.resolve())})
    assert not outside, f"{path.name} wrote outside its folder: {outside}"
    assert sorted(folder.rglob("*")) == before, f"{path.name} left files behind"


def test_the_audit_sees_writes_outside_the_folder(tmp_path):
    """The check above can fail: a cell that saves a figure to another folder is caught."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(AUDIT),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt, tempfile, os\n"
            f"plt.plot([1, 2]); plt.savefig({str(elsewhere / 'fig.png')!r})\n"
            f"os.replace({str(elsewhere / 'fig.png')!r}, {str(elsewhere / 'g.png')!r})\n"
            "with tempfile.TemporaryDirectory(dir='.') as d:\n"
            "    open(os.path.join(d, 'inside.txt'), 'w').close()"),
        nbformat.v4.new_code_cell(REPORT)])
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    writes = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs))
    paths = {Path(p) for _, p in writes}
    assert elsewhere / "fig.png" in paths and elsewhere / "g.png" in paths
    assert any(p.name == "inside.txt" and p.parent.parent == folder for p in paths)


def _make_notebook_tool():
    import importlib.util

    script = Path(__file__).parent.parent / "tools" / "make_notebook.py"
    if not script.exists():
        pytest.skip("tools/make_notebook.py is not available (not running from the repository)")
    spec = importlib.util.spec_from_file_location("make_notebook", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_export_and_build_round_trip(path):
    """tools/make_notebook.py --export writes a script that builds the same cells."""
    tool = _make_notebook_tool()
    nb = nbformat.read(path, as_version=4)
    script = tool.script_from_cells(nb)
    cells = tool.cells_from_script(script)
    assert [(c.cell_type, c.source) for c in cells] == \
        [(c.cell_type, c.source.strip("\n")) for c in nb.cells]


def test_export_refuses_a_cell_that_would_split():
    tool = _make_notebook_tool()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n# %% not a cell")])
    with pytest.raises(ValueError, match="would split it"):
        tool.script_from_cells(nb)


def test_no_file_of_the_project_points_at_the_developers_notes():
    """Users have neither the developers' notes folder nor their numbering: sources are cited by
    title and author everywhere (the patterns are assembled here so this file does not match)."""
    labels = [re.compile(p, re.IGNORECASE) for p in
              (r"seed\s*0\d\d", r"\.\./" + "shared", "shared/" + "seeds", "THEORY" + r"\.md")]
    root = Path(__file__).resolve().parent.parent
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    found = []
    for name in tracked.stdout.splitlines():
        path = root / name
        if path.suffix not in {".py", ".md", ".ipynb", ".cfg", ".toml", ".txt", ".rst", ".sh"} \
                or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {p.pattern}" for p in labels if p.search(text)]
    assert not found, found
