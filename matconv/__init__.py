"""matconv: every convolution as an explicit matrix.

The public API lives here. Layers are in :mod:`matconv.nn`.

>>> import numpy as np, matconv as mc
>>> A = mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 4, 4))
>>> A.shape
(4, 16)
"""
from . import nn, optim
from .geometry import ConvGeometry, conv_output_size, conv_transpose_output_size
from .lowering import conv_matrix, unfold_matrix, window_index
from .memory import get_memory_budget, set_memory_budget
from .nn.init import manual_seed
from .operators import ConvOperator
from .signal import convolve, correlate

__version__ = "0.1.0"

__all__ = [
    "nn",
    "optim",
    "ConvGeometry",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_matrix",
    "unfold_matrix",
    "window_index",
    "ConvOperator",
    "correlate",
    "convolve",
    "get_memory_budget",
    "set_memory_budget",
    "manual_seed",
]
