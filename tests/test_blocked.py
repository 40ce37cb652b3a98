"""The blocked, threaded im2col products against direct loops, the conv matrix and its transpose.

Every test here forces the paths that large layers take on small inputs: blocks of a few hundred
bytes, two threads for any amount of work, and GEMM pieces of a few multiply-adds.
"""
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import matconv as mc
from matconv.geometry import ConvGeometry
from matconv.lowering import blocks as blocks_module
from matconv.lowering import gather_blocks, resolve_output_size, scatter_blocks
from matconv.operators import blocked, conv_plan, parallel
from matconv.operators.blocked import block_edges, skipping
from matconv.operators.parallel import gemm_into, gemm_sum, run_shares, set_num_threads

from . import reference as ref
from .test_lowering import Case  # the same geometry cases, one definition


@pytest.fixture(params=["two threads", "one thread", "channel by channel"])
def forced(request, monkeypatch):
    """Tiny blocks, and either two threads for any work with GEMMs cut into pieces of at most
    40 MACs, or every block on the calling thread; the input gradient's scatter stacks the
    channels of a block into one product, or (``channel by channel``, two threads) does not."""
    if request.param == "channel by channel":
        monkeypatch.setattr(blocks_module, "MAX_STACKED", 0)
    monkeypatch.setattr(blocked, "BLOCK_BYTES", 256)
    monkeypatch.setattr(blocked, "WHOLE_BYTES", 0)
    monkeypatch.setattr(blocked, "MIN_SPARSE_WORK", 0)
    monkeypatch.setattr(blocked, "MAX_POOLED_WEIGHT", 1 << 30)
    monkeypatch.setattr(parallel, "SINGLE_THREAD_MNK", 40)
    monkeypatch.setattr(blocked, "MIN_SHARE_WORK", 0 if request.param != "one thread" else
                        1 << 60)
    old = set_num_threads(2)
    yield
    set_num_threads(old)


