"""Sequential: forward in order, backward in reverse, PyTorch's state-dict keys."""
from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """A chain of modules, like ``torch.nn.Sequential``.

    ``forward`` runs the modules in order; ``backward`` runs their backwards in reverse, each
    receiving the gradient the next one returned. Parameters are named ``"0.weight"``,
    ``"0.bias"``, ``"3.weight"``, ... so a PyTorch ``Sequential``'s state dict, converted with
    ``.numpy()``, loads unchanged.

    Examples
    --------
    >>> from matconv import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                       nn.Flatten(), nn.Linear(8, 3))
    >>> model(np.zeros((5, 1, 4, 4), np.float32)).shape
    (5, 3)
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '4.weight', '4.bias']
    >>> model.backward(np.ones((5, 3), np.float32)).shape
    (5, 1, 4, 4)
    """

    def __init__(self, *modules):
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Module instances, got {type(m).__name__} at "
                                f"position {i}")
        self._modules = list(modules)
        self._shapes = None

    def forward(self, x):
        shapes = []
        for m in self._modules:
            x = m(x)
            shapes.append(np.shape(x))
        self._shapes = shapes
        return x

    def backward(self, dy):
        for m in reversed(self._modules):
            dy = m.backward(dy)
        return dy

    # ---- container protocol
    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self._modules[index])
        return self._modules[index]

    def append(self, module: Module) -> "Sequential":
        """Add a module at the end; returns ``self``."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential takes Module instances, got {type(module).__name__}")
        self._modules.append(module)
        return self

    # ---- parameters and modes
    def named_parameters(self, prefix: str = ""):
        for i, m in enumerate(self._modules):
            yield from m.named_parameters(f"{prefix}{i}.")

    def train(self, mode: bool = True) -> "Sequential":
        self.training = bool(mode)
        for m in self._modules:
            m.train(mode)
        return self

    def state_dict(self) -> dict:
        """``{name: copy of the parameter's data}`` in PyTorch's key names and order."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters (cast to each parameter's dtype).

        With ``strict=True`` the keys must match exactly; shapes must always match.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"state dict does not match the model: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for name, value in state.items():
            if name not in params:
                continue
            value = np.asarray(value)
            if value.shape != params[name].shape:
                raise ValueError(f"shape mismatch for {name!r}: the model has "
                                 f"{params[name].shape}, the state dict {value.shape}")
        for name, value in state.items():
            if name in params:
                params[name].data[...] = np.asarray(value, dtype=params[name].dtype)

    # ---- the stack as matrices
    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for m in self._modules:
            shape = tuple(m.output_shape(shape))
        return shape

    @property
    def is_linear(self):
        return all(m.is_linear for m in self._modules)

    def matrix(self, input_shape, *, example=0):
        """The product of the modules' matrices (linear stacks; see :func:`matconv.compose`)."""
        from ..compose import compose

        return compose(self, input_shape)

    def support_matrix(self, input_shape):
        from ..compose import compose

        return compose(self, input_shape, support=True)

    def jacobian(self, x):
        """The Jacobian at one example ``x`` of shape ``(C, *spatial)``, as a sparse product of
        every module's matrix (see :func:`matconv.jacobian`)."""
        from ..compose import jacobian

        return jacobian(self, x)

    def __repr__(self):
        lines = ["Sequential("]
        for i, m in enumerate(self._modules):
            shape = f"  -> {tuple(self._shapes[i])}" if self._shapes else ""
            lines.append(f"  ({i}): {m!r}{shape}")
        return "\n".join(lines + [")"])
