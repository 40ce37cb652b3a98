"""Seeing an operator: which weight sits where, as text, LaTeX or sympy.

:func:`weight_index_matrix` is the machine-readable core: the dense matrix of flat weight indices
(``-1`` at structural zeros). :func:`symbolic` wraps it (or the numbers of a fixed map such as
average pooling or upsampling, or the selection matrix of a max pool's last forward) in a
:class:`SymbolicMatrix` that prints the way lecture slides do, with ``w00 w01 ...`` in the right
cells.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .geometry import ConvGeometry, as_shape, as_tuple
from .lowering import conv_structure, unfold_matrix
from .memory import check_memory
from .operators import Conv, Transposed

__all__ = ["weight_index_matrix", "weight_names", "render_text", "symbolic", "SymbolicMatrix",
           "unfold_text"]

_DENSE_LIMIT = 250_000  # cells: beyond this a rendering is not something to read
#: Text renderings wider than this many characters print their columns in blocks.
TEXT_LINEWIDTH = 80


def weight_index_matrix(weight_shape, input_shape, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros", output_size=None) -> np.ndarray:
    """Dense int64 matrix of the conv operator's shape holding the flat weight index at each entry.

    Structural zeros hold ``-1``. Under a padding mode where two taps of one window read the same
    source cell (``'reflect'``, ``'replicate'``, ``'circular'`` near an edge) the entry holds the
    *first* of them in row-major tap order; the conv matrix holds the sum of both weights there.

    Parameters
    ----------
    weight_shape : tuple of int
        ``(C_out, C_in // groups, *kernel_size)``.
    input_shape : tuple of int
        ``(C_in, *spatial)``.
    output_size : tuple of int, optional
        Keep only the first output positions (as for a transposed convolution's matrix).

    Examples
    --------
    >>> weight_index_matrix((1, 1, 3), (1, 4))
    array([[ 0,  1,  2, -1],
           [-1,  0,  1,  2]])
    """
    weight_shape = as_shape(weight_shape, "weight_shape")
    input_shape = as_shape(input_shape, "input_shape")
    geometry = ConvGeometry(input_shape[0], weight_shape[0], weight_shape[2:], stride, padding,
                            dilation, groups, padding_mode)
    if geometry.weight_shape != weight_shape:
        raise ValueError(f"weight_shape {weight_shape} does not fit input_shape {input_shape} "
                         f"with groups={groups}: expected {geometry.weight_shape}")
    rows = geometry.out_channels * math.prod(
        output_size or geometry.output_size(input_shape[1:]))
    check_memory(rows * math.prod(input_shape) * 8,
                 f"a dense {rows} x {math.prod(input_shape)} matrix",
                 "inspect a smaller input or use conv_matrix (sparse)")
    return _dense_index(conv_structure(geometry, input_shape[1:], output_size))


def _single(weight_shape):
    return weight_shape[0] == weight_shape[1] == 1 and max(weight_shape[2:]) <= 10


def weight_names(weight_shape) -> list:
    """Names of the flat weights: ``w00 w01 ...`` for one channel pair, else ``w[o,c,...]``.

    >>> weight_names((1, 1, 2, 2))
    ['w00', 'w01', 'w10', 'w11']
    >>> weight_names((2, 1, 2))[:3]
    ['w[0,0,0]', 'w[0,0,1]', 'w[1,0,0]']
    """
    weight_shape = tuple(weight_shape)
    taps = list(np.ndindex(*weight_shape))
    if _single(weight_shape):
        return ["w" + "".join(map(str, t[2:])) for t in taps]
    return ["w[" + ",".join(map(str, t)) + "]" for t in taps]


def _latex_names(weight_shape) -> list:
    taps = list(np.ndindex(*tuple(weight_shape)))
    if _single(weight_shape):
        return ["w_{" + ",".join(map(str, t[2:])) + "}" for t in taps]
    return ["w^{(" + f"{t[0]},{t[1]}" + ")}_{" + ",".join(map(str, t[2:])) + "}" for t in taps]


def render_text(index: np.ndarray, names, linewidth: int = TEXT_LINEWIDTH) -> str:
    """Aligned plain text of a weight-index matrix, ``0`` at structural zeros.

    Wider than ``linewidth`` characters, the columns are printed in blocks (see :func:`_align`).

    >>> print(render_text(weight_index_matrix((1, 1, 2), (1, 3)), ["a", "b"]))
    a b 0
    0 a b
    """
    cells = np.where(index >= 0, np.asarray(list(names) + ["0"], dtype=object)[index], "0")
    return _align(cells, linewidth=linewidth)


def _align(cells, row_labels=None, col_labels=None, linewidth=TEXT_LINEWIDTH) -> str:
    """Cells in columns of one width; wider than ``linewidth``, in blocks of whole columns.

    Each block repeats the row labels and starts with ``columns a-b of n:`` (0-based, like the
    matrix's indices), the way R and MATLAB print a wide matrix; ``linewidth=None`` never wraps.

    >>> print(_align([["a", "b", "c"], ["d", "e", "f"]], linewidth=3))
    columns 0-1 of 3:
    a b
    d e
    <BLANKLINE>
    columns 2-2 of 3:
    c
    f
    """
    cells = np.asarray(cells, dtype=object)
    if cells.ndim != 2:
        raise ValueError(f"cells must be a 2-D grid of strings, got shape {cells.shape}")
    n_cols = cells.shape[1]
    labels = [] if row_labels is None else [str(label) for label in row_labels]
    if col_labels is not None:
        cells = np.vstack([np.asarray(col_labels, dtype=object)[None], cells])
        labels = [""] + labels if labels else labels
    width = max((len(str(c)) for c in cells.ravel()), default=1)
    label_width = max((len(label) for label in labels), default=0)
    indent = label_width + 1 if labels else 0
    per_block = n_cols
    if linewidth is not None and indent + n_cols * (width + 1) - 1 > linewidth:
        per_block = max(1, (linewidth - indent + 1) // (width + 1))

    def lines(block):
        rows = (" ".join(str(c).ljust(width) for c in row) for row in block)
        if labels:
            rows = (label.ljust(label_width) + " " + row for label, row in zip(labels, rows))
        return [row.rstrip() for row in rows]

    if per_block == n_cols:
        return "\n".join(lines(cells))
    blocks = []
    for start in range(0, n_cols, per_block):
        stop = min(start + per_block, n_cols)
        blocks.append("\n".join([f"columns {start}-{stop - 1} of {n_cols}:"]
                                 + lines(cells[:, start:stop])))
    return "\n\n".join(blocks)


def _labels(prefix, shape):
    """``(channel, position)`` labels in row-major order, e.g. ``x(0,1,2)``."""
    channels, spatial = shape[0], shape[1:]
    return [f"{prefix}({c}," + ",".join(map(str, pos)) + ")"
            for c in range(channels) for pos in np.ndindex(*spatial)]


def _number(v: float):
    f = Fraction(float(v)).limit_denominator(1000)
    return f if abs(float(f) - v) <= 1e-9 * max(1.0, abs(v)) else None


def _tap_sums(structure):
    """``{(row, col): taps}`` for the cells of ``A`` that several taps reach (their sum)."""
    rows = np.repeat(np.arange(structure.shape[0]), np.diff(structure.indptr))
    keys = rows * structure.shape[1] + structure.indices
    order = np.argsort(keys, kind="stable")
    keys, taps = keys[order], structure.weight_index[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[starts, keys.size])
    out = {}
    for start, count in zip(starts[counts > 1], counts[counts > 1]):
        r, c = divmod(int(keys[start]), structure.shape[1])
        out[(r, c)] = tuple(int(t) for t in sorted(taps[start:start + count]))
    return out


class SymbolicMatrix:
    """An operator's matrix with a name or a number in every cell.

    Build one with :func:`symbolic`. ``str()`` gives aligned text, :meth:`to_latex` a ``bmatrix``,
    :meth:`to_sympy` a ``sympy.Matrix`` in weight symbols (needs the ``symbolic`` extra). In
    Jupyter it renders as LaTeX.

    Attributes
    ----------
    index : ndarray of int or None
        Flat weight index per cell (``-1`` for a structural zero) for weight-carrying operators;
        a cell several taps reach holds the first of them here, and all of them in ``sums``.
    sums : dict
        ``{(row, col): (tap, tap, ...)}`` for cells that hold a sum of weights (padding modes
        ``'reflect'``, ``'replicate'``, ``'circular'``, where two taps read one cell).
    values : ndarray of float or None
        The numbers of a fixed or data-dependent map (pooling, upsampling, selection, a composed
        stack).
    note : str or None
        Why numbers are shown where weights might be expected (a composed stack).
    input_shape, output_shape : tuple
        ``(C, *spatial)`` of one example on each side.
    """

    def __init__(self, *, index=None, values=None, weight_shape=None, input_shape, output_shape,
                 sums=None, note=None):
        self.index, self.values = index, values
        self.weight_shape = weight_shape
        self.sums = dict(sums or {})
        self.note = note
        self.input_shape, self.output_shape = tuple(input_shape), tuple(output_shape)

    @property
    def shape(self):
        return (self.index if self.index is not None else self.values).shape

    def _named(self, names, join) -> np.ndarray:
        cells = np.asarray(list(names) + ["0"], dtype=object)[self.index]
        for (r, c), taps in self.sums.items():
            cells[r, c] = join.join(names[t] for t in taps)
        return cells

    def cells(self) -> np.ndarray:
        """Object array of cell texts: weight names (``w0+w2`` where taps meet), numbers
        (fractions when exact) or ``0``."""
        if self.index is not None:
            return self._named(weight_names(self.weight_shape), "+")
        out = np.empty(self.values.shape, dtype=object)
        for pos, v in np.ndenumerate(self.values):
            f = _number(v)
            out[pos] = str(f) if f is not None else f"{v:.4g}"
        return out

    def row_labels(self):
        return _labels("y", self.output_shape)

    def col_labels(self):
        return _labels("x", self.input_shape)

    def to_text(self, labels: bool = False) -> str:
        """Aligned text; with ``labels``, rows ``y(c,pos)`` and columns ``x(c,pos)``."""
        body = _align(self.cells(), self.row_labels(), self.col_labels()) if labels else \
            _align(self.cells())
        return f"# {self.note}\n{body}" if self.note else body

    __str__ = to_text

    def __repr__(self):
        return f"<SymbolicMatrix {self.shape[0]}x{self.shape[1]}>\n{self.to_text()}"

    def to_latex(self) -> str:
        r"""A LaTeX ``bmatrix``: ``w_{0,1}`` as on the slides, ``\frac{1}{4}`` for fractions."""
        if self.index is not None:
            cells = self._named(_latex_names(self.weight_shape), " + ")
        else:
            cells = np.empty(self.values.shape, dtype=object)
            for pos, v in np.ndenumerate(self.values):
                f = _number(v)
                cells[pos] = (f"{v:.4g}" if f is None else str(f.numerator) if f.denominator == 1
                              else rf"{'-' if f < 0 else ''}\frac{{{abs(f.numerator)}}}"
                                   rf"{{{f.denominator}}}")
        rows = [" & ".join(row) + r" \\" for row in cells]
        return "\\begin{bmatrix}\n" + "\n".join(rows) + "\n\\end{bmatrix}"

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    def _repr_html_(self) -> str:
        import html

        cells = self.cells()
        head = f"<p><i>{html.escape(self.note)}</i></p>" if self.note else ""
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                       + "</tr>" for row in cells)
        return (f"{head}<table style='font-family:monospace;border-collapse:collapse'>"
                f"{rows}</table>")

    def to_sympy(self):
        """A ``sympy.Matrix`` in weight symbols (or exact rationals for fixed maps)."""
        try:
            import sympy
        except ImportError:  # pragma: no cover - exercised only without sympy
            raise ImportError("to_sympy needs sympy: pip install sympy (or, in the matconv "
                              "checkout, pip install '.[symbolic]')") from None
        if self.index is not None:
            symbols = [sympy.Symbol(n) for n in weight_names(self.weight_shape)] + [0]

            def cell(i, j):
                taps = self.sums.get((i, j))
                return sum(symbols[t] for t in taps) if taps else symbols[self.index[i, j]]

            return sympy.Matrix(self.index.shape[0], self.index.shape[1], cell)
        return sympy.Matrix(self.values.shape[0], self.values.shape[1],
                            lambda i, j: _sympy_number(sympy, self.values[i, j]))

    def weight_symbols(self):
        """The sympy symbols of the weights, in flat order (weight-carrying operators only)."""
        import sympy

        return [sympy.Symbol(n) for n in weight_names(self.weight_shape)]


def _sympy_number(sympy, v):
    f = _number(v)
    return sympy.Rational(f.numerator, f.denominator) if f is not None else sympy.Float(v)


def _check_renderable(rows, cols):
    if rows * cols > _DENSE_LIMIT:
        raise ValueError(f"a {rows} x {cols} matrix is too large to render ({rows * cols} cells, "
                         f"the limit is {_DENSE_LIMIT}); use a smaller input_shape, or "
                         f"layer.matrix(input_shape) for the sparse matrix")


def symbolic(layer, input_shape) -> SymbolicMatrix:
    """The matrix of ``layer`` on one example of ``input_shape``, symbolically.

    Convolutions and transposed convolutions show weight names (``w0+w2`` where two taps meet,
    under the reflect, replicate and circular padding modes); average pooling, adaptive
    average pooling and upsampling show their numbers; max pooling and element-wise layers the
    matrix of their last forward; a composed stack the numbers of its product (its entries are
    polynomials in the weights; ``note`` says so). Refuses above 250,000 cells, before building.

    Examples
    --------
    >>> from matconv import nn
    >>> print(symbolic(nn.Conv2d(1, 1, 3), (1, 4, 4)).to_text().splitlines()[0])
    w00 w01 w02 0   w10 w11 w12 0   w20 w21 w22 0   0   0   0   0
    >>> print(symbolic(nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect"), (1, 4)))
    w1    w0+w2 0     0
    w0    w1    w2    0
    0     w0    w1    w2
    0     0     w0+w2 w1
    >>> print(symbolic(nn.AvgPool1d(2), (1, 4)))
    1/2 1/2 0   0
    0   0   1/2 1/2
    """
    from .nn import Module

    if not isinstance(layer, Module):
        raise TypeError(f"layer must be a matconv Module, got {type(layer).__name__}")
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple (C, *spatial), got {input_shape!r}")
    input_shape = tuple(input_shape)
    output_shape = tuple(layer.output_shape(input_shape))
    _check_renderable(math.prod(output_shape), math.prod(input_shape))
    op = layer.operator(input_shape)
    if isinstance(op, Conv) or (isinstance(op, Transposed) and isinstance(op.op, Conv)):
        conv = op if isinstance(op, Conv) else op.op
        s = conv.plan.conv
        index = _dense_index(s)
        sums = _tap_sums(s)
        if conv is not op:  # the transposed convolution reads A by columns
            index, sums = index.T.copy(), {(c, r): t for (r, c), t in sums.items()}
        return SymbolicMatrix(index=index, sums=sums, weight_shape=conv.weight.shape,
                              input_shape=input_shape, output_shape=output_shape)
    note = None
    if layer.children():
        note = ("numbers: the entries of a composed stack are polynomials in its weights; "
                "these are their values")
    return SymbolicMatrix(values=op.matrix().toarray(), input_shape=input_shape,
                          output_shape=output_shape, note=note)


def _dense_index(s) -> np.ndarray:
    """Dense weight-index matrix of a conv structure (first tap where several meet)."""
    out = np.full(s.shape, -1, dtype=np.int64)
    rows = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
    # a duplicated cell keeps its first tap: np.unique returns first occurrences
    _, first = np.unique(rows * s.shape[1] + s.indices, return_index=True)
    out[rows[first], s.indices[first]] = s.weight_index[first]
    return out


def unfold_text(input_shape, kernel_size, stride=1, padding=0, dilation=1, padding_mode="zeros",
                labels=False, linewidth=TEXT_LINEWIDTH) -> str:
    """The im2col matrix of a symbolic input: each cell names the input cell it reads.

    Rows are ``(channel, tap)``, columns output positions, as ``torch.nn.functional.unfold``
    orders them; ``0`` marks a zero-padding cell. With ``labels``, row ``(c, i, j)`` is labelled
    ``w(:,c,i,j)`` (the weights it meets in ``W @ cols``) and column ``(p, q)`` is ``y(:,p,q)``
    (the output position it makes, in every channel). Wider than ``linewidth`` characters, the
    columns are printed in blocks.

    >>> print(unfold_text((1, 3, 3), 2))
    x00 x01 x10 x11
    x01 x02 x11 x12
    x10 x11 x20 x21
    x11 x12 x21 x22
    >>> print(unfold_text((1, 3), 2, padding=1, labels=True))
             y(:,0) y(:,1) y(:,2) y(:,3)
    w(:,0,0) 0      x0     x1     x2
    w(:,0,1) x0     x1     x2     0
    """
    input_shape = tuple(input_shape)
    S = unfold_matrix(input_shape, kernel_size, stride, padding, dilation, padding_mode)
    if input_shape[0] == 1 and max(input_shape[1:]) <= 10:  # slide style: x00, x01, ...
        names = ["x" + "".join(map(str, p)) for p in np.ndindex(*input_shape[1:])]
    else:
        names = _labels("x", input_shape)
    names = np.array(names + ["0"], dtype=object)
    read = np.full(S.shape[0], -1)
    read[np.diff(S.indptr) > 0] = S.indices
    kernel = as_tuple(kernel_size, len(input_shape) - 1, "kernel_size")
    cells = names[read].reshape(input_shape[0] * math.prod(kernel), -1)
    if not labels:
        return _align(cells, linewidth=linewidth)
    geometry = ConvGeometry(input_shape[0], input_shape[0], kernel, stride, padding, dilation,
                            padding_mode=padding_mode)
    rows = [f"w(:,{c}," + ",".join(map(str, t)) + ")"
            for c in range(input_shape[0]) for t in np.ndindex(*kernel)]
    cols = ["y(:," + ",".join(map(str, p)) + ")"
            for p in np.ndindex(*geometry.output_size(input_shape[1:]))]
    return _align(cells, rows, cols, linewidth)
