r"""Loss functions: ``loss = criterion(pred, target)`` is a float, ``criterion.backward()`` is
:math:`\partial\,\mathrm{loss} / \partial\,\mathrm{pred}`.

Each criterion follows the module protocol of :mod:`matconv.nn.module`: ``forward`` keeps what
``backward`` needs in ``self._saved``, and ``backward`` (no argument: the loss is the end of the
chain) returns an array of ``pred``'s shape and dtype to feed into the last layer's ``backward``.
Values and gradients match ``torch.nn``'s losses of the same name.

Examples
--------
>>> import numpy as np
>>> criterion = MSELoss()
>>> float(criterion(np.array([1.0, 2.0]), np.array([1.0, 4.0])))   # (0 + 4) / 2
2.0
>>> criterion.backward()                                            # 2 (pred - target) / 2
array([ 0., -2.])
"""
from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["MSELoss", "SquaredError", "CrossEntropyLoss", "NLLLoss", "BCELoss"]

REDUCTIONS = ("mean", "sum")


# -- input checks ------------------------------------------------------------------------------

def _check_pred(pred, what: str = "a floating-point array") -> np.ndarray:
    if not isinstance(pred, np.ndarray):
        raise TypeError(f"pred must be a numpy ndarray ({what}), got {type(pred).__name__}")
    if pred.dtype.kind != "f":
        raise TypeError(f"pred must be a real floating-point array (float32 or float64), got "
                        f"dtype {pred.dtype}; convert with pred.astype(np.float64)")
    return pred


def _check_float_target(target, pred: np.ndarray) -> np.ndarray:
    """``target`` as a float array of ``pred``'s shape, in ``pred``'s dtype."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy ndarray, got {type(target).__name__}")
    if target.dtype.kind != "f":
        raise TypeError(f"target must be a real floating-point array like pred ({pred.dtype}), "
                        f"got dtype {target.dtype}; convert with target.astype(pred.dtype)")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {pred.shape}, got shape "
                         f"{target.shape}")
    return target if target.dtype == pred.dtype else target.astype(pred.dtype)


def _check_class_target(target, pred: np.ndarray, name: str) -> np.ndarray:
    """``target`` as integer class indices of shape ``(N, d1, ...)`` within ``[0, C)``."""
    if pred.ndim < 2:
        raise ValueError(f"{name} expects pred of shape (N, C) or (N, C, d1, ...), got shape "
                         f"{pred.shape}")
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy ndarray of integer class indices, got "
                        f"{type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices (e.g. int64), got dtype "
                        f"{target.dtype}; class-probability targets are not supported")
    expected = pred.shape[:1] + pred.shape[2:]
    if target.shape != expected:
        raise ValueError(f"target must have shape {expected} for pred of shape {pred.shape} "
                         f"(pred without its class axis 1), got shape {target.shape}")
    n_classes = pred.shape[1]
    if n_classes == 0:
        raise ValueError(f"{name} expects at least one class, got pred of shape {pred.shape} "
                         f"with C = pred.shape[1] = 0")
    bad = (target < 0) | (target >= n_classes)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"target holds class index {int(target[where])} at position {where}; "
                         f"allowed are 0 <= index < {n_classes} (C = pred.shape[1])")
    return target


def _check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


class _Loss(Module):
    """Shared parts: the ``reduction`` argument and its scale factor."""

    _records = False  # a criterion ends the chain: its backward takes no gradient

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def _scale(self, pred: np.ndarray, n: int) -> float:
        """``1 / n`` for ``'mean'`` over ``n`` terms, ``1`` for ``'sum'``."""
        if self.reduction == "sum":
            return 1.0
        if n == 0:
            raise ValueError(f"{type(self).__name__}(reduction='mean') got an empty pred of "
                             f"shape {pred.shape}: the mean of no terms is undefined; use "
                             f"reduction='sum'")
        return 1.0 / n

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


# -- regression --------------------------------------------------------------------------------

class MSELoss(_Loss):
    r"""Mean (or summed) squared error, :math:`\frac1n \sum_i (p_i - y_i)^2`.

    Parameters
    ----------
    reduction : {'mean', 'sum'}, default 'mean'
        Average over all ``n = pred.size`` elements, or sum them.

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
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _check_pred(pred)
        target = _check_float_target(target, pred)
        scale = self._scale(pred, pred.size)
        diff = pred - target
        self._saved = (diff, scale)
        return float(np.sum(diff * diff) * scale)

    def backward(self) -> np.ndarray:
        diff, scale = self._need_saved()
        return (2 * scale) * diff


