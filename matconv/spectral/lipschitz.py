"""Lipschitz constants of networks, and keeping a layer's operator norm under a bound.

A network ``f = f_L o ... o f_1`` is Lipschitz (in the 2-norm) with constant at most the product of
its layers' constants: the operator norm for a fixed linear map, a closed-form constant for an
activation or a pool (listed in :func:`lipschitz_bound`). That product,
:func:`lipschitz_bound`, is an *upper* bound on the global constant; the norm of the Jacobian at a
point, :func:`local_lipschitz`, is a *lower* bound on it. The ratio of the two, the gap, says how
much the layer-by-layer bound loses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fourier import circular_reason, clip_fourier
from .solvers import operator_norm, singular_values
from ..geometry import as_shape
from .sources import module_kind, leaves

__all__ = [
    "LayerFactor",
    "LipschitzBound",
    "LipschitzReport",
    "clip_operator_norm_",
    "lipschitz_bound",
    "lipschitz_report",
    "local_lipschitz",
]


@dataclass(frozen=True)
class LayerFactor:
    """One layer's factor in :class:`LipschitzBound`: its constant and where it comes from."""

    index: int
    layer: str
    input_shape: tuple
    factor: float
    how: str


@dataclass(frozen=True)
class LipschitzBound:
    """The product of per-layer Lipschitz constants (``float(result)`` is the bound)."""

    bound: float
    factors: tuple

    def __float__(self) -> float:
        return self.bound

    def __str__(self) -> str:
        lines = [f"{'#':>3}  {'layer':<14} {'input':<16} {'factor':>12}  how"]
        for f in self.factors:
            lines.append(f"{f.index:>3}  {f.layer:<14} {f.input_shape!s:<16} "
                         f"{f.factor:>12.6g}  {f.how}")
        lines.append(f"Lipschitz bound (product): {self.bound:.6g}")
        return "\n".join(lines)


@dataclass(frozen=True)
class LipschitzReport:
    """The upper bound, the local constant at a point (a lower bound), and their ratio."""

    bound: LipschitzBound
    local: float

    @property
    def gap(self) -> float:
        """``bound / local`` (``inf`` when the Jacobian at the point is 0)."""
        return self.bound.bound / self.local if self.local > 0 else math.inf

    def __str__(self) -> str:
        return (f"{self.bound}\nlocal Lipschitz constant ||J(x)||: {self.local:.6g}\n"
                f"gap (bound / local): {self.gap:.4g}")


def lipschitz_bound(model, input_shape, *, method="auto", tol=0.0) -> LipschitzBound:
    """An upper bound on the Lipschitz constant of ``model``: the product of its layers'.

    Parameters
    ----------
    model : layer or Sequential (nested too)
        Fixed linear layers (convolutions, transposed convolutions, ``Linear``, average and
        adaptive average pools, ``Upsample``) count with their exact operator norm (bias left
        out: it shifts, it does not stretch); ``Flatten`` and ``Dropout`` in evaluation mode
        with 1; the others with the supremum of their Jacobian's norm: ReLU and Tanh 1;
        LeakyReLU ``max(1, |slope|)``; Sigmoid 1/4; Softmax 1/2 (``diag(p) - p p^T`` has norm at
        most ``max_i 2 p_i (1 - p_i)``, reached at ``p = (1/2, 1/2, 0, ...)``); LogSoftmax
        ``sqrt(n)`` along a dimension of size ``n`` (``I - 1 p^T`` is a projector of norm
        ``sqrt(n) ||p||``); max pooling and even-``p`` LP pooling ``sqrt(m)``, with ``m`` the
        most windows one input cell is in (1 when windows do not overlap); Dropout in training
        mode ``1 / (1 - p)``. Anything else raises ``TypeError`` naming what is supported.
    input_shape : tuple of int
        ``(C, *spatial)`` of one example.
    method, tol
        Passed to :func:`singular_values` for each linear layer.

    Returns
    -------
    LipschitzBound
        ``bound`` and ``factors`` (one :class:`LayerFactor` per layer); print it for a table.

    Examples
    --------
    >>> from matconv import nn
    >>> fc = nn.Linear(2, 2, dtype=np.float64)
    >>> fc.weight.data[...] = [[3.0, 0.0], [0.0, 1.0]]
    >>> lipschitz_bound(nn.Sequential(fc, nn.Sigmoid()), (2,)).bound
    0.75
    """
    shape = as_shape(input_shape, "input_shape")
    factors = []
    for i, m in enumerate(leaves(model)):
        kind = module_kind(m, shape)
        if kind.lipschitz is not None:
            factor, how = kind.lipschitz, kind.note
        else:
            s = singular_values(m, shape, method=method, tol=tol)
            factor, how = float(s[0]), f"operator norm ({s.method}, residual {s.residual:.1e})"
        factors.append(LayerFactor(i, type(m).__name__, shape, float(factor), how))
        shape = tuple(m.output_shape(shape))
    return LipschitzBound(math.prod(f.factor for f in factors), tuple(factors))


