"""An interactive page of a convolution: its input grid, its output grid and its matrix.

:func:`write_page` writes one self-contained HTML file (inline CSS, JavaScript and data; nothing
is fetched from the network). Hovering a matrix cell highlights its input and output cells and
names its weight (``w_{o,c,i,j}``, or the sum where several kernel taps meet in one cell);
hovering an output cell highlights its row and its window (padding cells under the kernel
included); hovering an input cell highlights its column and every output it reaches. A toggle
switches to the transposed convolution: the same matrix read by columns.

The page is testable from outside: matrix cells carry ``data-row`` and ``data-col``, input and
output cells ``data-in`` and ``data-out`` (flat indices into one example, channel-major, as
``A``'s columns and rows), padding cells ``data-pad="c,i,j"`` (their position on the padded
grid), and every highlighted element has the class ``hl``.

The page's script and style sheet are the files ``page.js`` and ``page.css`` beside this module.
"""
from __future__ import annotations

import html
import json
import os
from importlib import resources

import numpy as np

from ..scene import conv_scene

__all__ = ["MAX_CELLS", "page_data", "render_page", "write_page"]

#: The page draws every matrix cell; it refuses a matrix of more cells than this by default.
MAX_CELLS = 20_000

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>matconv: {title}</title>
<style>
{css}</style>
</head>
<body>
<header>
<h1>A convolution as a matrix</h1>
<p id="describe"></p>
<label class="toggle"><input type="checkbox" id="transposed"{checked}>
show the transposed convolution (the same matrix read by columns)</label>
<p id="info" data-weight="">Hover a cell of a grid or of the matrix.</p>
</header>
<main>
<section><h2 id="input-title">input</h2><div id="input-grids" class="grids"></div></section>
<section><h2 id="output-title">output</h2><div id="output-grids" class="grids"></div></section>
<section><h2 id="matrix-title">matrix</h2><table id="matrix"></table></section>
</main>
<p class="legend">Grey cells are the padding of the convolution's input: zeros, or under
<code>reflect</code>, <code>replicate</code> and <code>circular</code> padding a copy of the input
cell they mirror, repeat or wrap to; in the transposed view, the border that padding crops from
the output. Blue matrix cells are negative, red positive, blank cells structural zeros.</p>
<script type="application/json" id="matconv-data">{data}</script>
<script>
{js}</script>
</body>
</html>
"""


def page_data(scene) -> dict:
    """What the page's script draws, from a :class:`~matconv.scene.ConvScene`.

    Everything is in the convolution's orientation (rows of ``A`` are point-side cells, columns
    window-side cells); the script swaps the roles for the transposed view.

    Returns
    -------
    dict
        ``windowShape``, ``pointShape``, ``paddedShape`` (``(C, *padded)``), ``windowCells``
        (each padded cell's window-side index, ``-1`` for padding), ``padReads`` (the
        window-side cell each padded cell reads, ``-1`` for a zero), ``entries`` (one per
        stored cell of ``A``: ``[row, col, value, label, [weight index tuples], [padded cells
        of its taps]]``), ``rowPads`` (per row, the padding cells under its taps), ``vmax``,
        ``weightShape`` and the descriptions of both views.

    Examples
    --------
    >>> from matconv import ConvGeometry
    >>> scene = conv_scene(ConvGeometry(1, 1, 2, ndim=1, padding=1), (1, 2), seed=0)
    >>> data = page_data(scene)
    >>> data["windowCells"], data["rowPads"]
    ([-1, 0, 1, -1], [[0], [], [3]])
    >>> [(row, col, label) for row, col, _, label, _, _ in data["entries"]]
    [(0, 0, 'w_{0,0,1}'), (1, 0, 'w_{0,0,0}'), (1, 1, 'w_{0,0,1}'), (2, 1, 'w_{0,0,0}')]
    """
    cells = scene.window_cells()
    flat_cells = cells.ravel()
    weight = scene.weight.ravel()
    weight_shape = scene.weight.shape
    pad_reads = np.full(flat_cells.size, -1, dtype=np.int64)
    entries, row_pads = [], []
    for frame in scene.frames():
        numbers = [int(np.ravel_multi_index(tap, cells.shape)) for tap in frame.taps]
        for number, read in zip(numbers, frame.reads):
            pad_reads[number] = read
        row_pads.append(sorted({n for n in numbers if flat_cells[n] < 0}))
        by_col = {}
        for tap, read in enumerate(frame.reads):
            if read >= 0:
                by_col.setdefault(read, []).append(tap)
        for col in sorted(by_col):
            taps = by_col[col]
            indices = [tuple(int(i) for i in np.unravel_index(frame.weights[t], weight_shape))
                       for t in taps]
            label = "+".join("w_{" + ",".join(map(str, ix)) + "}" for ix in indices)
            value = float(sum(weight[frame.weights[t]] for t in taps))
            entries.append([frame.index, col, value, label, indices,
                            sorted({numbers[t] for t in taps})])
    vmax = max((abs(e[2]) for e in entries), default=0.0)
    other = scene.flipped()
    conv, transposed = (other, scene) if scene.transposed else (scene, other)
    return {
        "transposed": scene.transposed,
        "describe": {"conv": conv.describe(), "transposed": transposed.describe()},
        "names": {"conv": conv.name, "transposed": transposed.name},
        "windowShape": list(scene.window_shape),
        "pointShape": list(scene.point_shape),
        "paddedShape": list(cells.shape),
        "windowCells": flat_cells.tolist(),
        "padReads": pad_reads.tolist(),
        "weightShape": list(weight_shape),
        "entries": entries,
        "rowPads": row_pads,
        "vmax": vmax if vmax > 0 else 1.0,
    }


def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def render_page(layer_or_geometry, input_shape, *, transposed=False, output_padding=0,
                seed=None, max_cells=MAX_CELLS) -> str:
    """The interactive page of a 1-D or 2-D convolution as one HTML string.

    Parameters
    ----------
    layer_or_geometry : matconv.nn.Conv1d/2d, ConvTranspose1d/2d, or ConvGeometry
        A layer brings its weights; a geometry gets weights from ``seed``.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example of the layer's input.
    transposed, output_padding, seed
        With a geometry, as for :func:`matconv.scene.conv_scene`. A transposed layer (or
        ``transposed=True``) opens the page on the transposed view.
    max_cells : int, default MAX_CELLS
        Refuse a matrix of more cells (the page draws every one).

    Returns
    -------
    str
        A complete HTML document with its style sheet, script and data inline.

    Raises
    ------
    ValueError
        For a 3-D convolution, a matrix of more than ``max_cells`` cells, or an
        ``input_shape`` that does not fit.

    Examples
    --------
    >>> from matconv import nn
    >>> page = render_page(nn.Conv2d(1, 1, 3), (1, 4, 4))
    >>> page.startswith("<!DOCTYPE html>"), "http" in page.replace("http-equiv", "")
    (True, False)
    """
    scene = conv_scene(layer_or_geometry, input_shape, transposed=transposed,
                       output_padding=output_padding, seed=seed)
    scene.check_drawable("the page", max_cells)
    # "</" inside the JSON would end the <script> element early
    data = json.dumps(page_data(scene), separators=(",", ":")).replace("</", "<\\/")
    return _TEMPLATE.format(title=html.escape(scene.describe()), css=_asset("page.css"),
                            js=_asset("page.js"), data=data,
                            checked=" checked" if scene.transposed else "")


def write_page(path, layer_or_geometry, input_shape, **kwargs) -> None:
    """Write :func:`render_page` to ``path`` atomically (a temporary file, then a rename).

    Keyword arguments are those of :func:`render_page`.

    Examples
    --------
    >>> import matconv as mc
    >>> write_page("conv.html", mc.ConvGeometry(1, 1, 3), (1, 5, 5))  # doctest: +SKIP
    """
    text = render_page(layer_or_geometry, input_shape, **kwargs)
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"  # beside the target, so the rename stays on one disk
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
