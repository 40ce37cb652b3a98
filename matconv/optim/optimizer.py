"""The optimizer base class: parameter groups, per-parameter state and PyTorch's state-dict layout.

An optimizer holds :class:`~matconv.nn.module.Parameter` objects in *parameter groups*, dicts with
a ``"params"`` list and that group's options (``lr``, ``momentum``, ...), as ``torch.optim``
does. ``zero_grad()`` clears the ``grad`` arrays before a backward pass (backward passes *add*
to ``grad``), and ``step()`` updates each ``param.data`` in place from its ``grad``: arrays keep
their identity and dtype, so a float32 parameter stays float32 and layers holding a reference to
``data`` see the new values.

``state_dict()`` / ``load_state_dict()`` use PyTorch's layout, so optimizer state crosses the
border both ways (convert torch tensors with ``.numpy()``, matconv arrays with
``torch.from_numpy``)::

    {"state": {0: {"step": 3, "exp_avg": ndarray, ...}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1, 2]}]}

Parameters are numbered in the order of the groups, then within each group.

``step()`` updates the parameters of a group that share a dtype and a step count together, with
a few numpy calls over one flat array per state buffer instead of about ten calls per parameter
(as PyTorch's ``foreach`` path does; see ``matconv/optim/_flat.py``). Each parameter's state
arrays are then views into those flat arrays; the results are bit for bit those of the
one-parameter-at-a-time rule ``_update``.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from ..nn.module import Parameter
from ._flat import FlatPlan

__all__ = ["Optimizer"]


# -- option checks shared by the optimizers -----------------------------------------------------

def check_real(value, name: str, torch_words: str, *, low: float | None = 0.0,
               below: float | None = None) -> float:
    """``value`` as a finite float in ``[low, below)`` (``None``: no bound at that end).

    The message starts with PyTorch's words for the same condition (``"Invalid learning rate:
    -0.1"``) and then names the argument and what is allowed. Non-finite values are refused.
    """
    if below is not None:
        allowed = f"a real number in [{low:g}, {below:g})"
    else:
        allowed = "a finite real number" + ("" if low is None else f" >= {low:g}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not (math.isfinite(value) and (low is None or low <= value)
            and (below is None or value < below)):
        raise ValueError(f"{torch_words}: {value!r} ({name} must be {allowed})")
    return value


def check_bool(value, name: str) -> bool:
    """``value`` as a bool; ``TypeError`` for anything but ``True``/``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_betas(value) -> tuple[float, float]:
    """``betas`` as a pair of floats, each in ``[0, 1)`` (PyTorch's condition)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), each in [0, 1), got {value!r}")
    return tuple(check_real(b, f"betas[{i}]", f"Invalid beta parameter at index {i}", below=1.0)
                 for i, b in enumerate(value))


def _check_step(value, where: str) -> int:
    """A step count as an int: PyTorch stores it as a float tensor, so integral floats pass."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where} must be a step count (an integer >= 0), got "
                        f"{type(value).__name__}") from None
    if not (number >= 0 and number.is_integer()):
        raise ValueError(f"{where} must be a step count (an integer >= 0), got {value!r}")
    return int(number)


# -- the base class -----------------------------------------------------------------------------

