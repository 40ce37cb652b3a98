"""The API reference, generated from the package: a page per public module, a page per name.

A *public module* is every module of the package whose dotted path has no part starting with an
underscore (``matconv.__main__``, which runs the command line when imported, is one such part).
Its public names are its ``__all__``. Every name gets exactly one page, at the path users import
it from:

* a class or function at the shallowest module listing it (``matconv.conv_matrix``, not
  ``matconv.lowering.matrices.conv_matrix``; a tie goes to the module that defines it);
* a constant at the module whose source documents it (its ``#:`` comment is its docstring),
  else the shallowest package above it that lists it.

Every other module listing the name links to that page, so each module's page shows all of its
``__all__``, each name with its numpydoc short summary. The pages are reStructuredText driving
``autodoc``; the docstrings are read by ``numpydoc``.
"""
from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from .docstrings import public_bases
from .files import prune, write_if_changed

__all__ = ["GROUPS", "ApiName", "api_names", "public_modules", "summary", "write_api"]

#: The reference's sections, in the order of the package's layers (``docs/design.md``); a module
#: matching no pattern lands in the last section, so a new module is never left out.
GROUPS = (
    ("The matconv namespace", ("matconv",)),
    ("Geometry: sizes and padding", ("matconv.geometry", "matconv.geometry.*")),
    ("Lowering: geometry to sparse structure", ("matconv.lowering", "matconv.lowering.*")),
    ("Operators", ("matconv.operators", "matconv.operators.*")),
    ("Layers and modules", ("matconv.nn", "matconv.nn.*")),
    ("Training", ("matconv.optim", "matconv.optim.*", "matconv.train", "matconv.train.*",
                  "matconv.batches", "matconv.models", "matconv.models.*", "matconv.checkpoint",
                  "matconv.data", "matconv.data.*")),
    ("Inspection and pictures", ("matconv.show", "matconv.composition", "matconv.scene",
                                 "matconv.plot", "matconv.animation", "matconv.animation.*",
                                 "matconv.page", "matconv.page.*", "matconv.spectral",
                                 "matconv.spectral.*", "matconv.transposed", "matconv.signal",
                                 "matconv.export")),
    ("Interoperability", ("matconv.interop", "matconv.interop.*")),
    ("Command line", ("matconv.cli", "matconv.cli.*")),
    ("Utilities", ("matconv.memory", "matconv.layout", "matconv.fileio", "matconv.typed_json")),
    ("Other modules", ("*",)),
)
_KIND_TITLES = (("class", "Classes"), ("exception", "Exceptions"), ("function", "Functions"),
                ("data", "Constants"))  # modules have pages of their own, listed under "Modules"
_MAX_VALUE_CHARS = 60  # show a constant's value when its repr is short and stable


@dataclass(frozen=True)
class ApiName:
    """One entry of a module's ``__all__`` and where it is documented.

    Attributes
    ----------
    module : str
        The module whose ``__all__`` lists the name.
    name : str
        The name in that module.
    kind : str
        ``'module'``, ``'class'``, ``'exception'``, ``'function'`` or ``'data'``.
    page : str
        The full dotted name whose page documents the object (``module.name`` when the page is
        here; a module's own name for a module).
    """

    module: str
    name: str
    kind: str
    page: str

    @property
    def documented_here(self) -> bool:
        """Whether this module's reference holds the object's page."""
        return self.kind != "module" and self.page == f"{self.module}.{self.name}"


def public_modules(package: str = "matconv") -> list:
    """The importable public modules of ``package``, the package itself first, then sorted.

    Examples
    --------
    >>> mods = public_modules("matconv")
    >>> mods[0], "matconv.nn.conv" in mods, "matconv.__main__" in mods
    ('matconv', True, False)
    """
    root = importlib.import_module(package)
    found = set()
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.add(info.name)
    return [package, *sorted(found)]


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    return "function" if callable(obj) else "data"


def _exports(modname: str) -> list:
    module = importlib.import_module(modname)
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"module {modname} has no __all__; the API reference documents the names "
                         f"a module lists in __all__")
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{modname}.__all__ lists {missing}, which the module does not define")
    return list(names)


