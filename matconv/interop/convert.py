"""Models across the border: :func:`from_torch`, :func:`to_torch`, :func:`matrix_of`.

A conversion walks the model: ``Sequential`` containers (nested, their child names kept) and
the layers of :mod:`matconv.interop.kinds`, each rebuilt from its constructor arguments on the
other side, its parameters and buffers copied through ``load_state_dict`` (dtype kept, values
exact), its train/eval mode kept. A module used twice stays one module. Anything else stops the
conversion with an error naming the module's type and its path in the model.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from .kinds import NotConvertible, by_matconv_name, by_torch_name, supported
from .torch_import import require_torch

__all__ = ["from_torch", "to_torch", "matrix_of", "NotConvertible"]

_FLOATS = ("float32", "float64")


def _where(path: str) -> str:
    return f"at '{path}'" if path else "(the model itself)"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _read(module, name):
    value = getattr(module, name)
    return value is not None if name == "bias" else value


def _build(cls, args, path, what):
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{what} cannot rebuild {cls.__name__} {_where(path)}: {exc}") from None


def from_torch(module):
    """The matconv equivalent of a ``torch.nn`` module, with its weights copied.

    Parameters
    ----------
    module : torch.nn.Module
        A supported layer (convolutions and transposed convolutions with every argument,
        ``Linear``, batch/layer/group norm, every pooling and upsampling layer, ``Flatten``,
        ``Dropout``, ``Identity``, the activations) or a ``Sequential`` of them, nested.

    Returns
    -------
    matconv.nn.Module
        In the module's dtype (float32 or float64) and train/eval mode; its ``state_dict()``
        has the same keys and values.

    Raises
    ------
    ImportError
        Without PyTorch (``pip install torch``).
    NotConvertible
        A ``TypeError`` naming the first module that cannot be converted and its path: a layer
        matconv does not have, or a custom ``torch.nn.Module`` subclass, whose ``forward`` is
        arbitrary Python (write it as a ``matconv.nn.Module`` and ``load_state_dict`` its
        weights).

    Examples
    --------
    With PyTorch installed::

        conv = torch.nn.Conv2d(1, 2, 3, stride=2).double()
        ours = from_torch(conv)                  # matconv.nn.Conv2d, float64, same weights
        ours.matrix((1, 5, 5)).shape             # (8, 25): the strided conv's matrix
    """
    torch = require_torch("matconv.from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return _FromTorch(torch).convert(module, "")


class _FromTorch:
    def __init__(self, torch):
        self.torch, self.done = torch, {}

    def convert(self, module, path):
        if id(module) in self.done:
            return self.done[id(module)]
        cls = type(module)
        if cls is self.torch.nn.Sequential:
            ours = nn.Sequential()
            # _modules, not named_children(): that skips a module's second appearance
            for name, child in module._modules.items():
                if child is not None:
                    ours.add_module(name, self.convert(child, _join(path, name)))
        else:
            kind = by_torch_name(cls.__name__) if getattr(self.torch.nn, cls.__name__, None) \
                is cls else None
            if kind is None:
                raise NotConvertible(_unsupported_torch(cls, path))
            args = {name: _read(module, name) for name in kind.args}
            if kind.to_matconv is not None:
                args = kind.to_matconv(args, module)
            if kind.typed:
                args["dtype"] = self._dtype(module, path)
            ours = _build(getattr(nn, kind.name), args, path, "from_torch")
            ours.load_state_dict(module.state_dict())
        ours.training = bool(module.training)
        self.done[id(module)] = ours
        return ours

    def _dtype(self, module, path):
        for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if t.is_floating_point():
                name = str(t.dtype).removeprefix("torch.")
                if name not in _FLOATS:
                    raise TypeError(f"from_torch: {type(module).__name__} {_where(path)} has "
                                    f"dtype {t.dtype}; matconv computes in float32 or float64 "
                                    f"(convert the model with .float() or .double() first)")
                return np.dtype(name)
        return np.dtype(np.float32)


def _unsupported_torch(cls, path) -> str:
    if cls.__module__.startswith("torch.nn"):
        return (f"from_torch cannot convert torch.nn.{cls.__name__} {_where(path)}: matconv has "
                f"no such layer (it converts {supported()})")
    return (f"from_torch cannot convert {cls.__module__}.{cls.__qualname__} {_where(path)}: it "
            f"is a custom torch.nn.Module subclass, and its forward() is arbitrary Python that "
            f"cannot be converted automatically. Write the same module as a matconv.nn.Module "
            f"subclass (the same attribute names, a forward with matconv layers, +, *, slicing "
            f"and matconv.cat) and copy its weights with "
            f"load_state_dict(torch_module.state_dict()); its supported children convert with "
            f"from_torch one by one")


def to_torch(model):
    """The ``torch.nn`` equivalent of a matconv model, with its weights copied.

    The inverse of :func:`from_torch`: the same layers and ``Sequential`` containers, dtype and
    train/eval mode kept, ``state_dict()`` equal key by key. Layers PyTorch has no counterpart
    for (``ChannelMaxPool``, the blocks of :mod:`matconv.nn.blocks`, custom modules, a
    convolution padded unequally on its two sides) raise :class:`NotConvertible` naming the type
    and the path.

    Examples
    --------
    With PyTorch installed::

        model = matconv.nn.Sequential(matconv.nn.Conv2d(1, 2, 3), matconv.nn.ReLU())
        to_torch(model)   # Sequential((0): Conv2d(1, 2, kernel_size=(3, 3), ...), (1): ReLU())
    """
    torch = require_torch("matconv.to_torch")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a matconv.nn.Module, got {type(model).__name__}")
    return _ToTorch(torch).convert(model, "")


class _ToTorch:
    def __init__(self, torch):
        self.torch, self.done = torch, {}

    def convert(self, layer, path):
        if id(layer) in self.done:
            return self.done[id(layer)]
        cls = type(layer)
        if cls is nn.Sequential:
            theirs = self.torch.nn.Sequential(OrderedDict(
                (name, self.convert(child, _join(path, name)))
                for name, child in layer.named_children()))
        else:
            kind = by_matconv_name(cls.__name__) if getattr(nn, cls.__name__, None) is cls \
                else None
            if kind is None:
                raise NotConvertible(f"to_torch cannot convert {cls.__module__}."
                                     f"{cls.__qualname__} {_where(path)}: PyTorch has no "
                                     f"equivalent layer (to_torch converts {supported()})")
            args = {name: _read(layer, name) for name in kind.args}
            if kind.to_torch is not None:
                try:
                    args = kind.to_torch(args, layer)
                except NotConvertible as exc:
                    raise NotConvertible(f"to_torch cannot convert {cls.__name__} "
                                         f"{_where(path)}: {exc}") from None
            if kind.typed:
                args["dtype"] = getattr(self.torch, self._dtype(layer))
            theirs = _build(getattr(self.torch.nn, kind.torch_class), args, path, "to_torch")
            theirs.load_state_dict({key: self.torch.from_numpy(np.array(value))
                                    for key, value in layer.state_dict().items()})
        theirs.training = bool(layer.training)
        self.done[id(layer)] = theirs
        return theirs

    @staticmethod
    def _dtype(layer) -> str:
        for array in [p.data for p in layer.parameters()] + layer.buffers():
            if array.dtype.kind == "f":
                return array.dtype.name
        return "float32"


def matrix_of(torch_module, input_shape):
    """The ``scipy.sparse`` matrix of a PyTorch layer (or of a ``Sequential`` of linear layers)
    for one example of ``input_shape`` ``(C, *spatial)``.

    The module is converted with :func:`from_torch` (it is not changed) and traced: the result
    is the linear map without the bias, ``y = A x + b`` for each example, in the module's
    dtype. A stride, padding mode, groups or a transposed convolution are all in ``A``.

    Raises
    ------
    ValueError
        If the map depends on the input (ReLU, max pooling, batch norm in training mode, ...):
        use ``matconv.jacobian(from_torch(module), x)`` for the Jacobian at a point.

    Examples
    --------
    With PyTorch installed::

        conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
        A = matrix_of(conv, (2, 6, 6))           # scipy.sparse.csr_array of shape (27, 72)
    """
    return from_torch(torch_module).matrix(tuple(input_shape) if isinstance(
        input_shape, (tuple, list)) else input_shape)
