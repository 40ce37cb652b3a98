"""Pictures of the matrices: a conv operator as a heat map or sparsity pattern, im2col as an image.

Matplotlib is an optional dependency (the ``plot`` extra: ``pip install '.[plot]'`` in the matconv
checkout, or ``pip install matplotlib``), imported only when a function here is called. Nothing
is shown: new figures are plain :class:`matplotlib.figure.Figure` objects, not registered with
pyplot, so they work the same in scripts, tests and notebooks. Save
them with ``fig.savefig(...)``, or pass your own ``ax`` (e.g. from ``plt.subplots()``) to draw
into a pyplot figure.

In every matrix picture rows are outputs and columns inputs, each ordered ``(channel, position)``
with positions in row-major order, exactly as ``A @ x.ravel()`` reads them.
"""
from __future__ import annotations

import sys
from math import prod

import numpy as np
import scipy.sparse as sp

from .lowering import unfold_matrix
from .memory import check_memory

__all__ = [
    "MATPLOTLIB_HINT",
    "plot_matrix",
    "plot_operator",
    "plot_unfold",
    "require_matplotlib",
    "new_axes",
]

#: ``mode="auto"`` draws values up to this many cells, the sparsity pattern beyond.
AUTO_VALUES_MAX_CELLS = 200_000

_MODES = ("auto", "pattern", "values")
_BLOCK_COLOR = "0.15"
_MAX_BLOCK_TICKS = 16


#: How to install the optional plotting dependency; matconv is installed from its checkout, not
#: from a package index, so ``pip install 'matconv[plot]'`` would not find it.
MATPLOTLIB_HINT = ("pip install '.[plot]' in the matconv checkout (the directory holding "
                   "setup.cfg), or pip install matplotlib")


def require_matplotlib(what: str = "matconv.plot"):
    """Import matplotlib on first use; without it, an ``ImportError`` saying how to install it.

    Parameters
    ----------
    what : str
        What needs it, for the message (e.g. ``'matconv show --png'``).

    Returns
    -------
    module
        ``matplotlib``, with ``axes``, ``figure`` and ``ticker`` imported (not ``pyplot``).

    Examples
    --------
    >>> require_matplotlib().__name__
    'matplotlib'
    """
    try:
        import matplotlib
        import matplotlib.axes
        import matplotlib.figure  # Figure, without touching pyplot
        import matplotlib.ticker
    except ImportError as err:
        raise ImportError(f"{what} needs matplotlib: {MATPLOTLIB_HINT}") from err
    _show_figures_in_ipython(matplotlib)
    return matplotlib


