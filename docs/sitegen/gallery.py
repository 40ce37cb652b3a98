"""The gallery: animations made with :func:`matconv.animation.animate` and interactive pages.

Each :class:`Animation` becomes a GIF (Pillow's writer, no ffmpeg) in ``docs/gallery/``, refused
at :data:`MAX_GIF_BYTES` or more so that the site stays light; each :class:`Page` becomes a
self-contained HTML file written by :func:`matconv.page.render_page` into the built site. The
gallery's page, ``docs/gallery/index.md``, is generated from the same lists, so a picture and its
caption cannot drift apart.

The GIFs take a few seconds each, so they are redrawn only when a stamp of everything they depend
on (the cases, matconv's source, matplotlib's and Pillow's versions) changes.
"""
from __future__ import annotations

import hashlib
import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .files import prune, write_if_changed

__all__ = ["ANIMATIONS", "MAX_GIF_BYTES", "PAGES", "Animation", "Page", "render_gif",
           "write_gallery", "write_pages"]

#: A gallery GIF of this many bytes or more fails the build.
MAX_GIF_BYTES = 1_000_000


@dataclass(frozen=True)
class _Case:
    """One convolution shown in the gallery: a :class:`matconv.ConvGeometry` on one example's
    shape.

    Attributes
    ----------
    name : str
        File stem of the GIF or page.
    title, caption : str
        Shown above and below the picture (MyST Markdown).
    geometry : dict
        Keyword arguments of :class:`matconv.ConvGeometry`.
    input_shape : tuple of int
        ``(C, *spatial)`` of the shown layer's input (for ``transposed``, of ``A.T``'s input).
    transposed : bool
        Show the transposed convolution: each input cell scatters into a column of ``A.T``.
    """

    name: str
    title: str
    caption: str
    geometry: dict = field(hash=False)
    input_shape: tuple
    transposed: bool = False

    def _draw(self, draw):
        """``draw(geometry, input_shape, transposed=, seed=0)`` for this case."""
        from matconv import ConvGeometry

        return draw(ConvGeometry(**self.geometry), self.input_shape,
                    transposed=self.transposed, seed=0)


@dataclass(frozen=True)
class Animation(_Case):
    """One animated convolution (a GIF); the attributes of every gallery case."""

    def make(self):
        """The :class:`matplotlib.animation.FuncAnimation` of this case (weights from seed 0)."""
        from matconv.animation import animate

        return self._draw(animate)


@dataclass(frozen=True)
class Page(_Case):
    """One interactive page, described like an :class:`Animation`; drawn by ``render_page``."""

    def render(self) -> str:
        """The page's HTML (weights from seed 0)."""
        from matconv.page import render_page

        return self._draw(render_page)


ANIMATIONS = (
    Animation("stride", "Stride 2",
              "A 3x3 kernel with stride 2 on a 5x5 input: the window jumps two cells, so the "
              "output is 2x2, and each row of `A` is the row before it shifted right by two "
              "columns (by two input rows when the window starts a new line).",
              dict(in_channels=1, out_channels=1, kernel_size=3, stride=2), (1, 5, 5)),
    Animation("padding", "Zero padding",
              "Padding 1 around a 4x4 input keeps the output 4x4 (`padding='same'`). Taps on "
              "grey padding cells read zeros: they have no column in `A`, so border rows hold "
              "fewer than nine nonzeros.",
              dict(in_channels=1, out_channels=1, kernel_size=3, padding=1), (1, 4, 4)),
    Animation("dilation", "Dilation 2",
              "A 3x3 kernel with dilation 2 spans 5x5 cells with gaps: on a 6x6 input it makes "
              "a 2x2 output; each row of `A` still has nine nonzeros, now spread over five "
              "input rows.",
              dict(in_channels=1, out_channels=1, kernel_size=3, dilation=2), (1, 6, 6)),
    Animation("transposed", "Transposed convolution",
              "`ConvTranspose2d` with a 3x3 kernel and stride 2 maps 2x2 to 5x5: each input "
              "cell scatters the kernel into the output, and that scatter is exactly one "
              "column of `A.T` (the same matrix as the stride-2 convolution, read by columns).",
              dict(in_channels=1, out_channels=1, kernel_size=3, stride=2), (1, 2, 2),
              transposed=True),
    Animation("reflect", "Reflect padding",
              "With `padding_mode='reflect'` a padding cell is not a zero: it reads the input "
              "cell it mirrors, so on a border row of `A` two taps land on one input cell and "
              "their weights add up in one entry: nine taps, fewer nonzeros.",
              dict(in_channels=1, out_channels=1, kernel_size=3, padding=1,
                   padding_mode="reflect"), (1, 4, 4)),
    Animation("causal", "A dilated causal 1-D convolution",
              "WaveNet's building block: kernel 2, dilation 2, all padding before "
              "(`padding='causal'`), so output `t` reads inputs `t` and `t - 2` only and `A` "
              "is lower triangular.",
              dict(in_channels=1, out_channels=1, kernel_size=2, dilation=2, padding="causal",
                   ndim=1), (1, 8)),
)

