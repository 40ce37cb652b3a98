"""Schedules that decay the learning rate: by steps, exponentially, or along a cosine."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .base import LRScheduler, positive_int, real

__all__ = ["CosineAnnealingLR", "ExponentialLR", "MultiStepLR", "StepLR"]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, in epochs.
    gamma : float, default 0.1
        Multiplicative factor.
    last_epoch : int, default -1

    Examples
    --------
    See the module docstring.
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch listed in ``milestones``.

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Epoch indices (a milestone listed twice decays twice, as in PyTorch).
    gamma : float, default 0.1
    last_epoch : int, default -1

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> from matconv.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr()[0]); opt.step(); sched.step()
    >>> lrs
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be an iterable of int epochs, got {milestones!r}")
        milestones = list(milestones)
        for m in milestones:
            if isinstance(m, (bool, np.bool_)) or not isinstance(m, numbers.Integral) or m < 0:
                raise ValueError(f"milestones must hold ints >= 0, got {milestones!r}")
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return lrs
        return [lr * self.gamma ** count for lr in lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> from matconv.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = ExponentialLR(opt, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(4):
    ...     lrs.append(sched.get_last_lr()[0]); opt.step(); sched.step()
    >>> lrs
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self._is_initial:
            return lrs
        return [lr * self.gamma for lr in lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial learning rate down to ``eta_min`` over ``T_max``
    epochs (SGDR without restarts; Loshchilov & Hutter).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period, in epochs; past it the rate climbs back, as in PyTorch.
    eta_min : float, default 0
        The lowest learning rate.
    last_epoch : int, default -1

    Notes
    -----
    PyTorch's recursive form, :math:`\eta_t = \eta_{min} + (\eta_{t-1} - \eta_{min})
    \frac{1 + \cos(\pi t / T)}{1 + \cos(\pi (t - 1) / T)}`, which equals the closed form
    :math:`\eta_{min} + \tfrac12 (\eta_0 - \eta_{min})(1 + \cos(\pi t / T))` when nothing else
    changes the rate.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> from matconv.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=2)
    >>> lrs = []
    >>> for epoch in range(3):
    ...     lrs.append(round(sched.get_last_lr()[0], 12)); opt.step(); sched.step()
    >>> lrs
    [1.0, 0.5, 0.0]
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = positive_int(T_max, "T_max")
        self.eta_min = real(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups, t, T, eta_min = self.optimizer.param_groups, self.last_epoch, self.T_max, \
            self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and t > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (group["lr"] - eta_min) + eta_min for group in groups]
