"""RMSprop, ``torch.optim.RMSprop``'s rule and arguments."""
from __future__ import annotations

import numpy as np

from .adam import lerp_
from .optimizer import Optimizer, check_bool, check_real

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), with PyTorch's momentum and centered variants.

    Parameters
    ----------
    params : iterable of Parameter, or of parameter-group dicts
        The parameters to update (see :class:`~matconv.optim.Optimizer`).
    lr : float, default 1e-2
        Learning rate, ``>= 0``.
    alpha : float, default 0.99
        Smoothing constant of the running average of the squared gradient, ``>= 0``.
    eps : float, default 1e-8
        Added to the denominator, ``>= 0``.
    weight_decay : float, default 0
        L2 penalty, ``>= 0``.
    momentum : float, default 0
        Momentum factor, ``>= 0``.
    centered : bool, default False
        Divide by an estimate of the gradient's variance (subtract the squared running mean).
    maximize : bool, default False, keyword-only
        Ascend instead of descend.

    Notes
    -----
    PyTorch's rule, with :math:`v_0 = 0`, :math:`\bar g_0 = 0`, :math:`b_0 = 0`:

    .. math::

        g_t &\leftarrow g_t + \lambda \theta_{t-1}, \qquad
        v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &= v_t - \bar g_t^2 \ \text{with}\ \bar g_t = \alpha \bar g_{t-1}
            + (1 - \alpha) g_t \ \text{(centered)}, \quad \text{else } \tilde v_t = v_t \\
        b_t &= \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \qquad
        \theta_t = \theta_{t-1} - \mathrm{lr}\, b_t

    (without momentum, :math:`\theta_t = \theta_{t-1} - \mathrm{lr}\, g_t / (\sqrt{\tilde v_t}
    + \epsilon)`). State names as in PyTorch: ``"step"``, ``"square_avg"``,
    ``"momentum_buffer"``, ``"grad_avg"``.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> w = Parameter(np.array([1.0]))
    >>> w.grad += 2.0
    >>> RMSprop([w], lr=0.01, alpha=0.75, eps=0.0).step()   # v = 0.25 * 4, step 0.01 * 2 / 1
    >>> w.data
    array([0.98])
    """

    state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False):
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        self._check_group(dict(defaults))
        super().__init__(params, defaults)

    def _check_group(self, group):
        group["lr"] = check_real(group["lr"], "lr", "Invalid learning rate")
        group["eps"] = check_real(group["eps"], "eps", "Invalid epsilon value")
        group["momentum"] = check_real(group["momentum"], "momentum", "Invalid momentum value")
        group["weight_decay"] = check_real(group["weight_decay"], "weight_decay",
                                           "Invalid weight_decay value")
        group["alpha"] = check_real(group["alpha"], "alpha", "Invalid alpha value")
        group["centered"] = check_bool(group["centered"], "centered")
        group["maximize"] = check_bool(group.get("maximize", False), "maximize")
        return group

    def _update(self, data, grad, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state.update(step=0, square_avg=np.zeros_like(data))
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(data)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (grad * grad)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            data -= group["lr"] * buf
        else:
            data -= group["lr"] * (grad / avg)

    def _flat_layout(self, state, group):
        names = ("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ()) \
            + (("grad_avg",) if group["centered"] else ())
        return None, names                      # the step count does not enter the update

    def _flat_update(self, bucket, group):
        # _update's operations, in its order, over all of the bucket's parameters at once
        alpha, momentum = group["alpha"], group["momentum"]
        grad, tmp, avg = bucket.gather_grads(), bucket.scratch(0), bucket.scratch(1)
        if group["maximize"]:
            np.negative(grad, out=grad)
        for state in bucket.states:
            state["step"] = state.get("step", 0) + 1
        if group["weight_decay"] != 0:
            grad += np.multiply(bucket.gather_data(tmp), group["weight_decay"], out=tmp)
        square_avg = bucket.buffers["square_avg"]
        square_avg *= alpha
        square_avg += np.multiply(np.multiply(grad, grad, out=tmp), 1 - alpha, out=tmp)
        if group["centered"]:
            grad_avg = bucket.buffers["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha, tmp)
            np.sqrt(np.subtract(square_avg, np.multiply(grad_avg, grad_avg, out=tmp), out=tmp),
                    out=avg)
        else:
            np.sqrt(square_avg, out=avg)
        avg += group["eps"]
        if momentum > 0:
            buf = bucket.buffers["momentum_buffer"]
            buf *= momentum
            buf += np.divide(grad, avg, out=tmp)
            bucket.subtract(np.multiply(buf, group["lr"], out=tmp))
        else:
            bucket.subtract(np.multiply(np.divide(grad, avg, out=tmp), group["lr"], out=tmp))