def _show_figures_in_ipython(mpl):
    """In IPython/Jupyter, display a returned Figure as a PNG (what the inline backend does for
    pyplot figures; these figures are made without pyplot)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    from IPython.core.pylabtools import print_figure

    shell.display_formatter.formatters["image/png"].for_type(
        mpl.figure.Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def new_axes(mpl, ncols=1, figsize=None, width_ratios=None):
    """``ncols`` axes on a new constrained-layout ``Figure`` (not registered with pyplot).

    ``mpl`` is the module :func:`require_matplotlib` returns.
    """
    fig = mpl.figure.Figure(figsize=figsize, layout="constrained")
    return fig.subplots(1, ncols, width_ratios=width_ratios)


def _matrix_figsize(shape, equal, colorbar):
    """Figure size (inches) whose axes box fits the matrix, so a colorbar is not over-tall."""
    if not equal:
        return (8.0, 5.0)
    r, c = shape
    box_w, box_h = 6.0 * c / max(r, c), 6.0 * r / max(r, c)
    return (max(box_w + (1.8 if colorbar else 0.8), 5.5), max(box_h, 1.0) + 1.3)


def _integer_ticks(mpl, ax, n_cols):
    """Integer ticks; few enough along x that labels of ``len(str(n_cols))`` digits fit."""
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    x_bins = int(np.clip(width_pt / (7 * len(str(n_cols)) + 14), 2, 10))
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=x_bins, integer=True))
    ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins="auto", integer=True))


def _as_csr(A) -> sp.csr_array:
    """A copy of ``A`` as CSR with duplicates summed; dense zeros count as structural zeros."""
    if sp.issparse(A):
        shape, dtype = A.shape, A.dtype
    else:
        A = np.asarray(A)
        shape, dtype = A.shape, A.dtype
    if len(shape) != 2:
        raise ValueError(f"A must be a 2-D matrix (sparse or dense), got shape {shape}")
    if dtype.kind not in "biuf":
        raise ValueError(f"A must hold real numbers, got dtype {dtype}")
    if 0 in shape:
        raise ValueError(f"A must have at least one row and one column, got shape {shape}")
    M = sp.csr_array(A, copy=True)
    M.sum_duplicates()
    return M


def _check_block(name, block, n, what):
    if block is None:
        return
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)) \
            or block < 1:
        raise ValueError(f"{name} must be None or a positive int, got {block!r}")
    if n % block:
        raise ValueError(f"{name}={block} does not divide the {n} {what} of A")


def _draw_blocks(ax, row_blocks, col_blocks, shape):
    """Lines between channel blocks (gid ``'row_blocks'`` / ``'col_blocks'``).

    With at most ``_MAX_BLOCK_TICKS`` blocks the ticks mark where each block starts.
    """
    r, c = shape
    if row_blocks is not None and row_blocks < r:
        ys = np.arange(row_blocks, r, row_blocks) - 0.5
        ax.hlines(ys, -0.5, c - 0.5, colors=_BLOCK_COLOR, linewidths=1.2, gid="row_blocks")
        if r // row_blocks <= _MAX_BLOCK_TICKS:
            ax.set_yticks(np.arange(0, r, row_blocks))
    if col_blocks is not None and col_blocks < c:
        xs = np.arange(col_blocks, c, col_blocks) - 0.5
        ax.vlines(xs, -0.5, r - 0.5, colors=_BLOCK_COLOR, linewidths=1.2, gid="col_blocks")
        if c // col_blocks <= _MAX_BLOCK_TICKS:
            ax.set_xticks(np.arange(0, c, col_blocks))


def _draw_values(mpl, ax, M, cmap):
    """Heat map of the stored values, centred at 0; structural zeros are masked (white)."""
    r, c = M.shape
    check_memory(r * c * 9, f"a dense {r} x {c} image of A", "use mode='pattern'")
    coo = M.tocoo()
    values = np.zeros((r, c))
    structural_zero = np.ones((r, c), dtype=bool)
    values[coo.row, coo.col] = coo.data
    structural_zero[coo.row, coo.col] = False
    vmax = float(np.abs(coo.data).max()) if coo.nnz else 0.0
    vmax = vmax if vmax > 0 else 1.0
    # coolwarm's centre is light grey, so a stored 0 stays visible against the white blanks
    cmap = mpl.colormaps.get_cmap(cmap or "coolwarm").with_extremes(bad="white")
    image = ax.imshow(np.ma.array(values, mask=structural_zero), cmap=cmap, vmin=-vmax,
                      vmax=vmax, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="value (white: structural zero)")
    return image


def _draw_pattern(mpl, ax, M, cmap):
    """Stored entries in one colour: an image when small, else one marker each (never dense)."""
    r, c = M.shape
    coo = M.tocoo()
    if r * c <= AUTO_VALUES_MAX_CELLS:
        stored = np.zeros((r, c), dtype=np.uint8)
        stored[coo.row, coo.col] = 1
        cmap = cmap or mpl.colors.ListedColormap(["white", "#08306b"])
        return ax.imshow(stored, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    size = float(np.clip(400.0 / max(r, c), 0.5, 3.0))
    color = mpl.colormaps.get_cmap(cmap)(1.0) if cmap else "#08306b"
    (line,) = ax.plot(coo.col, coo.row, linestyle="none", marker="s", markersize=size,
                      markeredgewidth=0, color=color, rasterized=True)
    return line


def plot_matrix(A, ax=None, *, row_blocks=None, col_blocks=None, mode="auto", title=None,
                cmap=None):
    """Draw a (sparse) matrix: its values as a heat map, or its sparsity pattern.

    Parameters
    ----------
    A : scipy.sparse array or matrix, or array_like, of shape (n_out, n_in)
        Typically :func:`~matconv.conv_matrix`. For dense input, zeros are structural zeros.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new :class:`~matplotlib.figure.Figure` (not shown).
    row_blocks, col_blocks : int, optional
        Block sizes for lines between channel blocks, e.g. ``prod(out)`` rows per output
        channel and ``prod(in)`` columns per input channel. Must divide the matrix size.
    mode : {'auto', 'values', 'pattern'}
        ``'values'``: the values in a diverging colormap centred at 0, structural zeros blank
        (white). ``'pattern'``: every stored entry in one colour, like ``spy``; matrices with
        more than ``AUTO_VALUES_MAX_CELLS`` cells get one marker per stored entry and are never
        densified. ``'auto'``: values up to ``AUTO_VALUES_MAX_CELLS`` cells, else pattern.
    title : str, optional
        Axes title; by default the shape and number of stored entries. ``''`` for none.
    cmap : str or Colormap, optional
        Default ``'coolwarm'`` for values (its light grey centre keeps stored zeros visible);
        for a pattern, the colormap's top colour marks the stored entries.

    Returns
    -------
    matplotlib.axes.Axes
        Rows are outputs ``(channel, position)``, columns inputs ``(channel, position)``.

    Raises
    ------
    ValueError
        If ``A`` is not a 2-D real matrix, ``mode`` is unknown, or a block size is not a
        positive int dividing the matrix size.

    Examples
    --------
    The 4 x 16 matrix of a 3 x 3 kernel sliding over a 4 x 4 input:

    >>> import numpy as np, matconv as mc
    >>> A = mc.conv_matrix(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), (1, 4, 4))
    >>> ax = plot_matrix(A, mode="values")
    >>> ax.get_title(), ax.get_ylabel()
    ('4 × 16 matrix, 36 stored entries', 'output (channel, position)')
    >>> ax.figure.savefig("slide_matrix.png")  # doctest: +SKIP
    """
    mpl = require_matplotlib()
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    M = _as_csr(A)
    r, c = M.shape
    _check_block("row_blocks", row_blocks, r, "rows")
    _check_block("col_blocks", col_blocks, c, "columns")
    if mode == "auto":
        mode = "values" if r * c <= AUTO_VALUES_MAX_CELLS else "pattern"
    equal = max(r, c) <= 10 * min(r, c)
    if ax is None:
        ax = new_axes(mpl, figsize=_matrix_figsize((r, c), equal, mode == "values"))

    if mode == "values":
        _draw_values(mpl, ax, M, cmap)
    else:
        _draw_pattern(mpl, ax, M, cmap)
    ax.set_xlim(-0.5, c - 0.5)
    ax.set_ylim(r - 0.5, -0.5)
    ax.set_aspect("equal" if equal else "auto")
    _integer_ticks(mpl, ax, c)
    _draw_blocks(ax, row_blocks, col_blocks, M.shape)
    ax.set_xlabel("input (channel, position)")
    ax.set_ylabel("output (channel, position)")
    ax.set_title(f"{r} × {c} matrix, {M.nnz} stored entries" if title is None else title)
    return ax


def plot_unfold(x, kernel_size, stride=1, padding=0, dilation=1, axes=None, padding_mode="zeros"):
    """Show one image next to its im2col matrix ``(S @ x.ravel()).reshape(C*prod(k), L)``.

    Row ``(c, tap)`` of the right panel holds what kernel tap ``tap`` of channel ``c`` reads at
    each of the ``L`` window positions; column ``l`` is window ``l`` flattened. Both panels share
    one colour scale. Cells read from zero padding are blank.

    Parameters
    ----------
    x : ndarray of shape (C, H, W) or (H, W)
        One example; ``(H, W)`` is one channel. Channels are stacked vertically on the left.
    kernel_size, stride, padding, dilation : int or tuple of int
        As for :func:`~matconv.unfold_matrix`.
    axes : sequence of two matplotlib.axes.Axes, optional
        Where to draw the image and the matrix; by default a new Figure (not shown).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
        What padding cells read, as for :func:`~matconv.unfold_matrix`: only ``'zeros'``
        leaves blank cells.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``x`` is not a real 2-D or 3-D array, ``axes`` is not two Axes of one figure, or the
        window does not fit (from :func:`~matconv.unfold_matrix`).

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_unfold(np.arange(16.0).reshape(4, 4), 3)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['input x: (4, 4)', 'im2col: (C·k, L) = (9, 4)']
    """
    mpl = require_matplotlib()
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.dtype.kind not in "biuf":
        raise ValueError(f"x must be a real array of shape (C, H, W) or (H, W), got shape "
                         f"{x.shape} and dtype {x.dtype}")
    image = x[None] if x.ndim == 2 else x
    C, H, W = image.shape
    S = unfold_matrix(image.shape, kernel_size, stride, padding, dilation, padding_mode)
    taps = int(np.prod(np.broadcast_to(kernel_size, (2,))))
    cols = (S @ image.ravel().astype(float)).reshape(C * taps, -1)
    padded = (np.diff(S.indptr) == 0).reshape(cols.shape)
    axes = _check_axes(mpl, axes, (C * H, W), cols.shape)

    vmin, vmax = float(image.min()), float(image.max())
    if vmin == vmax:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    style = {"cmap": "viridis", "vmin": vmin, "vmax": vmax, "interpolation": "nearest"}
    axes[0].imshow(image.reshape(C * H, W), **style)
    axes[0].set_title(f"input x: {x.shape}")
    axes[0].set_xlabel("column")
    axes[0].set_ylabel("(channel, row)" if C > 1 else "row")
    shown = axes[1].imshow(np.ma.array(cols, mask=padded), **style)
    axes[1].set_title(f"im2col: (C·k, L) = {cols.shape}")
    axes[1].set_xlabel("window position")
    axes[1].set_ylabel("(channel, tap)" if C > 1 else "tap")
    axes[1].set_aspect("equal" if max(cols.shape) <= 10 * min(cols.shape) else "auto")
    for ax, n, block, width in ((axes[0], C * H, H, W), (axes[1], C * taps, taps, cols.shape[1])):
        _integer_ticks(mpl, ax, width)
        if C > 1:
            ax.hlines(np.arange(block, n, block) - 0.5, -0.5, width - 0.5, colors=_BLOCK_COLOR,
                      linewidths=1.5, gid="row_blocks")
    fig = axes[0].figure
    fig.colorbar(shown, ax=list(axes), label="value (blank: zero padding)")
    return fig


def _check_axes(mpl, axes, left_shape, right_shape):
    """The two Axes to draw into; new ones give both images the same cell size."""
    if axes is None:
        n_cols, n_rows = left_shape[1] + right_shape[1], max(left_shape[0], right_shape[0])
        cell = min(6.5 / n_cols, 4.5 / n_rows, 0.6)
        figsize = (max(cell * n_cols + 2.5, 6.0), cell * n_rows + 1.4)
        return new_axes(mpl, 2, figsize, width_ratios=[left_shape[1], right_shape[1]])
    axes = list(axes) if isinstance(axes, (list, tuple, np.ndarray)) else [axes]
    if len(axes) != 2 or not all(isinstance(a, mpl.axes.Axes) for a in axes):
        raise ValueError(f"axes must be None or two matplotlib Axes, got {axes!r}")
    if axes[0].figure is not axes[1].figure:
        raise ValueError("axes must be two Axes of the same figure")
    return axes


def plot_operator(layer, input_shape, **kw):
    """Draw a conv layer's matrix with lines between its channel blocks.

    Shorthand for ``plot_matrix(layer.matrix(input_shape), row_blocks=prod(out),
    col_blocks=prod(in), ...)``, where ``out`` is the layer's output spatial size.

    Parameters
    ----------
    layer : matconv.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d
        Anything with ``out_channels`` and ``matrix(input_shape)``.
    input_shape : tuple of int
        ``(C_in, *spatial)`` of one example.
    **kw
        Passed to :func:`plot_matrix` (``ax``, ``mode``, ``title``, ``cmap``, block sizes).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matconv as mc
    >>> layer = mc.nn.Conv2d(2, 3, 3)
    >>> ax = plot_operator(layer, (2, 5, 5))
    >>> ax.get_title()
    'Conv2d on (2, 5, 5): 27 × 50 matrix'
    """
    if not (hasattr(layer, "matrix") and hasattr(layer, "out_channels")):
        raise TypeError(f"layer must be a conv layer with .matrix(input_shape) and "
                        f".out_channels (e.g. matconv.nn.Conv2d), got {type(layer).__name__}")
    A = layer.matrix(input_shape)
    r, c = A.shape
    kw.setdefault("row_blocks", r // layer.out_channels)
    kw.setdefault("col_blocks", prod(input_shape[1:]))
    kw.setdefault("title", f"{type(layer).__name__} on {tuple(input_shape)}: {r} × {c} matrix")
    return plot_matrix(A, **kw)
