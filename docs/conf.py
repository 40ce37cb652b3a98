"""Sphinx configuration of matconv's documentation site (see ``docs/building.md``).

Build it from the checkout with warnings as errors (what CI does)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))               # the ``sitegen`` extension
sys.path.insert(0, str(DOCS.parent))        # the checkout's matconv, not an installed copy
os.environ.setdefault("MPLBACKEND", "Agg")  # the gallery draws without a screen

from sitegen.mathjax import MATHJAX_PATH  # noqa: E402

import matconv  # noqa: E402

project = "matconv"
author = "the matconv authors"
copyright = "the matconv authors, MIT licence"
version = release = matconv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_nb",        # Markdown pages (MyST) and notebooks; brings myst_parser
    "sitegen",        # writes the API pages, notebook copies and gallery before reading
]

exclude_patterns = ["_build", "sitegen", "**.ipynb_checkpoints"]

# --- notebooks: rendered from the outputs they store; the test suite is what executes them
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# --- API reference: sitegen writes every page (module pages with summary tables, object pages)
autodoc_member_order = "bysource"
autodoc_typehints = "none"            # types are in the numpydoc type lines
autodoc_preserve_defaults = True      # signatures show np.float32, not <class 'numpy.float32'>
numpydoc_show_class_members = False   # autodoc's :members: documents them once, on the page
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
add_module_names = False

# --- HTML: the theme numpy, scipy and pandas use, so the pages read like theirs
html_theme = "pydata_sphinx_theme"
html_title = f"matconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "collapse_navigation": True,      # the sidebar lists modules, not every name of every one
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = ["_static"]        # sitegen copies MathJax there: math renders offline
mathjax_path = MATHJAX_PATH
html_show_sourcelink = False
html_copy_source = False              # the notebooks are in the checkout; no second copy
html_last_updated_fmt = None

# No intersphinx: the build runs offline (CI builds without a network).