def local_lipschitz(model, x, *, method="auto", tol=0.0) -> float:
    """``||J(x)||_2``: the largest singular value of the model's Jacobian at one example ``x``.

    A lower bound on the global Lipschitz constant (the sup of ``||J||`` over all inputs). The
    Jacobian is the sparse product :func:`matconv.jacobian` builds, after one forward in the
    model's current mode (call ``model.eval()`` first if it has dropout).

    Examples
    --------
    >>> from matconv import nn
    >>> fc = nn.Linear(2, 2, bias=False, dtype=np.float64)
    >>> fc.weight.data[...] = [[3.0, 0.0], [0.0, 1.0]]
    >>> local_lipschitz(nn.Sequential(fc, nn.ReLU()), np.array([-1.0, 1.0]))  # ReLU drops row 1
    1.0
    """
    return operator_norm(model, at=np.asarray(x), method=method, tol=tol)


def lipschitz_report(model, x, *, method="auto", tol=0.0) -> LipschitzReport:
    """Both bounds at once: the layer-by-layer product and the local constant at ``x``."""
    x = np.asarray(x)
    return LipschitzReport(lipschitz_bound(model, x.shape, method=method, tol=tol),
                           local_lipschitz(model, x, method=method, tol=tol))


# --------------------------------------------------------------------------- clipping
def _shrink_to(layer, shape, max_norm, tol) -> float:
    """Rescale the weight, if needed, so the operator norm is at most ``max_norm``.

    The computed ``sigma`` may be below the true one (a Ritz value never exceeds it) by up to the
    reported residual, and any SVD that checks the result errs by a few ulps: the target leaves
    room for both, and for the rounding of a float32 weight.
    """
    w = layer.weight.data
    s = singular_values(layer, shape, tol=tol)
    sigma = float(s[0]) * (1.0 + s.residual)
    if sigma <= max_norm:
        return float(s[0])
    margin = 32 * np.finfo(np.float64).eps + 4 * np.finfo(w.dtype).eps
    w *= w.dtype.type(max_norm * (1.0 - margin) / sigma)
    return float(singular_values(layer, shape, tol=tol)[0])


def clip_operator_norm_(layer, input_shape, max_norm, *, method="rescale", iterations=1,
                        tol=0.0) -> float:
    """Change ``layer.weight`` in place so the layer's exact operator norm is at most ``max_norm``.

    Parameters
    ----------
    layer : Conv*d, ConvTranspose*d or Linear
    input_shape : tuple of int
        ``(C, *spatial)`` of one example: the operator norm depends on it.
    max_norm : float
        The bound, > 0.
    method : {'rescale', 'sedghi'}, keyword-only
        ``'rescale'`` multiplies the weight by ``max_norm / sigma_max`` when ``sigma_max`` is
        larger (every singular value shrinks by the same factor). ``'sedghi'`` (circular
        convolutions whose stride divides the input) clips every singular value above
        ``max_norm`` at every frequency and projects the kernel back onto its taps, ``iterations``
        times (Sedghi, Gupta & Long 2019); small singular values are left alone. Since the
        projection can push ``sigma_max`` slightly over the bound, a final rescale follows when
        needed.
    iterations : int, keyword-only
        Clip-and-project rounds for ``'sedghi'``.
    tol : float, keyword-only
        Passed to :func:`singular_values` (0: the guarantee holds to machine precision).

    Returns
    -------
    float
        The layer's operator norm after the change.

    Examples
    --------
    >>> from matconv import nn
    >>> conv = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(0))
    >>> clip_operator_norm_(conv, (2, 6, 6), 0.5) <= 0.5
    True
    """
    kind = module_kind(layer, as_shape(input_shape, "input_shape"))
    if not kind.linear or kind.identity or not hasattr(layer, "weight"):
        raise TypeError(f"clip_operator_norm_ takes a layer with a weight and a fixed linear map "
                        f"(Conv*d, ConvTranspose*d, Linear), got {type(layer).__name__}")
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.floating)) or \
            not 0 < max_norm < math.inf:
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
    if method not in ("rescale", "sedghi"):
        raise ValueError(f"method must be 'rescale' or 'sedghi', got {method!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    shape = as_shape(input_shape, "input_shape")
    layer.output_shape(shape)  # checks input_shape against the layer
    if method == "sedghi":
        from ..nn import Conv1d, Conv2d, Conv3d

        reason = (f"{type(layer).__name__} is not a Conv1d/2d/3d"
                  if not isinstance(layer, (Conv1d, Conv2d, Conv3d))
                  else circular_reason(layer.geometry, shape[1:]))
        if reason is not None:
            raise ValueError(f"method='sedghi' needs a circular convolution: {reason}")
        g = layer.geometry
        w = layer.weight.data
        for _ in range(iterations):
            w[...] = clip_fourier(w, shape[1:], float(max_norm), stride=g.stride,
                                  dilation=g.dilation, groups=g.groups,
                                  padding_before=tuple(p for p, _ in g.padding))
    return _shrink_to(layer, shape, float(max_norm), tol)
