"""Build an executed notebook from a percent-format script (``# %%`` code cells,
``# %% [markdown]`` markdown cells whose lines start with ``# ``).

    python tools/make_notebook.py notebooks/src.py notebooks/01_unrolled_matrix.ipynb
    python tools/make_notebook.py --refresh notebooks/*.ipynb   # re-execute, keep the cells

The notebook is executed top to bottom with nbclient and saved with its outputs, so it reads
well on a code host; ``tests/test_notebooks.py`` re-executes it regardless.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def cells_from_script(text: str):
    cells, kind, lines = [], None, []

    def flush():
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                             for line in body.splitlines())
        if body.strip():
            cells.append(nbformat.v4.new_markdown_cell(body) if kind == "markdown"
                         else nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return cells


def execute(nb, dst: Path, timeout: int = 300) -> None:
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(dst.parent)}}).execute()
    nbformat.write(nb, dst)


def build(src: Path, dst: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_from_script(src.read_text())
    execute(nb, dst)


if __name__ == "__main__":
    if sys.argv[1] == "--refresh":
        for name in sys.argv[2:]:
            execute(nbformat.read(name, as_version=4), Path(name))
    else:
        build(Path(sys.argv[1]), Path(sys.argv[2]))
