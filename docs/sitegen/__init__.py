"""The Sphinx extension that generates the site's sources from the checkout before Sphinx reads.

When the configuration has been read (before Sphinx looks for documents) it writes the API
reference (:mod:`sitegen.api`), copies the notebooks (:mod:`sitegen.notebooks`), draws the
gallery's GIFs (:mod:`sitegen.gallery`) and copies MathJax (:mod:`sitegen.mathjax`); once an
HTML build has finished it writes the gallery's interactive pages into the built site. While
autodoc reads docstrings, :mod:`sitegen.docstrings` keeps the stars of shapes in type lines from
turning into emphasis and hides private base classes. Everything written into ``docs/`` is listed
in ``docs/.gitignore``.
"""
from __future__ import annotations

from pathlib import Path

from .api import write_api
from .docstrings import process_bases, process_docstring
from .gallery import write_gallery, write_pages
from .mathjax import copy_mathjax
from .notebooks import copy_notebooks

__all__ = ["CHECKOUT", "setup"]

#: The matconv checkout this ``docs/`` belongs to.
CHECKOUT = Path(__file__).resolve().parents[2]


def _generate_sources(app, config) -> None:
    srcdir = Path(app.srcdir)
    write_api(srcdir)
    copy_notebooks(CHECKOUT / "notebooks", srcdir)
    write_gallery(srcdir)
    copy_mathjax(srcdir / "_static")


def _write_pages(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        write_pages(app.outdir)


def setup(app) -> dict:
    """Connect the generators to Sphinx's events (an extension's entry point)."""
    app.connect("config-inited", _generate_sources)
    app.connect("build-finished", _write_pages)
    # before numpydoc (priority 500) turns the sections into reStructuredText
    app.connect("autodoc-process-docstring", process_docstring, priority=400)
    app.connect("autodoc-process-bases", process_bases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
