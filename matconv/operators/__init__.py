"""One operator protocol for every layer, in scipy's words.

Every map a layer applies is an :class:`Operator` on one example's unrolled vector, applied to
batch-last 2-D arrays (``(n, N)``, one column per example): ``matmat`` / ``rmatmat``, ``.T`` (a
view that swaps them), ``matrix()`` (``scipy.sparse.csr_array``), ``linear_operator()``
(``scipy.sparse.linalg.LinearOperator``) and ``@`` (a lazy product). Layers record the operator
they applied; their backward is that operator's ``.T``.

The kinds, and the layers that use them:

* :class:`Conv`: convolutions (``A``) and transposed convolutions (``A.T``), both lowerings,
  with the weight gradient beside them
* :class:`SparseOperator`: fixed maps: average and adaptive pooling, upsampling
* :class:`Selection`: max pooling and maxout (built by the forward from the winners)
* :class:`Diagonal`: element-wise activations, dropout masks, elementwise products,
  evaluation-mode normalisation
* :class:`Dense`: ``Linear``
* :class:`SoftmaxJacobian`: softmax, log-softmax
* :class:`Normalization`: batch norm in training (its Jacobian couples the examples), layer
  norm, group norm
* :class:`Identity`, :class:`Sum`, :class:`Scaled`, :class:`Product`, :class:`BlockRow`:
  flatten, residual additions, concatenation, composition
* :class:`Graph`: a whole recorded forward: backward is ``graph.T``

:class:`Conv`'s im2col products run in :mod:`~matconv.operators.blocked` (``S X`` gathered in
blocks, each multiplied at once) and, for large products with small weights, on the threads of
:mod:`~matconv.operators.parallel` (:func:`set_num_threads`).
"""
from .base import BlockRow, Diagonal, Identity, Operator, Product, Scaled, Sum, Transposed
from .conv import LOWERINGS, BufferPool, Conv, ConvPlan, conv_plan, gather_rows
from .coupled import SoftmaxJacobian
from .dense import Dense
from .graph import Graph
from .normalization import COUPLED_BATCH, Normalization
from .parallel import get_num_threads, set_num_threads
from .selection import (MaxPlan, Selection, adaptive_max_plan, channel_max_plan, first_max,
                        fractional_max, max_pool_plan, unpool_operator)
from .sparse import SparseOperator, adaptive_avg_operator, avg_pool_operator, upsample_operator

__all__ = [
    "Operator", "Transposed", "Product", "Sum", "Scaled", "Identity", "Diagonal", "BlockRow",
    "LOWERINGS", "Conv", "ConvPlan", "conv_plan", "BufferPool", "gather_rows", "Dense",
    "SoftmaxJacobian", "Graph", "Selection", "MaxPlan", "max_pool_plan", "adaptive_max_plan",
    "channel_max_plan", "SparseOperator", "avg_pool_operator", "adaptive_avg_operator",
    "upsample_operator", "first_max", "fractional_max", "unpool_operator", "Normalization",
    "COUPLED_BATCH", "get_num_threads", "set_num_threads",
]
