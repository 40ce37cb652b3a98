"""The notebooks as pages: every ``notebooks/*.ipynb`` of the checkout, rendered from its outputs.

Sphinx reads sources only from the documentation directory, so the notebooks are copied into
``docs/notebooks/`` (by glob: a notebook added to the checkout becomes a page with no change
here). They are not executed: the test suite executes them; the site shows what they stored.
"""
from __future__ import annotations

from pathlib import Path

from .files import prune, write_if_changed

__all__ = ["copy_notebooks"]


def copy_notebooks(source: Path, srcdir: Path) -> list:
    """Copy ``source/*.ipynb`` into ``srcdir/notebooks``, removing copies of deleted notebooks.

    Returns
    -------
    list of str
        The notebook file names, sorted.

    Raises
    ------
    FileNotFoundError
        If ``source`` holds no notebook (the site would silently lose a whole section).
    """
    notebooks = sorted(Path(source).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {source}")
    target = Path(srcdir) / "notebooks"
    for path in notebooks:
        write_if_changed(target / path.name, path.read_bytes())
    names = [p.name for p in notebooks]
    prune(target, set(names), "*.ipynb")
    return names
