r"""Regression losses on float targets of ``pred``'s shape: squared, absolute, smooth L1, Huber."""
from __future__ import annotations

import math

import numpy as np

from ._base import Loss, check_float_target, check_pred, check_real

__all__ = ["HuberLoss", "L1Loss", "MSELoss", "SmoothL1Loss", "SquaredError"]


class _Elementwise(Loss):
    """A loss of ``d = pred - target``, element by element; 'mean' divides by ``pred.size``."""

    def _forward(self, pred, target):
        pred = check_pred(pred)
        diff = pred - check_float_target(target, pred)
        return self._value(diff), pred.size, diff


class MSELoss(_Elementwise):
    r"""Mean (or summed) squared error, :math:`\frac1n \sum_i (p_i - y_i)^2`.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Average over all ``n = pred.size`` elements, sum them, or return them.

    Notes
    -----
    ``forward(pred, target)`` with ``pred`` and ``target`` float arrays of the same (any) shape;
    ``backward()`` returns :math:`2 (p - y) / n` (``n = 1`` for ``'sum'``).

    Examples
    --------
    >>> criterion = MSELoss(reduction="sum")
    >>> float(criterion(np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]])))
    5.0
    >>> criterion.backward()
    array([[-2., -4.]])
    >>> MSELoss(reduction="none")(np.array([0.0, 1.0]), np.array([1.0, 3.0]))
    array([1., 4.])
    """

    def _value(self, diff):
        return diff * diff

    def _backward(self, diff, g):
        return diff * (2 * g)


class SquaredError(_Elementwise):
    r"""Kuwajima's memo's cost :math:`\tfrac12 \lVert y - a \rVert^2`, summed over the batch.

    Equals ``0.5 * MSELoss(reduction='sum')``; its gradient is simply ``pred - target``.

    Notes
    -----
    ``forward(pred, target)`` with ``pred`` (the network output :math:`a`) and ``target``
    (:math:`y`) float arrays of the same shape returns
    :math:`\tfrac12 \sum_i (a_i - y_i)^2`; ``backward()`` returns :math:`a - y`.

    Examples
    --------
    >>> criterion = SquaredError()
    >>> float(criterion(np.array([1.0, 2.0]), np.array([0.0, 0.0])))   # (1 + 4) / 2
    2.5
    >>> criterion.backward()
    array([1., 2.])
    """

    def __init__(self):
        super().__init__(reduction="sum")

    def _value(self, diff):
        return 0.5 * (diff * diff)

    def _backward(self, diff, g):
        return diff * g

    def __repr__(self) -> str:
        return "SquaredError()"


class L1Loss(_Elementwise):
    r"""Mean (or summed) absolute error, :math:`\frac1n \sum_i |p_i - y_i|`.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Notes
    -----
    The gradient is :math:`\mathrm{sign}(p - y) / n`, 0 where :math:`p = y` (as in PyTorch).

    Examples
    --------
    >>> criterion = L1Loss()
    >>> float(criterion(np.array([0.0, 1.0, 5.0]), np.array([1.0, 1.0, 2.0])))   # (1 + 0 + 3)/3
    1.3333333333333333
    >>> criterion.backward() * 3
    array([-1.,  0.,  1.])
    """

    def _value(self, diff):
        return np.abs(diff)

    def _backward(self, diff, g):
        return np.sign(diff) * g


class SmoothL1Loss(_Elementwise):
    r"""Squared near zero, absolute beyond ``beta``: ``torch.nn.SmoothL1Loss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    beta : float, default 1.0
        Where the loss turns from quadratic to linear, ``>= 0``; ``beta = 0`` is
        :class:`L1Loss`.

    Notes
    -----
    With :math:`d = p - y`: :math:`\ell = \tfrac12 d^2 / \beta` for :math:`|d| < \beta`, else
    :math:`|d| - \tfrac12 \beta`; the gradient is :math:`d / \beta` clipped to
    :math:`[-1, 1]`.

    Examples
    --------
    >>> criterion = SmoothL1Loss(reduction="none", beta=2.0)
    >>> criterion(np.array([1.0, 3.0]), np.array([0.0, 0.0]))      # 1/4, 3 - 1
    array([0.25, 2.  ])
    >>> criterion.backward()
    array([0.5, 1. ])
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = check_real(beta, "beta", "a finite real number >= 0",
                               lambda v: math.isfinite(v) and v >= 0)

    def _value(self, diff):
        if self.beta == 0:
            return np.abs(diff)
        size = np.abs(diff)
        return np.where(size < self.beta, (0.5 / self.beta) * diff * diff, size - 0.5 * self.beta)

    def _backward(self, diff, g):
        if self.beta == 0:
            return np.sign(diff) * g
        return np.clip(diff / diff.dtype.type(self.beta), -1, 1) * g

    def __repr__(self) -> str:
        return f"SmoothL1Loss(reduction={self.reduction!r}, beta={self.beta})"


class HuberLoss(_Elementwise):
    r"""Squared near zero, ``delta``-scaled absolute beyond ``delta``: ``torch.nn.HuberLoss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    delta : float, default 1.0
        Where the loss turns from quadratic to linear, ``> 0``.

    Notes
    -----
    :math:`\ell = \tfrac12 d^2` for :math:`|d| < \delta`, else
    :math:`\delta (|d| - \tfrac12 \delta)`; equals ``delta * SmoothL1Loss(beta=delta)``. The
    gradient is :math:`d` clipped to :math:`[-\delta, \delta]`.

    Examples
    --------
    >>> criterion = HuberLoss(reduction="none", delta=2.0)
    >>> criterion(np.array([1.0, 3.0]), np.array([0.0, 0.0]))      # 1/2, 2 (3 - 1)
    array([0.5, 4. ])
    >>> criterion.backward()
    array([1., 2.])
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = check_real(delta, "delta", "a finite real number > 0",
                                lambda v: math.isfinite(v) and v > 0)

    def _value(self, diff):
        size = np.abs(diff)
        return np.where(size < self.delta, 0.5 * diff * diff,
                        self.delta * (size - 0.5 * self.delta))

    def _backward(self, diff, g):
        return np.clip(diff, -self.delta, self.delta) * g

    def __repr__(self) -> str:
        return f"HuberLoss(reduction={self.reduction!r}, delta={self.delta})"
