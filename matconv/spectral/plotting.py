"""A picture of a spectrum: singular values against their rank, on a log scale."""
from __future__ import annotations

import numpy as np

from .result import SingularValues
from .solvers import singular_values

__all__ = ["plot_spectrum"]


def plot_spectrum(op, input_shape=None, *, ax=None, label=None, relative=False, at=None,
                  method="auto"):
    """Draw singular values in descending order against their rank (fraction of ``min(m, n)``).

    Parameters
    ----------
    op : 1-D array of singular values, or anything :func:`singular_values` takes
        An operator is decomposed with ``which='all'``.
    input_shape, at, method
        Passed to :func:`singular_values` when ``op`` is an operator.
    ax : matplotlib Axes, optional
        Draw into it (several spectra on one plot); default a new figure.
    label : str, optional
        Legend entry; default the method that computed the values.
    relative : bool
        Divide by the largest value (compare shapes of spectra of different scales).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from matconv import nn
    >>> ax = plot_spectrum(nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular"), (1, 16))
    >>> ax.get_yscale(), ax.get_lines()[0].get_label()
    ('log', 'fft')
    """
    # matconv.plot's lazy import and Jupyter display
    from ..plot import new_axes, require_matplotlib

    if isinstance(op, np.ndarray) and op.ndim == 1:
        values = np.asarray(op, dtype=np.float64)
        method_name = getattr(op, "method", None)
    else:
        values = singular_values(op, input_shape, which="all", at=at, method=method)
        method_name = values.method
    values = np.sort(np.asarray(values.view(np.ndarray) if isinstance(values, SingularValues)
                                else values))[::-1]
    if values.size == 0 or not np.all(np.isfinite(values)) or values.min() < 0:
        raise ValueError("singular values must be a non-empty 1-D array of finite numbers >= 0")
    mpl = require_matplotlib("matconv.spectral.plot_spectrum")
    if ax is None:
        ax = new_axes(mpl, 1, figsize=(6.0, 4.0))
    y = values / values[0] if relative and values[0] > 0 else values
    rank = (np.arange(values.size) + 0.5) / values.size
    shown = np.where(y > 0, y, np.nan)  # a log axis cannot show exact zeros
    ax.plot(rank, shown, label=label if label is not None else (method_name or "values"))
    ax.set_yscale("log")
    ax.set_xlabel("rank / min(m, n)")
    ax.set_ylabel("singular value / largest" if relative else "singular value")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend()
    return ax
