"""matconv.animation: every frame of small cases against the matrix, and what is drawn.

Oracles: the layer's own matrix (``layer.matrix``; a row's nonzeros for a convolution, a
column's for a transposed one), a direct loop for where each kernel tap sits on the padded grid,
``numpy.pad`` for what a padding cell reads, and the GIF read back by Pillow.
"""
import gc
import subprocess
import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.colors import to_rgba

import matconv as mc
from matconv import nn
from matconv.animation import animate
from matconv.animation.movie import COLORS
from matconv.scene import conv_scene

from . import scene_oracle as oracle


@pytest.fixture(autouse=True)
def collect_animations():
    """Animations that were inspected but never saved are collected here, not in later tests
    (matplotlib warns when an animation is deleted without being rendered)."""
    yield
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Animation was deleted without rendering")
        gc.collect()


F64 = {"dtype": np.float64}


def layers():
    """(id, layer, input_shape): stride, padding forms and modes, dilation, groups, channels,
    1-D and 2-D, transposed with output padding."""
    rng = np.random.default_rng(7)
    return [
        ("stride2_pad1", nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=rng, **F64), (1, 5, 5)),
        ("dilated_reflect_groups", nn.Conv2d(2, 2, 2, dilation=2, padding=1, groups=2,
                                             padding_mode="reflect", rng=rng, **F64), (2, 4, 4)),
        ("replicate_per_side", nn.Conv2d(1, 1, (2, 3), padding=((1, 0), (2, 1)),
                                         padding_mode="replicate", rng=rng, **F64), (1, 3, 4)),
        ("1d_same_channels", nn.Conv1d(2, 3, 3, padding="same", rng=rng, **F64), (2, 6)),
        ("1d_circular_stride", nn.Conv1d(1, 1, 3, stride=2, padding=2, padding_mode="circular",
                                         rng=rng, **F64), (1, 5)),
        ("1d_causal_dilated", nn.Conv1d(1, 1, 2, padding="causal", dilation=3, rng=rng, **F64),
         (1, 6)),
        ("transposed_2d", nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1,
                                             rng=rng, **F64), (1, 3, 3)),
        ("transposed_1d_dilated_groups", nn.ConvTranspose1d(2, 4, 2, stride=3, dilation=2,
                                                            groups=2, rng=rng, **F64), (2, 3)),
    ]


CASES = {name: (layer, shape) for name, layer, shape in layers()}
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d)


def face(collection):
    return np.asarray(collection.get_facecolors())


def where_color(collection, role, edges=False):
    colors = np.asarray(collection.get_edgecolors() if edges else collection.get_facecolors())
    return np.flatnonzero(np.all(np.isclose(colors, to_rgba(COLORS[role])), axis=1))