def _attribute_doc(modname: str, name: str) -> list:
    from sphinx.pycode import ModuleAnalyzer

    try:
        return ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", name), [])
    except Exception:  # no source to read (a compiled module): nothing documented there
        return []


def _documents_attribute(modname: str, name: str) -> bool:
    return bool(_attribute_doc(modname, name))


def _depth(modname: str) -> int:
    return modname.count(".")


def _is_within(modname: str, package: str) -> bool:
    return modname == package or modname.startswith(package + ".")


def api_names(modules) -> dict:
    """Every public name of ``modules``, with the page that documents it.

    Parameters
    ----------
    modules : list of str
        Dotted module names, as from :func:`public_modules`.

    Returns
    -------
    dict
        ``{module: [ApiName, ...]}`` in the order of each ``__all__``.

    Examples
    --------
    >>> names = api_names(public_modules("matconv"))
    >>> [(n.kind, n.page) for n in names["matconv.lowering"] if n.name == "conv_matrix"]
    [('function', 'matconv.conv_matrix')]
    """
    modules = list(modules)
    is_module = set(modules)
    exports = {m: _exports(m) for m in modules}
    objects = {m: {n: getattr(importlib.import_module(m), n) for n in exports[m]} for m in modules}
    listed_by = {}  # id(object) -> modules listing it under each name
    for m in modules:
        for n, obj in objects[m].items():
            listed_by.setdefault((id(obj), n), []).append(m)

    def page_of(module, name):
        obj = objects[module][name]
        kind = _kind(obj)
        if kind == "module":
            return obj.__name__
        # a page may not take a module's name (a function exported under a module's name would
        # be documented under its own module instead)
        candidates = [m for m in listed_by[(id(obj), name)] if f"{m}.{name}" not in is_module]
        if not candidates:
            raise ValueError(f"{module}.{name} names both a module and another object; the API "
                             f"reference cannot give them one page each")
        if kind == "data":
            # equal small values are one object in Python: only the packages above this module
            # can be re-exporting it
            candidates = [m for m in candidates if _is_within(module, m)]
            documented = [m for m in candidates if _documents_attribute(m, name)]
            if documented:
                return f"{min(documented, key=_depth)}.{name}"
            return f"{min(candidates, key=lambda m: (_depth(m), m))}.{name}"
        defined_in = getattr(obj, "__module__", None)
        best = min(candidates, key=lambda m: (_depth(m), m != defined_in, m))
        return f"{best}.{name}"

    return {m: [ApiName(m, n, _kind(objects[m][n]), page_of(m, n)) for n in exports[m]]
            for m in modules}


_ROLES = {"module": "mod", "class": "class", "exception": "exc", "function": "func",
          "data": "data"}


def summary(full_name: str, kind: str) -> str:
    """numpydoc's short summary of an object: the first paragraph of its docstring, on one line.

    (autosummary's own summaries cut the paragraph at its first ``". "``, which splits inline
    literals like ``index - 1 .. index + 2``.) A constant's docstring is its ``#:`` comment.

    Examples
    --------
    >>> summary("matconv.conv_output_size", "function")
    'Output size of a convolution (or pooling) along each spatial dimension.'
    """
    if kind == "module":
        doc = inspect.getdoc(importlib.import_module(full_name)) or ""
    else:
        modname, _, name = full_name.rpartition(".")
        if kind == "data":
            doc = "\n".join(_attribute_doc(modname, name))
        else:
            doc = inspect.getdoc(getattr(importlib.import_module(modname), name)) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _summary_table(rows) -> list:
    """A two-column table of ``(full name, kind)`` rows: a link, then the short summary."""
    lines = [".. list-table::", "   :class: autosummary", "   :widths: 35 65", ""]
    for full_name, kind in rows:
        lines += [f"   * - :py:{_ROLES[kind]}:`~{full_name}`",
                  f"     - {summary(full_name, kind) or '(no description)'}"]
    return [*lines, ""]


