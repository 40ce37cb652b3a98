"""Animations of convolution arithmetic, side by side with the matrix.

:func:`animate` draws, frame by frame, the kernel window sliding over the padded input (padding
cells drawn as padding, dilation gaps visible, channels as stacked grids), the output cell being
written, and the matrix ``A`` with that cell's row highlighted. For a transposed convolution each
input cell scatters the kernel into the output and its column of ``A.T`` lights up. What each
frame links comes from :meth:`matconv.scene.ConvScene.frames`.

Matplotlib is needed (the ``plot`` extra), and imported only when :func:`animate` is called.
GIFs are written with Pillow's writer, which matplotlib brings (no ffmpeg); ``to_jshtml()``
gives a self-contained HTML player.
"""
from __future__ import annotations

import math

from ..scene import conv_scene

__all__ = ["MAX_CELLS", "MAX_FRAMES", "animate"]

#: :func:`animate` refuses more frames (rows of ``A``) than this by default.
MAX_FRAMES = 200
#: ... and a matrix of more cells than this (every cell is drawn).
MAX_CELLS = 40_000


def animate(layer_or_geometry, input_shape, *, transposed=False, output_padding=0, seed=None,
            interval=600, max_frames=MAX_FRAMES, max_cells=MAX_CELLS):
    """Animate a 1-D or 2-D convolution (or transposed convolution) beside its matrix.

    Parameters
    ----------
    layer_or_geometry : matconv.nn.Conv1d/2d, ConvTranspose1d/2d, or ConvGeometry
        A layer brings its weights; a geometry gets weights from ``seed``.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example of the shown layer's input.
    transposed, output_padding, seed
        With a geometry, as for :func:`matconv.scene.conv_scene`: show ``A.T`` instead,
        its output padding, and the seed of the weights (default 0: the same picture each time).
    interval : int, default 600
        Milliseconds per frame.
    max_frames, max_cells : int
        Refuse an animation of more frames (rows of ``A``) or of a matrix of more cells.

    Returns
    -------
    matconv.animation.movie.ConvAnimation
        A :class:`matplotlib.animation.FuncAnimation` with ``frames`` (the
        :class:`~matconv.scene.Frame` of each step), ``scene`` and the drawn artists. Save it
        with ``anim.save("conv.gif", writer="pillow")``, or embed ``anim.to_jshtml()``; in
        Jupyter it displays as that player.

    Raises
    ------
    ValueError
        For a 3-D geometry, more than ``max_frames`` frames or ``max_cells`` matrix cells,
        or an ``input_shape`` that does not fit.
    ImportError
        Without matplotlib, saying how to install it.

    Examples
    --------
    >>> import matconv as mc
    >>> g = mc.ConvGeometry(1, 1, 3, stride=2, padding=1)
    >>> anim = animate(g, (1, 5, 5), seed=0)
    >>> len(anim.frames), anim.frames[4].matrix_row, anim.frames[4].input_cells
    (9, 4, (6, 7, 8, 11, 12, 13, 16, 17, 18))
    >>> anim.to_jshtml().count("data:image/png")     # a self-contained player, one image a frame
    9
    >>> anim.save("conv.gif", writer="pillow")  # doctest: +SKIP
    """
    from ..plot import require_matplotlib

    require_matplotlib("matconv.animation.animate")
    from .movie import ConvAnimation

    scene = conv_scene(layer_or_geometry, input_shape, transposed=transposed,
                       output_padding=output_padding, seed=seed)
    scene.check_drawable("the animation", max_cells)
    rows = math.prod(scene.point_shape)
    if rows > max_frames:
        raise ValueError(f"the animation would have {rows} frames (one per row of A), more "
                         f"than max_frames={max_frames}; use a smaller input_shape or fewer "
                         f"channels")
    return ConvAnimation(scene, interval=interval)