@pytest.mark.parametrize("name", CASES)
def test_every_frame_is_a_row_of_A_or_a_column_of_AT(name):
    layer, shape = CASES[name]
    M = layer.matrix(shape).toarray()  # the shown layer's matrix: A, or A.T when transposed
    transposed = isinstance(layer, TRANSPOSED)
    anim = animate(layer, shape)
    g, scene = layer.geometry, anim.scene
    window_shape = layer.output_shape(shape) if transposed else shape
    point_shape = shape if transposed else layer.output_shape(shape)
    assert (scene.window_shape, scene.point_shape) == (window_shape, point_shape)
    A = M.T if transposed else M
    assert len(anim.frames) == A.shape[0]
    weight = layer.weight.data.ravel()
    for i, frame in enumerate(anim.frames):
        linked = tuple(np.flatnonzero(A[i]))
        if transposed:
            assert (frame.input_cells, frame.output_cells) == ((i,), linked)
            assert (frame.matrix_row, frame.matrix_col) == (None, i)
        else:
            assert (frame.input_cells, frame.output_cells) == (linked, (i,))
            assert (frame.matrix_row, frame.matrix_col) == (i, None)
        taps = oracle.row_taps(g, window_shape, point_shape, i)
        assert list(frame.taps) == taps
        reads = oracle.tap_reads(g, window_shape, taps)
        assert list(frame.reads) == reads
        assert set(reads) - {-1} == set(linked)
        # each entry of the row is the sum of the weights of the taps that read its cell
        for c in linked:
            expected = sum(weight[w] for w, r in zip(frame.weights, frame.reads) if r == c)
            assert A[i, c] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_drawn_cells_show_exactly_the_frame(name):
    layer, shape = CASES[name]
    M = layer.matrix(shape).toarray()
    transposed = isinstance(layer, TRANSPOSED)
    anim = animate(layer, shape)
    window_shape = layer.output_shape(shape) if transposed else shape
    point_shape = shape if transposed else layer.output_shape(shape)
    A = M.T if transposed else M
    window, point, matrix = anim.window, anim.point, anim.matrix
    data_cells = set(np.flatnonzero(window.index >= 0))
    for i in range(A.shape[0]):
        anim.show_frame(i)
        # window side: the linked cells are exactly the nonzeros of the row of A
        linked = where_color(window.collection, "linked")
        assert set(window.index[linked]) == set(np.flatnonzero(A[i]))
        # padding cells under a tap, from the direct loop, and nothing else coloured
        taps = oracle.row_taps(layer.geometry, window_shape, point_shape, i)
        pads = {window.patch(t) for t in oracle.on_padding(layer.geometry, window_shape, taps)}
        assert set(where_color(window.collection, "padding_tap")) == pads
        idle = set(where_color(window.collection, "cell")) | set(
            where_color(window.collection, "padding"))
        assert idle | set(linked) | pads == set(range(window.index.size))
        assert set(where_color(window.collection, "cell")) <= data_cells
        # point side: this frame's cell, the earlier ones done
        assert list(where_color(point.collection, "current")) == [i]
        assert list(where_color(point.collection, "done")) == list(range(i))
        # matrix: the outlined entries are the row of A (column of A.T) and nothing else
        outlined = where_color(matrix.collection, "highlight", edges=True)
        if transposed:
            assert set(matrix.cols[outlined]) == {i}
            assert set(matrix.rows[outlined]) == set(np.flatnonzero(M[:, i]))
            assert matrix.band.get_x() == i - 0.5 and matrix.band.get_height() == M.shape[0]
        else:
            assert set(matrix.rows[outlined]) == {i}
            assert set(matrix.cols[outlined]) == set(np.flatnonzero(M[i]))
            assert matrix.band.get_y() == i - 0.5 and matrix.band.get_width() == M.shape[1]
        # the dashed outline spans the taps of each covered channel
        visible = [o for o in window.outlines if o.get_visible()]
        assert len(visible) == len({t[0] for t in taps})


def test_matrix_squares_are_the_stored_entries_coloured_by_value():
    layer, shape = CASES["dilated_reflect_groups"]
    anim = animate(layer, shape)
    M = layer.matrix(shape).toarray()
    cells = anim.matrix
    assert set(zip(cells.rows, cells.cols)) == set(zip(*np.nonzero(M)))
    values = M[cells.rows, cells.cols]
    colors = face(cells.collection)
    # coolwarm centred at 0: positive entries redder than blue, negative bluer than red
    assert np.all((colors[:, 0] > colors[:, 2]) == (values > 0))


def test_geometry_with_transposed_matches_the_transposed_layer():
    layer, shape = CASES["transposed_2d"]
    g = layer.geometry
    scene = conv_scene(g, shape, transposed=True, output_padding=1, seed=3)
    frames = animate(layer, shape).frames
    assert [(f.input_cells, f.output_cells, f.taps) for f in scene.frames()] == \
        [(f.input_cells, f.output_cells, f.taps) for f in frames]
    assert scene.output_shape == layer.output_shape(shape)


