r"""Classification losses over a class axis 1: :class:`NLLLoss` on log-probabilities and
:class:`CrossEntropyLoss` on logits, with PyTorch's ``weight``, ``ignore_index``,
``label_smoothing`` and class-probability targets."""
from __future__ import annotations

import numbers

import numpy as np

from ._base import Loss, check_pred, check_real, check_weight

__all__ = ["CrossEntropyLoss", "NLLLoss"]


def _check_ignore_index(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {value!r}")
    return int(value)


def _class_weight(weight, pred: np.ndarray) -> np.ndarray | None:
    """The per-class weight in ``pred``'s dtype, checked to have ``C`` entries."""
    if weight is None:
        return None
    n_classes = pred.shape[1]
    if weight.shape != (n_classes,):
        raise ValueError(f"weight must have one entry per class, C = pred.shape[1] = "
                         f"{n_classes}, got shape {weight.shape}")
    return weight.astype(pred.dtype)


def _class_target(target, pred: np.ndarray, name: str, ignore_index: int, probabilities: bool):
    """Check ``target``: integer class indices of shape ``(N, d1, ...)`` within ``[0, C)`` (or
    ``ignore_index``); with ``probabilities``, also a float array of ``pred``'s shape."""
    if pred.ndim < 2:
        raise ValueError(f"{name} expects pred of shape (N, C) or (N, C, d1, ...), got shape "
                         f"{pred.shape}")
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy ndarray of integer class indices, got "
                        f"{type(target).__name__}")
    n_classes = pred.shape[1]
    if n_classes == 0:
        raise ValueError(f"{name} expects at least one class, got pred of shape {pred.shape} "
                         f"with C = pred.shape[1] = 0")
    if probabilities and target.shape == pred.shape and target.ndim > 1:
        if target.dtype.kind != "f":
            raise TypeError(f"target of pred's shape {pred.shape} holds class probabilities and "
                            f"must be a floating-point array, got dtype {target.dtype}")
        if ignore_index >= 0:
            raise ValueError(f"ignore_index is not supported for floating point target "
                             f"(class probabilities), got ignore_index={ignore_index}")
        return target.astype(pred.dtype, copy=False)
    if target.dtype.kind not in "iu":
        extra = " (or class probabilities of pred's shape)" if probabilities else ""
        raise TypeError(f"target must hold integer class indices (e.g. int64){extra}, got "
                        f"dtype {target.dtype}")
    expected = pred.shape[:1] + pred.shape[2:]
    if target.shape != expected:
        raise ValueError(f"target must have shape {expected} for pred of shape {pred.shape} "
                         f"(pred without its class axis 1), got shape {target.shape}")
    bad = ((target < 0) | (target >= n_classes)) & (target != ignore_index)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"target holds class index {int(target[where])} at position {where}; "
                         f"allowed are 0 <= index < {n_classes} (C = pred.shape[1]) or "
                         f"ignore_index={ignore_index}")
    return target


