"""matconv.page without a browser: the document is self-contained and its data is the matrix.

Oracles: the layer's own matrix (``layer.matrix``), a direct loop for the kernel taps on the
padded grid and ``numpy.pad`` for what each padding cell reads (``tests/scene_oracle.py``). What
the script does with the data is tested in a real browser (``tests/test_browser.py``).
"""
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import matconv as mc
from matconv import nn
from matconv.page import page_data, render_page, write_page
from matconv.scene import conv_scene

from . import scene_oracle as oracle

F64 = {"dtype": np.float64}


def cases():
    rng = np.random.default_rng(3)
    return {
        "stride_padding": (nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=rng, **F64), (1, 5, 5)),
        "reflect_dilation": (nn.Conv2d(1, 1, 3, padding=2, dilation=2, padding_mode="reflect",
                                       rng=rng, **F64), (1, 4, 5)),
        "circular_1d_groups": (nn.Conv1d(2, 4, 3, padding=1, groups=2, padding_mode="circular",
                                         rng=rng, **F64), (2, 5)),
        "transposed": (nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1,
                                          rng=rng, **F64), (2, 2, 3)),
    }


CASES = cases()


def conv_side(layer, shape):
    """(A, window_shape, point_shape) in the convolution's orientation."""
    M = layer.matrix(shape).toarray()
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return M.T, layer.output_shape(shape), shape
    return M, shape, layer.output_shape(shape)


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append([dict(attrs), ""])

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts[-1][1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def parse(text):
    parser = _Elements()
    parser.feed(text)
    return parser


@pytest.mark.parametrize("name", CASES)
def test_page_is_one_self_contained_document(name):
    layer, shape = CASES[name]
    text = render_page(layer, shape)
    doc = parse(text)
    # nothing is fetched: no external scripts, style sheets, images, frames or URLs
    for tag, attrs in doc.tags:
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
    assert not re.search(r"https?://|//cdn|@import|url\(", text)
    kinds = [attrs.get("type") for attrs, _ in doc.scripts]
    assert kinds == ["application/json", None]
    data = json.loads(doc.scripts[0][1])
    assert data == json.loads(json.dumps(page_data(conv_scene(layer, shape))))
    assert "addEventListener" in doc.scripts[1][1]
    # the page opens on the transposed view for a transposed layer
    checkbox = [attrs for tag, attrs in doc.tags if attrs.get("id") == "transposed"]
    assert ("checked" in checkbox[0]) == (name == "transposed")


@pytest.mark.parametrize("name", CASES)
def test_entries_are_the_nonzeros_of_A_with_their_weights(name):
    layer, shape = CASES[name]
    A, window_shape, point_shape = conv_side(layer, shape)
    data = page_data(conv_scene(layer, shape))
    assert data["windowShape"] == list(window_shape)
    assert data["pointShape"] == list(point_shape)
    got = {(row, col): value for row, col, value, *_ in data["entries"]}
    assert set(got) == set(zip(*np.nonzero(A)))
    weight = layer.weight.data
    for row, col, value, label, indices, _ in data["entries"]:
        assert value == pytest.approx(A[row, col], abs=1e-12)
        # the named weights add up to the cell: w_{o,c,i,j} indexes layer.weight directly
        assert sum(weight[tuple(ix)] for ix in indices) == pytest.approx(A[row, col], abs=1e-12)
        assert label == "+".join("w_{" + ",".join(map(str, ix)) + "}" for ix in indices)
        assert len(indices) == len(set(map(tuple, indices)))


def test_a_cell_reached_by_several_taps_names_their_sum():
    # reflect padding 1 on 2 cells: output 0's taps read cells 1, 0, 1 -> w0 + w2 at column 1
    layer = nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect", **F64)
    data = page_data(conv_scene(layer, (1, 2)))
    labels = {(row, col): label for row, col, _, label, _, _ in data["entries"]}
    assert labels == {(0, 0): "w_{0,0,1}", (0, 1): "w_{0,0,0}+w_{0,0,2}",
                      (1, 0): "w_{0,0,0}+w_{0,0,2}", (1, 1): "w_{0,0,1}"}


@pytest.mark.parametrize("name", CASES)
def test_padded_grid_and_padding_reads_match_numpy_pad(name):
    layer, shape = CASES[name]
    A, window_shape, point_shape = conv_side(layer, shape)
    g = layer.geometry
    data = page_data(conv_scene(layer, shape))
    padded = [n + a + b for n, (a, b) in zip(window_shape[1:], g.padding)]
    assert data["paddedShape"] == [window_shape[0], *padded]
    cells = np.array(data["windowCells"]).reshape(data["paddedShape"])
    inside = np.pad(np.ones(window_shape[1:], dtype=bool), g.padding)
    n = math.prod(window_shape[1:])
    for c in range(window_shape[0]):
        np.testing.assert_array_equal(cells[c][inside], np.arange(n) + c * n)
        assert np.all(cells[c][~inside] == -1)
    sources = oracle.padded_sources(window_shape[1:], g.padding, g.padding_mode)
    reads = np.array(data["padReads"]).reshape(data["paddedShape"])
    for row in range(A.shape[0]):
        taps = oracle.row_taps(g, window_shape, point_shape, row)
        expected = {int(np.ravel_multi_index(t, cells.shape))
                    for t in oracle.on_padding(g, window_shape, taps)}
        assert set(data["rowPads"][row]) == expected
        for c, *pos in taps:
            src = sources[tuple(pos)]
            assert reads[(c, *pos)] == (c * n + src if src >= 0 else -1)


def test_both_views_are_described():
    conv = page_data(conv_scene(mc.ConvGeometry(1, 1, 3, stride=2), (1, 6, 6)))
    assert conv["describe"] == {
        "conv": "Conv2d (1, 6, 6) -> (1, 2, 2): kernel 3x3, stride 2x2",
        "transposed": "ConvTranspose2d (1, 2, 2) -> (1, 6, 6): kernel 3x3, stride 2x2, "
                      "output padding 1x1"}
    reflect = page_data(conv_scene(mc.ConvGeometry(1, 1, 3, padding=1, padding_mode="reflect"),
                                   (1, 3, 3)))
    assert reflect["names"] == {"conv": "Conv2d", "transposed": "transpose of Conv2d"}


def test_large_operators_are_refused_with_the_size():
    with pytest.raises(ValueError, match=r"the page draws every cell of the 3844 x 4096 matrix "
                                         r"\(15,745,024 cells\), more than max_cells=20,000"):
        render_page(mc.ConvGeometry(1, 1, 3), (1, 64, 64))
    with pytest.raises(ValueError, match="draws 1-D and 2-D convolutions, got 3"):
        render_page(nn.Conv3d(1, 1, 2), (1, 3, 3, 3))
    assert render_page(mc.ConvGeometry(1, 1, 3), (1, 64, 64), max_cells=2 * 10**7)


def test_title_is_escaped_and_json_cannot_close_the_script():
    text = render_page(mc.ConvGeometry(1, 1, 2, ndim=1), (1, 3))
    assert "<title>matconv: Conv1d (1, 3) -&gt; (1, 2): kernel 2</title>" in text
    json_part = text.split('id="matconv-data">', 1)[1].split("</script>", 1)[0]
    assert "</" not in json_part


def test_write_page_is_atomic(tmp_path):
    path = tmp_path / "conv.html"
    write_page(path, mc.ConvGeometry(1, 1, 3), (1, 4, 4), seed=1)
    assert path.read_text(encoding="utf-8") == render_page(mc.ConvGeometry(1, 1, 3), (1, 4, 4),
                                                           seed=1)
    assert [p.name for p in tmp_path.iterdir()] == ["conv.html"]
    with pytest.raises(ValueError):  # refused before anything is written
        write_page(tmp_path / "big.html", mc.ConvGeometry(1, 1, 3), (1, 64, 64))
    with pytest.raises(FileNotFoundError):
        write_page(tmp_path / "missing" / "conv.html", mc.ConvGeometry(1, 1, 3), (1, 4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["conv.html"]


def test_seed_gives_the_same_page():
    g = mc.ConvGeometry(1, 1, 3)
    assert render_page(g, (1, 4, 4), seed=2) == render_page(g, (1, 4, 4), seed=2)
    assert render_page(g, (1, 4, 4), seed=2) != render_page(g, (1, 4, 4), seed=3)
