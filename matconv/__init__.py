"""matconv: every convolution as an explicit matrix.

The public API lives here. Layers are in :mod:`matconv.nn`.

>>> import numpy as np, matconv as mc
>>> A = mc.conv_matrix(np.ones((1, 1, 3, 3)), (1, 4, 4))
>>> A.shape
(4, 16)
"""
from . import (animation, batches, checkpoint, data, interop, models, nn, operators, optim, page,
               plot, spectral, train)
from .animation import animate
from .composition import compose, jacobian, receptive_field, receptive_field_size
from .export import load_matrix, save_matrix
from .geometry import ConvGeometry, PoolGeometry, conv_output_size, conv_transpose_output_size
from .interop import from_torch, from_torch_sparse, matrix_of, to_torch, to_torch_sparse
from .lowering import (cache_info, clear_caches, conv_matrix, set_cache_limit, unfold_matrix,
                       window_index)
from .memory import get_memory_budget, set_memory_budget
from .nn import cat, no_grad
from .nn.init import manual_seed
from .operators import Operator, conv_plan, get_num_threads, set_num_threads
from .show import SymbolicMatrix, symbolic, weight_index_matrix
from .signal import convolve, correlate
from .transposed import transposed_conv_direct

__version__ = "0.1.0"

__all__ = [
    "nn",
    "optim",
    "data",
    "models",
    "train",
    "batches",
    "checkpoint",
    "plot",
    "operators",
    "spectral",
    "ConvGeometry",
    "PoolGeometry",
    "conv_output_size",
    "set_num_threads",
    "get_num_threads",
    "conv_transpose_output_size",
    "conv_matrix",
    "unfold_matrix",
    "window_index",
    "Operator",
    "conv_plan",
    "cat",
    "no_grad",
    "clear_caches",
    "set_cache_limit",
    "cache_info",
    "correlate",
    "convolve",
    "get_memory_budget",
    "set_memory_budget",
    "manual_seed",
    "weight_index_matrix",
    "symbolic",
    "SymbolicMatrix",
    "compose",
    "jacobian",
    "receptive_field",
    "receptive_field_size",
    "transposed_conv_direct",
    "save_matrix",
    "load_matrix",
    "interop",
    "animation",
    "animate",
    "page",
    "from_torch",
    "to_torch",
    "matrix_of",
    "to_torch_sparse",
    "from_torch_sparse",
]
