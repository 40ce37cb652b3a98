"""Optimizers, learning-rate schedulers and gradient clipping with ``torch.optim``'s names.

- :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop` on the :class:`Optimizer` base:
  parameter groups, in-place updates that keep each parameter's dtype, and ``state_dict()`` /
  ``load_state_dict()`` in PyTorch's layout, so optimizer state moves to and from
  ``torch.optim`` (see :mod:`matconv.optim.optimizer`).
- :mod:`matconv.optim.lr_scheduler`: ``StepLR``, ``MultiStepLR``, ``ExponentialLR``,
  ``CosineAnnealingLR``, ``OneCycleLR``.
- :func:`clip_grad_norm_`, :func:`clip_grad_value_` (``torch.nn.utils``'s, here).

Examples
--------
>>> import numpy as np
>>> from matconv.nn.module import Parameter
>>> w = Parameter(np.array([1.0, -2.0]))
>>> opt = SGD([w], lr=0.1)
>>> opt.zero_grad()
>>> w.grad += 2 * w.data          # gradient of sum(w ** 2)
>>> opt.step()
>>> w.data
array([ 0.8, -1.6])
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm_", "clip_grad_value_",
           "lr_scheduler"]
