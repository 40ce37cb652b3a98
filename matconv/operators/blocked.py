"""The im2col products evaluated block by block: gather ``S_b X`` for a block of positions, use it
in its GEMM at once, go on to the next block.

A layer whose whole ``S X`` fits :data:`WHOLE_BYTES` is one block per thread: measured in quiet
windows on the benchmark machines (2 MiB of L2 per core), smaller, cache-sized blocks cost more
in calls and smaller GEMMs than they saved (``benchmarks/README.md``). Beyond it, blocks of
:data:`BLOCK_BYTES` bound the memory of a huge layer. Blocks are independent, so a large product
with a small weight shares them among threads (:mod:`~matconv.operators.parallel`), each with its
own block buffer, each making only GEMM calls small enough to stay on its own thread; other
products run on the calling thread with OpenBLAS's threads in their GEMMs.

* :func:`blocked_product`: ``out[:, block] = W_g (S_b X)`` for every block: the forward ``W (S X)``;
* :func:`blocked_weight_grad`: ``dW = sum_b dY_b (S_b X).T``;
* :func:`blocked_scatter`: the input gradient ``S.T (W.T dY)``, block by block: ``W.T dY_b`` for
  the channels of a thread, then each channel's ``S_b.T`` product added into its input rows
  (threads own whole channels, so none adds into another's rows);
* :func:`scatter_rows`: a CSR product split by rows among the threads (the sparse lowering).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .parallel import gemm_into, gemm_sum, get_num_threads, run_shares, split_evenly

try:  # CSR times dense, accumulating into a given output: what scipy's own product calls
    from scipy.sparse._sparsetools import csr_matvecs
except ImportError:  # pragma: no cover - a scipy without it: the public product, then a copy
    csr_matvecs = None

__all__ = ["BLOCK_BYTES", "WHOLE_BYTES", "MIN_SHARE_WORK", "MIN_SPARSE_WORK", "KEEP_BUFFER_BYTES",
           "MAX_POOLED_WEIGHT", "PIECEWISE_WEIGHT_GRAD", "block_edges", "blocked_product",
           "blocked_weight_grad", "blocked_scatter", "scatter_parts", "scatter_rows", "shares_for",
           "skipping", "with_bias_column"]

#: a layer whose whole ``S X`` is at most this many bytes is gathered in one block per thread
#: (and a recorded forward keeps it for the weight gradient): measured in quiet windows on the
#: benchmark machines (2 MiB of L2 per core), smaller blocks cost more in calls and smaller
#: GEMMs than they saved in cache misses (``benchmarks/README.md``)
WHOLE_BYTES = 256 << 20
#: bytes of one gathered block beyond that: what bounds the memory of a huge layer
BLOCK_BYTES = 32 << 20
#: multiply-adds of one GEMM product below which it stays on the calling thread (with OpenBLAS
#: threading it): below about 1e8 (configs B and E) the pool's dispatch and the handovers of
#: the GIL between its threads cost more than a second core gave
MIN_SHARE_WORK = 100_000_000
#: working buffers up to this many bytes go back to the plan's pool after a product (fresh
#: memory costs page faults); bigger ones are freed, so that a layer holds no more between
#: calls than before (a forward's kept ``S X`` excepted)
KEEP_BUFFER_BYTES = 16 << 20
#: the same for a sparse product (one C call per thread, no GIL traffic)
MIN_SPARSE_WORK = 2_000_000
#: largest weight (``C_out/G * C_in/G * K`` entries) whose GEMMs go to the pool: a bigger one
#: would have to be cut into row blocks to keep each BLAS piece within
#: :data:`~matconv.operators.parallel.SINGLE_THREAD_MNK` and 64 columns wide, and OpenBLAS's
#: own threads then run the whole GEMM faster (config C: 58 against 98 ms in quiet windows)
MAX_POOLED_WEIGHT = 8192
#: a weight gradient of at most this many entries per group (by itemsize) is summed from pieces
#: of its long inner dimension even on one thread: OpenBLAS runs such thin long-``K`` products
#: badly (float32 9 x 16 over K = 16384, config D: 174 us whole, 70 us in pieces; 25 x 16 over
#: 50176, config A: 941 against 534 us); bigger outputs, and float64 beyond 256, lost
PIECEWISE_WEIGHT_GRAD = {4: 1024, 8: 256}


_skip = frozenset()  # stages left out, for benchmarks/profile_conv.py only


@contextlib.contextmanager
def skipping(*stages):
    """Leave out stages of the blocked products (``'gather'``, ``'gemm'``, ``'scatter'``) while
    the block runs, so that a profile can time each stage alone. The results are then wrong;
    it is a measuring tool (process-wide, not for use while other threads compute).

    >>> with skipping("gemm"):
    ...     pass
    """
    global _skip
    unknown = set(stages) - {"gather", "gemm", "scatter"}
    if unknown:
        raise ValueError(f"stages must be 'gather', 'gemm' or 'scatter', got {sorted(unknown)}")
    before, _skip = _skip, frozenset(stages)
    try:
        yield
    finally:
        _skip = before


def shares_for(work: float, items: int, weight_size: int = 0) -> int:
    """Threads for ``work`` multiply-adds over ``items`` blocks or rows: one when the work is
    small (:data:`MIN_SHARE_WORK` for GEMMs with a ``weight_size`` weight,
    :data:`MIN_SPARSE_WORK` for sparse products) or the weight too big for the pool
    (:data:`MAX_POOLED_WEIGHT`)."""
    if weight_size > MAX_POOLED_WEIGHT:
        return 1
    least = MIN_SHARE_WORK if weight_size else MIN_SPARSE_WORK
    return max(1, min(get_num_threads(), items, int(work // max(least, 1))))


def block_edges(positions: int, rows: int, columns: int, itemsize: int, shares: int) -> tuple:
    """Edges cutting ``positions`` into blocks of at most :data:`BLOCK_BYTES` gathered bytes
    (``rows`` x ``columns`` per position): at least one block per share, a multiple of the
    shares; a layer of at most :data:`WHOLE_BYTES` gets one block per share.

    >>> block_edges(10, 1, 1, 8, shares=2)
    (0, 5, 10)
    """
    per_position = max(1, rows * columns * itemsize)
    per_block = positions if positions * per_position <= WHOLE_BYTES else \
        max(1, BLOCK_BYTES // per_position)
    count = max(math.ceil(positions / per_block), min(shares, positions))
    count = min(positions, -(-count // shares) * shares)
    return tuple(split_evenly(positions, max(1, count)))


def _gather(X: np.ndarray, blocks, b: int, buf: np.ndarray, ones: bool = False) -> np.ndarray:
    """``S_b X`` as ``(rows, width * N)`` in ``buf`` (rows without a source zeroed); with
    ``ones``, ``(rows + 1, width * N)``, the last row all ones (the bias's row)."""
    table = blocks.tables[b]
    rows, width = table.shape
    n = width * X.shape[1]
    out = buf[:rows * n].reshape(rows, width, X.shape[1])
    if ones:
        buf[rows * n:(rows + 1) * n] = 1
    if "gather" not in _skip:
        np.take(X, table, axis=0, out=out, mode="clip")  # 'clip': no buffered copy
        pads = blocks.pads[b]
        if pads.size:
            out.reshape(rows * width, -1)[pads] = 0
    return buf[:(rows + ones) * n].reshape(rows + ones, n)


def _take_buffer(pool, blocks, X, ones: bool = False):
    return pool.take(((blocks.rows + ones) * blocks.widest * X.shape[1],), X.dtype,
                     "a gathered block")


def with_bias_column(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[W_0 | b]`` as ``(1, m, k + 1)`` for a one-group ``weight`` ``(1, m, k)``: times a
    gathered block with its row of ones it is ``W (S_b X) + b``. The bias rides in the GEMM,
    and its gradient in the weight gradient's, instead of a pass over the output and one over
    ``dY`` each (layers of few channels over many positions spent 10-15% there).

    >>> with_bias_column(np.ones((1, 2, 3)), np.array([5.0, 6.0]))[0]
    array([[1., 1., 1., 5.],
           [1., 1., 1., 6.]])
    """
    return np.concatenate([weight[0], bias[:, None].astype(weight.dtype)], axis=1)[None]


def _give_back(pool, buf: np.ndarray) -> None:
    """Return a working buffer to ``pool`` unless it is big (then it is freed)."""
    if buf.nbytes <= KEEP_BUFFER_BYTES:
        pool.give(buf)


def _kept_block(kept: np.ndarray, blocks, b: int, columns: int, ones: bool = False
                ) -> np.ndarray:
    """Block ``b``'s place in a buffer holding every block of ``S X`` (each with its row of
    ``ones``) one after the other."""
    rows = blocks.rows + ones
    return kept[rows * blocks.edges[b] * columns:rows * blocks.edges[b + 1] * columns]


def blocked_product(weight: np.ndarray, X: np.ndarray, blocks, out: np.ndarray, pool,
                    shares: int, save: np.ndarray = None, bias: np.ndarray = None,
                    keep: np.ndarray = None) -> np.ndarray:
    """``out[:, block] = weight[g] @ (S_b X)[g] (+ bias)`` for every block ``b`` and group
    ``g``, the blocks split among ``shares`` threads.

    ``weight`` is ``(G, m, k)``, ``X`` ``(n_src, N)`` C-contiguous, ``out`` ``(G * m,
    positions * N)``, ``bias`` ``(G * m,)``: with one group, a column of the weight times a row
    of ones gathered with each block (:func:`with_bias_column`); with more, added to each block
    while it is in cache. ``save``, if given, receives a copy of ``X`` (each thread copies its
    share of the rows); ``keep``, if given (flat, the size of ``S X``, plus a row of ones per
    position with a one-group bias), receives every gathered block, one after the other, for
    :func:`blocked_weight_grad` to use without gathering again.
    """
    G, m, k = weight.shape
    N = X.shape[1]
    parts = split_evenly(len(blocks.tables), shares)
    rows = split_evenly(X.shape[0], shares)
    ones = bias is not None and G == 1
    if ones:
        weight, k = with_bias_column(weight, bias), k + 1

    def share(i):
        if save is not None:
            save[rows[i]:rows[i + 1]] = X[rows[i]:rows[i + 1]]
        buf = _take_buffer(pool, blocks, X, ones) if keep is None else None
        try:
            for b in range(parts[i], parts[i + 1]):
                cols = _gather(X, blocks, b, buf if keep is None else
                               _kept_block(keep, blocks, b, N, ones), ones)
                lo, hi = blocks.edges[b] * N, blocks.edges[b + 1] * N
                if "gemm" not in _skip:
                    gemm_into(weight, cols.reshape(G, k, -1), out[:, lo:hi].reshape(G, m, -1),
                              small=shares > 1)
                if bias is not None and not ones:
                    out[:, lo:hi] += bias[:, None]
        finally:
            if buf is not None:
                pool.give(buf)

    run_shares(share, shares)
    return out


def blocked_weight_grad(X: np.ndarray, dY: np.ndarray, blocks, groups: int, pool,
                        shares: int, with_bias: bool = False, kept: np.ndarray = None,
                        kept_ones: bool = False):
    """``dW = dY (S X).T`` as ``(G, m, k)``: ``sum_b dY_b (S_b X).T``, a sum per thread; with
    ``with_bias``, ``(dW, db)``, ``db`` the sums of ``dY``: with one group the product with the
    blocks' row of ones (one more row of the same GEMM), with more summed from each block of
    ``dY`` while it is in cache. ``kept``: the blocks :func:`blocked_product` kept (then ``X``
    is not read; pass ``None``), with a row of ones each if ``kept_ones``.

    Each term is computed as ``((S_b X) dY_b.T).T``: OpenBLAS runs that orientation of the
    long-inner product 1.1-1.6x faster (``benchmarks/README.md``).
    """
    N = dY.shape[1] // blocks.edges[-1]  # examples: dY is (G m, positions N)
    rows = blocks.rows
    G, m, k = groups, dY.shape[0] // groups, rows // groups
    parts = split_evenly(len(blocks.tables), shares)
    pieces = shares > 1 or k * m <= PIECEWISE_WEIGHT_GRAD.get(dY.dtype.itemsize, 0)
    ones = kept_ones if kept is not None else with_bias and G == 1
    k_all = k + ones

    def share(i):
        total = np.zeros((G, k_all, m), dtype=dY.dtype)
        db = np.zeros(G * m, dtype=dY.dtype) if with_bias and not ones else None
        buf = _take_buffer(pool, blocks, X, ones) if kept is None else None
        try:
            for b in range(parts[i], parts[i + 1]):
                if kept is None:
                    cols = _gather(X, blocks, b, buf, ones).reshape(G, k_all, -1)
                else:
                    cols = _kept_block(kept, blocks, b, N, ones).reshape(G, k_all, -1)
                lo, hi = blocks.edges[b] * N, blocks.edges[b + 1] * N
                if "gemm" not in _skip:
                    total += gemm_sum(cols, dY[:, lo:hi].reshape(G, m, -1).transpose(0, 2, 1),
                                      small=pieces)
                if db is not None:
                    db += dY[:, lo:hi].sum(axis=1)
        finally:
            if buf is not None:
                pool.give(buf)
        return total, db

    results = run_shares(share, shares)
    total = sum(r[0] for r in results)
    dW = total[:, :k].transpose(0, 2, 1)
    if not with_bias:
        return dW
    return dW, (total[0, k].copy() if ones else sum(r[1] for r in results))


def scatter_parts(channels: int, groups: int, shares: int) -> tuple:
    """``(parts, by_blocks)``: per share, its ``(group, first, stop)`` channel ranges. Whole
    groups or a split of the channels when there are enough; otherwise (fewer channels than
    threads, like a first layer's single channel) every share takes all channels and a run of the
    blocks (``by_blocks``), adding into its own copy of the output.

    >>> scatter_parts(5, 1, 2)
    ([[(0, 0, 2)], [(0, 2, 5)]], False)
    >>> scatter_parts(1, 1, 2)
    ([[(0, 0, 1)], [(0, 0, 1)]], True)
    """
    per_group = channels // groups
    if groups > 1 and groups >= shares:
        cut = split_evenly(groups, shares)
        return [[(g, 0, per_group) for g in range(a, b)] for a, b in zip(cut[:-1], cut[1:])], \
            False
    if groups == 1 and per_group >= shares:
        cut = split_evenly(per_group, shares)
        return [[(0, a, b)] for a, b in zip(cut[:-1], cut[1:])], False
    return [[(g, 0, per_group) for g in range(groups)] for _ in range(shares)], shares > 1


def _csr_add(indptr, indices, data, dense, out):
    """``out += M @ dense`` for the CSR ``M = (data, indices, indptr)`` (both C-contiguous)."""
    if "scatter" in _skip:
        return
    if csr_matvecs is None:  # pragma: no cover
        from scipy.sparse import csr_array
        out += csr_array((data, indices, indptr), shape=(out.shape[0], dense.shape[0])) @ dense
        return
    csr_matvecs(out.shape[0], dense.shape[0], dense.shape[1], indptr, indices, data,
                dense.ravel(), out.ravel())


def blocked_scatter(weight_t: np.ndarray, dY: np.ndarray, blocks, parts: list, by_blocks: bool,
                    out: np.ndarray, pool) -> np.ndarray:
    """``out = S.T (W.T dY)``, the input gradient of an im2col convolution, in blocks.

    ``weight_t`` is ``W.T`` per group ``(G, C_in/G * K, C_out/G)``, ``dY`` ``(C_out * L, N)``
    C-contiguous, ``blocks`` one channel's :class:`~matconv.lowering.ScatterBlocks`, ``parts``
    and ``by_blocks`` the threads' channels and how they divide the blocks
    (:func:`scatter_parts`), ``out`` ``(C_in * n_in, N)`` C-contiguous (overwritten).
    """
    G, rows_per_group, m = weight_t.shape
    N, K = dY.shape[1], blocks.taps
    channels_per_group = rows_per_group // K
    cells = out.shape[0] // (channels_per_group * G)
    dY3 = dY.reshape(G, m, -1)
    small = len(parts) > 1
    runs = split_evenly(len(blocks.bands), len(parts)) if by_blocks else None

    def share(i):
        target = out
        if by_blocks and i:  # the same channels as share 0: add into a copy of its own
            target = pool.take(out.shape, out.dtype, "a thread's share of the input gradient")
        first, stop = (runs[i], runs[i + 1]) if by_blocks else (0, len(blocks.bands))
        for g, c0, c1 in parts[i]:
            base = g * channels_per_group
            target[(base + c0) * cells:(base + c1) * cells] = 0
        most = max(c1 - c0 for _, c0, c1 in parts[i])
        buf = pool.take((most * K * blocks.widest * N,), dY.dtype,
                        "a block of the unfolded gradient")
        ones = None  # the one-channel matrix's values, made if a block is too big to stack
        try:
            for b in range(first, stop):
                lo, hi = blocks.bands[b]
                n = (blocks.edges[b + 1] - blocks.edges[b]) * N
                start = blocks.edges[b] * N
                indptr, indices = blocks.indptr[b], blocks.indices[b]
                for g, c0, c1 in parts[i]:
                    dcols = buf[:(c1 - c0) * K * n].reshape(1, (c1 - c0) * K, n)
                    if "gemm" not in _skip:
                        gemm_into(weight_t[g:g + 1, c0 * K:c1 * K],
                                  dY3[g:g + 1, :, start:start + n], dcols, small)
                    stack = blocks.stacked(b, c1 - c0, cells, dY.dtype)
                    if stack is not None:  # every channel in one product
                        row = (g * channels_per_group + c0) * cells
                        _csr_add(*stack, dcols.reshape(-1, N),
                                 target[row + lo:row + (c1 - c0 - 1) * cells + hi])
                        continue
                    if ones is None:
                        ones = np.ones(blocks.most, dtype=dY.dtype)
                    for c in range(c0, c1):
                        row = (g * channels_per_group + c) * cells
                        _csr_add(indptr, indices, ones[:indices.size],
                                 dcols[0, (c - c0) * K:(c - c0 + 1) * K].reshape(-1, N),
                                 target[row + lo:row + hi])
        finally:
            _give_back(pool, buf)
        return target if target is not out else None

    for extra in run_shares(share, len(parts)):
        if extra is not None:
            out += extra
            _give_back(pool, extra)
    return out


def scatter_rows(matrix, dense: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = matrix @ dense`` for a CSR ``matrix``, split by rows (of equal nonzeros)
    among the threads; ``out`` must be C-contiguous (it is overwritten)."""
    dense = np.ascontiguousarray(dense)
    indptr = matrix.indptr
    shares = shares_for(matrix.nnz * dense.shape[1], matrix.shape[0])
    cuts = np.searchsorted(indptr, np.array(split_evenly(matrix.nnz, shares)), side="left")
    cuts[0], cuts[-1] = 0, matrix.shape[0]

    def share(i):
        lo, hi = int(cuts[i]), int(cuts[i + 1])
        if hi <= lo:
            return
        if csr_matvecs is None:  # pragma: no cover
            out[lo:hi] = matrix[lo:hi] @ dense
            return
        out[lo:hi] = 0
        csr_matvecs(hi - lo, matrix.shape[1], dense.shape[1], indptr[lo:hi + 1],
                    matrix.indices, matrix.data, dense.ravel(), out[lo:hi].ravel())

    run_shares(share, shares)
    return out
