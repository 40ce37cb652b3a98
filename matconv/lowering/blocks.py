"""Gather tables and their transposes cut into blocks of positions, so that ``S X`` is built one
cache-sized block at a time and consumed by its GEMM before the next block is gathered.

* :func:`gather_blocks`: the **unfold table** of ``S`` (:func:`~matconv.lowering.window_index`
  repeated over the input channels) in blocks: row ``(c, k)`` of block ``b`` lists, for each
  position of the block, the input row that tap ``k`` reads in channel ``c``. A table entry
  without a source (zero padding) is stored as row 0 and listed in the block's ``pads``: the
  gather reads row 0 there and the caller zeroes those rows of its block.
* :func:`scatter_blocks`: the same blocks of ``S.T`` for **one channel**, each as a small CSR
  matrix over the band of input rows the block's positions read. Every channel has the same
  pattern shifted by its offset, so one matrix serves them all: the input gradient
  ``S.T (W.T dY)`` is computed block by block and channel by channel, each thread owning whole
  channels (so no two threads ever add into the same input row).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry import ConvGeometry
from ..memory import check_memory
from .windows import window_index

__all__ = ["GatherBlocks", "ScatterBlocks", "gather_blocks", "scatter_blocks",
           "block_table_nbytes", "MAX_STACKED"]

#: nonzeros of the largest stack of channels :meth:`ScatterBlocks.stacked` builds (its indices
#: take 8 bytes each): small layers, where one call per channel cost more than the products
MAX_STACKED = 1 << 20


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
    rows : int
        ``channels * K``.
    widest : int
        Positions of the largest block.
    """

    edges: tuple
    tables: tuple
    pads: tuple
    rows: int
    widest: int

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables) + sum(p.nbytes for p in self.pads)


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
    return GatherBlocks(tuple(edges), tuple(tables), tuple(pads), channels * K,
                        max(b - a for a, b in zip(edges[:-1], edges[1:])))


def gather_blocks(geometry: ConvGeometry, input_size, output_size, edges: tuple
                  ) -> GatherBlocks:
    """The blocks of the unfold table of ``geometry`` on ``input_size`` (sizes as a plan resolved
    them), cut at ``edges`` (output positions). Plans keep the blocks they use."""
    return _blocks(window_index(geometry, input_size, output_size), geometry.in_channels,
                   math.prod(input_size), edges)


@dataclass(frozen=True, eq=False)
class ScatterBlocks:
    """``S.T`` of one channel in blocks of output positions, each over the rows it reaches.

    Attributes
    ----------
    taps : int
        Taps of the kernel.
    edges : tuple of int
        Block ``b`` holds output positions ``edges[b]:edges[b + 1]``.
    bands : tuple of (int, int)
        Block ``b`` adds into input rows ``lo:hi`` of a channel.
    indptr, indices : tuple of ndarray
        CSR structure of block ``b``: ``(hi - lo) x (K * positions)``, columns ordered
        ``(k, position)`` like the block's rows of ``W.T dY``; every value is 1.
    widest, most : int
        Positions of the largest block; nonzeros of the fullest.
    """

    taps: int
    edges: tuple
    bands: tuple
    indptr: tuple
    indices: tuple
    widest: int
    most: int
    _stacks: dict = field(default_factory=dict, repr=False)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.indptr + self.indices) + \
            sum(a.nbytes for stack in self._stacks.values() for a in stack)

    def stacked(self, b: int, channels: int, cells: int, dtype):
        """Block ``b`` for ``channels`` consecutive channels of ``cells`` input rows each, as one
        CSR ``(indptr, indices, ones)``: rows from the first channel's band start to the last's
        band end (``(channels - 1) * cells + hi - lo``; the rows between bands are empty),
        columns ``(channel, k, position)``, values ones of ``dtype``. One sparse product then
        serves every channel: a small layer spent more in per-channel calls than in the
        products. ``None`` when the stack would pass :data:`MAX_STACKED` nonzeros (then the
        one-channel matrix serves each channel in turn)."""
        nnz = self.indices[b].size
        if channels * nnz > MAX_STACKED:
            return None
        key = (b, channels, cells, np.dtype(dtype))
        stack = self._stacks.get(key)
        if stack is None:
            lo, hi = self.bands[b]
            counts = np.zeros((channels, cells), dtype=np.intp)
            counts[:, :hi - lo] = np.diff(self.indptr[b])
            rows = (channels - 1) * cells + hi - lo
            indptr = np.zeros(rows + 1, dtype=np.intp)
            np.cumsum(counts.ravel()[:rows], out=indptr[1:])
            columns = self.taps * (self.edges[b + 1] - self.edges[b])
            indices = self.indices[b] + (np.arange(channels, dtype=np.intp) * columns)[:, None]
            stack = (indptr, indices.ravel(), np.ones(indices.size, dtype=dtype))
            self._stacks[key] = stack
        return stack


def _scatter(window: np.ndarray, edges: tuple) -> ScatterBlocks:
    K, L = window.shape
    check_memory(block_table_nbytes(1, K, L) * 2, f"the blocked scatter table ({K} x {L})",
                 "use a smaller input")
    bands, indptrs, indices = [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        part = window[:, a:b]
        taps, pos = np.nonzero(part >= 0)
        src = part[taps, pos]
        lo, hi = (int(src.min()), int(src.max()) + 1) if src.size else (0, 0)
        order = np.argsort(src, kind="stable")
        counts = np.bincount(src - lo, minlength=hi - lo)
        indptr = np.zeros(hi - lo + 1, dtype=np.intp)
        np.cumsum(counts, out=indptr[1:])
        bands.append((lo, hi))
        indptrs.append(indptr)
        indices.append((taps * (b - a) + pos)[order].astype(np.intp))
    return ScatterBlocks(K, tuple(edges), tuple(bands), tuple(indptrs), tuple(indices),
                         max(b - a for a, b in zip(edges[:-1], edges[1:])),
                         max(a.size for a in indices))


def scatter_blocks(geometry: ConvGeometry, input_size, output_size, edges: tuple
                   ) -> ScatterBlocks:
    """The blocks of one channel's ``S.T`` (sizes as a plan resolved them), cut at ``edges``
    (output positions). Plans keep the blocks they use."""
    return _scatter(window_index(geometry, input_size, output_size), edges)
