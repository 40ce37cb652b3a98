r"""Binary cross-entropy on probabilities (:class:`BCELoss`) and on logits
(:class:`BCEWithLogitsLoss`)."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ._base import Loss, broadcast_to_pred, check_float_target, check_pred, check_weight

__all__ = ["BCELoss", "BCEWithLogitsLoss"]


class BCELoss(Loss):
    r"""Binary cross-entropy on probabilities, with PyTorch's clamp of the logs at -100.

    Parameters
    ----------
    weight : array_like, optional
        A rescaling weight for each element, broadcast to ``pred``'s shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Average over all ``n = pred.size`` elements, sum them, or return them.

    Notes
    -----
    With ``pred`` :math:`p \in [0, 1]` and ``target`` :math:`y` (usually 0 or 1) of the same shape,

    .. math::

        \ell_i = -w_i \bigl[y_i \max(\log p_i, -100) + (1 - y_i) \max(\log(1 - p_i), -100)\bigr],

    so ``p = 0`` or ``1`` gives a finite loss, as in ``torch.nn.BCELoss``. The gradient is
    PyTorch's :math:`w_i (p_i - y_i) / \max\bigl(p_i (1 - p_i), \epsilon\bigr)` with
    :math:`\epsilon` = ``float32(1e-12)``, divided by ``n`` for ``'mean'``; it is finite at
    ``p = 0`` and ``1``. For logits, use :class:`BCEWithLogitsLoss`, which is more accurate
    than a sigmoid followed by this loss.

    Examples
    --------
    >>> criterion = BCELoss()
    >>> round(criterion(np.array([0.5, 0.9]), np.array([1.0, 1.0])), 6)   # -(log .5 + log .9)/2
    0.399254
    >>> np.round(criterion.backward(), 6)
    array([-1.      , -0.555556])
    """

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = check_weight(weight, "weight")

    def _forward(self, pred, target):
        pred = check_pred(pred, "of probabilities")
        target = check_float_target(target, pred)
        weight = broadcast_to_pred(self.weight, pred, "weight")
        inside = (pred >= 0) & (pred <= 1)
        if not np.all(inside):
            raise ValueError(f"BCELoss expects pred to hold probabilities, 0 <= pred <= 1, got "
                             f"{float(pred[~inside].flat[0])!r}; apply a sigmoid first")
        with np.errstate(divide="ignore"):          # log(0) = -inf, clamped to -100 below
            log_p = np.maximum(np.log(pred), -100)
            log_1mp = np.maximum(np.log1p(-pred), -100)
        loss = -(target * log_p + (1 - target) * log_1mp)
        if weight is not None:
            loss = loss * weight
        return loss, pred.size, (pred.copy(), target, weight)

    def _backward(self, saved, g):
        pred, target, weight = saved
        eps = pred.dtype.type(np.float32(1e-12))    # PyTorch's EPSILON is the float 1e-12f
        grad = g * (pred - target) / np.maximum((1 - pred) * pred, eps)
        return grad if weight is None else grad * weight

    def __repr__(self) -> str:
        return f"BCELoss(weight={self.weight}, reduction={self.reduction!r})"


class BCEWithLogitsLoss(Loss):
    r"""A sigmoid and binary cross-entropy in one stable step, on raw logits.

    Parameters
    ----------
    weight : array_like, optional
        A rescaling weight for each element, broadcast to ``pred``'s shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Average over all ``n = pred.size`` elements, sum them, or return them.
    pos_weight : array_like, optional
        The weight of the positive term, broadcast against ``target`` (so one per class along
        the *last* axis for ``(N, C)`` targets, as in PyTorch); ``> 1`` raises recall.

    Notes
    -----
    With logits :math:`x`, targets :math:`y \in [0, 1]` and :math:`\ell_p = 1 + (p_w - 1) y`,

    .. math::

        \ell = w \bigl[(1 - y)\,x + \ell_p \bigl(\max(-x, 0) + \log(1 + e^{-|x|})\bigr)\bigr]
             = -w \bigl[p_w\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\bigr],

    which never overflows. The gradient is :math:`w\,(\ell_p\, \sigma(x) - p_w\, y)`
    (:math:`w\,(\sigma(x) - y)` without ``pos_weight``), divided by ``n`` for ``'mean'``.

    Examples
    --------
    >>> criterion = BCEWithLogitsLoss()
    >>> round(criterion(np.array([0.0, 1000.0]), np.array([1.0, 1.0])), 6)   # (log 2 + 0) / 2
    0.346574
    >>> criterion.backward()
    array([-0.25,  0.  ])
    """

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.weight = check_weight(weight, "weight")
        self.pos_weight = check_weight(pos_weight, "pos_weight")

    def _forward(self, pred, target):
        pred = check_pred(pred, "of logits")
        target = check_float_target(target, pred)
        weight = broadcast_to_pred(self.weight, pred, "weight")
        pos_weight = broadcast_to_pred(self.pos_weight, pred, "pos_weight")
        softplus = np.maximum(-pred, 0) + np.log1p(np.exp(-np.abs(pred)))   # -log sigmoid(x)
        log_weight = None if pos_weight is None else 1 + (pos_weight - 1) * target
        loss = (1 - target) * pred + (softplus if log_weight is None else log_weight * softplus)
        if weight is not None:
            loss = loss * weight
        return loss, pred.size, (expit(pred), target, weight, pos_weight, log_weight)

    def _backward(self, saved, g):
        sigmoid, target, weight, pos_weight, log_weight = saved
        if pos_weight is None:
            grad = sigmoid - target
        else:
            grad = log_weight * sigmoid - pos_weight * target
        if weight is not None:
            grad = grad * weight
        return grad * g

    def __repr__(self) -> str:
        return (f"BCEWithLogitsLoss(weight={self.weight}, reduction={self.reduction!r}, "
                f"pos_weight={self.pos_weight})")
