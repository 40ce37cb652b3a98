"""matconv.plot: what is drawn is the matrix, checked through the artists' data.

Oracles: the matrix's own CSR structure for the pictures of it, and a nested loop written from
the im2col definition for :func:`plot_unfold` (never :func:`matconv.unfold_matrix`).
"""
import sys
import time
import tracemalloc
from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.lines import Line2D

import matconv as mc
from matconv.plot import AUTO_VALUES_MAX_CELLS, plot_matrix, plot_operator, plot_unfold

# ---------------------------------------------------------------- helpers


def stored_mask(A):
    """Dense bool mask of A's stored entries (duplicates merged), from its COO coordinates."""
    coo = sp.coo_array(A)
    mask = np.zeros(coo.shape, dtype=bool)
    mask[coo.row, coo.col] = True
    return mask


def the_image(ax):
    assert len(ax.images) == 1
    return ax.images[0].get_array()


def block_lines(ax, gid):
    """Positions of the block lines drawn with ``gid``: y of horizontal, x of vertical lines."""
    found = [c for c in ax.collections if c.get_gid() == gid]
    if not found:
        return np.array([])
    (lines,) = found
    axis = 1 if gid == "row_blocks" else 0
    segments = lines.get_segments()
    for seg in segments:  # each segment is straight along its axis
        assert seg[0, axis] == seg[1, axis]
    return np.array([seg[0, axis] for seg in segments])


def random_conv(rng, c_in=2, c_out=3, size=(5, 5), k=(3, 3), **kw):
    weight = rng.standard_normal((c_out, c_in, *k))
    return mc.conv_matrix(weight, (c_in, *size), **kw)


# ---------------------------------------------------------------- plot_matrix: pattern


def test_pattern_draws_exactly_the_stored_entries(rng):
    A = random_conv(rng, padding=1)
    ax = plot_matrix(A, mode="pattern")
    drawn = np.asarray(the_image(ax)) != 0
    assert drawn.shape == A.shape
    assert np.count_nonzero(drawn) == A.nnz
    np.testing.assert_array_equal(drawn, stored_mask(A))


def test_pattern_counts_stored_zeros_and_merges_duplicates():
    # (0,1) stored twice (merged into one cell), (1,2) an explicitly stored 0
    A = sp.coo_array(([1.0, 2.0, 0.0, -3.0], ([0, 0, 1, 2], [1, 1, 2, 0])), shape=(3, 4))
    ax = plot_matrix(A, mode="pattern")
    drawn = np.asarray(the_image(ax)) != 0
    expected = np.zeros((3, 4), dtype=bool)
    expected[[0, 1, 2], [1, 2, 0]] = True
    np.testing.assert_array_equal(drawn, expected)


def test_large_matrix_is_drawn_from_coordinates_without_densifying(rng, tmp_path):
    n = 40_000
    flat = np.unique(rng.integers(0, n * n, size=300_000))
    rows, cols = np.divmod(flat, n)
    A = sp.csr_array((rng.standard_normal(flat.size), (rows, cols)), shape=(n, n))
    assert A.nnz > 299_000

    tracemalloc.start()
    start = time.perf_counter()
    ax = plot_matrix(A)  # auto: 1.6e9 cells, far above the values threshold
    ax.figure.savefig(tmp_path / "big.png", dpi=60)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert seconds < 20
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB: the {n} x {n} matrix was densified"
    assert len(ax.images) == 0
    (line,) = [a for a in ax.lines if isinstance(a, Line2D)]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert x.size == y.size == A.nnz
    np.testing.assert_array_equal(np.sort(y * n + x), flat)
    assert ax.get_xlim() == (-0.5, n - 0.5) and ax.get_ylim() == (n - 0.5, -0.5)
    assert (tmp_path / "big.png").stat().st_size > 0


def test_auto_mode_switches_at_the_threshold():
    small = sp.eye_array(400, 500, format="csr")  # exactly the threshold: values
    assert 400 * 500 == AUTO_VALUES_MAX_CELLS
    assert np.ma.isMaskedArray(the_image(plot_matrix(small)))
    big = sp.eye_array(401, 500, format="csr")
    ax = plot_matrix(big)
    assert len(ax.images) == 0 and len(ax.lines[0].get_xdata()) == 401


# ---------------------------------------------------------------- plot_matrix: values


