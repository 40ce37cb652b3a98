"""What autodoc shows: type lines as written, and public base classes only.

Shapes: the docstrings give shapes in their type lines with Python's star for "any number of"
(``ndarray of shape (N, C, *spatial)``), which reads well in ``help()``. In reStructuredText a
star opens emphasis, so Sphinx would italicise or warn. Before numpydoc renders a docstring,
this escapes such stars in the *type* part of every entry of a typed section (Parameters,
Returns, Attributes, ...), outside inline literals; descriptions are left as they are.

Base classes: a class's "Bases" line names its public ancestors; a private base (``_ConvNd``)
is replaced by its own bases, since a reader can look nothing up under a private name.
"""
from __future__ import annotations

import re

__all__ = ["escape_type_stars", "process_bases", "process_docstring", "public_bases"]

_TYPED_SECTIONS = {"parameters", "other parameters", "returns", "yields", "receives",
                   "attributes", "raises", "warns"}
# a star that would open emphasis: not escaped, not after a word character or another star
_OPENING_STAR = re.compile(r"(?<![\\*\w])\*(?=[A-Za-z_(])")


def _escape(text: str) -> str:
    parts = text.split("``")
    parts[::2] = [_OPENING_STAR.sub(r"\\*", p) for p in parts[::2]]  # outside ``literals``
    return "``".join(parts)


def _is_underline(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= 3 and set(stripped) == {"-"}


def escape_type_stars(lines: list) -> list:
    """Escape emphasis-opening stars in the type part of numpydoc entries, in place.

    Parameters
    ----------
    lines : list of str
        A docstring's lines, dedented (as autodoc hands them to its listeners).

    Returns
    -------
    list of str
        ``lines``, changed in place.

    Examples
    --------
    >>> doc = ["Parameters", "----------", "x : ndarray of shape (N, C, *spatial)",
    ...        "    A *batch* of ``x*y`` inputs.", "", "Returns", "-------",
    ...        "ndarray of shape (N, *out), ``*out`` the output size"]
    >>> for line in escape_type_stars(doc)[2:]:
    ...     print(line)
    x : ndarray of shape (N, C, \\*spatial)
        A *batch* of ``x*y`` inputs.
    <BLANKLINE>
    Returns
    -------
    ndarray of shape (N, \\*out), ``*out`` the output size
    """
    section, indent = None, 0
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line.strip() and _is_underline(lines[i + 1]):
            section = line.strip().lower()
            indent = len(line) - len(line.lstrip())
            continue
        if section not in _TYPED_SECTIONS or not line.strip() or _is_underline(line):
            continue
        if len(line) - len(line.lstrip()) != indent:
            continue  # a description line
        name, sep, kind = line.partition(" : ")
        lines[i] = name + sep + _escape(kind) if sep else _escape(line)
    return lines


def process_docstring(app, what, name, obj, options, lines) -> None:
    """The ``autodoc-process-docstring`` listener: :func:`escape_type_stars` on ``lines``."""
    escape_type_stars(lines)


def public_bases(bases) -> list:
    """``bases`` with every private class (name starting with ``_``) replaced by its own bases.

    Examples
    --------
    >>> class Base: pass
    >>> class _Shared(Base): pass
    >>> class Layer(_Shared): pass
    >>> [b.__name__ for b in public_bases(Layer.__bases__)]
    ['Base']
    """
    result = []
    for base in bases:
        for public in (public_bases(base.__bases__) if base.__name__.startswith("_") else [base]):
            if public not in result:
                result.append(public)
    return result


def process_bases(app, name, obj, options, bases) -> None:
    """The ``autodoc-process-bases`` listener: :func:`public_bases`, in place."""
    bases[:] = public_bases(bases)