class NLLLoss(Loss):
    r"""Negative log-likelihood of the target class, given log-probabilities.

    Parameters
    ----------
    weight : array_like of shape (C,), optional
        A weight per class.
    ignore_index : int, default -100
        Targets equal to it contribute nothing (neither to the loss nor to the mean's divisor).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'mean'`` divides the sum by the total weight of the non-ignored targets (their count
        without ``weight``), PyTorch's weighted mean.

    Notes
    -----
    ``forward(pred, target)`` with ``pred`` of shape ``(N, C)`` or ``(N, C, d1, ...)`` holding
    log-probabilities (e.g. a log-softmax output) and ``target`` of shape ``(N,)`` or
    ``(N, d1, ...)`` holding integer class indices in ``[0, C)``:
    :math:`\ell_k = -w_{y_k}\, \mathrm{pred}[k, y_k]`. If every target is ignored, ``'mean'`` is
    NaN with a zero gradient, as in PyTorch.

    Examples
    --------
    >>> logp = np.log(np.array([[0.5, 0.5], [0.1, 0.9]]))
    >>> criterion = NLLLoss()
    >>> round(criterion(logp, np.array([0, 1])), 6)        # -(log .5 + log .9) / 2
    0.399254
    >>> criterion.backward()
    array([[-0.5,  0. ],
           [ 0. , -0.5]])
    >>> round(NLLLoss(weight=[1.0, 3.0])(logp, np.array([0, 1])), 6)   # weighted mean: / (1 + 3)
    0.252307
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = check_weight(weight, "weight")
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"weight must be 1-D, one entry per class, got shape "
                             f"{self.weight.shape}")
        self.ignore_index = _check_ignore_index(ignore_index)

    def _setup(self, pred, target, probabilities=False):
        """``(target, valid, safe_target, target_weight, class_weight)``."""
        name = type(self).__name__
        target = _class_target(target, pred, name, self.ignore_index, probabilities)
        weight = _class_weight(self.weight, pred)
        if target.shape == pred.shape and target.ndim > 1 and target.dtype.kind == "f":
            return target, None, None, None, weight
        valid = target != self.ignore_index
        safe = np.where(valid, target, 0)
        target_weight = valid.astype(pred.dtype) if weight is None else \
            np.where(valid, weight[safe], 0).astype(pred.dtype)
        return target, valid, safe, target_weight, weight

    def _forward(self, pred, target):
        pred = check_pred(pred, "of log-probabilities")
        _, valid, safe, target_weight, _ = self._setup(pred, target)
        picked = np.take_along_axis(pred, safe[:, None], axis=1)[:, 0]
        loss = np.where(valid, -picked * target_weight, 0).astype(pred.dtype)
        return loss, np.sum(target_weight), (pred.shape, pred.dtype, safe, target_weight)

    def _backward(self, saved, g):
        shape, dtype, safe, target_weight = saved
        grad = np.zeros(shape, dtype)
        np.put_along_axis(grad, safe[:, None], (-g * target_weight)[:, None], axis=1)
        return grad

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(weight={self.weight}, ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r})")


class CrossEntropyLoss(NLLLoss):
    r"""Softmax cross-entropy on raw logits (log-sum-exp stable), ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : array_like of shape (C,), optional
        A weight per class.
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        With class indices, ``'mean'`` divides by the total weight of the non-ignored targets
        (PyTorch's weighted mean); with class probabilities, by ``N * d1 * ...``.
    label_smoothing : float in [0, 1], default 0
        Mix the target with the uniform distribution: :math:`(1 - \varepsilon)\, y +
        \varepsilon / C`.

    Notes
    -----
    ``forward(pred, target)`` with logits ``pred`` of shape ``(N, C)`` or ``(N, C, d1, ...)``
    and ``target`` either of shape ``(N,)`` / ``(N, d1, ...)`` holding integer class indices in
    ``[0, C)``, or a float array of ``pred``'s shape holding class probabilities. With
    :math:`z` a row of logits and :math:`m = \max_c z_c`,

    .. math::

        \log \mathrm{softmax}(z)_c = (z_c - m) - \log \sum_{c'} e^{z_{c'} - m}, \qquad
        \ell_k = -\sum_c q_{kc} \log \mathrm{softmax}(z_k)_c,

    which never overflows, even for logits around :math:`10^4`. The target distribution is
    :math:`q_{kc} = w_c \bigl((1 - \varepsilon) [c = y_k] + \varepsilon / C\bigr)` for class
    indices (zero for ignored targets) and :math:`w_c ((1 - \varepsilon) p_{kc} +
    \varepsilon / C)` for probabilities. The gradient is
    :math:`(\sum_c q_{kc})\, \mathrm{softmax}(z_k) - q_k`, divided as the value is.

    Examples
    --------
    >>> criterion = CrossEntropyLoss()
    >>> logits = np.array([[0.0, 0.0], [1e4, 0.0]])
    >>> round(criterion(logits, np.array([1, 0])), 6)      # (log 2 + 0) / 2
    0.346574
    >>> criterion.backward()
    array([[ 0.25, -0.25],
           [ 0.  ,  0.  ]])
    >>> CrossEntropyLoss(reduction="none", ignore_index=0)(logits, np.array([1, 0]))
    array([0.69314718, 0.        ])
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = check_real(label_smoothing, "label_smoothing",
                                          "a real number between 0.0 and 1.0",
                                          lambda v: 0 <= v <= 1)

    def _forward(self, pred, target):
        pred = check_pred(pred, "of logits")
        target, valid, safe, target_weight, weight = self._setup(pred, target, True)
        shifted = pred - np.max(pred, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        eps, n_classes = self.label_smoothing, pred.shape[1]
        w = None if weight is None else weight.reshape((1, -1) + (1,) * (pred.ndim - 2))
        if valid is None:                                      # class probabilities
            q = target * (1 - eps) + eps / n_classes if eps > 0 else target
            q = q if w is None else q * w
            loss = -np.sum(q * log_probs, axis=1)
            return loss, loss.size, (log_probs, q)
        picked = np.take_along_axis(log_probs, safe[:, None], axis=1)[:, 0]
        loss = np.where(valid, -picked * target_weight, 0)
        q_scale = None
        if eps > 0:
            smooth = -np.sum(log_probs if w is None else log_probs * w, axis=1)
            loss = (1 - eps) * loss + (eps / n_classes) * np.where(valid, smooth, 0)
            q_scale = (eps / n_classes) * valid.astype(pred.dtype)
        saved = (log_probs, (safe, (1 - eps) * target_weight, q_scale, w))
        return loss.astype(pred.dtype), np.sum(target_weight), saved

    def _backward(self, saved, g):
        log_probs, q = saved
        g = np.expand_dims(g, 1) if isinstance(g, np.ndarray) else g
        if isinstance(q, tuple):                               # class indices: build -g q
            safe, picked_weight, q_scale, w = q
            minus_gq = np.zeros_like(log_probs)
            np.put_along_axis(minus_gq, safe[:, None], -picked_weight[:, None], axis=1)
            if q_scale is not None:
                minus_gq -= np.expand_dims(q_scale, 1) * (1 if w is None else w)
            minus_gq *= g
        else:
            minus_gq = -g * q
        # PyTorch's log-softmax backward: G - softmax * sum(G) over the class axis
        return minus_gq - np.exp(log_probs) * np.sum(minus_gq, axis=1, keepdims=True)

    def __repr__(self) -> str:
        return (f"CrossEntropyLoss(weight={self.weight}, ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing})")
