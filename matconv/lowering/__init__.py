"""Geometry -> sparse structure: the one place where convolution-like index arithmetic lives.

For a geometry and an input size, :func:`window_index` says, for every kernel tap and every
output position, which input cell the tap reads (or ``-1`` for a zero-padding cell); the other
padding modes are index maps too. From such tables come

* the unfold (im2col) matrix ``S`` and the conv matrix ``A`` with its weight-index map
  (:mod:`~matconv.lowering.structure`),
* the fixed maps of average and adaptive pooling and upsampling, and the windows of max pools
  (:mod:`~matconv.lowering.maps`),

all kept in the one bounded cache of :mod:`~matconv.lowering.cache` and estimated against the
memory budget before they are built.

=========================  =============================================================
module                     what it holds
=========================  =============================================================
``windows``                window tables: convolution windows, adaptive bins, interpolation
``structure``              ``S`` and ``A`` structures (CSR + weight-index map), int32/int64
``maps``                   fixed maps (pooling sums, upsampling), max-pool and maxout windows
``matrices``               ``unfold_matrix`` and ``conv_matrix``, the user-facing builders
``cache``                  the one cache: ``clear_caches``, ``set_cache_limit``
``blocks``                 ``S`` and ``S.T`` in blocks of positions (the blocked im2col)
=========================  =============================================================
"""
from .blocks import (
                   GatherBlocks,
                   ScatterBlocks,
                   block_table_nbytes,
                   gather_blocks,
                   scatter_blocks,
)
from .cache import cache_info, cached, clear_caches, set_cache_limit
from .maps import (
                   adaptive_avg_matrix,
                   adaptive_windows,
                   avg_pool_matrix,
                   channel_windows,
                   fractional_windows,
                   pool_windows,
                   upsample_matrix,
                   window_matrix,
                   window_pattern,
)
from .matrices import check_weight_shape, conv_matrix, split_input_shape, unfold_matrix
from .structure import (
                   ConvStructure,
                   UnfoldStructure,
                   conv_matrix_nbytes,
                   conv_structure,
                   index_dtype,
                   unfold_from_window,
                   unfold_nbytes,
                   unfold_structure,
)
from .windows import (
                   adaptive_bins,
                   combine_tables,
                   cubic_table,
                   fractional_starts,
                   interp_scale,
                   linear_table,
                   nearest_table,
                   resolve_output_size,
                   window_index,
)

__all__ = [
    "window_index", "combine_tables", "adaptive_bins", "nearest_table", "linear_table",
    "resolve_output_size", "UnfoldStructure", "ConvStructure", "unfold_structure",
    "conv_structure", "unfold_from_window", "unfold_nbytes", "conv_matrix_nbytes", "index_dtype",
    "unfold_matrix", "conv_matrix", "check_weight_shape", "split_input_shape", "window_matrix",
    "avg_pool_matrix", "adaptive_avg_matrix", "upsample_matrix", "pool_windows",
    "adaptive_windows", "channel_windows", "window_pattern", "cached", "clear_caches",
    "set_cache_limit", "cache_info", "fractional_windows", "cubic_table",
    "fractional_starts", "interp_scale", "GatherBlocks", "ScatterBlocks", "gather_blocks",
    "scatter_blocks", "block_table_nbytes",
]
