"""Gather tables cut into blocks of positions, so that ``S X`` is built one cache-sized block at a
time and consumed by its GEMM before the next block is gathered.

Two tables describe the products of a convolution ``A = W S``:

* the **unfold table** of ``S`` (:func:`~matconv.lowering.window_index` repeated over the input
  channels): row ``(c, k)`` of block ``b`` lists, for each position of the block, the input row
  that tap ``k`` reads in channel ``c``;
* the **transposed unfold table** of ``S'`` (:func:`transpose_window`): for a stride-1,
  zero-padded convolution, ``A.T = W' S'`` is itself a convolution, of the output gradient with
  the weight read the other way: input position ``h`` receives, through tap ``k``, output position
  ``h + p - k d``. ``S'`` gathers those rows, so the input gradient is a gather and a GEMM
  that lands directly in the input's layout, with no scatter (col2im) at all.

A table entry without a source (zero padding) is stored as row 0 and listed in the block's
``pads``: the gather reads row 0 there and the caller zeroes those rows of its block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import ConvGeometry
from ..memory import check_memory
from .cache import cached
from .windows import combine_tables, resolve_output_size, table_nbytes, window_index

__all__ = ["GatherBlocks", "gather_blocks", "transpose_window", "block_table_nbytes"]


def transpose_window(geometry: ConvGeometry, input_size, output_size=None):
    """``(K, prod(input_size))``: the output position that reads input position ``h`` through tap
    ``k`` (``h + p_before - k d`` per dimension), ``-1`` where there is none; ``None`` unless the
    stride is 1 and the padding mode ``'zeros'`` (then ``A.T`` is not a convolution).

    >>> g = ConvGeometry(1, 1, 3, ndim=1, padding=1)
    >>> transpose_window(g, (4,))
    array([[ 1,  2,  3, -1],
           [ 0,  1,  2,  3],
           [-1,  0,  1,  2]])
    """
    if geometry.padding_mode != "zeros" or any(s != 1 for s in geometry.stride):
        return None
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    check_memory(table_nbytes(geometry.kernel_numel, math.prod(input_size)),
                 f"the transposed window table of a {geometry.kernel_size} kernel over "
                 f"{math.prod(input_size)} input positions", "use a smaller input")
    tables = []
    for n, k, d, (before, _), o in zip(input_size, geometry.kernel_size, geometry.dilation,
                                       geometry.padding, output_size):
        pos = np.arange(n)[None, :] + before - np.arange(k)[:, None] * d
        tables.append(np.where((pos >= 0) & (pos < o), pos, -1))
    return combine_tables(tables, output_size)[0]


@dataclass(frozen=True, eq=False)
class GatherBlocks:
    """A ``(channels * K, L)`` gather table in blocks of positions.

    Attributes
    ----------
    edges : tuple of int
        Block ``b`` holds positions ``edges[b]:edges[b + 1]``.
    tables : tuple of ndarray of intp, shapes (channels * K, positions of the block)
        Source row of each (row, position); 0 where there is none.
    pads : tuple of ndarray of intp
        Rows of the block's gathered ``(channels * K * positions, N)`` array that must be zero.
    """

    edges: tuple
    tables: tuple
    pads: tuple

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables) + sum(p.nbytes for p in self.pads)

    @property
    def rows(self) -> int:
        return self.tables[0].shape[0]

    @property
    def widest(self) -> int:
        return max(t.shape[1] for t in self.tables)


def block_table_nbytes(channels: int, taps: int, positions: int) -> int:
    """Bytes of a blocked table (indices, padding lists and the temporaries of building it)."""
    return channels * taps * positions * (8 + 8 + 1 + 8)


def _blocks(window: np.ndarray, channels: int, source_rows: int, edges: tuple) -> GatherBlocks:
    K, L = window.shape
    check_memory(block_table_nbytes(channels, K, L),
                 f"the blocked gather table ({channels * K} x {L})", "use a smaller input")
    offset = (np.arange(channels, dtype=np.intp) * source_rows)[:, None, None]
    tables, pads = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        part = window[:, a:b]
        missing = np.broadcast_to(part < 0, (channels, K, b - a)).reshape(channels * K, b - a)
        tables.append(np.where(part >= 0, part + offset, 0).reshape(channels * K, b - a))
        pads.append(np.flatnonzero(missing).astype(np.intp))
    return GatherBlocks(tuple(edges), tuple(tables), tuple(pads))


def gather_blocks(geometry: ConvGeometry, input_size, output_size, kind: str, edges: tuple
                  ) -> GatherBlocks:
    """The cached blocks of the unfold table (``kind='unfold'``: source = the input, positions =
    output positions) or of the transposed one (``kind='transpose'``: source = the output
    gradient, positions = input positions), cut at ``edges``."""
    input_size, output_size = resolve_output_size(geometry, input_size, output_size)
    key = ("blocks", kind, geometry, input_size, output_size, tuple(edges))
    if kind == "unfold":
        return cached(key, lambda: _blocks(window_index(geometry, input_size, output_size),
                                           geometry.in_channels, math.prod(input_size), edges))
    if kind == "transpose":
        return cached(key, lambda: _blocks(transpose_window(geometry, input_size, output_size),
                                           geometry.out_channels, math.prod(output_size), edges))
    raise ValueError(f"kind must be 'unfold' or 'transpose', got {kind!r}")
