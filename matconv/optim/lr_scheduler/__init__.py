r"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names, arguments and formulas.

A scheduler edits ``group["lr"]`` of its optimizer's parameter groups. Create it after the
optimizer (it records each group's ``"initial_lr"`` and applies the schedule's first value), call
``optimizer.step()`` and then ``scheduler.step()`` once per epoch (or per batch for
:class:`OneCycleLR`). The curves follow PyTorch's *recursive* formulas (each value computed from
the previous ``lr``), so they agree with PyTorch to round-off, and, as in PyTorch, a change made
to ``lr`` from outside carries on through the schedule.

Examples
--------
>>> import numpy as np
>>> from matconv.nn.module import Parameter
>>> from matconv.optim import SGD
>>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(6):
...     lrs.append(sched.get_last_lr()[0])
...     opt.step()
...     sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
"""
from .base import LRScheduler
from .decay import CosineAnnealingLR, ExponentialLR, MultiStepLR, StepLR
from .one_cycle import OneCycleLR

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "MultiStepLR", "OneCycleLR",
           "StepLR"]
