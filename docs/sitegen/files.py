"""Writing generated sources so that Sphinx rebuilds only what changed.

Sphinx decides what to re-read from file modification times, so a generated file is written only
when its content differs, and generated files that are no longer wanted are removed (a stale page
would be a document in no toctree: a warning, so a failed build).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["prune", "write_if_changed"]


def write_if_changed(path: Path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` atomically unless the file already holds exactly that.

    Parameters
    ----------
    path : pathlib.Path
        The file; its directory is created if missing.
    content : str or bytes
        Text is written as UTF-8.

    Returns
    -------
    bool
        Whether the file was (re)written.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "page.md"
    >>> write_if_changed(path, "# A page\\n"), write_if_changed(path, "# A page\\n")
    (True, False)
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # same directory: the rename is atomic
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def prune(directory: Path, keep, pattern: str = "*") -> list:
    """Remove the files in ``directory`` matching ``pattern`` whose names are not in ``keep``.

    Returns
    -------
    list of str
        The names removed, sorted.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> for name in ("a.rst", "b.rst", "c.txt"):
    ...     _ = write_if_changed(d / name, "")
    >>> prune(d, {"a.rst"}, "*.rst"), sorted(p.name for p in d.iterdir())
    (['b.rst'], ['a.rst', 'c.txt'])
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = sorted(p.name for p in directory.glob(pattern) if p.is_file() and p.name not in keep)
    for name in removed:
        (directory / name).unlink()
    return removed