def test_values_show_stored_entries_and_mask_structural_zeros(rng):
    A = random_conv(rng, stride=2, padding=1)
    ax = plot_matrix(A, mode="values")
    shown = the_image(ax)
    stored = stored_mask(A)
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), ~stored)
    np.testing.assert_array_equal(shown.data[stored], A.toarray()[stored])


def test_values_colour_scale_is_centred_at_zero():
    A = sp.csr_array(np.array([[0.0, 2.0], [-0.5, 0.0]]))
    image = plot_matrix(A, mode="values").images[0]
    assert image.norm.vmin == -2.0 and image.norm.vmax == 2.0
    rgba_of_zero = image.cmap(image.norm(0.0))
    assert rgba_of_zero[0] == pytest.approx(rgba_of_zero[2], abs=0.01)  # neither red nor blue


def test_a_stored_zero_is_shown_unlike_a_structural_zero():
    A = sp.csr_array(([0.0, 1.0], ([0, 1], [0, 1])), shape=(2, 2))  # (0,0) stored 0
    image = plot_matrix(A, mode="values").images[0]
    shown = image.get_array()
    assert not shown.mask[0, 0] and shown.mask[0, 1]
    rgba = image.to_rgba(shown)
    assert tuple(rgba[0, 1]) != tuple(rgba[0, 0])


def test_dense_input_is_drawn_like_its_sparse_form(rng):
    A = random_conv(rng)
    dense = the_image(plot_matrix(A.toarray(), mode="values"))
    sparse = the_image(plot_matrix(A, mode="values"))
    np.testing.assert_array_equal(dense.mask, sparse.mask)
    np.testing.assert_array_equal(dense.filled(np.nan), sparse.filled(np.nan))


def test_slide_matrix_labels_title_and_given_axes():
    A = mc.conv_matrix(np.arange(9.0).reshape(1, 1, 3, 3), (1, 4, 4))
    fig, ax = plt.subplots()
    try:
        assert plot_matrix(A, ax, title="slide") is ax
        assert ax.get_title() == "slide"
        assert ax.get_xlabel() == "input (channel, position)"
        assert ax.get_ylabel() == "output (channel, position)"
    finally:
        plt.close(fig)
    assert plot_matrix(A).get_title() == "4 × 16 matrix, 36 stored entries"


def test_new_figures_are_not_registered_with_pyplot(rng):
    before = plt.get_fignums()
    plot_matrix(random_conv(rng))
    plot_unfold(np.ones((4, 4)), 2)
    plot_operator(mc.nn.Conv1d(1, 1, 3), (1, 8))
    assert plt.get_fignums() == before


# ---------------------------------------------------------------- block grid lines


def test_block_lines_sit_on_the_channel_boundaries(rng):
    A = random_conv(rng)  # (3 * 9) x (2 * 25)
    ax = plot_matrix(A, row_blocks=9, col_blocks=25)
    np.testing.assert_array_equal(block_lines(ax, "row_blocks"), [8.5, 17.5])
    np.testing.assert_array_equal(block_lines(ax, "col_blocks"), [24.5])
    np.testing.assert_array_equal(ax.get_yticks(), [0, 9, 18])
    np.testing.assert_array_equal(ax.get_xticks(), [0, 25])


def test_no_block_lines_unless_asked_or_when_one_block(rng):
    A = random_conv(rng)
    assert block_lines(plot_matrix(A), "row_blocks").size == 0
    ax = plot_matrix(A, row_blocks=27, col_blocks=50)
    assert block_lines(ax, "row_blocks").size == 0 and block_lines(ax, "col_blocks").size == 0


class Layer(NamedTuple):
    name: str
    make: object
    input_shape: tuple
    row_lines: list
    col_lines: list

    def __str__(self):
        return self.name


LAYERS = [
    Layer("conv2d_2to3_5x5", lambda: mc.nn.Conv2d(2, 3, 3), (2, 5, 5), [8.5, 17.5], [24.5]),
    Layer("conv1d_3to2_s2", lambda: mc.nn.Conv1d(3, 2, 3, stride=2, padding=1), (3, 8),
          [3.5], [7.5, 15.5]),
    # transposed: 4x4 -> 9x9 outputs per channel, 16 inputs per channel
    Layer("convT2d_3to2_s2", lambda: mc.nn.ConvTranspose2d(3, 2, 3, stride=2), (3, 4, 4),
          [80.5], [15.5, 31.5]),
]


