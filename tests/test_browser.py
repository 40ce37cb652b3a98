"""The interactive page in a real browser: hover cells, compare the highlights with ``A``.

Headless Chromium (Debian's ``chromium`` package) driven by Playwright's Python package, which
talks to the browser over the DevTools protocol: no separate driver binary to keep in step with
the browser, and real mouse moves (``page.hover``) that fire the page's ``mouseenter`` handlers.
Oracles: the layer's own matrix (``layer.matrix``) and a direct loop for the kernel taps on the
padded grid (``tests/scene_oracle.py``).

Without Playwright or Chromium these tests skip with the reason; with the environment variable
``MATCONV_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead, so CI cannot skip them.
"""
import io
import os
import shutil

import numpy as np
import pytest

import matconv as mc
from matconv import nn
from matconv.page import write_page

from . import scene_oracle as oracle

# flags this closed network needs: no background connections to Google's services
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
F64 = {"dtype": np.float64}


def _unavailable(reason):
    if os.environ.get("MATCONV_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MATCONV_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[browser]')")
    executable = os.environ.get("MATCONV_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no Chromium executable (apt-get install chromium, or set MATCONV_CHROMIUM)")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as err:
            _unavailable(f"Chromium at {executable} did not start: {err}")
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Write the page of a layer, open it, and fail the test on any script error."""
    pages, errors = [], []

    def opener(layer, shape):
        path = tmp_path / "page.html"
        write_page(path, layer, shape)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(path.as_uri())
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert not errors


HIGHLIGHTS = """() => {
  const hl = [...document.querySelectorAll('.hl')];
  return {
    total: hl.length,
    inputs: hl.filter(e => e.dataset.in !== undefined).map(e => +e.dataset.in),
    outputs: hl.filter(e => e.dataset.out !== undefined).map(e => +e.dataset.out),
    cells: hl.filter(e => e.dataset.row !== undefined).map(e => [+e.dataset.row, +e.dataset.col]),
    pads: hl.filter(e => e.dataset.pad !== undefined).map(e => e.dataset.pad),
  };
}"""


def highlighted(page):
    h = page.evaluate(HIGHLIGHTS)
    # every highlighted element is one of the four kinds, each counted once
    assert h["total"] == len(h["inputs"]) + len(h["outputs"]) + len(h["cells"]) + len(h["pads"])
    return (set(h["inputs"]), set(h["outputs"]), {tuple(c) for c in h["cells"]}, set(h["pads"]))


class Oracle:
    """What hovering should light up, from ``A`` and the direct loop over the kernel taps."""

    def __init__(self, layer, shape, transposed_view):
        M = layer.matrix(shape).toarray()
        is_transposed = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d))
        self.A = M.T if is_transposed else M
        self.window = layer.output_shape(shape) if is_transposed else tuple(shape)
        self.point = tuple(shape) if is_transposed else layer.output_shape(shape)
        self.g, self.transposed = layer.geometry, transposed_view
        self.M = self.A.T if transposed_view else self.A  # the matrix the view shows

    def pads(self, row, col=None):
        """Padding cells under the taps of row ``row`` of A (those reading ``col`` if given)."""
        taps = oracle.row_taps(self.g, self.window, self.point, row)
        if col is not None:
            reads = oracle.tap_reads(self.g, self.window, taps)
            taps = [t for t, r in zip(taps, reads) if r == col]
        return {",".join(map(str, t)) for t in oracle.on_padding(self.g, self.window, taps)}

    def entry(self, row, col):
        """(inputs, outputs, cells, pads) lit by the entry of A at (row, col)."""
        cell = (col, row) if self.transposed else (row, col)
        side = ({row}, {col}) if self.transposed else ({col}, {row})
        return side[0], side[1], {cell}, self.pads(row, col)

    def union(self, entries):
        out = [set(), set(), set(), set()]
        for e in entries:
            for acc, part in zip(out, e):
                acc |= part
        return tuple(out)

    def point_cell(self, row):
        """Hovering a point-side cell: row ``row`` of A, all its padding taps included."""
        lit = self.union(self.entry(row, c) for c in np.flatnonzero(self.A[row]))
        own = ({row}, set()) if self.transposed else (set(), {row})
        return lit[0] | own[0], lit[1] | own[1], lit[2], self.pads(row)

    def window_cell(self, col):
        """Hovering a window-side cell: column ``col`` of A."""
        lit = self.union(self.entry(r, col) for r in np.flatnonzero(self.A[:, col]))
        own = (set(), {col}) if self.transposed else ({col}, set())
        return lit[0] | own[0], lit[1] | own[1], lit[2], lit[3]


def layers():
    rng = np.random.default_rng(11)
    return {
        "stride_padding": (nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=rng, **F64), (1, 5, 5)),
        "dilation": (nn.Conv2d(1, 1, 2, dilation=(2, 3), rng=rng, **F64), (1, 4, 5)),
        "reflect": (nn.Conv2d(1, 1, 3, padding=(1, 2), padding_mode="reflect", rng=rng, **F64),
                    (1, 3, 4)),
        "1d_causal_channels_groups": (nn.Conv1d(2, 4, 2, padding="causal", dilation=2, groups=2,
                                                rng=rng, **F64), (2, 5)),
        "transposed_layer": (nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1,
                                                rng=rng, **F64), (2, 2, 2)),
    }


LAYERS = layers()


def check_every_cell(page, expect):
    """Hover every input and output cell and the entries of a few rows (plus zeros)."""
    n_point, n_window = expect.A.shape
    point_attr, window_attr = ("in", "out") if expect.transposed else ("out", "in")
    for row in range(n_point):
        page.hover(f'[data-{point_attr}="{row}"]')
        assert highlighted(page) == expect.point_cell(row), f"point cell {row}"
    for col in range(n_window):
        page.hover(f'[data-{window_attr}="{col}"]')
        assert highlighted(page) == expect.window_cell(col), f"window cell {col}"
    for row in sorted({0, n_point // 2, n_point - 1}):
        for col in np.flatnonzero(expect.A[row]):
            r, c = (col, row) if expect.transposed else (row, col)
            page.hover(f'#matrix td[data-row="{r}"][data-col="{c}"]')
            assert highlighted(page) == expect.entry(row, col), f"entry {(r, c)}"
    zeros = np.argwhere(expect.M == 0)[:3]
    for r, c in zeros:
        page.hover(f'#matrix td[data-row="{r}"][data-col="{c}"]')
        inputs, outputs = {c}, {r}
        assert highlighted(page) == (inputs, outputs, {(r, c)}, set())
        assert page.get_attribute("#info", "data-weight") == "0"


@pytest.mark.parametrize("name", LAYERS)
def test_hovering_highlights_exactly_the_nonzeros(open_page, name):
    layer, shape = LAYERS[name]
    page = open_page(layer, shape)
    transposed = isinstance(layer, nn.ConvTranspose2d)
    assert page.is_checked("#transposed") == transposed
    expect = Oracle(layer, shape, transposed_view=transposed)
    assert page.locator("#matrix td").count() == expect.M.size
    assert page.locator("[data-in]").count() == expect.M.shape[1]
    assert page.locator("[data-out]").count() == expect.M.shape[0]
    check_every_cell(page, expect)
    page.mouse.move(0, 0)  # leaving the cells clears the highlights
    page.hover("h1")
    assert page.evaluate("document.querySelectorAll('.hl').length") == 0


@pytest.mark.parametrize("name", ["stride_padding", "reflect"])
def test_the_toggle_reads_the_same_matrix_by_columns(open_page, name):
    layer, shape = LAYERS[name]
    page = open_page(layer, shape)
    page.check("#transposed")
    expect = Oracle(layer, shape, transposed_view=True)
    # the transposed view's input is the conv's output: data-in now numbers A's rows
    assert page.locator("[data-in]").count() == expect.A.shape[0]
    assert page.locator("#matrix tr").count() == expect.A.shape[1]
    check_every_cell(page, expect)
    assert "Aᵀ" in page.text_content("#matrix-title")
    page.uncheck("#transposed")
    assert page.locator("[data-in]").count() == expect.A.shape[1]


def test_hovering_a_matrix_cell_names_its_weights(open_page):
    # reflect padding 1 on 3 cells: output 0's taps read cells 1, 0, 1
    layer = nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect", **F64)
    page = open_page(layer, (1, 3))
    page.hover('#matrix td[data-row="0"][data-col="1"]')
    assert page.get_attribute("#info", "data-weight") == "w_{0,0,0}+w_{0,0,2}"
    text = page.text_content("#info")
    w = layer.weight.data[0, 0]
    assert text.startswith("A[0, 1] = w0,0,0 + w0,0,2 = ")
    assert f"{w[0] + w[2]:.4g}"[:5] in text
    # the padding cell under tap 0 mirrors input cell 1: it lights up with it
    assert highlighted(page) == ({1}, {0}, {(0, 1)}, {"0,0"})
    page.hover('[data-pad="0,0"]')
    assert page.text_content("#info") == "padding cell (0,0): a copy of x(0,1)"


def test_screenshot_is_not_blank(open_page, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    layer, shape = LAYERS["stride_padding"]
    page = open_page(layer, shape)
    page.hover('[data-out="4"]')
    png = page.screenshot(full_page=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 600
    colors = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colors) > 20
    # the hovered output cell is drawn in the highlight colour (#00441b), a block of pixels
    dark_green = np.all(image == (0x00, 0x44, 0x1B), axis=-1)
    assert dark_green.sum() > 100
    # and the window's read cells in theirs (#2171b5): 9 taps, some on padding
    blue = np.all(image == (0x21, 0x71, 0xB5), axis=-1)
    assert blue.sum() > 4 * 100


def test_page_for_a_geometry_and_1d(open_page):
    g = mc.ConvGeometry(1, 2, 3, ndim=1, stride=2, padding=2)
    page = open_page(g, (1, 6))
    assert page.locator("[data-pad]").count() == 4  # two padding cells on each side
    # 4 outputs a channel; row 7 is channel 1, position 3: taps at padded 6, 7, 8 of 0..9,
    # which are input cells 4 and 5 and the first padding cell after them
    page.hover('[data-out="7"]')
    assert highlighted(page) == ({4, 5}, {7}, {(7, 4), (7, 5)}, {"0,8"})
