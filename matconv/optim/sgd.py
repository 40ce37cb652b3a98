"""Stochastic gradient descent, ``torch.optim.SGD``'s rule and arguments."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_bool, check_real

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay.

    Parameters
    ----------
    params : iterable of Parameter, or of parameter-group dicts
        The parameters to update (see :class:`Optimizer`).
    lr : float, default 1e-3
        Learning rate, ``>= 0`` (PyTorch's default).
    momentum : float, default 0
        Momentum factor, ``>= 0``; 0 means plain SGD.
    dampening : float, default 0
        Dampening for momentum: the new gradient enters the buffer with weight ``1 - dampening``.
    weight_decay : float, default 0
        L2 penalty, ``>= 0``: ``weight_decay * param`` is added to the gradient.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0`` and ``dampening == 0`` (PyTorch's rule).
    maximize : bool, default False, keyword-only
        Ascend instead of descend (the gradient's sign is flipped).

    Notes
    -----
    PyTorch's ``torch.optim.SGD`` rule, with :math:`g_t` the gradient at step :math:`t`,
    :math:`\lambda` the weight decay, :math:`\mu` the momentum and :math:`\tau` the dampening:

    .. math::

        g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
        b_1 &= g_1, \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \\
        \theta_t &= \theta_{t-1} - \mathrm{lr} \cdot
            \begin{cases} g_t + \mu b_t & \text{nesterov} \\ b_t & \text{otherwise} \end{cases}

    The buffer (state ``"momentum_buffer"``) starts as the first gradient itself (not
    dampened), as in PyTorch; with ``momentum=0`` there is no buffer and the step is
    :math:`-\mathrm{lr}\, g_t`.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> w = Parameter(np.array([1.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     w.grad += 1.0
    ...     opt.step()
    >>> round(float(w.data[0]), 10)      # 1 - 0.1 * 1 - 0.1 * (0.9 * 1 + 1)
    0.71
    >>> opt.state_dict()["state"][0]["momentum_buffer"]
    array([1.9])
    """

    state_keys = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        self._check_group(dict(defaults))       # argument errors before the params' errors
        super().__init__(params, defaults)

    def _check_group(self, group):
        group["lr"] = check_real(group["lr"], "lr", "Invalid learning rate")
        group["momentum"] = check_real(group["momentum"], "momentum", "Invalid momentum value")
        group["dampening"] = check_real(group["dampening"], "dampening",
                                        "Invalid dampening value", low=None)
        group["weight_decay"] = check_real(group["weight_decay"], "weight_decay",
                                           "Invalid weight_decay value")
        group["nesterov"] = check_bool(group["nesterov"], "nesterov")
        group["maximize"] = check_bool(group.get("maximize", False), "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening "
                             f"(nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r})")
        return group

    def _update(self, data, grad, state, group):
        momentum = group["momentum"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=data.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        data -= group["lr"] * grad

    def _flat_layout(self, state, group):
        if group["momentum"] == 0:              # two numpy calls per parameter: nothing to gain
            return None
        has_buffer = state.get("momentum_buffer") is not None
        return has_buffer, ("momentum_buffer",) if has_buffer else ()

    def _flat_update(self, bucket, group):
        # _update's operations, in its order, over all of the bucket's parameters at once
        momentum = group["momentum"]
        grad, tmp = bucket.gather_grads(), bucket.scratch(0)
        if group["maximize"]:
            np.negative(grad, out=grad)
        if group["weight_decay"] != 0:
            grad += np.multiply(bucket.gather_data(tmp), group["weight_decay"], out=tmp)
        if not bucket.key:                      # the first step: the buffer is the gradient
            buf = grad.copy()
            bucket.adopt("momentum_buffer", buf)
            bucket.key = True
        else:
            buf = bucket.buffers["momentum_buffer"]
            buf *= momentum
            buf += np.multiply(grad, 1 - group["dampening"], out=tmp)
        if group["nesterov"]:
            grad += np.multiply(buf, momentum, out=tmp)
        else:
            grad = buf
        bucket.subtract(np.multiply(grad, group["lr"], out=tmp))
