"""Build, re-execute and export the notebooks.

A notebook can be written as a percent-format script (``# %%`` starts a code cell,
``# %% [markdown]`` a markdown cell whose lines start with ``# ``)::

    python tools/make_notebook.py notebooks/src.py notebooks/11_structured_output.ipynb
    python tools/make_notebook.py --refresh notebooks/*.ipynb     # re-execute, keep the cells
    python tools/make_notebook.py --export notebooks/02_backprop_is_the_transpose.ipynb src.py

Building and refreshing execute the notebook top to bottom in a fresh kernel whose working
directory is the notebook's folder, and save it with its outputs (so it reads well on a code
host; ``tests/test_notebooks.py`` re-executes it regardless). Exporting writes the cells back as
a script, so a notebook can be edited as text and rebuilt; ``build(export(nb))`` gives the same
cells.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def cells_from_script(text: str) -> list:
    """The cells of a percent-format script."""
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


def script_from_cells(nb) -> str:
    """A percent-format script of the notebook's cells (the inverse of cells_from_script)."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            body = "\n".join(f"# {line}" if line else "#" for line in cell.source.splitlines())
            parts.append(f"# %% [markdown]\n{body}\n")
        elif cell.cell_type == "code":
            if any(line.startswith("# %%") for line in cell.source.splitlines()):
                raise ValueError(f"a code cell has a line starting with '# %%', which would "
                                 f"split it when read back: {cell.source[:80]!r}")
            parts.append(f"# %%\n{cell.source}\n")
    return "\n".join(parts)


def execute(nb, dst: Path, timeout: int = 300) -> float:
    """Run ``nb`` top to bottom in the folder of ``dst``, save it there; returns the seconds."""
    nb.metadata["kernelspec"] = KERNELSPEC
    start = time.monotonic()
    # no per-cell timestamps: a refresh should change a notebook only where its outputs do
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(dst.parent)}}).execute()
    seconds = time.monotonic() - start
    nbformat.write(nb, dst)
    return seconds


def build(src: Path, dst: Path) -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_from_script(src.read_text())
    return execute(nb, dst)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--refresh", action="store_true",
                       help="re-execute the given notebooks in place")
    group.add_argument("--export", action="store_true",
                       help="write NOTEBOOK's cells as a percent-format SCRIPT")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="SCRIPT NOTEBOOK to build; NOTEBOOK... with --refresh; "
                             "NOTEBOOK SCRIPT with --export")
    args = parser.parse_args(argv)
    if args.refresh:
        for path in args.paths:
            seconds = execute(nbformat.read(path, as_version=4), path)
            print(f"{path}: executed in {seconds:.1f} s")
    elif len(args.paths) != 2:
        parser.error("expected two paths: the source and the destination")
    elif args.export:
        args.paths[1].write_text(script_from_cells(nbformat.read(args.paths[0], as_version=4)))
    else:
        seconds = build(*args.paths)
        print(f"{args.paths[1]}: built and executed in {seconds:.1f} s")


if __name__ == "__main__":
    main()