CASES = [
    Case((3, 7, 9), (4, 3, 3, 3), 1, 1),
    Case((4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    Case((2, 13), (3, 2, 4), 3, "full"),
    Case((3, 12), (3, 1, 3), 1, "causal", 2, 3),
    Case((2, 4, 5, 3), (2, 2, 2, 3, 2), (1, 2, 1), 1),
    Case((2, 6, 7), (3, 2, 3, 3), 1, 2, 1, 1, "reflect"),
    Case((4, 5, 5), (2, 2, 3, 3), 1, 1, 1, 2, "circular"),
    Case((1, 7, 6), (2, 1, 3, 3), 2, (1, 2), 1, 1, "replicate"),
    Case((1, 28, 28), (16, 1, 5, 5), 1, 2),            # config A's shape, one input channel
]


def operator(case, w):
    g = ConvGeometry(case.in_shape[0], w.shape[0], w.shape[2:], case.stride, case.padding,
                     case.dilation, case.groups, case.mode)
    return conv_plan(g, case.in_shape[1:]).at(w)


def weight_grad_oracle(case, w, x, dy):
    """``dW[m] = sum_n <dy_n, A(e_m) x_n>``: ``A`` is linear in the weight."""
    X, dY = x.reshape(len(x), -1).T, dy.reshape(len(dy), -1).T
    dW = np.empty(w.size)
    for m in range(w.size):
        e = np.zeros(w.size)
        e[m] = 1.0
        A = mc.conv_matrix(e.reshape(w.shape), case.in_shape, case.stride, case.padding,
                           case.dilation, case.groups, case.mode)
        dW[m] = np.sum(dY * (A @ X))
    return dW.reshape(w.shape)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_blocked_products_match_direct_loops_and_the_matrix(case, forced, rng):
    w = rng.standard_normal(case.w_shape)
    x = rng.standard_normal((3, *case.in_shape))
    op = operator(case, w)
    X = x.reshape(3, -1).T.copy()
    Y, saved = op.apply(X)
    expected = ref.conv_forward(x, w, case.stride, case.padding, case.dilation, case.groups,
                                case.mode)
    np.testing.assert_allclose(Y.T.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(expected.shape)
    dY = dy.reshape(3, -1).T.copy()
    A = op.matrix()
    np.testing.assert_allclose(op.rmatmat(dY), A.T @ dY, rtol=1e-12, atol=1e-12)
    dW = op.weight_grad(saved, dY)
    np.testing.assert_allclose(dW, weight_grad_oracle(case, w, x, dy), rtol=1e-11, atol=1e-11)
    if case.mode == "zeros":
        dx_ref, dw_ref = ref.conv_backward(x, w, dy, case.stride, case.padding, case.dilation,
                                           case.groups)
        np.testing.assert_allclose(op.rmatmat(dY).T.reshape(x.shape), dx_ref, rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(dW, dw_ref, rtol=1e-11, atol=1e-11)
    op.release(saved)


@pytest.mark.parametrize("case", CASES[:3] + CASES[-1:], ids=str)
def test_blocked_float32_within_tolerance_of_float64(case, forced, rng):
    w = rng.standard_normal(case.w_shape)
    X = rng.standard_normal((int(np.prod(case.in_shape)), 5))
    op64, op32 = operator(case, w), operator(case, w.astype(np.float32))
    Y64, s64 = op64.apply(X)
    Y32, s32 = op32.apply(X.astype(np.float32))
    dY = rng.standard_normal(Y64.shape)
    assert Y32.dtype == np.float32 and op32.rmatmat(dY).dtype == np.float32
    for got, want in ((Y32, Y64), (op32.rmatmat(dY), op64.rmatmat(dY)),
                      (op32.weight_grad(s32, dY), op64.weight_grad(s64, dY))):
        assert np.max(np.abs(got - want)) <= 2e-6 * np.max(np.abs(want))


def test_blocked_and_unblocked_agree_on_a_larger_layer(rng, monkeypatch):
    """The default block size and thread count against everything forced, config-B sized."""
    case = Case((16, 14, 14), (32, 16, 3, 3), 1, 1)
    w = rng.standard_normal(case.w_shape)
    X = rng.standard_normal((16 * 14 * 14, 8))
    op = operator(case, w)
    Y, saved = op.apply(X)
    dY = rng.standard_normal(Y.shape)
    dX, dW = op.rmatmat(dY), op.weight_grad(saved, dY)
    A = op.matrix()
    np.testing.assert_allclose(Y, A @ X, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(dX, A.T @ dY, rtol=1e-12, atol=1e-10)
    monkeypatch.setattr(blocked, "BLOCK_BYTES", 512)
    monkeypatch.setattr(blocked, "WHOLE_BYTES", 0)
    monkeypatch.setattr(blocked, "MIN_SHARE_WORK", 0)
    monkeypatch.setattr(blocked, "MAX_POOLED_WEIGHT", 1 << 30)
    old = set_num_threads(2)
    try:
        Y2, saved2 = op.apply(X)
        np.testing.assert_allclose(Y2, Y, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(op.rmatmat(dY), dX, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(op.weight_grad(saved2, dY), dW, rtol=1e-12, atol=1e-9)
    finally:
        set_num_threads(old)


def test_layers_in_two_threads_at_once_give_the_serial_results(forced, rng):
    """Two threads running separate layers share the pool; each still gets its own numbers."""
    layers = [mc.nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(i))
              for i in range(2)]
    xs = [rng.standard_normal((4, 3, 9, 8)) for _ in range(2)]
    dys = [rng.standard_normal((4, 4, 9, 8)) for _ in range(2)]
    serial = []
    for layer, x, dy in zip(layers, xs, dys):
        y = layer(x).copy()
        serial.append((y, layer.backward(dy).copy()))
    errors = []

    def work(i):
        try:
            for _ in range(25):
                y = layers[i](xs[i])
                dx = layers[i].backward(dys[i])
                np.testing.assert_allclose(y, serial[i][0], rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(dx, serial[i][1], rtol=1e-12, atol=1e-12)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("whole", [256 << 20, 0], ids=["keeps S x", "keeps x"])
def test_the_saved_input_is_a_copy(whole, rng, monkeypatch):
    """Editing x between the forward and the backward does not change the weight gradient,
    whether the forward kept the gathered S x (a small layer) or a copy of x."""
    monkeypatch.setattr(blocked, "WHOLE_BYTES", whole)
    layer = mc.nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 2, 6, 5))
    dy = rng.standard_normal((2, 3, 6, 5))
    _, dw_ref = ref.conv_backward(x, layer.weight.data, dy, 1, 1)
    x_net = np.ascontiguousarray(np.moveaxis(x, 0, -1)).transpose(3, 0, 1, 2)  # batch-last view
    layer(x_net)
    x_net[...] = 0.0
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, dw_ref, rtol=1e-12, atol=1e-12)


def test_output_allocations_are_checked_against_the_budget(rng):
    op = conv_plan(ConvGeometry(1, 64, 3, padding=1), (32, 32)).at(np.ones((64, 1, 3, 3)))
    X = np.ones((1024, 2048))
    old = mc.set_memory_budget(8 << 20)
    try:
        with pytest.raises(ValueError, match=r"the output \(65536 x 2048\) would take about "
                                             r"1\.0 GiB, over the memory budget of 8\.0 MiB; use a "
                                             r"smaller batch"):
            op.apply(X, keep=False)
    finally:
        mc.set_memory_budget(old)


# --------------------------------------------------------------------------- structures
def test_block_edges_cover_the_positions_in_blocks_within_budget(monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(blocked, "WHOLE_BYTES", 8192)
    old = set_num_threads(2)
    try:
        edges = block_edges(100, rows=9, columns=4, itemsize=8, shares=2)  # 288 B a position
        sizes = np.diff(edges)
        assert edges[0] == 0 and edges[-1] == 100 and (sizes > 0).all()
        assert len(sizes) % 2 == 0 and sizes.max() * 288 <= 4096
        assert block_edges(1, 9, 4, 8, 2) == (0, 1)      # one position: one block
        assert len(block_edges(6, 1, 1, 8, 2)) - 1 == 2  # small: one block per thread
        assert block_edges(6, 1, 1, 8, 1) == (0, 6)      # ... and one block on one thread
        assert block_edges(28, 9, 4, 8, 1) == (0, 28)    # 8064 bytes in all: one block
    finally:
        set_num_threads(old)


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[5], CASES[7]], ids=str)
def test_block_tables_are_the_blocks_of_s_and_s_transposed(case, rng):
    g = ConvGeometry(case.in_shape[0], case.w_shape[0], case.w_shape[2:], case.stride,
                     case.padding, case.dilation, case.groups, case.mode)
    size, out = resolve_output_size(g, case.in_shape[1:], None)
    L, K, C = int(np.prod(out)), g.kernel_numel, g.in_channels
    S = mc.unfold_matrix(case.in_shape, g.kernel_size, case.stride, case.padding, case.dilation,
                         case.mode).tocsr()                       # rows (c, k, l)
    edges = (0, 2, L // 2, L)
    X = rng.standard_normal((S.shape[1], 3))
    rows = np.arange(S.shape[0]).reshape(C, K, L)
    gath = gather_blocks(g, size, out, edges)
    scat = scatter_blocks(g, size, out, edges)
    n_in = int(np.prod(size))
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        expected = S[rows[:, :, lo:hi].ravel()] @ X               # S_b X, rows (c, k, l)
        got = X[gath.tables[b].ravel()]
        got[gath.pads[b]] = 0
        np.testing.assert_array_equal(got, expected)
        band_lo, band_hi = scat.bands[b]
        M = sp.csr_array((np.ones(scat.indices[b].size), scat.indices[b], scat.indptr[b]),
                         shape=(band_hi - band_lo, K * (hi - lo)))
        one_channel = S[rows[0, :, lo:hi].ravel()][:, :n_in].T.toarray()  # S_b.T of channel 0
        assert not one_channel[:band_lo].any() and not one_channel[band_hi:].any()
        np.testing.assert_array_equal(M.toarray(), one_channel[band_lo:band_hi])


# --------------------------------------------------------------------------- the pool and GEMMs
@pytest.mark.parametrize("G, m, k, n", [(1, 32, 16, 70), (2, 6, 5, 33), (1, 1, 3, 5),
                                        (3, 8, 4, 1)])
def test_gemm_pieces_are_the_product(G, m, k, n, rng, monkeypatch):
    monkeypatch.setattr(parallel, "SINGLE_THREAD_MNK", 48)
    a = rng.standard_normal((G, m, k))
    b = rng.standard_normal((G, k, n + 4))[:, :, 1:-3]            # strided columns
    out = np.full((G, m, n + 2), np.nan)[:, :, 1:-1]
    gemm_into(a, b, out, small=True)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    long = rng.standard_normal((G, 9 * n, m + 3))                  # inner dimension 9 n
    np.testing.assert_allclose(gemm_sum(long.transpose(0, 2, 1), long, small=True),
                               long.transpose(0, 2, 1) @ long, rtol=1e-12, atol=1e-11)


def test_run_shares_order_errors_and_nesting():
    old = set_num_threads(3)
    try:
        assert run_shares(lambda i: i * 10, 3) == [0, 10, 20]
        assert run_shares(lambda i: run_shares(lambda j: (i, j), 2), 2) == [
            [(0, 0), (0, 1)], [(1, 0), (1, 1)]]
        done = []

        def share(i):
            if i == 0:
                raise KeyError("share 0")
            time.sleep(0.05)
            done.append(i)

        with pytest.raises(KeyError, match="share 0"):
            run_shares(share, 3)
        assert sorted(done) == [1, 2]  # the other shares finished before the error surfaced
    finally:
        set_num_threads(old)


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-1, ValueError), (True, TypeError),
                                       (1.5, TypeError), ("2", TypeError)])
def test_set_num_threads_refuses(bad, error):
    with pytest.raises(error, match=r"n \(the number of threads\) must be an int >= 1 or None, "
                                    r"got"):
        set_num_threads(bad)
    assert mc.get_num_threads() >= 1


def test_skipping_names_its_stages():
    with pytest.raises(ValueError, match=r"stages must be 'gather', 'gemm' or 'scatter', got "
                                         r"\['gathre'\]"):
        with skipping("gathre"):
            pass


@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[-1]], ids=str)
@pytest.mark.parametrize("kept", [False, True], ids=["x-saved", "sx-kept"])
def test_bias_inside_the_product_and_its_gradient_beside_the_weight_gradient(case, lowering,
                                                                            forced, kept, rng,
                                                                            monkeypatch):
    """One group: the bias as a column of the weight times a row of ones (in the kept ``S X``
    too), its gradient a row of the weight gradient's GEMM; more groups: added and summed per
    block. ``weight_grad`` alone on the same forward leaves the bias out."""
    if kept:  # the forward keeps S X (with the row of ones) for the weight gradient
        monkeypatch.setattr(blocked, "WHOLE_BYTES", 1 << 30)
    w = rng.standard_normal(case.w_shape)
    b = rng.standard_normal(case.w_shape[0])
    x = rng.standard_normal((3, *case.in_shape))
    g = ConvGeometry(case.in_shape[0], w.shape[0], w.shape[2:], case.stride, case.padding,
                     case.dilation, case.groups, case.mode)
    op = conv_plan(g, case.in_shape[1:], lowering=lowering).at(w)
    Y, saved = op.apply(x.reshape(3, -1).T.copy(), bias=b)
    expected = ref.conv_forward(x, w, case.stride, case.padding, case.dilation, case.groups,
                                case.mode) + b.reshape(-1, *(1,) * (w.ndim - 2))
    np.testing.assert_allclose(Y.T.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(expected.shape)
    dW, db = op.weight_and_bias_grad(saved, dy.reshape(3, -1).T.copy())
    np.testing.assert_allclose(dW, weight_grad_oracle(case, w, x, dy), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, dy.sum(axis=tuple(i for i in range(dy.ndim) if i != 1)),
                               rtol=1e-12, atol=1e-12)
    assert db.shape == (w.shape[0],) and dW.shape == w.shape
    np.testing.assert_allclose(op.weight_grad(saved, dy.reshape(3, -1).T.copy()), dW,
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=rf"bias must have shape \({w.shape[0]},\), got \(2,\)"):
        op.apply(x.reshape(3, -1).T.copy(), bias=np.ones(2))


def test_other_blas_libraries_run_on_one_thread_inside_and_are_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.sparse.linalg  # noqa: F401 - loads scipy's own BLAS in a wheel install

    def counts():
        return {i["filepath"]: i["num_threads"]
                for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    before = counts()
    with pytest.raises(KeyError):
        with parallel.other_blas_single_threaded():
            inside = counts()
            raise KeyError("an error inside leaves the counts restored")
    assert counts() == before
    numpys = [p for p in before if "numpy" in p]
    for path, n in inside.items():
        if len(before) > 1 and path not in numpys:
            assert n == 1
        else:
            assert n == before[path]