def test_seed_makes_the_weights_and_the_picture_deterministic():
    g = mc.ConvGeometry(1, 1, 3, ndim=1)
    a, b, c = (animate(g, (1, 5), seed=s) for s in (4, 4, 5))
    np.testing.assert_array_equal(face(a.matrix.collection), face(b.matrix.collection))
    assert not np.allclose(face(a.matrix.collection), face(c.matrix.collection))
    expected = np.random.default_rng(4).standard_normal((1, 1, 3))
    np.testing.assert_array_equal(a.scene.weight, expected)
    # default seed 0: the same weights as seed=0
    np.testing.assert_array_equal(animate(g, (1, 5)).scene.weight,
                                  np.random.default_rng(0).standard_normal((1, 1, 3)))


def test_gif_of_a_gallery_case_is_small_and_has_every_frame(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    anim = animate(mc.ConvGeometry(1, 1, 3, stride=2, padding=1), (1, 5, 5))
    path = tmp_path / "conv.gif"
    anim.save(path, writer="pillow", fps=2)
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert path.stat().st_size < 1 << 20
    with PIL.open(path) as gif:
        assert gif.n_frames == len(anim.frames) == 9
        first = np.asarray(gif.convert("RGB"))
        gif.seek(4)
        middle = np.asarray(gif.convert("RGB"))
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 8  # a picture, not a blank
    assert not np.array_equal(first, middle)  # the window moved


def test_gif_of_the_largest_gallery_case_is_under_1_mb(tmp_path):
    # Dumoulin & Visin's "full padding, no strides": 49 frames, the most of their sixteen
    anim = animate(mc.ConvGeometry(1, 1, 3, padding=2), (1, 5, 5))
    path = tmp_path / "full_padding.gif"
    anim.save(path, writer="pillow", fps=2)
    assert len(anim.frames) == 49
    assert path.stat().st_size < 1 << 20


def test_jshtml_embeds_every_frame():
    anim = animate(mc.ConvGeometry(1, 1, 2, ndim=1), (1, 4))
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == len(anim.frames) == 3
    assert anim._repr_html_().count("data:image/png;base64") == 3


G2 = mc.ConvGeometry(1, 1, 3)
G1 = mc.ConvGeometry(1, 1, 3, ndim=1)


@pytest.mark.parametrize("layer, shape, kwargs, message", [
    (mc.ConvGeometry(1, 1, 2, ndim=3), (1, 3, 3, 3), {}, "draws 1-D and 2-D convolutions, got 3"),
    (G2, (1, 20, 20), {"max_cells": 10**6},
     "would have 324 frames (one per row of A), more than max_frames=200"),
    (G2, (1, 12, 12), {"max_cells": 100},
     "draws every cell of the 100 x 144 matrix (14,400 cells), more than max_cells=100"),
    (mc.ConvGeometry(2, 1, 3), (1, 5, 5), {}, "input_shape has 1 channels, the layer expects 2"),
    (G2, (1, 5), {}, "input_shape must be (C, *spatial) of one example with 2 positive spatial"),
    (nn.Conv1d(1, 1, 2), (1, 4), {"seed": 1}, "the Conv1d layer carries its own"),
    (G1, (1, 5), {"output_padding": 1}, "output_padding applies to the transposed convolution"),
])
def test_bad_arguments_raise_value_error_naming_them(layer, shape, kwargs, message):
    with pytest.raises(ValueError) as err:
        animate(layer, shape, **kwargs)
    assert message in str(err.value)


def test_show_frame_refuses_a_frame_it_does_not_have():
    anim = animate(mc.ConvGeometry(1, 1, 2, ndim=1), (1, 3))
    for bad in (2, -1, 1.0, True):
        with pytest.raises(ValueError, match=rf"frame must be an int in \[0, 2\), got {bad!r}"):
            anim.show_frame(bad)


def test_not_a_conv_is_a_type_error():
    with pytest.raises(TypeError, match="must be a conv layer .* got MaxPool2d"):
        animate(nn.MaxPool2d(2), (1, 4, 4))


def test_without_matplotlib_the_error_says_how_to_install_it():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import matconv as mc\nfrom matconv.animation import animate\n"
            "try:\n    animate(mc.ConvGeometry(1, 1, 2, ndim=1), (1, 3))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert "matconv.animation.animate needs matplotlib: pip install '.[plot]' in the matconv " \
           "checkout" in out.stdout, out.stderr
