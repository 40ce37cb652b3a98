"""The 1cycle policy, :class:`OneCycleLR`."""
from __future__ import annotations

import math

import numpy as np

from ..optimizer import Optimizer
from .base import LRScheduler, per_group, positive_int, real

__all__ = ["OneCycleLR"]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): warm up to ``max_lr``, then anneal far below the start.

    Stepped once per *batch*. The learning rate starts at ``max_lr / div_factor``, rises to
    ``max_lr`` over the first ``pct_start`` of the steps, then falls to ``initial_lr /
    final_div_factor``; the momentum (``momentum``, or ``betas[0]`` for Adam-like optimizers)
    cycles the other way between ``max_momentum`` and ``base_momentum``.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
        The peak learning rate (one per group, or one for all).
    total_steps : int, optional
        The number of steps of the cycle; or give ``epochs`` and ``steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float, default 0.3
        The fraction of the cycle spent increasing the learning rate.
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
        Cycle the momentum; needs an optimizer with ``momentum`` or ``betas`` (PyTorch's rule).
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25
        ``initial_lr = max_lr / div_factor``.
    final_div_factor : float, default 1e4
        ``min_lr = initial_lr / final_div_factor``.
    three_phase : bool, default False
        A third phase: back down to ``initial_lr`` first, then annihilate to ``min_lr``.
    last_epoch : int, default -1

    Notes
    -----
    One difference from PyTorch: a phase of zero length (``pct_start * total_steps == 1``)
    ends at its end value instead of dividing by zero.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> from matconv.optim import Adam
    >>> opt = Adam([Parameter(np.zeros(1))])
    >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    >>> round(sched.get_last_lr()[0], 12), opt.param_groups[0]["betas"][0]
    (0.04, 0.95)
    """

    def __init__(self, optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if total_steps is not None:
            self.total_steps = positive_int(total_steps, "total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (positive_int(epochs, "epochs")
                                * positive_int(steps_per_epoch, "steps_per_epoch"))
        else:
            raise ValueError("You must define either total_steps OR (epochs AND "
                             "steps_per_epoch)")
        pct_start = real(pct_start, "pct_start")
        if pct_start > 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        div_factor = real(div_factor, "div_factor", positive=True)
        final_div_factor = real(final_div_factor, "final_div_factor", positive=True)
        up, total = float(pct_start * self.total_steps), self.total_steps
        phases = [(up - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")]
        if three_phase:
            phases.append((2 * up - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"))
            phases.append((total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"))
        else:
            phases.append((total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"))
        self._schedule_phases = [dict(zip(("end_step", "start_lr", "end_lr", "start_momentum",
                                           "end_momentum"), phase)) for phase in phases]
        max_lrs = per_group(max_lr, "max_lr", optimizer, positive=True)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if not isinstance(cycle_momentum, (bool, np.bool_)):
            raise TypeError(f"cycle_momentum must be True or False, got {cycle_momentum!r}")
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = per_group(max_momentum, "max_momentum", optimizer)
            lows = per_group(base_momentum, "base_momentum", optimizer)
            if last_epoch == -1:
                for high, low, group in zip(highs, lows, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps "
                             f"is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start) if end != start else 1.0
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start = end
            lrs.append(lr)
        return lrs