class SquaredError(Module):
    r"""The seed notes' cost :math:`\tfrac12 \lVert y - a \rVert^2`, summed over the batch.

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

    _records = False

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _check_pred(pred)
        target = _check_float_target(target, pred)
        diff = pred - target
        self._saved = diff
        return float(0.5 * np.sum(diff * diff))

    def backward(self) -> np.ndarray:
        return self._need_saved().copy()

    def __repr__(self) -> str:
        return "SquaredError()"


class BCELoss(_Loss):
    r"""Binary cross-entropy on probabilities, with PyTorch's clamp of the logs at -100.

    Parameters
    ----------
    reduction : {'mean', 'sum'}, default 'mean'
        Average over all ``n = pred.size`` elements, or sum them.

    Notes
    -----
    With ``pred`` :math:`p \in [0, 1]` and ``target`` :math:`y` (usually 0 or 1) of the same shape,

    .. math::

        \ell_i = -\bigl[y_i \max(\log p_i, -100) + (1 - y_i) \max(\log(1 - p_i), -100)\bigr],

    so ``p = 0`` or ``1`` gives a finite loss, as in ``torch.nn.BCELoss``. The gradient is
    PyTorch's :math:`(p_i - y_i) / \max\bigl(p_i (1 - p_i), \epsilon\bigr)` with
    :math:`\epsilon` = ``float32(1e-12)``, divided by ``n`` for ``'mean'``; it is finite at
    ``p = 0`` and ``1``. For logits, a sigmoid followed by this loss is less accurate than a fused
    log-sigmoid; feed probabilities that are not saturated where you can.

    Examples
    --------
    >>> criterion = BCELoss()
    >>> round(criterion(np.array([0.5, 0.9]), np.array([1.0, 1.0])), 6)   # -(log .5 + log .9)/2
    0.399254
    >>> np.round(criterion.backward(), 6)
    array([-1.      , -0.555556])
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _check_pred(pred, "of probabilities")
        target = _check_float_target(target, pred)
        if not np.all((pred >= 0) & (pred <= 1)):
            bad = pred[~((pred >= 0) & (pred <= 1))].flat[0]
            raise ValueError(f"BCELoss expects pred to hold probabilities, 0 <= pred <= 1, got "
                             f"{float(bad)!r}; apply a sigmoid first")
        scale = self._scale(pred, pred.size)
        with np.errstate(divide="ignore"):          # log(0) = -inf, clamped to -100 below
            log_p = np.maximum(np.log(pred), -100)
            log_1mp = np.maximum(np.log1p(-pred), -100)
        self._saved = (pred.copy(), target, scale)
        return float(-np.sum(target * log_p + (1 - target) * log_1mp) * scale)

    def backward(self) -> np.ndarray:
        pred, target, scale = self._need_saved()
        eps = pred.dtype.type(np.float32(1e-12))    # PyTorch's EPSILON is the float 1e-12f
        return scale * (pred - target) / np.maximum((1 - pred) * pred, eps)


# -- classification ----------------------------------------------------------------------------

