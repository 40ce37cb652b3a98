"""Optimizers with PyTorch's names, arguments and update rules: :class:`SGD` and :class:`Adam`.

An optimizer holds a list of :class:`~matconv.nn.module.Parameter` objects. ``zero_grad()`` clears
their ``grad`` arrays before a backward pass (backward passes *add* to ``grad``), and ``step()``
updates each ``param.data`` in place from its ``grad``: arrays keep their identity and dtype, so a
float32 parameter stays float32 and layers holding a reference to ``data`` see the new values.

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
from __future__ import annotations

import numbers

import numpy as np

from .nn.module import Parameter

__all__ = ["Optimizer", "SGD", "Adam"]


def _check_nonnegative(value, name: str) -> float:
    """``value`` as a float; ``ValueError`` unless it is a real number ``>= 0`` (NaN rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {value!r} "
                        f"({type(value).__name__})")
    if not 0.0 <= value:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _check_betas(betas) -> tuple[float, float]:
    """``betas`` as two floats, each in ``[0, 1)``."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2) with each in [0, 1), "
                         f"got {betas!r}") from None
    for i, beta in enumerate((beta1, beta2)):
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
            raise ValueError(f"betas[{i}] must be a real number in [0, 1), got {beta!r}")
    return float(beta1), float(beta2)


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start += weight * (end - start)`` in place, with ``torch.lerp``'s two-sided formula."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)


class Optimizer:
    """Base class: a list of parameters, one state dict per parameter, ``zero_grad`` and ``step``.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update, e.g. ``model.parameters()``. Must be non-empty and without
        repeats.

    Attributes
    ----------
    params : list of Parameter
        The parameters, in the order given.
    state : list of dict
        Per-parameter buffers (``state[i]`` belongs to ``params[i]``), created by the first
        ``step()``.

    Examples
    --------
    >>> from matconv.nn.module import Parameter
    >>> p = Parameter(np.zeros(2))
    >>> p.grad += 1.0
    >>> opt = Optimizer([p])
    >>> opt.zero_grad()
    >>> p.grad
    array([0., 0.])
    """

    def __init__(self, params):
        if isinstance(params, Parameter) or not hasattr(params, "__iter__"):
            raise TypeError(f"params must be an iterable of Parameter (e.g. model.parameters()), "
                            f"got {type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError("params is an empty list: the optimizer needs at least one "
                             "Parameter (did the model define any?)")
        seen = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a Parameter, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"params[{i}] appears more than once in params; each Parameter "
                                 f"may be listed only once")
            seen.add(id(p))
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zero, in place."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        """Update every ``param.data`` in place from its ``grad``."""
        for p, state in zip(self.params, self.state):
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{p!r} has grad of shape {p.grad.shape}, expected the shape "
                                 f"of its data {p.data.shape}")
            self._update(p.data, p.grad, state)

    def _update(self, data: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params)} parameters)"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update.
    lr : float
        Learning rate, ``>= 0``.
    momentum : float, default 0
        Momentum factor, ``>= 0``; 0 means plain SGD.
    dampening : float, default 0
        Dampening for momentum: the new gradient enters the buffer with weight ``1 - dampening``.
    weight_decay : float, default 0
        L2 penalty, ``>= 0``: ``weight_decay * param`` is added to the gradient.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0`` and ``dampening == 0`` (PyTorch's rule).

    Notes
    -----
    PyTorch's ``torch.optim.SGD`` rule, with :math:`g_t` the gradient at step :math:`t`,
    :math:`\lambda` the weight decay, :math:`\mu` the momentum and :math:`\tau` the dampening:

    .. math::

        g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
        b_1 &= g_1, \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \\
        \theta_t &= \theta_{t-1} - \mathrm{lr} \cdot
            \begin{cases} g_t + \mu b_t & \text{nesterov} \\ b_t & \text{otherwise} \end{cases}

    The buffer starts as the first gradient itself (not dampened), as in PyTorch; with
    ``momentum=0`` there is no buffer and the step is :math:`-\mathrm{lr}\, g_t`.

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
    """

    def __init__(self, params, lr: float, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        self.lr = _check_nonnegative(lr, "lr")
        self.momentum = _check_nonnegative(momentum, "momentum")
        if isinstance(dampening, bool) or not isinstance(dampening, numbers.Real):
            raise TypeError(f"dampening must be a real number, got {dampening!r}")
        self.dampening = float(dampening)
        self.weight_decay = _check_nonnegative(weight_decay, "weight_decay")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        self.nesterov = bool(nesterov)
        super().__init__(params)

    def _update(self, data, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * data
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=data.dtype)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        data -= self.lr * grad

    def __repr__(self) -> str:
        return (f"SGD({len(self.params)} parameters, lr={self.lr}, momentum={self.momentum}, "
                f"dampening={self.dampening}, weight_decay={self.weight_decay}, "
                f"nesterov={self.nesterov})")


class Adam(Optimizer):
    r"""Adam, with PyTorch's bias corrections and L2 weight decay (``torch.optim.Adam``).

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update.
    lr : float, default 1e-3
        Learning rate, ``>= 0``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the running averages of the gradient and its square, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator for stability, ``>= 0``.
    weight_decay : float, default 0
        L2 penalty, ``>= 0``: ``weight_decay * param`` is added to the gradient before the moments
        (``torch.optim.Adam``, not the decoupled decay of ``AdamW``).

    Notes
    -----
    At step :math:`t = 1, 2, \dots`, with :math:`m_0 = v_0 = 0`:

    .. math::

        g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\mathrm{lr}}{1 - \beta_1^t} \cdot
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Note that :math:`\epsilon` is added *after* the bias correction of :math:`\sqrt{v_t}`, as in
    PyTorch.

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

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0):
        self.lr = _check_nonnegative(lr, "lr")
        self.betas = _check_betas(betas)
        self.eps = _check_nonnegative(eps, "eps")
        self.weight_decay = _check_nonnegative(weight_decay, "weight_decay")
        super().__init__(params)

    def _update(self, data, grad, state):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(data), exp_avg_sq=np.zeros_like(data))
        beta1, beta2 = self.betas
        state["step"] += 1
        t = state["step"]
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, grad, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        step_size = self.lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / (1 - beta2 ** t) ** 0.5
        denom += self.eps
        data -= step_size * (m / denom)

    def __repr__(self) -> str:
        return (f"Adam({len(self.params)} parameters, lr={self.lr}, betas={self.betas}, "
                f"eps={self.eps}, weight_decay={self.weight_decay})")
