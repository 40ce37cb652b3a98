"""The lowering: S and A against direct loops, torch.unfold, the dot test; caching; memory guard."""
from typing import NamedTuple

import numpy as np
import pytest

import matconv as mc
from matconv import lowering
from matconv.geometry import ConvGeometry

from . import reference as ref


class Case(NamedTuple):
    in_shape: tuple
    w_shape: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    mode: str = "zeros"

    def __str__(self):
        return (f"in{self.in_shape}-w{self.w_shape}-s{self.stride}-p{self.padding}-"
                f"d{self.dilation}-g{self.groups}-{self.mode}")


CASES = [
    Case((1, 4, 4), (1, 1, 3, 3)),
    Case((1, 5, 5), (1, 1, 3, 3), 2, 1),
    Case((2, 6, 5), (3, 2, 2, 3), (2, 1), ((1, 0), (2, 1))),
    Case((4, 7, 7), (4, 2, 3, 3), 1, "same", 2, 2),
    Case((3, 9), (3, 1, 3), 1, "causal", 2, 3),
    Case((2, 8), (4, 2, 4), 3, "full"),
    Case((2, 4, 3, 5), (2, 2, 2, 2, 3), (1, 2, 1), 1),
    Case((1, 5, 6), (2, 1, 3, 3), 1, 2, 1, 1, "reflect"),
    Case((2, 5, 4), (2, 2, 3, 3), 2, (1, 2), 1, 1, "replicate"),
    Case((1, 6), (1, 1, 5), 1, 4, 1, 1, "circular"),
    Case((2, 3, 4, 4), (2, 1, 3, 3, 3), 1, "same", 1, 2, "circular"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_matrix_matches_direct_loop(case, rng):
    x = rng.standard_normal(case.in_shape)
    w = rng.standard_normal(case.w_shape)
    A = mc.conv_matrix(w, case.in_shape, case.stride, case.padding, case.dilation, case.groups,
                       case.mode)
    expected = ref.conv_forward(x[None], w, case.stride, case.padding, case.dilation, case.groups,
                                case.mode)[0]
    assert A.shape == (expected.size, x.size)
    np.testing.assert_allclose(A @ x.ravel(), expected.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_unfold_matrix_matches_definition(case, rng):
    """Row (c, tap, l) of S picks padded input cell c, l*s + tap*d."""
    C = case.in_shape[0]
    k = case.w_shape[2:]
    nd = len(k)
    x = rng.standard_normal(case.in_shape)
    S = mc.unfold_matrix(case.in_shape, k, case.stride, case.padding, case.dilation, case.mode)
    s, d = ref.tup(case.stride, nd), ref.tup(case.dilation, nd)
    pads = ref.pad_pairs(case.padding, k, d, nd)
    xp = np.pad(x, [(0, 0)] + list(pads), mode=ref.NP_PAD_MODE[case.mode])
    out = [(xp.shape[1 + j] - d[j] * (k[j] - 1) - 1) // s[j] + 1 for j in range(nd)]
    expected = np.empty((C, *k, *out))
    for c in range(C):
        for tap in np.ndindex(*k):
            for pos in np.ndindex(*out):
                expected[(c, *tap, *pos)] = xp[(c, *(pos[j] * s[j] + tap[j] * d[j]
                                                     for j in range(nd)))]
    np.testing.assert_array_equal(S @ x.ravel(), expected.ravel())
    assert set(np.unique(S.data)) <= {1.0}
    assert np.diff(S.indptr).max() <= 1


def test_unfold_matches_torch_unfold(rng):
    torch = pytest.importorskip("torch")
    for (C, H, W), k, s, p, d in [((2, 5, 6), 3, 1, 1, 1), ((3, 7, 7), (2, 3), 2, (0, 1), 1),
                                  ((1, 9, 8), 3, (2, 1), 2, (2, 1))]:
        x = rng.standard_normal((C, H, W))
        S = mc.unfold_matrix((C, H, W), k, s, p, d)
        expected = torch.nn.functional.unfold(torch.tensor(x[None]), k, d, p, s)[0].numpy()
        np.testing.assert_array_equal((S @ x.ravel()).reshape(expected.shape), expected)


def test_slide_matrix_first_row():
    w = np.arange(9.0).reshape(1, 1, 3, 3) + 1  # w00 = 1 ... w22 = 9
    A = mc.conv_matrix(w, (1, 4, 4)).toarray()
    np.testing.assert_array_equal(A[0], [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(A[3], [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_dot_test_and_transpose_structure(case, rng):
    """<A u, v> == <u, A.T v>, and the cached CSR of A.T equals A.T exactly."""
    w = rng.standard_normal(case.w_shape)
    g = ConvGeometry(case.in_shape[0], w.shape[0], w.shape[2:], case.stride, case.padding,
                     case.dilation, case.groups, case.mode)
    s = lowering.conv_structure(g, case.in_shape[1:])
    A, AT = s.matrix(w), s.matrix_t(w)
    u = rng.standard_normal(A.shape[1])
    v = rng.standard_normal(A.shape[0])
    assert np.isclose((A @ u) @ v, u @ (AT @ v), rtol=1e-12)
    np.testing.assert_array_equal(AT.toarray(), A.toarray().T)


def test_weight_change_only_refreshes_data(rng):
    g = ConvGeometry(2, 3, 3, padding=1)
    s1 = lowering.conv_structure(g, (5, 5))
    s2 = lowering.conv_structure(g, (5, 5))
    assert s1 is s2  # cached per geometry
    w1, w2 = rng.standard_normal((2, *g.weight_shape))
    A1, A2 = s1.matrix(w1), s1.matrix(w2)
    assert np.shares_memory(A1.indices, A2.indices) and np.shares_memory(A1.indptr, A2.indptr)
    np.testing.assert_array_equal(A2.data, w2.ravel()[s1.weight_index])


def test_index_dtype_int32_while_it_fits():
    A = mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 8, 8))
    assert A.indices.dtype == np.int32 and A.indptr.dtype == np.int32
    assert lowering.index_dtype(2**31 - 1) == np.int32
    assert lowering.index_dtype(2**31) == np.int64
    assert lowering.index_dtype(10, 2**40) == np.int64


def test_public_matrices_do_not_alias_the_cache():
    A = mc.conv_matrix(np.ones((1, 1, 3)), (1, 6))
    A.indices[:] = 0  # a user mutating their copy must not corrupt later operators
    B = mc.conv_matrix(np.ones((1, 1, 3)), (1, 6))
    assert B.indices[:3].tolist() == [0, 1, 2] and B.indices[3] == 1


def test_memory_guard_refuses_with_estimate_and_alternative():
    old = mc.set_memory_budget(1 << 20)
    try:
        with pytest.raises(ValueError, match=r"the conv matrix A .* would take about 4\.5 GiB, over "
                                             r"the memory budget of 1\.0 MiB; use "
                                             r"lowering='im2col'"):
            mc.conv_matrix(np.ones((64, 32, 3, 3)), (32, 64, 64), padding=1)
        mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 8, 8))  # small ones still build
    finally:
        mc.set_memory_budget(old)
    with pytest.raises(ValueError, match="positive int of bytes"):
        mc.set_memory_budget(-5)


def test_window_index_modes():
    g = lambda mode: ConvGeometry(1, 1, 3, ndim=1, padding=2, padding_mode=mode)  # noqa: E731
    # positions -2..5 of a length-4 input read by 3 taps at output 0 and output 5
    np.testing.assert_array_equal(lowering.window_index(g("zeros"), (4,))[:, [0, 5]],
                                  [[-1, 3], [-1, -1], [0, -1]])
    np.testing.assert_array_equal(lowering.window_index(g("reflect"), (4,))[:, [0, 5]],
                                  [[2, 3], [1, 2], [0, 1]])
    np.testing.assert_array_equal(lowering.window_index(g("replicate"), (4,))[:, [0, 5]],
                                  [[0, 3], [0, 3], [0, 3]])
    np.testing.assert_array_equal(lowering.window_index(g("circular"), (4,))[:, [0, 5]],
                                  [[2, 3], [3, 0], [0, 1]])


def test_conv_matrix_errors():
    with pytest.raises(ValueError, match=r"weight of shape \(2, 3, 3, 3\) does not fit "
                                         r"in_channels=2, groups=1: expected \(2, 2, 3, 3\)"):
        mc.conv_matrix(np.ones((2, 3, 3, 3)), (2, 5, 5))
    with pytest.raises(ValueError, match=r"input_shape must be \(C, \*spatial\) with 2 spatial"):
        mc.conv_matrix(np.ones((1, 1, 3, 3)), (5, 5))
    with pytest.raises(ValueError, match=r"weight must have shape \(C_out, C_in/groups"):
        mc.conv_matrix(np.ones((3, 3)), (1, 5, 5))
    with pytest.raises(TypeError, match=r"weight must be a real float array, got dtype <U1"):
        mc.conv_matrix(np.array([[["a"]]]), (1, 5))
    with pytest.raises(ValueError, match=r"1 to 3 spatial dimensions"):
        mc.unfold_matrix((1, 2, 2, 2, 2), 1)