class NLLLoss(_Loss):
    r"""Negative log-likelihood of the target class, given log-probabilities.

    Parameters
    ----------
    reduction : {'mean', 'sum'}, default 'mean'
        Average over the ``n = N * d1 * ...`` targets, or sum them.

    Notes
    -----
    ``forward(pred, target)`` with ``pred`` of shape ``(N, C)`` or ``(N, C, d1, ...)`` holding
    log-probabilities (e.g. a log-softmax output) and ``target`` of shape ``(N,)`` or
    ``(N, d1, ...)`` holding integer class indices in ``[0, C)``:
    :math:`\ell = -\frac1n \sum_k \mathrm{pred}[k, y_k]`. The gradient is :math:`-1/n` at each
    target entry and 0 elsewhere. PyTorch's ``weight`` and ``ignore_index`` are not supported.

    Examples
    --------
    >>> logp = np.log(np.array([[0.5, 0.5], [0.1, 0.9]]))
    >>> criterion = NLLLoss()
    >>> round(criterion(logp, np.array([0, 1])), 6)        # -(log .5 + log .9) / 2
    0.399254
    >>> criterion.backward()
    array([[-0.5,  0. ],
           [ 0. , -0.5]])
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _check_pred(pred, "of log-probabilities")
        target = _check_class_target(target, pred, "NLLLoss")
        scale = self._scale(pred, target.size)
        picked = np.take_along_axis(pred, target[:, None], axis=1)
        self._saved = (pred.shape, pred.dtype, target, scale)
        return float(-np.sum(picked) * scale)

    def backward(self) -> np.ndarray:
        shape, dtype, target, scale = self._need_saved()
        grad = np.zeros(shape, dtype)
        np.put_along_axis(grad, target[:, None], -scale, axis=1)
        return grad


class CrossEntropyLoss(_Loss):
    r"""Softmax cross-entropy on raw logits with integer class targets (log-sum-exp stable).

    Parameters
    ----------
    reduction : {'mean', 'sum'}, default 'mean'
        Average over the ``n = N * d1 * ...`` targets, or sum them.

    Notes
    -----
    ``forward(pred, target)`` with logits ``pred`` of shape ``(N, C)`` or ``(N, C, d1, ...)``
    and ``target`` of shape ``(N,)`` or ``(N, d1, ...)`` holding integer class indices in
    ``[0, C)``. With :math:`z` a row of logits and :math:`m = \max_c z_c`,

    .. math::

        \log \mathrm{softmax}(z)_c = (z_c - m) - \log \sum_{c'} e^{z_{c'} - m}, \qquad
        \ell = -\frac1n \sum_k \log \mathrm{softmax}(z_k)_{y_k},

    which never overflows, even for logits around :math:`10^4`. The gradient is
    :math:`(\mathrm{softmax}(z_k) - \mathrm{onehot}(y_k)) / n`. Equals ``NLLLoss`` applied to a
    log-softmax. PyTorch's ``weight``, ``ignore_index``, ``label_smoothing`` and
    class-probability targets are not supported.

    Examples
    --------
    >>> criterion = CrossEntropyLoss()
    >>> logits = np.array([[0.0, 0.0], [1e4, 0.0]])
    >>> round(criterion(logits, np.array([1, 0])), 6)      # (log 2 + 0) / 2
    0.346574
    >>> criterion.backward()
    array([[ 0.25, -0.25],
           [ 0.  ,  0.  ]])
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        pred = _check_pred(pred, "of logits")
        target = _check_class_target(target, pred, "CrossEntropyLoss")
        scale = self._scale(pred, target.size)
        shifted = pred - np.max(pred, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        picked = np.take_along_axis(log_probs, target[:, None], axis=1)
        self._saved = (log_probs, target, scale)
        return float(-np.sum(picked) * scale)

    def backward(self) -> np.ndarray:
        log_probs, target, scale = self._need_saved()
        grad = np.exp(log_probs)                                   # softmax
        index = target[:, None]
        np.put_along_axis(grad, index, np.take_along_axis(grad, index, axis=1) - 1, axis=1)
        grad *= scale
        return grad
