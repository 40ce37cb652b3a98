"""Independent oracles for the pictures of a convolution (animation, page, browser tests).

Written from the definitions, not from matconv's window tables: the padded position of each
kernel tap is ``position * stride + tap * dilation`` (a direct loop), and what a padding cell
reads comes from ``numpy.pad`` (``'reflect'``, ``'edge'`` and ``'wrap'`` are PyTorch's
``'reflect'``, ``'replicate'`` and ``'circular'``).
"""
import math

import numpy as np

NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def padded_sources(spatial, padding, mode):
    """Array of the padded shape: the flat input index each padded cell reads, -1 for zeros."""
    index = np.arange(math.prod(spatial)).reshape(spatial)
    if mode == "zeros":
        return np.pad(index, padding, mode="constant", constant_values=-1)
    return np.pad(index, padding, mode=NUMPY_PAD_MODE[mode])


def row_taps(geometry, window_shape, point_shape, row):
    """``[(channel, *padded position), ...]`` of every tap making row ``row`` of ``A``."""
    L = math.prod(point_shape[1:])
    o, l = divmod(row, L)
    position = np.unravel_index(l, point_shape[1:])
    per_in = geometry.in_channels // geometry.groups
    group = o // (geometry.out_channels // geometry.groups)
    taps = []
    for c in range(group * per_in, (group + 1) * per_in):
        for tap in np.ndindex(*geometry.kernel_size):
            taps.append((c, *(int(p * s + t * d) for p, t, s, d in
                              zip(position, tap, geometry.stride, geometry.dilation))))
    return taps


def tap_reads(geometry, window_shape, taps):
    """The flat window-side index each tap reads (-1 for a zero-padding cell)."""
    sources = padded_sources(window_shape[1:], geometry.padding, geometry.padding_mode)
    n = math.prod(window_shape[1:])
    reads = []
    for c, *pos in taps:
        src = int(sources[tuple(pos)])
        reads.append(c * n + src if src >= 0 else -1)
    return reads


def on_padding(geometry, window_shape, taps):
    """The taps that sit on a padding cell (outside the input)."""
    return [t for t in taps if any(not (before <= p < before + n) for p, n, (before, _) in
                                   zip(t[1:], window_shape[1:], geometry.padding))]
