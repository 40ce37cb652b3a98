"""The bookkeeping half of :class:`~matconv.nn.Module`, like ``torch.nn.Module``'s:
attributes register parameters, buffers and sub-modules; traversal with dotted names; state
dicts with PyTorch's keys and order; train/eval modes; dtype conversion."""
from __future__ import annotations

import numpy as np

from ..layout import float_dtype
from .parameter import IncompatibleKeys, Parameter, StateDictError, check_state_value

__all__ = ["Registry"]


class Registry:
    """Registration, traversal, state and modes; :class:`~matconv.nn.Module` adds calling."""

    training = True

    def __init__(self):
        d = self.__dict__
        d.setdefault("_parameters", {})
        d.setdefault("_buffers", {})
        d.setdefault("_modules", {})
        d.setdefault("_non_persistent", set())

    def _registry(self, name):
        d = self.__dict__
        if name not in d:
            Registry.__init__(self)  # a subclass that forgot super().__init__()
        return d[name]

    # ---- registration, like torch.nn.Module
    def __setattr__(self, name, value):
        params, buffers, modules = (self._registry("_parameters"), self._registry("_buffers"),
                                    self._registry("_modules"))
        for registry in (params, buffers, modules):
            if name in registry and not (registry is params and value is None) \
                    and not (registry is buffers and (value is None
                                                      or isinstance(value, np.ndarray))):
                del registry[name]
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Registry):
            modules[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in params:  # a registered parameter set to None (e.g. no bias)
            params[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            self._registry(registry).pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (or ``None``) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"param must be a Parameter or None, got {type(param).__name__}")
        self._registry("_parameters")[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add non-trainable state (e.g. running statistics) saved in ``state_dict`` unless
        ``persistent=False``.

        >>> from matconv.nn import Module
        >>> m = Module()
        >>> m.register_buffer("running_mean", np.zeros(3))
        >>> list(m.state_dict())
        ['running_mean']
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"buffer {name!r} must be an ndarray or None, got "
                            f"{type(tensor).__name__}")
        self._registry("_buffers")[name] = tensor
        if persistent:
            self._registry("_non_persistent").discard(name)
        else:
            self._registry("_non_persistent").add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module) -> None:
        """Add a sub-module under ``name`` (``Sequential`` uses ``"0"``, ``"1"``, ...)."""
        if module is not None and not isinstance(module, Registry):
            raise TypeError(f"module must be a Module or None, got {type(module).__name__}")
        self._registry("_modules")[str(name)] = module
        object.__setattr__(self, str(name), module)

    # ---- traversal
    def named_children(self):
        """``(name, module)`` of the direct sub-modules, in registration order."""
        for name, m in self._registry("_modules").items():
            if m is not None:
                yield name, m

    def children(self):
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "", memo=None):
        """This module and every sub-module, each once, with dotted names."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(name, Parameter)`` pairs with PyTorch-style dotted names, each parameter once."""
        seen = set()
        mods = self.named_modules() if recurse else [("", self)]
        for mod_name, m in mods:
            for name, p in m._registry("_parameters").items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    full = f"{mod_name}.{name}" if mod_name else name
                    yield prefix + full, p

    def parameters(self, recurse: bool = True) -> list:
        """All trainable :class:`Parameter` objects, in a stable order."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        mods = self.named_modules() if recurse else [("", self)]
        for mod_name, m in mods:
            for name, b in m._registry("_buffers").items():
                if b is not None:
                    yield prefix + (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse: bool = True) -> list:
        return [b for _, b in self.named_buffers(recurse=recurse)]

    # ---- state
    def state_dict(self, prefix: str = "") -> dict:
        """``{name: copy}`` of every parameter and persistent buffer, PyTorch's keys and order.

        A module used twice appears under each of its names, as in PyTorch.
        """
        out = {}
        for name, p in self._registry("_parameters").items():
            if p is not None:
                out[prefix + name] = p.data.copy()
        for name, b in self._registry("_buffers").items():
            if b is not None and name not in self._registry("_non_persistent"):
                out[prefix + name] = b.copy()
        for name, m in self.named_children():
            out.update(m.state_dict(prefix=f"{prefix}{name}."))
        return out

    def _state_targets(self, prefix=""):
        """``{key: (module, kind, name)}`` for every entry ``state_dict`` would write."""
        out = {}
        for name, p in self._registry("_parameters").items():
            if p is not None:
                out[prefix + name] = (self, "param", name)
        for name, b in self._registry("_buffers").items():
            if b is not None and name not in self._registry("_non_persistent"):
                out[prefix + name] = (self, "buffer", name)
        for name, m in self.named_children():
            out.update(m._state_targets(f"{prefix}{name}."))
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (numpy, numbers or torch tensors) into parameters and buffers.

        Values are cast to each target's dtype; shapes must match. With ``strict=True`` the
        keys must match exactly. Nothing is written unless every entry is valid.

        Raises
        ------
        StateDictError
            Missing or unexpected keys (``strict``); a ``ValueError``.
        ValueError
            A shape mismatch.
        TypeError
            A value that is not an array of real numbers (complex, strings, objects, None...).
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict of arrays, got "
                            f"{type(state_dict).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(f"state dict does not match the model: missing keys {missing}, "
                                 f"unexpected keys {unexpected}")
        writes = []
        for key, (module, kind, name) in targets.items():
            if key not in state_dict:
                continue
            value = check_state_value(key, state_dict[key])
            target = getattr(module, name)
            current = target.data if kind == "param" else target
            if value.shape != current.shape:
                raise ValueError(f"shape mismatch for {key!r}: the model has {current.shape}, "
                                 f"the state dict {value.shape}")
            writes.append((current, value))
        for current, value in writes:
            current[...] = value.astype(current.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ---- modes and dtypes
    def train(self, mode: bool = True) -> Registry:
        """Switch training behaviour on (or off with ``mode=False``); returns ``self``."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Registry:
        """Switch to evaluation behaviour; returns ``self``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zero."""
        for p in self.parameters():
            p.zero_grad()

    def to(self, dtype) -> Registry:
        """Cast every parameter (and float buffer) to ``dtype`` in place; returns ``self``."""
        dtype = float_dtype(dtype)
        for p in self.parameters():
            if p.data.dtype != dtype:
                p.data = p.data.astype(dtype)
                p.grad = p.grad.astype(dtype)
        for m in self.modules():
            for name, b in list(m._registry("_buffers").items()):
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    setattr(m, name, b.astype(dtype))
        return self

    def float(self) -> Registry:
        """``to(np.float32)``, like ``torch.nn.Module.float()``."""
        return self.to(np.float32)

    def double(self) -> Registry:
        """``to(np.float64)``, like ``torch.nn.Module.double()``."""
        return self.to(np.float64)
