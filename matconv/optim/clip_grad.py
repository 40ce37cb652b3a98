"""Gradient clipping, ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..nn.module import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    elif not hasattr(parameters, "__iter__") or isinstance(parameters, (str, dict)):
        raise TypeError(f"parameters must be a Parameter or an iterable of Parameter (e.g. "
                        f"model.parameters()), got {type(parameters).__name__}")
    grads = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters[{i}] must be a Parameter, got {type(p).__name__}")
        grads.append(p.grad)
    return grads


def _real(value, name: str, allowed: str, ok) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not ok(float(value)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    r"""Scale the gradients in place so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector; when it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (total_norm + 1e-6)``
    (PyTorch's formula, so the clipped norm lands just below ``max_norm``).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Whose ``grad`` arrays to clip, e.g. ``model.parameters()``.
    max_norm : float
        The largest allowed norm, ``>= 0``.
    norm_type : float, default 2.0
        The order of the norm: any real ``> 0`` or ``inf`` (the largest absolute entry).
    error_if_nonfinite : bool, default False
        Raise if the total norm is NaN or infinite (otherwise the gradients become NaN, as in
        PyTorch).

    Returns
    -------
    float
        The total norm of the gradients *before* clipping.

    Raises
    ------
    RuntimeError
        With ``error_if_nonfinite=True`` and a non-finite total norm (PyTorch's exception).

    Notes
    -----
    Where it lives: ``matconv.optim.clip_grad_norm_`` (PyTorch has it as
    ``torch.nn.utils.clip_grad_norm_``); call it between ``backward`` and ``optimizer.step()``.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    >>> a.grad[:] = 3.0; b.grad[:] = 4.0
    >>> clip_grad_norm_([a, b], max_norm=1.0)
    5.0
    >>> np.round(np.hypot(a.grad, b.grad), 6)
    array([1.])
    """
    grads = _grads(parameters)
    max_norm = _real(max_norm, "max_norm", "a real number >= 0", lambda v: v >= 0)
    norm_type = _real(norm_type, "norm_type", "a real number > 0 or inf", lambda v: v > 0)
    if not grads:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):    # inf/NaN gradients: as PyTorch
        norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) if g.size else 0.0
                          for g in grads], dtype=np.float64)
        total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite ({total}), so it cannot be clipped. "
                           f"To disable this error and scale the gradients by the non-finite "
                           f"norm anyway, set `error_if_nonfinite=False`")
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    if not coef >= 1.0:
        with np.errstate(invalid="ignore"):
            for g in grads:
                g *= coef
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient entry into ``[-clip_value, clip_value]``, in place.

    Like ``torch.nn.utils.clip_grad_value_``.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> p = Parameter(np.zeros(3)); p.grad[:] = [-5.0, 0.5, 5.0]
    >>> clip_grad_value_(p, 1.0)
    >>> p.grad
    array([-1. ,  0.5,  1. ])
    """
    grads = _grads(parameters)
    clip_value = _real(clip_value, "clip_value", "a real number >= 0", lambda v: v >= 0)
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)