PAGES = (
    Page("page-stride-padding", "Stride 2 with padding",
         "A 3x3 kernel, stride 2, padding 1 on a 5x5 input; the toggle shows the transposed "
         "convolution (3x3 to 5x5) on the same matrix.",
         dict(in_channels=1, out_channels=1, kernel_size=3, stride=2, padding=1), (1, 5, 5)),
    Page("page-two-channels-dilated", "Two input channels, dilation 2",
         "Two input channels and two filters, kernel 2x2 with dilation 2 on 4x4 inputs: each "
         "row of `A` reads both channels.",
         dict(in_channels=2, out_channels=2, kernel_size=2, dilation=2), (2, 4, 4)),
    Page("page-reflect-1d", "Reflect padding in 1-D",
         "Kernel 3, padding 2 with `padding_mode='reflect'` on a length-6 signal: hover an entry "
         "where two taps meet to see the sum of weights it holds.",
         dict(in_channels=1, out_channels=1, kernel_size=3, padding=2, padding_mode="reflect",
              ndim=1), (1, 6)),
)


def render_gif(animation: Animation, path: Path) -> int:
    """Save ``animation`` as a GIF at ``path`` (atomically) and return its size in bytes.

    Raises
    ------
    ValueError
        If the GIF has :data:`MAX_GIF_BYTES` or more.
    """
    anim = animation.make()  # its own Figure, outside pyplot: nothing to close
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        scratch = Path(tmp) / path.name
        anim.save(scratch, writer="pillow")
        data = scratch.read_bytes()
    if len(data) >= MAX_GIF_BYTES:
        raise ValueError(f"the gallery GIF {path.name!r} has {len(data):,} bytes, not under "
                         f"{MAX_GIF_BYTES:,}; use a smaller input_shape")
    write_if_changed(path, data)
    return len(data)


def _stamp(animations) -> str:
    import matplotlib
    import PIL

    import matconv

    drawn = [(a.name, sorted(a.geometry.items()), a.input_shape, a.transposed) for a in animations]
    digest = hashlib.sha256(repr(drawn).encode())  # captions are not drawn: not in the stamp
    digest.update(f"{matplotlib.__version__} {PIL.__version__}".encode())
    for source in sorted(Path(matconv.__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def gallery_page(animations, pages) -> str:
    """The MyST source of the gallery: each GIF with its caption, then links to the pages."""
    lines = ["# Gallery", "",
             "Convolution arithmetic in the style of Dumoulin & Visin's animations (\"A guide to "
             "convolution arithmetic for deep learning\"), side by side with the matrix `A`: the "
             "kernel window (dashed) slides over the input (grey cells are padding), the output "
             "cell it writes turns dark, and that cell's row of `A` is highlighted. Each picture "
             "is drawn by `matconv.animation.animate` when the site is built; in a notebook, "
             "`animate(...)` shows the same frames as a player, and "
             "`anim.save('conv.gif', writer='pillow')` writes the file.", ""]
    for a in animations:
        lines += [f"## {a.title}", "", f"```{{figure}} {a.name}.gif", f":alt: {a.title}", "",
                  a.caption, "```", ""]
    lines += ["## Interactive pages", "",
              "Each page is one self-contained HTML file written by `matconv.page.render_page` "
              "(nothing is fetched from the network). Hover a cell of the matrix to see its "
              "input and output cells and the weight it holds; hover an output cell to see its "
              "row and window, an input cell to see its column. The same pages come from the "
              "shell with `matconv show ... --html out.html`.", ""]
    for p in pages:
        href = html.escape(f"{p.name}.html")
        lines += [f"### {p.title}", "", p.caption, "",
                  f'<p><a class="reference external" href="{href}">Open the page</a></p>', ""]
    first = html.escape(f"{pages[0].name}.html")
    lines += ["### The first page, embedded", "",
              f'<iframe src="{first}" title="{html.escape(pages[0].title)}" '
              'style="width: 100%; height: 720px; border: 1px solid #ccc;"></iframe>', ""]
    return "\n".join(lines)


def write_gallery(srcdir, animations=ANIMATIONS, pages=PAGES) -> list:
    """Draw the GIFs (unless up to date) and write ``srcdir/gallery/index.md``.

    Returns
    -------
    list of pathlib.Path
        The GIFs of the gallery.
    """
    folder = Path(srcdir) / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    gifs = [folder / f"{a.name}.gif" for a in animations]
    stamp, stamp_file = _stamp(animations), folder / "gifs.stamp"
    stale = not (stamp_file.is_file() and stamp_file.read_text() == stamp)
    for animation, gif in zip(animations, gifs):
        if stale or not gif.is_file():
            render_gif(animation, gif)
    write_if_changed(stamp_file, stamp)
    prune(folder, {g.name for g in gifs}, "*.gif")
    write_if_changed(folder / "index.md", gallery_page(animations, pages))
    return gifs


def write_pages(outdir, pages=PAGES) -> list:
    """Write each interactive page into ``outdir/gallery/`` of the built site."""
    folder = Path(outdir) / "gallery"
    written = []
    for p in pages:
        path = folder / f"{p.name}.html"
        write_if_changed(path, p.render())
        written.append(path)
    return written
