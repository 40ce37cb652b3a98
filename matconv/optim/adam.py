"""Adam and AdamW, ``torch.optim.Adam``'s and ``torch.optim.AdamW``'s rules and arguments."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_betas, check_bool, check_real

__all__ = ["Adam", "AdamW"]


def lerp_(start: np.ndarray, end: np.ndarray, weight: float,
          scratch: np.ndarray | None = None) -> None:
    """``start += weight * (end - start)`` in place, with ``torch.lerp``'s two-sided formula.

    ``scratch``, an array of ``start``'s shape and dtype, receives the temporaries (no
    allocation); the results are the same with or without it.
    """
    diff = np.subtract(end, start, out=scratch)
    if weight < 0.5:
        start += np.multiply(diff, weight, out=scratch)
    else:
        np.subtract(end, np.multiply(diff, 1.0 - weight, out=scratch), out=start)


class Adam(Optimizer):
    r"""Adam, with PyTorch's bias corrections, L2 weight decay and AMSGrad (``torch.optim.Adam``).

    Parameters
    ----------
    params : iterable of Parameter, or of parameter-group dicts
        The parameters to update (see :class:`~matconv.optim.Optimizer`).
    lr : float, default 1e-3
        Learning rate, ``>= 0``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the running averages of the gradient and its square, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator for stability, ``>= 0``.
    weight_decay : float, default 0
        Weight decay, ``>= 0``: by default an L2 penalty, ``weight_decay * param`` added to the
        gradient before the moments.
    amsgrad : bool, default False
        Divide by the running maximum of the second moment (AMSGrad).
    maximize : bool, default False, keyword-only
        Ascend instead of descend.
    decoupled_weight_decay : bool, default False, keyword-only
        Decay the parameters directly, ``param *= 1 - lr * weight_decay``, before the update
        (AdamW; see :class:`AdamW`).

    Notes
    -----
    At step :math:`t = 1, 2, \dots`, with :math:`m_0 = v_0 = 0`:

    .. math::

        g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\mathrm{lr}}{1 - \beta_1^t} \cdot
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`\hat v_t = v_t`, or :math:`\max_{s \le t} v_s` with ``amsgrad``. The state keeps
    PyTorch's names: ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"`` (:math:`v`) and
    ``"max_exp_avg_sq"``. Note that :math:`\epsilon` is added *after* the bias correction of
    :math:`\sqrt{v_t}`, as in PyTorch.

    Examples
    --------
    The first step moves each parameter by about ``lr`` against the sign of its gradient:

    >>> from matconv.nn.module import Parameter
    >>> w = Parameter(np.array([1.0, 1.0]))
    >>> w.grad += np.array([3.0, -0.5])
    >>> Adam([w], lr=0.1).step()
    >>> np.round(w.data, 6)
    array([0.9, 1.1])
    """

    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        self._check_group(dict(defaults))
        super().__init__(params, defaults)

    def _check_group(self, group):
        group["lr"] = check_real(group["lr"], "lr", "Invalid learning rate")
        group["eps"] = check_real(group["eps"], "eps", "Invalid epsilon value")
        group["betas"] = check_betas(group["betas"])
        group["weight_decay"] = check_real(group["weight_decay"], "weight_decay",
                                           "Invalid weight_decay value")
        for name in ("amsgrad", "maximize", "decoupled_weight_decay"):
            group[name] = check_bool(group.get(name, False), name)
        return group

    def _update(self, data, grad, state, group):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(data), exp_avg_sq=np.zeros_like(data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(data)
        lr, weight_decay = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        lerp_(m, grad, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:      # amsgrad switched on after the first step
                state["max_exp_avg_sq"] = np.zeros_like(data)
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / (1 - beta2 ** t) ** 0.5
        denom += group["eps"]
        data -= step_size * (m / denom)

    def _flat_layout(self, state, group):
        names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        return state.get("step", 0), names

    def _flat_update(self, bucket, group):
        # _update's operations, in its order, over all of the bucket's parameters at once
        lr, weight_decay = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        grad, tmp, denom = bucket.gather_grads(), bucket.scratch(0), bucket.scratch(1)
        if group["maximize"]:
            np.negative(grad, out=grad)
        t = bucket.key + 1
        scale = None                            # decoupled decay: data *= scale, done last
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                scale = 1 - lr * weight_decay
            else:
                grad += np.multiply(bucket.gather_data(tmp), weight_decay, out=tmp)
        m, v = bucket.buffers["exp_avg"], bucket.buffers["exp_avg_sq"]
        lerp_(m, grad, 1 - beta1, tmp)
        v *= beta2
        v += np.multiply(np.multiply(grad, grad, out=tmp), 1 - beta2, out=tmp)
        if group["amsgrad"]:
            v = np.maximum(bucket.buffers["max_exp_avg_sq"], v,
                           out=bucket.buffers["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** t)
        np.divide(np.sqrt(v, out=denom), (1 - beta2 ** t) ** 0.5, out=denom)
        denom += group["eps"]
        bucket.subtract(np.multiply(np.divide(m, denom, out=tmp), step_size, out=tmp), scale)
        bucket.key = t
        for state in bucket.states:
            state["step"] = t


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), ``torch.optim.AdamW``.

    The same arguments as :class:`Adam` with ``weight_decay=0.01`` by default; the decay acts on
    the parameters, :math:`\theta \leftarrow \theta (1 - \mathrm{lr}\,\lambda)`, before the Adam
    step, instead of entering the gradient and its moments.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> w = Parameter(np.array([2.0]))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.step()                        # zero gradient: only the decay acts, 2 * (1 - 0.05)
    >>> w.data
    array([1.9])
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
