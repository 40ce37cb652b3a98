"""Containers: :class:`Sequential` (a chain) and :class:`ModuleList` (a list to loop over in a
custom ``forward``), with PyTorch's state-dict keys."""
from __future__ import annotations

import math
import numbers

import numpy as np  # noqa: F401  (doctests)

from ..operators import Identity
from .module import Module

__all__ = ["Sequential", "ModuleList"]


def _check_modules(modules, owner):
    for i, m in enumerate(modules):
        if not isinstance(m, Module):
            raise TypeError(f"{owner} takes Module instances, got {type(m).__name__} at "
                            f"position {i}")
    return list(modules)


class _ModuleSequence(Module):
    """Sub-modules named ``"0"``, ``"1"``, ...: indexing, length, iteration, append."""

    def __init__(self, modules=()):
        super().__init__()
        for i, m in enumerate(_check_modules(modules, type(self).__name__)):
            self.add_module(str(i), m)

    def _items(self) -> list:
        return [m for _, m in self.named_children()]

    def __len__(self):
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def __getitem__(self, index):
        items = self._items()
        if isinstance(index, slice):
            return type(self)(*items[index]) if isinstance(self, Sequential) else \
                type(self)(items[index])
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__} indices must be ints or slices, got "
                            f"{type(index).__name__}")
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of "
                             f"length {len(items)}")
        return items[index]

    def append(self, module: Module):
        """Add a module at the end; returns ``self``."""
        _check_modules([module], type(self).__name__)
        self.add_module(str(len(self)), module)
        return self


class Sequential(_ModuleSequence):
    """A chain of modules, like ``torch.nn.Sequential``.

    ``forward`` runs the modules in order; ``backward`` (every module's) applies the recorded
    operators' transposes in reverse. Parameters are named ``"0.weight"``, ``"0.bias"``,
    ``"3.weight"``, ... so a PyTorch ``Sequential``'s state dict loads unchanged (tensors or
    ``.numpy()`` arrays). A module may appear more than once (its gradients accumulate).

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
        super().__init__(modules)

    _shapes = None

    def forward(self, x):
        shapes = []
        for m in self:
            x = m(x)
            shapes.append(getattr(x, "shape", None))
        self._shapes = shapes
        return x

    def __repr__(self):
        lines = ["Sequential("]
        for i, m in enumerate(self):
            shape = f"  -> {tuple(self._shapes[i])}" if self._shapes and i < len(
                self._shapes) and self._shapes[i] is not None else ""
            lines.append(f"  ({i}): " + repr(m).replace("\n", "\n  ") + shape)
        return "\n".join(lines + [")"])

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for m in self:
            shape = tuple(m.output_shape(shape))
        return shape

    def check_factors(self, input_shape) -> None:
        shape = tuple(input_shape)
        for m in self:
            m.check_factors(shape)
            shape = tuple(m.output_shape(shape))

    def operator(self, input_shape=None):
        """The lazy product of the modules' operators, for a chain of fixed linear maps: no
        forward runs and nothing is built until ``matrix()`` (which estimates first)."""
        from .trace import check_input_shape, fixed_operator

        op, shape = None, check_input_shape(self, input_shape, "operator()")
        for m in self:
            step = fixed_operator(m, shape, self)
            op = step if op is None else step @ op
            shape = tuple(m.output_shape(shape))
        return op if op is not None else Identity(math.prod(shape))


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered, like ``torch.nn.ModuleList``.

    >>> from matconv import nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    >>> len(layers), len(layers.parameters())
    (2, 4)
    """

    def forward(self, *args):
        raise NotImplementedError("ModuleList has no forward: loop over it in your module's "
                                  "forward")
