"""The matplotlib side of :func:`matconv.animation.animate`: grids of cells, the matrix, frames.

Every cell is one square of a :class:`~matplotlib.collections.PatchCollection`, so what a frame
shows can be read back from the collection's face and edge colours (the tests do).
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.animation import FuncAnimation
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize, to_rgba, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["COLORS", "CellGrid", "ConvAnimation", "MatrixCells"]

#: Colours by role, in the spirit of Dumoulin & Visin's animations (input blue, output green).
COLORS = {
    "cell": "#c6dbef",         # a window-side cell (conv input / transposed output), idle
    "padding": "#f0f0f0",      # a padding cell, idle
    "linked": "#2171b5",       # a window-side cell linked in this frame (its matrix nonzeros)
    "padding_tap": "#8c8c8c",  # a padding cell under a kernel tap in this frame
    "point": "#c7e9c0",        # a point-side cell (conv output / transposed input), idle
    "done": "#74c476",         # a point-side cell of an earlier frame
    "current": "#00441b",      # the point-side cell of this frame
    "highlight": "#000000",    # edge of the matrix entries of this frame's row (column)
    "band": "#fec44f",         # band behind that row (column)
}
_DPI = 72  # GIFs of small cases stay well under 1 MB


class CellGrid:
    """Squares for a ``(C, *spatial)`` grid (1-D or 2-D), channels stacked top to bottom.

    Attributes
    ----------
    collection : matplotlib.collections.PatchCollection
        One square per cell, channel-major then row-major.
    index : ndarray of int
        For each square, the flat index of the tensor cell it draws, ``-1`` for a padding cell.
    shape : tuple of int
        ``(C, *spatial)`` of the drawn grid (padded, on the window side).
    """

    def __init__(self, ax, index, title):
        self.index = np.asarray(index).ravel()
        self.shape = np.shape(index)
        channels, spatial = self.shape[0], self.shape[1:]
        rows, cols = (1, spatial[0]) if len(spatial) == 1 else spatial
        c, i, j = np.unravel_index(np.arange(self.index.size), (channels, rows, cols))
        self._y0 = c * (rows + 1)  # one empty row between channels
        self._xy = np.stack([j, self._y0 + i], axis=1).astype(float)
        squares = [Rectangle((x - 0.5, y - 0.5), 1.0, 1.0) for x, y in self._xy]
        self.collection = PatchCollection(squares, edgecolors="white", linewidths=1.0)
        ax.add_collection(self.collection)
        self._patch_of = np.full(self.index.max() + 1, -1, dtype=np.int64)
        self._patch_of[self.index[self.index >= 0]] = np.flatnonzero(self.index >= 0)
        height = channels * (rows + 1) - 1
        ax.set_xlim(-0.5, cols - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([rows / 2 - 0.5 + k * (rows + 1) for k in range(channels)] if channels > 1
                      else [])
        ax.set_yticklabels([f"c{k}" for k in range(channels)] if channels > 1 else [])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(title, fontsize=10)
        self.extent = (cols, height)
        # the outline of the kernel's span on each channel: dilation gaps show inside it
        self.outlines = [Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", linewidth=1.5,
                                   linestyle="--", visible=False, gid="window_outline")
                         for _ in range(channels)]
        for outline in self.outlines:
            ax.add_patch(outline)

    def patch(self, tap) -> int:
        """The square of ``(channel, *position)`` on this grid."""
        return int(np.ravel_multi_index(tuple(tap), self.shape))

    def patches_of(self, cells) -> np.ndarray:
        """The squares drawing the tensor cells with flat indices ``cells``."""
        return self._patch_of[np.asarray(cells, dtype=np.int64)]

    def outline(self, taps) -> None:
        """Show the dashed outline around the taps of each channel; hide the others."""
        for outline in self.outlines:
            outline.set_visible(False)
        by_channel = {}
        for tap in taps:
            by_channel.setdefault(tap[0], []).append(self._xy[self.patch(tap)])
        for channel, corners in by_channel.items():
            corners = np.array(corners)
            (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
            self.outlines[channel].set_bounds(x0 - 0.5, y0 - 0.5, x1 - x0 + 1, y1 - y0 + 1)
            self.outlines[channel].set_visible(True)


class MatrixCells:
    """The stored entries of a sparse matrix as squares coloured by value, zeros left blank.

    Attributes
    ----------
    collection : matplotlib.collections.PatchCollection
        One square per stored entry (duplicates summed), in CSR order.
    rows, cols : ndarray of int
        The entry each square draws.
    band : matplotlib.patches.Rectangle
        Behind the highlighted row (or column).
    """

    def __init__(self, ax, M, title):
        coo = M.tocoo()
        self.rows, self.cols = coo.row, coo.col
        vmax = float(np.abs(coo.data).max()) if coo.nnz else 1.0
        cmap, norm = colormaps["coolwarm"], Normalize(-vmax or -1.0, vmax or 1.0)
        squares = [Rectangle((c - 0.5, r - 0.5), 1.0, 1.0) for r, c in zip(self.rows, self.cols)]
        self.collection = PatchCollection(squares, facecolors=cmap(norm(coo.data)),
                                          edgecolors="none", linewidths=0.0, zorder=2)
        n_rows, n_cols = M.shape
        self.band = Rectangle((-0.5, -0.5), n_cols, 1, facecolor=COLORS["band"], alpha=0.6,
                              edgecolor="none", zorder=1, gid="band")
        ax.add_patch(self.band)
        ax.add_collection(self.collection)
        ax.set_xlim(-0.5, n_cols - 0.5)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("input (channel, position)", fontsize=8)
        ax.set_ylabel("output (channel, position)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=10)
        self.shape = M.shape

    def highlight(self, row=None, col=None) -> None:
        """Outline the entries of ``row`` (or ``col``) and put the band behind it."""
        on = self.rows == row if row is not None else self.cols == col
        edges = np.zeros((on.size, 4))
        edges[on] = to_rgba(COLORS["highlight"])
        self.collection.set_edgecolors(edges)
        self.collection.set_linewidths(np.where(on, 1.5, 0.0))
        n_rows, n_cols = self.shape
        if row is not None:
            self.band.set_bounds(-0.5, row - 0.5, n_cols, 1)
        else:
            self.band.set_bounds(col - 0.5, -0.5, 1, n_rows)


def _cell_name(letter, shape, flat) -> str:
    return f"{letter}(" + ",".join(map(str, np.unravel_index(flat, shape))) + ")"


class ConvAnimation(FuncAnimation):
    """The animation :func:`matconv.animation.animate` returns.

    Attributes
    ----------
    scene : matconv.scene.ConvScene
    frames : list of matconv.scene.Frame
        What frame ``i`` links.
    figure : matplotlib.figure.Figure
    window, point : CellGrid
        The padded grid the kernel slides over, and the other side's grid.
    matrix : MatrixCells
        The shown layer's matrix (``A``, or ``A.T`` for a transposed convolution).
    """

    def __init__(self, scene, interval=600):
        self.scene, self.frames = scene, scene.frames()
        M = scene.matrix()
        window_w, window_h = _grid_extent(scene.window_cells().shape)
        point_w, point_h = _grid_extent(scene.point_shape)
        sides = [(window_w, window_h), (point_w, point_h)]
        if scene.transposed:
            sides.reverse()
        ratios = [sides[0][0], sides[1][0], max(sides[0][0] + sides[1][0], 1)]
        width = 11.0
        panel = [width * r / sum(ratios) for r in ratios]
        heights = [p * h / w for p, (w, h) in zip(panel, sides + [M.shape[::-1]])]
        self.figure = Figure(figsize=(width, float(np.clip(max(heights) + 1.2, 3.0, 8.0))),
                             dpi=_DPI, layout="constrained")
        axes = self.figure.subplots(1, 3, width_ratios=ratios)
        names = ("y", "x") if scene.transposed else ("x", "y")
        left, middle = (1, 0) if scene.transposed else (0, 1)
        padded = scene.padded_size != scene.window_shape[1:]
        grey = ", grey: cropped by padding" if scene.transposed else ", grey: padding"
        self.window = CellGrid(axes[left], scene.window_cells(),
                               f"{names[0]}: {scene.window_shape}" + (grey if padded else ""))
        self.point = CellGrid(axes[middle], np.arange(math.prod(scene.point_shape))
                              .reshape(scene.point_shape), f"{names[1]}: {scene.point_shape}")
        self.matrix = MatrixCells(axes[2], M, ("Aᵀ" if scene.transposed else "A")
                                  + f": {M.shape[0]} × {M.shape[1]}")
        self._base = to_rgba_array(np.where(self.window.index >= 0, COLORS["cell"],
                                            COLORS["padding"]))
        self._caption = self.figure.suptitle(scene.describe(), fontsize=10)
        super().__init__(self.figure, self.show_frame, frames=len(self.frames),
                         interval=interval, repeat_delay=interval)

    def show_frame(self, i: int):
        """Draw frame ``i`` (what it links is ``self.frames[i]``); return the changed artists."""
        n = len(self.frames)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"frame must be an int in [0, {n}), got {i!r}")
        frame, scene = self.frames[i], self.scene
        colors = self._base.copy()
        taps = np.array([self.window.patch(t) for t in frame.taps])
        on_padding = taps[self.window.index[taps] < 0]
        colors[on_padding] = to_rgba(COLORS["padding_tap"])
        linked = frame.output_cells if scene.transposed else frame.input_cells
        colors[self.window.patches_of(linked)] = to_rgba(COLORS["linked"])
        self.window.collection.set_facecolors(colors)
        self.window.outline(frame.taps)

        n_points = self.point.index.size
        state = np.where(np.arange(n_points) < frame.index, COLORS["done"], COLORS["point"])
        state[frame.index] = COLORS["current"]
        self.point.collection.set_facecolors(to_rgba_array(state))
        self.matrix.highlight(row=frame.matrix_row, col=frame.matrix_col)

        if scene.transposed:
            caption = (f"input {_cell_name('x', scene.point_shape, frame.index)} scatters the "
                       f"kernel into {_count(len(linked), 'output')}: column {frame.index} of "
                       f"Aᵀ")
        else:
            caption = (f"output {_cell_name('y', scene.point_shape, frame.index)} reads "
                       f"{_count(len(linked), 'input')}: row {frame.index} of A")
        self._caption.set_text(f"{scene.describe()}\n{caption}")
        return [self.window.collection, self.point.collection, self.matrix.collection,
                self.matrix.band, self._caption, *self.window.outlines]

    def _repr_html_(self):  # Jupyter shows the player, whatever rcParams["animation.html"] says
        return self.to_jshtml()


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _grid_extent(shape):
    """(width, height) in cells of a ``(C, *spatial)`` grid drawn by :class:`CellGrid`."""
    channels, spatial = shape[0], tuple(shape[1:])
    rows, cols = (1, spatial[0]) if len(spatial) == 1 else spatial
    return cols, channels * (rows + 1) - 1
