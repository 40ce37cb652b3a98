"""The module protocol: ``y = m(x)``, ``dx = m.backward(dy)``, parameters with ``.grad``.

Every layer in :mod:`matconv.nn` follows it. ``forward`` keeps what ``backward`` needs in one
attribute, ``self._saved``, overwritten by each forward; ``backward`` returns the input gradient
and *adds* parameter gradients to ``param.grad`` (call ``zero_grad()`` between steps, as in
PyTorch).
"""
from __future__ import annotations

import numpy as np

__all__ = ["Parameter", "Module"]


class Parameter:
    """A trainable array and its accumulated gradient.

    Attributes
    ----------
    data : ndarray
        The values; optimizers update it in place, and in-place edits by users are honoured by
        the next forward.
    grad : ndarray
        Same shape and dtype as ``data``; backward passes add to it.

    Examples
    --------
    >>> p = Parameter(np.ones(3))
    >>> p.grad
    array([0., 0., 0.])
    """

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters and sub-modules are found from attributes, in definition order.

    Subclasses implement ``forward(x)`` and ``backward(dy)``.
    """

    training = True
    _saved = None
    #: True when ``matrix()`` does not depend on the data (a fixed linear map)
    is_linear = False

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, input_shape) -> tuple:
        """Shape of one example's output for one example of ``input_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its output shape")

    def matrix(self, input_shape=None, *, example=0):
        """The layer's matrix for one example: its linear map, or (for a data-dependent layer)
        its Jacobian at example ``example`` of the last forward. Sparse CSR."""
        raise NotImplementedError(f"{type(self).__name__} has no matrix form")

    def support_matrix(self, input_shape):
        """Which inputs can reach which outputs (any nonzero marks a path), data-independent.

        Linear layers use their matrix; element-wise layers the identity; max pools the pattern
        of their windows. Receptive fields are read off products of these.
        """
        if self.is_linear:
            return self.matrix(input_shape)
        raise NotImplementedError(f"{type(self).__name__} has no support matrix")

    def _need_saved(self):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): run "
                               f"the forward pass first, backward uses what it saved")
        return self._saved

    def named_parameters(self, prefix: str = ""):
        """Yield ``(name, Parameter)`` pairs with PyTorch-style dotted names."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> list:
        """All trainable :class:`Parameter` objects, in a stable order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zero."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> "Module":
        """Switch training behaviour on (or off with ``mode=False``); returns ``self``."""
        self.training = bool(mode)
        for value in vars(self).values():
            if isinstance(value, Module):
                value.train(mode)
        return self

    def eval(self) -> "Module":
        """Switch to evaluation behaviour; returns ``self``."""
        return self.train(False)