@pytest.mark.parametrize("case", LAYERS, ids=str)
def test_plot_operator_blocks_follow_the_layer(case):
    mc.manual_seed(0)
    layer = case.make()
    A = layer.matrix(case.input_shape)
    ax = plot_operator(layer, case.input_shape)
    np.testing.assert_array_equal(block_lines(ax, "row_blocks"), case.row_lines)
    np.testing.assert_array_equal(block_lines(ax, "col_blocks"), case.col_lines)
    shown = the_image(ax)
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), ~stored_mask(A))
    assert ax.get_title().startswith(type(layer).__name__)


def test_plot_operator_passes_options_on():
    mc.manual_seed(0)
    layer = mc.nn.Conv2d(2, 3, 3)
    ax = plot_operator(layer, (2, 5, 5), mode="pattern", title="", col_blocks=5)
    pattern = the_image(ax)
    assert not np.ma.getmaskarray(pattern).any() and set(np.unique(pattern)) == {0, 1}
    assert ax.get_title() == ""
    np.testing.assert_array_equal(block_lines(ax, "col_blocks"), np.arange(5, 50, 5) - 0.5)


# ---------------------------------------------------------------- plot_unfold


def im2col_loop(x, k, stride, padding, dilation):
    """im2col by the definition: cols[(c, i, j), (oy, ox)] = x[c, oy*s - p + i*d, ...]."""
    C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, stride, padding, dilation
    oh = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((C * kh * kw, oh * ow))
    padded = np.zeros(cols.shape, dtype=bool)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oy in range(oh):
                    for ox in range(ow):
                        y, xx = oy * sh - ph + i * dh, ox * sw - pw + j * dw
                        if 0 <= y < H and 0 <= xx < W:
                            cols[row, oy * ow + ox] = x[c, y, xx]
                        else:
                            padded[row, oy * ow + ox] = True
    return cols, padded


class Unfold(NamedTuple):
    shape: tuple
    k: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)

    def __str__(self):
        return (f"x{self.shape}-k{self.k}-s{self.stride}-p{self.padding}-d{self.dilation}"
                .replace(" ", ""))


UNFOLDS = [
    Unfold((1, 4, 4), (3, 3)),
    Unfold((4, 4), (3, 3), padding=(1, 1)),
    Unfold((2, 5, 6), (2, 3), stride=(2, 1), padding=(1, 0)),
    Unfold((3, 7, 7), (3, 3), stride=(2, 2), padding=(2, 2), dilation=(2, 2)),
]


@pytest.mark.parametrize("case", UNFOLDS, ids=str)
def test_unfold_panels_hold_the_input_and_its_im2col(case, rng):
    x = rng.standard_normal(case.shape)
    x3 = x[None] if x.ndim == 2 else x
    expected, padded = im2col_loop(x3, case.k, case.stride, case.padding, case.dilation)

    fig = plot_unfold(x, case.k, case.stride, case.padding, case.dilation)
    left, right = fig.axes[:2]
    np.testing.assert_array_equal(the_image(left), x3.reshape(-1, x3.shape[-1]))
    cols = the_image(right)
    assert cols.shape == expected.shape
    np.testing.assert_array_equal(np.ma.getmaskarray(cols), padded)
    np.testing.assert_allclose(cols.data[~padded], expected[~padded], rtol=0, atol=1e-12)
    assert str(x.shape) in left.get_title()
    assert str(expected.shape) in right.get_title()
    C, taps = x3.shape[0], case.k[0] * case.k[1]
    np.testing.assert_array_equal(block_lines(right, "row_blocks"),
                                  np.arange(taps, C * taps, taps) - 0.5)


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                               ("circular", "wrap")])
def test_unfold_padding_modes_read_the_mirrored_cells(mode, numpy_mode, rng):
    # oracle: pad with numpy (its reflect/edge/wrap are PyTorch's reflect/replicate/circular),
    # then im2col of the padded image with no padding
    x = rng.standard_normal((2, 4, 5))
    padded_x = np.pad(x, ((0, 0), (1, 1), (2, 2)), mode=numpy_mode)
    expected, _ = im2col_loop(padded_x, (3, 3), (1, 2), (0, 0), (1, 1))
    fig = plot_unfold(x, (3, 3), (1, 2), (1, 2), padding_mode=mode)
    cols = the_image(fig.axes[1])
    assert not np.ma.getmaskarray(cols).any()  # nothing reads a zero
    np.testing.assert_allclose(cols.data, expected, rtol=0, atol=1e-12)


