"""What the pictures of a convolution show: for each row of its matrix, the kernel window.

A convolution ``y = A x`` is a kernel window sliding over the (padded) input: row ``r`` of ``A``
is output cell ``r``, and its nonzeros are the input cells the window covers when it makes that
cell. A transposed convolution ``y = A.T x`` reads the same matrix by columns: input cell ``r``
scatters the kernel into the output cells of column ``r`` of ``A.T``. :func:`conv_scene` turns a
layer or a :class:`~matconv.geometry.ConvGeometry` into a :class:`ConvScene`, and
:meth:`ConvScene.frames` lists, row of ``A`` by row of ``A``, what is linked: the one cell on the
*point* side (the convolution's output), the cells on the *window* side (its input), and where
each kernel tap sits on the padded window grid. The animation (:mod:`matconv.animation`) and the
interactive page (:mod:`matconv.page`) both draw these frames.

Flat indices are channel-major, row-major within a channel: exactly the order of ``x.ravel()``
for one example, of ``A``'s columns (window side) and of its rows (point side).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .geometry import ConvGeometry, as_tuple
from .lowering import conv_structure, window_index

__all__ = ["ConvScene", "Frame", "conv_scene"]


@dataclass(frozen=True)
class Frame:
    """What one step of the picture links: one row of ``A`` (one column of ``A.T``).

    Attributes
    ----------
    index : int
        The row of the convolution's matrix ``A``.
    input_cells, output_cells : tuple of int
        Flat indices (one example, channel-major) of the shown layer's cells that this step
        links: for a convolution the window's input cells and the one output cell; for a
        transposed convolution the one input cell and the output cells it scatters into.
    matrix_row, matrix_col : int or None
        The highlighted row of the shown matrix (a convolution: ``A``), or its column (a
        transposed convolution: ``A.T``); the other is None.
    taps : tuple of tuple of int
        ``(channel, *position)`` of every kernel tap on the *padded* window grid (position 0 is
        the first padding cell), for each channel the window covers, taps in row-major order.
    reads : tuple of int
        For each tap, the flat window-side index it reads (``-1``: a zero-padding cell). Under
        ``'reflect'``, ``'replicate'`` or ``'circular'`` padding a tap on a padding cell reads
        the input cell it mirrors, repeats or wraps to.
    weights : tuple of int
        For each tap, its flat index into ``weight.ravel()``.
    """

    index: int
    input_cells: tuple
    output_cells: tuple
    matrix_row: int | None
    matrix_col: int | None
    taps: tuple
    reads: tuple
    weights: tuple


@dataclass(frozen=True, eq=False)
class ConvScene:
    """A convolution or transposed convolution, resolved for drawing (see :func:`conv_scene`).

    Attributes
    ----------
    geometry : ConvGeometry
        The convolution ``A`` is the matrix of (for a transposed layer, the matching one).
    transposed : bool
        True when the shown layer is the transposed convolution ``A.T``.
    window_shape : tuple of int
        ``(C, *spatial)`` of the side the kernel window slides over: the convolution's input,
        which is the transposed convolution's output.
    point_shape : tuple of int
        ``(C, *spatial)`` of the other side: the convolution's output, the transposed one's input.
    weight : ndarray of float64, shape ``geometry.weight_shape``
    output_padding : tuple of int
        Of the transposed convolution (zeros for a convolution).
    """

    geometry: ConvGeometry
    transposed: bool
    window_shape: tuple
    point_shape: tuple
    weight: np.ndarray
    output_padding: tuple

    @property
    def input_shape(self) -> tuple:
        """``(C, *spatial)`` of one example of the shown layer's input."""
        return self.point_shape if self.transposed else self.window_shape

    @property
    def output_shape(self) -> tuple:
        """``(C, *spatial)`` of one example of the shown layer's output."""
        return self.window_shape if self.transposed else self.point_shape

    @property
    def padded_size(self) -> tuple:
        """Spatial size of the padded window grid, ``n + before + after`` per dimension."""
        return tuple(n + a + b for n, (a, b) in zip(self.window_shape[1:], self.geometry.padding))

    @property
    def name(self) -> str:
        """The layer class drawn, e.g. ``'Conv2d'`` or ``'ConvTranspose1d'``.

        The transpose of a convolution padded by ``'reflect'``, ``'replicate'`` or
        ``'circular'`` is no ``ConvTranspose`` layer (those pad with zeros): it is named
        ``'transpose of Conv2d'``.
        """
        conv = f"Conv{self.geometry.ndim}d"
        if not self.transposed:
            return conv
        if self.geometry.padding_mode != "zeros":
            return f"transpose of {conv}"
        return f"ConvTranspose{self.geometry.ndim}d"

    def flipped(self) -> ConvScene:
        """The same matrix read the other way: a convolution's transposed convolution (with the
        output padding that gives back the input size), or a transposed one's convolution.

        >>> conv = conv_scene(ConvGeometry(1, 1, 3, ndim=1, stride=2), (1, 6))
        >>> conv.flipped().describe()
        'ConvTranspose1d (1, 2) -> (1, 6): kernel 3, stride 2, output padding 1'
        """
        if self.transposed:
            return replace(self, transposed=False, output_padding=(0,) * self.geometry.ndim)
        natural = self.geometry.transpose_output_size(self.point_shape[1:], 0)
        extra = tuple(n - m for n, m in zip(self.window_shape[1:], natural))
        return replace(self, transposed=True, output_padding=extra)

    def describe(self) -> str:
        """One line: the layer, its sizes and the geometry arguments that are not defaults.

        >>> conv_scene(ConvGeometry(1, 2, 3, ndim=1, stride=2), (1, 7)).describe()
        'Conv1d (1, 7) -> (2, 3): kernel 3, stride 2'
        """
        g = self.geometry
        parts = ["kernel " + "x".join(map(str, g.kernel_size))]
        if set(g.stride) != {1}:
            parts.append("stride " + "x".join(map(str, g.stride)))
        if any(p != (0, 0) for p in g.padding):
            symmetric = all(a == b for a, b in g.padding)
            parts.append("padding " + ("x".join(str(a) for a, _ in g.padding) if symmetric
                                       else str(g.padding)))
        if g.padding_mode != "zeros":
            parts.append(f"{g.padding_mode} padding")
        if any(self.output_padding):
            parts.append("output padding " + "x".join(map(str, self.output_padding)))
        if set(g.dilation) != {1}:
            parts.append("dilation " + "x".join(map(str, g.dilation)))
        if g.groups != 1:
            parts.append(f"groups {g.groups}")
        return (f"{self.name} {self.input_shape} -> {self.output_shape}: " + ", ".join(parts))

    def check_drawable(self, what: str, max_cells: int) -> None:
        """Refuse, with a ``ValueError`` naming the size, a 3-D geometry or a matrix of more than
        ``max_cells`` cells: ``what`` (e.g. ``'the animation'``) draws every one of them."""
        if self.geometry.ndim not in (1, 2):
            raise ValueError(f"{what} draws 1-D and 2-D convolutions, got {self.geometry.ndim} "
                             f"spatial dimensions; matconv.plot.plot_operator draws any matrix")
        rows, cols = math.prod(self.output_shape), math.prod(self.input_shape)
        if rows * cols > max_cells:
            raise ValueError(f"{what} draws every cell of the {rows} x {cols} matrix "
                             f"({rows * cols:,} cells), more than max_cells={max_cells:,}; use a "
                             f"smaller input_shape or fewer channels, or "
                             f"matconv.plot.plot_operator for a picture of a large matrix")

    def window_cells(self) -> np.ndarray:
        """``(C, *padded_size)`` int array: each padded-grid cell's flat window-side index, or
        ``-1`` for a padding cell.

        >>> conv_scene(ConvGeometry(1, 1, 3, ndim=1, padding=1), (1, 3)).window_cells()
        array([[-1,  0,  1,  2, -1]])
        """
        channels, spatial = self.window_shape[0], self.window_shape[1:]
        cells = np.full((channels, *self.padded_size), -1, dtype=np.int64)
        inner = (slice(None),) + tuple(slice(a, a + n) for n, (a, _) in
                                       zip(spatial, self.geometry.padding))
        cells[inner] = np.arange(math.prod(self.window_shape)).reshape(self.window_shape)
        return cells

    def conv_matrix(self) -> sp.csr_array:
        """The convolution's matrix ``A`` (float64, a cell reached by several taps holds their
        sum), shape ``(prod(point_shape), prod(window_shape))``."""
        s = conv_structure(self.geometry, self.window_shape[1:], self.point_shape[1:])
        A = sp.csr_array((self.weight.ravel()[s.weight_index], s.indices.copy(),
                          s.indptr.copy()), shape=s.shape)
        A.sum_duplicates()
        return A

    def matrix(self) -> sp.csr_array:
        """The shown layer's matrix: ``A`` for a convolution, ``A.T`` for a transposed one."""
        A = self.conv_matrix()
        return A.T.tocsr() if self.transposed else A

    def frames(self) -> list:
        """One :class:`Frame` per row of ``A``, in row order.

        Examples
        --------
        A 3-tap kernel, stride 2, on 5 cells: the second output reads cells 2, 3 and 4.

        >>> frames = conv_scene(ConvGeometry(1, 1, 3, ndim=1, stride=2), (1, 5)).frames()
        >>> frames[1].input_cells, frames[1].output_cells, frames[1].matrix_row
        ((2, 3, 4), (1,), 1)
        >>> frames[1].taps
        ((0, 2), (0, 3), (0, 4))
        """
        g = self.geometry
        window_size, point_size = self.window_shape[1:], self.point_shape[1:]
        K, L = g.kernel_numel, math.prod(point_size)
        n_window = math.prod(window_size)
        per_group_in = g.in_channels // g.groups
        per_group_out = g.out_channels // g.groups
        read = window_index(g, window_size, point_size)  # (K, L), -1 for zero padding
        # tap k of output position l sits at padded position l * stride + k * dilation
        tap_offset = np.stack(np.unravel_index(np.arange(K), g.kernel_size)) \
            * np.array(g.dilation)[:, None]
        out_origin = np.stack(np.unravel_index(np.arange(L), point_size)) \
            * np.array(g.stride)[:, None]
        position = out_origin[:, None, :] + tap_offset[:, :, None]  # (ndim, K, L)
        frames = []
        for row in range(g.out_channels * L):
            o, pos = divmod(row, L)
            first = (o // per_group_out) * per_group_in
            taps, reads, weights = [], [], []
            for c in range(first, first + per_group_in):
                for k in range(K):
                    taps.append((c, *(int(p) for p in position[:, k, pos])))
                    reads.append(int(c * n_window + read[k, pos]) if read[k, pos] >= 0 else -1)
                    weights.append((o * per_group_in + c - first) * K + k)
            linked = tuple(sorted(set(reads) - {-1}))
            if self.transposed:
                frames.append(Frame(row, (row,), linked, None, row, tuple(taps), tuple(reads),
                                    tuple(weights)))
            else:
                frames.append(Frame(row, linked, (row,), row, None, tuple(taps), tuple(reads),
                                    tuple(weights)))
        return frames


def _is_instance(obj, names) -> bool:
    from . import nn

    return isinstance(obj, tuple(getattr(nn, name) for name in names))


_CONVS = ("Conv1d", "Conv2d", "Conv3d")
_TRANSPOSED = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def _check_shape(input_shape, ndim, channels) -> tuple:
    ok = (isinstance(input_shape, (tuple, list)) and len(input_shape) == ndim + 1
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                  for v in input_shape))
    if not ok:
        raise ValueError(f"input_shape must be (C, *spatial) of one example with {ndim} positive "
                         f"spatial sizes, got {input_shape!r}")
    if input_shape[0] != channels:
        raise ValueError(f"input_shape has {input_shape[0]} channels, the layer expects "
                         f"{channels}")
    return tuple(int(v) for v in input_shape)