class Optimizer:
    """Base class: parameter groups, one state dict per parameter, ``zero_grad`` and ``step``.

    Parameters
    ----------
    params : iterable of Parameter, of (name, Parameter) pairs, or of dicts
        The parameters to update, e.g. ``model.parameters()``; or parameter groups, dicts with a
        ``"params"`` entry and per-group options that override ``defaults``, e.g.
        ``[{"params": head.parameters(), "lr": 1e-2}, {"params": body.parameters()}]``. Must be
        non-empty, each Parameter listed once.
    defaults : dict, optional
        The options of a group that does not set them.

    Attributes
    ----------
    param_groups : list of dict
        The groups: ``"params"`` (a list of Parameter) and the options. Editing an option (e.g.
        ``group["lr"] = 0.01``) takes effect at the next ``step()``; schedulers do this.
    params : list of Parameter
        Every parameter, in group order.
    state : list of dict
        Per-parameter buffers (``state[i]`` belongs to ``params[i]``), created by the first
        ``step()``, with PyTorch's names (``"momentum_buffer"``, ``"exp_avg"``, ...). Edits in
        place and replaced arrays are both honoured by the next ``step()``; a step that has to
        regroup the flat buffers (after ``load_state_dict()``, say) replaces the arrays, so
        read them from ``state`` rather than keeping them.

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

    #: names of the per-parameter buffers a subclass keeps (checked by ``load_state_dict``)
    state_keys: tuple = ()
    #: update through flat buffers where the subclass supports it (``False``: one parameter at
    #: a time with ``_update``, the reference the flat path is tested against)
    _flat_path: bool = True

    def __init__(self, params, defaults: dict | None = None):
        self.defaults = dict(defaults or {})
        self.param_groups: list[dict] = []
        self.params: list[Parameter] = []
        self.state: list[dict] = []
        self._flat_plans: dict = {}            # group index -> FlatPlan, rebuilt when stale
        if isinstance(params, (Parameter, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(f"params must be an iterable of Parameter or of parameter-group "
                            f"dicts (e.g. model.parameters()), got {type(params).__name__}")
        items = list(params)
        if not items:
            raise ValueError("params is an empty list: the optimizer needs at least one "
                             "Parameter (did the model define any?)")
        if all(isinstance(item, dict) for item in items):
            for group in items:
                self.add_param_group(group)
        else:
            self._add_group({"params": items}, "params")

    # ---- groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group (a dict with ``"params"`` and optional options), like PyTorch's."""
        where = f"param_groups[{len(self.param_groups)}]"
        if not isinstance(param_group, dict):
            raise TypeError(f"{where} must be a dict with a 'params' entry, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{where} has no 'params' entry: a parameter group is a dict "
                             f"{{'params': [...], 'lr': ...}}")
        self._add_group(param_group, f"{where}['params']")

    def _add_group(self, param_group: dict, where: str) -> None:
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (dict, str)) or not hasattr(params, "__iter__"):
            raise TypeError(f"{where} must be a Parameter or an iterable of Parameter, got "
                            f"{type(params).__name__}")
        params, names = list(params), None
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                          for p in params):
            names, params = [n for n, _ in params], [p for _, p in params]
        if not params:
            raise ValueError(f"{where} is empty: each parameter group needs at least one "
                             f"Parameter")
        seen = {id(p) for p in self.params}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{where}[{i}] must be a Parameter, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"{where}[{i}] appears more than once in params; each "
                                 f"Parameter may be listed only once")
            seen.add(id(p))
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        group = self._check_group(group)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        self.param_groups.append(group)
        self.params.extend(params)
        self.state.extend({} for _ in params)

    def _check_group(self, group: dict) -> dict:
        """Validate and normalise a group's options (subclasses check theirs)."""
        return group

    # ---- the update
    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to zero, in place."""
        for p in self.params:
            p.grad[...] = 0

    def step(self, closure=None):
        """Update every ``param.data`` in place from its ``grad``.

        ``closure``, if given, is called first (it re-evaluates the model and returns the loss,
        as in PyTorch); its value is returned.
        """
        loss = closure() if closure is not None else None
        index = 0
        for g, group in enumerate(self.param_groups):
            params = group["params"]
            for p in params:
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"{p!r} has grad of shape {p.grad.shape}, expected the "
                                     f"shape of its data {p.data.shape}")
            states = self.state[index:index + len(params)]
            index += len(params)
            if not self._flat_path:
                for p, state in zip(params, states):
                    self._update(p.data, p.grad, state, group)
                continue
            # The multi-tensor path (see matconv.optim._flat): a few numpy calls per bucket of
            # parameters instead of ~10 per parameter; the same results, bit for bit.
            plan = self._flat_plans.get(g)
            if plan is None or not plan.fits(self, group, params, states):
                plan = self._flat_plans[g] = FlatPlan(self, group, params, states)
            for i in plan.single:
                self._update(params[i].data, params[i].grad, states[i], group)
            for bucket in plan.buckets:
                self._flat_update(bucket, group)
        return loss

    def _update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        """One parameter's update, in place: the reference rule (and the fallback path)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def _flat_layout(self, state: dict, group: dict):
        """``(key, names)`` for the flat path, or ``None`` to update this parameter alone.

        Parameters of a group with equal ``key`` (a hashable part of ``state`` that the update's
        scalars depend on, e.g. the step count) and dtype share a
        :class:`~matconv.optim._flat.Bucket`; ``names`` are the state buffers it keeps flat.
        """
        return None

    def _flat_update(self, bucket, group: dict) -> None:
        """``_update`` for all of ``bucket``'s parameters at once, with the same arithmetic."""
        raise NotImplementedError(f"{type(self).__name__} must implement _flat_update")

    # ---- state dicts in PyTorch's layout
    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's layout (copies, safe to keep).

        Returns
        -------
        dict
            ``{"state": {index: {buffer: ndarray | int}}, "param_groups": [{option: value,
            "params": [index, ...]}]}``; parameters without state yet are left out of
            ``"state"``, as in PyTorch.
        """
        groups, start = [], 0
        for group in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for i, s in enumerate(self.state) if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state saved by :meth:`state_dict` here or by the same ``torch.optim`` class.

        Group options replace this optimizer's (each is validated); buffers are copied into
        arrays of each parameter's dtype and shape. Nothing changes if anything does not fit.

        Raises
        ------
        ValueError, TypeError
            If the layout, the number or sizes of the groups, a buffer name, shape or type does
            not fit; the message names the entry.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(state_dict) if isinstance(state_dict, dict) else \
                type(state_dict).__name__
            raise ValueError(f"state_dict must be a dict with the keys 'state' and "
                             f"'param_groups' (an optimizer's state_dict()), got {got}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, dict):
            raise TypeError("state_dict['param_groups'] must be a list of dicts and "
                            "state_dict['state'] a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups: "
                             f"{len(saved_groups)}, this optimizer has "
                             f"{len(self.param_groups)}")
        new_groups, position = [], {}          # saved parameter index -> our flat index
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise TypeError(f"state_dict['param_groups'][{g}] must be a dict with a "
                                f"'params' list of indices")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: param_groups[{g}] has "
                                 f"{len(saved['params'])} parameters, this optimizer's "
                                 f"{len(group['params'])}")
            for index in saved["params"]:
                if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                    raise TypeError(f"state_dict['param_groups'][{g}]['params'] must hold int "
                                    f"indices, got {index!r}")
                position[int(index)] = len(position)
            options = {k: v for k, v in saved.items() if k != "params"}
            new_groups.append(self._check_group({**group, **options}))
        new_state = [{} for _ in self.params]
        for index, buffers in saved_state.items():
            if isinstance(index, bool) or not isinstance(index, numbers.Integral) \
                    or int(index) not in position:
                raise ValueError(f"state_dict['state'] has the key {index!r}, which names no "
                                 f"parameter of 'param_groups'")
            i = position[int(index)]
            new_state[i] = self._load_buffers(buffers, self.params[i], f"state[{index!r}]")
        for group, new in zip(self.param_groups, new_groups):
            params = group["params"]
            group.clear()
            group.update(new, params=params)
        self.state = new_state

    def _load_buffers(self, buffers, param: Parameter, where: str) -> dict:
        if not isinstance(buffers, dict):
            raise TypeError(f"state_dict[{where!r}] must be a dict of buffers, got "
                            f"{type(buffers).__name__}")
        out = {}
        for name, value in buffers.items():
            if name == "step":
                out[name] = _check_step(value, f"state_dict {where}['step']")
            elif name in self.state_keys:
                if value is None:              # PyTorch's SGD may keep an empty momentum buffer
                    continue
                array = np.asarray(value)
                if array.dtype.kind not in "fiu" or array.shape != param.shape:
                    raise ValueError(f"state_dict {where}[{name!r}] must be a real array of the "
                                     f"parameter's shape {param.shape}, got dtype "
                                     f"{array.dtype}, shape {array.shape}")
                out[name] = np.array(array, dtype=param.dtype)
            else:
                raise ValueError(f"state_dict {where} has the buffer {name!r}; "
                                 f"{type(self).__name__} keeps {('step',) + self.state_keys}")
        return out

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g} ({len(group['params'])} parameters)")
            lines.extend(f"    {k}: {v}" for k, v in group.items()
                         if k not in ("params", "param_names"))
        return "\n".join(lines + [")"])