def test_unfold_shares_one_colour_scale_and_accepts_int_geometry():
    x = np.arange(16.0).reshape(4, 4)
    fig = plot_unfold(x, 3, stride=1, padding=1)
    left, right = fig.axes[:2]
    assert left.images[0].norm.vmin == right.images[0].norm.vmin == 0.0
    assert left.images[0].norm.vmax == right.images[0].norm.vmax == 15.0
    expected, _ = im2col_loop(x[None], (3, 3), (1, 1), (1, 1), (1, 1))
    assert the_image(right).shape == expected.shape == (9, 16)


def test_unfold_draws_into_given_axes():
    fig, axes = plt.subplots(1, 2)
    try:
        assert plot_unfold(np.ones((3, 3)), 2, axes=axes) is fig
        assert len(axes[1].images) == 1
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- saving


def test_figures_save_to_png(rng, tmp_path):
    mc.manual_seed(0)
    figures = {
        "values": plot_matrix(random_conv(rng), mode="values", row_blocks=9).figure,
        "pattern": plot_matrix(random_conv(rng), mode="pattern", col_blocks=25).figure,
        "unfold": plot_unfold(rng.standard_normal((2, 5, 5)), 3, padding=1),
        "operator": plot_operator(mc.nn.ConvTranspose2d(3, 2, 3, stride=2), (3, 4, 4)).figure,
    }
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        data = path.read_bytes()
        assert len(data) > 1000 and data.startswith(b"\x89PNG"), name


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("A, kw, match", [
    (np.ones(3), {}, r"A must be a 2-D matrix .* got shape \(3,\)"),
    (np.ones((2, 2, 2)), {}, r"A must be a 2-D matrix .* got shape \(2, 2, 2\)"),
    (np.ones((2, 3), dtype=complex), {}, "A must hold real numbers, got dtype complex128"),
    (np.array([["a"]]), {}, "A must hold real numbers"),
    (np.ones((0, 3)), {}, r"at least one row and one column, got shape \(0, 3\)"),
    (np.eye(4), {"mode": "heat"}, (r"mode must be one of \('auto', 'pattern', 'values'\), "
                                   r"got 'heat'")),
    (np.eye(4), {"row_blocks": 3}, "row_blocks=3 does not divide the 4 rows of A"),
    (np.ones((4, 6)), {"col_blocks": 4}, "col_blocks=4 does not divide the 6 columns of A"),
    (np.eye(4), {"row_blocks": 0}, "row_blocks must be None or a positive int, got 0"),
    (np.eye(4), {"col_blocks": 2.0}, "col_blocks must be None or a positive int, got 2.0"),
    (np.eye(4), {"col_blocks": True}, "col_blocks must be None or a positive int, got True"),
], ids=["1d", "3d", "complex", "strings", "empty", "mode", "row_blocks_divide",
        "col_blocks_divide", "row_blocks_zero", "col_blocks_float", "col_blocks_bool"])
def test_plot_matrix_errors(A, kw, match):
    with pytest.raises(ValueError, match=match):
        plot_matrix(A, **kw)


def test_values_mode_refuses_a_dense_image_over_the_memory_budget():
    A = sp.eye_array(40_000, format="csr")
    with pytest.raises(ValueError, match="dense 40000 x 40000 image of A.*mode='pattern'"):
        plot_matrix(A, mode="values")


def test_plot_unfold_errors():
    with pytest.raises(ValueError, match=r"x must be a real array of shape \(C, H, W\) or "
                                         r"\(H, W\), got shape \(5,\)"):
        plot_unfold(np.ones(5), 3)
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 4, 4\)"):
        plot_unfold(np.ones((1, 1, 4, 4)), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        plot_unfold(np.ones((2, 2)), 3)
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="axes must be None or two matplotlib Axes"):
            plot_unfold(np.ones((4, 4)), 3, axes=[ax])
    finally:
        plt.close(fig)


def test_plot_operator_errors():
    with pytest.raises(TypeError, match="layer must be a conv layer .* got ndarray"):
        plot_operator(np.eye(3), (1, 3))
    with pytest.raises(ValueError, match="input_shape has 3 channels, the layer expects 2"):
        plot_operator(mc.nn.Conv2d(2, 3, 3), (3, 5, 5))


def test_missing_matplotlib_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # matconv is installed from its checkout, not an index: the hint must say so
    message = (r"matconv.plot needs matplotlib: pip install '\.\[plot\]' in the matconv "
               r"checkout .*, or pip install matplotlib")
    with pytest.raises(ImportError, match=message):
        plot_matrix(np.eye(2))
    with pytest.raises(ImportError, match=message):
        plot_unfold(np.eye(2), 1)
