"""MathJax served from the site itself, so the notebooks' formulas render without a network.

Sphinx would load MathJax from a CDN; a site built and read offline (a student's laptop, CI)
would then show raw ``\\(...\\)``. The ``django-static-mathjax`` package (in the ``docs`` extra)
carries MathJax 3 as plain files; this copies the parts the pages use into ``docs/_static``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .files import write_if_changed

__all__ = ["MATHJAX_PATH", "copy_mathjax"]

#: ``mathjax_path`` for ``conf.py``: relative to the built site's ``_static``.
MATHJAX_PATH = "mathjax/tex-chtml.js"
# the TeX-to-HTML bundle, and what it loads on demand: TeX extensions, fonts, menu, accessibility
# (not the speech-rule engine, 4 MB, used only by the menu's speech options)
_PARTS = ("tex-chtml.js", "input", "output/chtml", "a11y", "ui")


def mathjax_source() -> Path:
    """The ``es5`` directory of MathJax 3 installed by ``django-static-mathjax``.

    Raises
    ------
    ModuleNotFoundError
        If the package is missing, saying how to install the ``docs`` extra.
    """
    spec = importlib.util.find_spec("mathjax")  # a data-only package: not imported
    es5 = (Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
           if spec and spec.submodule_search_locations else None)
    if es5 is None or not (es5 / "tex-chtml.js").is_file():
        raise ModuleNotFoundError("MathJax for the documentation comes from the package "
                                  "django-static-mathjax: pip install -e '.[docs]' in the "
                                  "matconv checkout")
    return es5


def copy_mathjax(static: Path) -> Path:
    """Copy MathJax into ``static/mathjax`` (only files that differ) and return that folder."""
    source, target = mathjax_source(), Path(static) / "mathjax"
    for part in _PARTS:
        path = source / part
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            write_if_changed(target / f.relative_to(source), f.read_bytes())
    return target
