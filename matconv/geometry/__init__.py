"""Convolution arithmetic: every size rule of matconv, once, as pure integer arithmetic.

The formulas are those of Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"
(arXiv:1603.07285), in PyTorch's conventions:

* output size ``o = floor((i + p_before + p_after - d (k - 1) - 1) / s) + 1``
  (:func:`output_length`, used by convolutions *and* pools);
* transposed output size ``o' = (i' - 1) s - p_before - p_after + d (k - 1) + output_padding + 1``
  with ``0 <= output_padding < max(s, d)`` (:func:`check_output_padding`).

:class:`ConvGeometry` describes a convolution, :class:`PoolGeometry` a sliding-window pool; the
padding modes (``'zeros'``, ``'reflect'``, ``'replicate'``, ``'circular'``) are one table,
:data:`PADDING_MODES`. Nothing here allocates an array that scales with a size.
"""
from .arithmetic import (as_shape, as_tuple, check_output_padding, conv_output_size,
                         conv_transpose_output_size, output_length)
from .conv import ConvGeometry
from .padding import PADDING_MODES, PADDING_STRINGS, PaddingMode, padding_pairs
from .pool import PoolGeometry, adaptive_output_size, resize_output_size

__all__ = [
    "as_tuple", "as_shape", "output_length", "check_output_padding", "conv_output_size",
    "conv_transpose_output_size", "ConvGeometry", "PoolGeometry", "PADDING_MODES",
    "PADDING_STRINGS", "PaddingMode", "padding_pairs", "adaptive_output_size",
    "resize_output_size",
]
