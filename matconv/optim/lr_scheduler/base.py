"""The scheduler base class, :class:`LRScheduler`, and the argument checks the schedulers
share."""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from ..optimizer import Optimizer

__all__ = ["LRScheduler"]


def positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def real(value, name: str, *, positive: bool = False) -> float:
    kind = "> 0" if positive else ">= 0"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite real number {kind}, got {value!r}")
    return float(value)


def per_group(value, name: str, optimizer: Optimizer, *, positive: bool = False) -> list:
    """One float per parameter group: a list of that length, or one number for every group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. "
                             f"{name} has {len(value)} values, param_groups has {n}.")
        return [real(v, f"{name}[{i}]", positive=positive) for i, v in enumerate(value)]
    return [real(value, name, positive=positive)] * n


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()`` / ``load_state_dict()``.

    Parameters
    ----------
    optimizer : matconv.optim.Optimizer
        Whose learning rates to schedule.
    last_epoch : int, default -1
        The index of the last epoch when resuming; ``-1`` starts afresh. Resuming needs the
        groups' ``"initial_lr"``, which a loaded optimizer state dict brings along.

    Notes
    -----
    Subclasses implement ``get_lr()``: the new learning rate of each group at ``last_epoch``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer (optimizer must "
                            f"be a matconv.optim optimizer)")
        if isinstance(last_epoch, (bool, np.bool_)) or not isinstance(last_epoch,
                                                                      numbers.Integral) \
                or last_epoch < -1:
            raise ValueError(f"last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                     f"when resuming with last_epoch={last_epoch}: load the "
                                     f"optimizer's state dict first, or use last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list:
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr")

    def step(self) -> None:
        """Advance one epoch (or batch) and set each group's ``lr``."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = float(lr)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer, like PyTorch's (copies)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict` of the same class.

        Raises
        ------
        ValueError
            If a key is missing or unknown to this scheduler.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict from {type(self).__name__}.state_dict(), "
                            f"got {type(state_dict).__name__}")
        ours = set(self.__dict__) - {"optimizer"}
        if set(state_dict) != ours:
            raise ValueError(f"state_dict does not fit {type(self).__name__}: missing keys "
                             f"{sorted(ours - set(state_dict))}, unexpected keys "
                             f"{sorted(set(state_dict) - ours)}")
        self.__dict__.update(copy.deepcopy(state_dict))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"
