r"""Loss functions: ``loss = criterion(pred, target)``, ``dpred = criterion.backward()``.

Each criterion follows the module protocol of :mod:`matconv.nn.module`: ``forward`` keeps what
``backward`` needs in ``self._saved``, and ``backward`` returns an array of ``pred``'s shape and
dtype to feed into the last layer's ``backward``. Names, arguments, values and gradients follow
``torch.nn``'s losses of the same name.

``reduction`` is ``'mean'`` (the default), ``'sum'`` or ``'none'``. With ``'mean'`` or ``'sum'``
the loss is a float and ``backward(grad=1.0)`` takes the gradient flowing into it (a number);
with ``'none'`` the loss is the array of per-element losses and ``backward(grad=None)`` takes
the gradient of that array (same shape; default all ones, i.e. the gradient of their sum).

- regression (float targets of ``pred``'s shape): :class:`MSELoss`, :class:`SquaredError`,
  :class:`L1Loss`, :class:`SmoothL1Loss`, :class:`HuberLoss`;
- binary: :class:`BCELoss` (probabilities), :class:`BCEWithLogitsLoss` (logits);
- classification over axis 1: :class:`NLLLoss` (log-probabilities), :class:`CrossEntropyLoss`
  (logits; class indices or class probabilities).

Examples
--------
>>> import numpy as np
>>> criterion = MSELoss()
>>> float(criterion(np.array([1.0, 2.0]), np.array([1.0, 4.0])))   # (0 + 4) / 2
2.0
>>> criterion.backward()                                            # 2 (pred - target) / 2
array([ 0., -2.])
>>> per_element = MSELoss(reduction="none")
>>> per_element(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
array([0., 4.])
>>> per_element.backward(np.array([1.0, 0.5]))                      # 2 (pred - target) * grad
array([ 0., -2.])
"""
from ._base import REDUCTIONS, Loss
from .binary import BCELoss, BCEWithLogitsLoss
from .classification import CrossEntropyLoss, NLLLoss
from .regression import HuberLoss, L1Loss, MSELoss, SmoothL1Loss, SquaredError

__all__ = ["REDUCTIONS", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss",
           "L1Loss", "Loss", "MSELoss", "NLLLoss", "SmoothL1Loss", "SquaredError"]