def module_page(modname: str, names, submodules) -> str:
    """The reStructuredText of one module's page: its docstring, then its ``__all__`` by kind."""
    lines = [modname, "=" * len(modname), "", f".. automodule:: {modname}", "   :no-members:",
             ""]
    here = [n for n in names if n.documented_here]
    if here:  # the pages of this module's names, in the navigation under this page
        lines += [".. toctree::", "   :hidden:", "", *(f"   generated/{n.page}" for n in here), ""]
    for kind, title in _KIND_TITLES:
        rows = [(n.page, kind) for n in here if n.kind == kind]
        if rows:
            lines += [f".. rubric:: {title}", "", *_summary_table(rows)]
    elsewhere = [(n.page, n.kind) for n in names if n.kind != "module" and not n.documented_here]
    if elsewhere:
        lines += [".. rubric:: Also in this module", "",
                  f"Listed in ``{modname}.__all__`` too, and documented at the path they are "
                  f"usually imported from (the same objects):", "", *_summary_table(elsewhere)]
    modules = sorted({n.page for n in names if n.kind == "module"} | set(submodules))
    if modules:
        lines += [".. rubric:: Modules", "", *_summary_table((m, "module") for m in modules)]
    return "\n".join(lines)


def _value_is_shown(obj) -> bool:
    text = repr(obj)
    return len(text) <= _MAX_VALUE_CHARS and " at 0x" not in text


def name_page(entry: ApiName) -> str:
    """The reStructuredText of the page of one object documented in ``entry.module``."""
    title = f"{entry.module}.{entry.name}"
    lines = [title, "=" * len(title), "", f".. currentmodule:: {entry.module}", ""]
    obj = getattr(importlib.import_module(entry.module), entry.name)
    if entry.kind in ("class", "exception"):
        lines += [f".. auto{entry.kind}:: {entry.name}", "   :members:"]
        if public_bases(obj.__bases__) != [object]:  # "Bases: object" says nothing
            lines += ["   :show-inheritance:"]
    elif entry.kind == "function":
        lines += [f".. autofunction:: {entry.name}"]
    else:
        lines += [f".. autodata:: {entry.name}"]
        if not _value_is_shown(obj):
            lines += ["   :no-value:"]
    return "\n".join([*lines, ""])


def _group_of(modname: str) -> int:
    for index, (_, patterns) in enumerate(GROUPS):
        if any(fnmatch.fnmatchcase(modname, p) for p in patterns):
            return index
    raise AssertionError("the last group matches every module")


def index_page(modules) -> str:
    """The reference's front page: one toctree of module pages per section of :data:`GROUPS`."""
    lines = ["API reference", "=============", "",
             "Every public module of matconv, and every name in its ``__all__``, generated from "
             "the docstrings. The sections follow the package's layers (see :doc:`../design`); "
             "a name that several modules list has one page, at the path it is usually imported "
             "from, and the other modules link to it.", ""]
    for index, (title, _) in enumerate(GROUPS):
        members = [m for m in modules if _group_of(m) == index]
        if members:
            lines += [".. toctree::", f"   :caption: {title}", "   :maxdepth: 1", "",
                      *(f"   {m}" for m in members), ""]
    return "\n".join(lines)


def write_api(srcdir, package: str = "matconv") -> dict:
    """Write the reference into ``srcdir/api``: ``index.rst``, module pages, ``generated/``.

    Returns
    -------
    dict
        The :func:`api_names` the pages were made from.
    """
    api = Path(srcdir) / "api"
    modules = public_modules(package)
    names = api_names(modules)
    pages = {"index.rst": index_page(modules)}
    for m in modules:
        children = [c for c in modules if c.rpartition(".")[0] == m]
        pages[f"{m}.rst"] = module_page(m, names[m], children)
    stubs = {f"{e.page}.rst": name_page(e) for m in modules for e in names[m] if e.documented_here}
    for filename, text in pages.items():
        write_if_changed(api / filename, text)
    for filename, text in stubs.items():
        write_if_changed(api / "generated" / filename, text)
    prune(api, set(pages), "*.rst")
    prune(api / "generated", set(stubs), "*.rst")
    return names