def conv_scene(layer_or_geometry, input_shape, *, transposed=False, output_padding=0,
               seed=None) -> ConvScene:
    """Resolve a conv layer, or a geometry and weights drawn from ``seed``, for drawing.

    Parameters
    ----------
    layer_or_geometry : matconv.nn.Conv1d/2d/3d, ConvTranspose1d/2d/3d, or ConvGeometry
        A layer brings its geometry and weights. A geometry describes a convolution, or with
        ``transposed=True`` the convolution whose transpose is shown (like a transposed layer's
        ``geometry``).
    input_shape : tuple of int
        ``(C, *spatial)`` of one example of the shown layer's input.
    transposed : bool, default False
        With a geometry: show the transposed convolution ``A.T``.
    output_padding : int or tuple of int, default 0
        With a geometry and ``transposed=True``: extra output cells, as in PyTorch.
    seed : int, optional
        With a geometry: the weights are ``numpy.random.default_rng(seed).standard_normal``
        (default seed 0, so a picture is the same every time).

    Returns
    -------
    ConvScene

    Raises
    ------
    TypeError
        If ``layer_or_geometry`` is neither a conv layer nor a ConvGeometry.
    ValueError
        If ``input_shape`` does not fit, or ``transposed``, ``output_padding`` or ``seed`` are
        given with a layer (a layer carries its own).

    Examples
    --------
    >>> from matconv import nn
    >>> scene = conv_scene(nn.ConvTranspose1d(1, 1, 3, stride=2), (1, 2))
    >>> scene.describe()
    'ConvTranspose1d (1, 2) -> (1, 5): kernel 3, stride 2'
    >>> scene.frames()[1].output_cells     # input cell 1 scatters into output cells 2, 3, 4
    (2, 3, 4)
    """
    if isinstance(layer_or_geometry, ConvGeometry):
        g = layer_or_geometry
        is_transposed = bool(transposed)
        extra = as_tuple(output_padding, g.ndim, "output_padding", minimum=0)
        if not is_transposed and any(extra):
            raise ValueError(f"output_padding applies to the transposed convolution "
                             f"(transposed=True), got output_padding={output_padding!r}")
        rng = np.random.default_rng(0 if seed is None else seed)
        weight = rng.standard_normal(g.weight_shape)
    elif _is_instance(layer_or_geometry, _CONVS + _TRANSPOSED):
        layer = layer_or_geometry
        if transposed or output_padding != 0 or seed is not None:
            raise ValueError(f"transposed, output_padding and seed describe a geometry; the "
                             f"{type(layer).__name__} layer carries its own (got transposed="
                             f"{transposed!r}, output_padding={output_padding!r}, seed={seed!r})")
        g, is_transposed = layer.geometry, _is_instance(layer, _TRANSPOSED)
        extra = tuple(layer.output_padding) if is_transposed else (0,) * g.ndim
        weight = np.asarray(layer.weight.data, dtype=np.float64)
    else:
        raise TypeError(f"layer_or_geometry must be a conv layer (matconv.nn.Conv2d, "
                        f"ConvTranspose2d, ...) or a ConvGeometry, got "
                        f"{type(layer_or_geometry).__name__}")
    if is_transposed:
        shape = _check_shape(input_shape, g.ndim, g.out_channels)
        window = (g.in_channels, *g.transpose_output_size(shape[1:], extra))
        point = shape
    else:
        shape = _check_shape(input_shape, g.ndim, g.in_channels)
        window = shape
        point = (g.out_channels, *g.output_size(shape[1:]))
    return ConvScene(g, is_transposed, window, point, weight, extra)
