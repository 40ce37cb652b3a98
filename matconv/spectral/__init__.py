"""Spectral analysis: exact singular values and operator norms of convolutions, from their matrix.

matconv holds every convolution as an operator, so it can answer what the weight alone cannot:
the singular values of the layer's linear map on a given input size, for any stride, padding,
dilation or grouping, and for stacks of layers.

* :func:`singular_values` (``which='largest' | 'smallest' | 'all'``), :func:`operator_norm`,
  :func:`condition_number`: dense SVD for small operators, ARPACK (``scipy.sparse.linalg.svds``)
  on the explicit matrix or, past the memory budget, on the matrix-free im2col products, and
  Sedghi, Gupta & Long's FFT formula ("The singular values of convolutional layers", ICLR 2019)
  for circular convolutions (:func:`fft_singular_values`).
* :func:`reshaped_weight_norm`: the number ``torch.nn.utils.spectral_norm`` divides by, which is
  not the operator norm.
* :func:`lipschitz_bound` (product of per-layer constants), :func:`local_lipschitz` (norm of the
  Jacobian at a point) and :func:`lipschitz_report` (both, and the gap).
* :func:`clip_operator_norm_`: rescale a weight, or clip every singular value (Sedghi et al.), so
  the exact operator norm is at most a bound.
* :func:`plot_spectrum`.

Examples
--------
>>> import numpy as np
>>> from matconv import nn, spectral
>>> conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", dtype=np.float64,
...                  rng=np.random.default_rng(0))
>>> s = spectral.singular_values(conv, (2, 8, 8), which="all")     # 128 values by FFT
>>> s.method, s.shape
('fft', (128,))
>>> dense = np.linalg.svd(conv.matrix((2, 8, 8)).toarray(), compute_uv=False)
>>> bool(np.allclose(s, dense, rtol=0, atol=1e-12 * dense[0]))
True
"""
from .fourier import fft_singular_values
from .lipschitz import (
    LayerFactor,
    LipschitzBound,
    LipschitzReport,
    clip_operator_norm_,
    lipschitz_bound,
    lipschitz_report,
    local_lipschitz,
)
from .plotting import plot_spectrum
from .result import METHODS, SingularValues
from .solvers import condition_number, operator_norm, singular_values
from .weights import reshaped_weight_norm

__all__ = [
    "METHODS",
    "LayerFactor",
    "LipschitzBound",
    "LipschitzReport",
    "SingularValues",
    "clip_operator_norm_",
    "condition_number",
    "fft_singular_values",
    "lipschitz_bound",
    "lipschitz_report",
    "local_lipschitz",
    "operator_norm",
    "plot_spectrum",
    "reshaped_weight_norm",
    "singular_values",
]
