"""Flat buffers for the optimizers' multi-tensor path, like PyTorch's ``foreach`` path.

Why it exists: updating one parameter at a time costs about ten numpy calls per parameter, and
for a small model (LeNet: 8 arrays, 53k values) the calls' overhead, not the arithmetic,
dominated ``step()``. Here the parameters of a group that share a dtype and a step count form a
:class:`Bucket`: each state buffer (``"exp_avg"``, ...) is one flat array, and every
parameter's ``state[name]`` is a reshaped *view* into it, so ``state_dict()`` and users still
see per-parameter arrays of the parameter's shape. An optimizer's ``_flat_update`` then runs the
same elementwise operations, in the same order, as its per-parameter ``_update``, over the whole
bucket at once: the results are bit-for-bit the same.

A :class:`FlatPlan` is rebuilt (the current state arrays copied in) whenever it no longer fits:
a state array was replaced (``load_state_dict()``, a user), step counts or dtypes diverged, the
group's options need other buffers. Parameters that cannot join a bucket (a ``grad`` of another
dtype than ``data``, a state array of another dtype or shape) take the per-parameter path.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Bucket", "FlatPlan"]


class Bucket:
    """Parameters of one group with the same dtype and layout ``(key, names)``: flat buffers.

    ``key`` is the optimizer's per-parameter state that enters the scalars of the update (the
    step count for Adam); ``names`` are the state buffers, one flat array each in ``buffers``.
    ``grad`` receives the gathered gradients at each step; ``scratch`` is work space.
    """

    def __init__(self, params: list, states: list, key, names: tuple):
        self.params, self.states, self.key, self.names = params, states, key, names
        self.dtype = params[0].data.dtype
        self.shapes = [p.data.shape for p in params]
        ends = np.cumsum([p.data.size for p in params]).tolist()
        self._slices = [slice(a, b) for a, b in zip([0] + ends[:-1], ends)]
        self.grad = np.empty(ends[-1], self.dtype)
        self._scratch: list[np.ndarray] = []
        self._cut: dict[int, list] = {}                # id of a scratch array -> its views
        self.buffers: dict[str, np.ndarray] = {}
        self.state_views: dict[str, list] = {}       # name -> each parameter's view
        for name in names:
            flat = np.zeros(ends[-1], self.dtype)      # a missing buffer starts at zero
            for view, state in zip(self.views(flat), states):
                if state.get(name) is not None:
                    view[...] = state[name]
            self.adopt(name, flat)

    def views(self, flat: np.ndarray) -> list:
        """``flat`` cut into arrays of the parameters' shapes (views, no copies)."""
        return [flat[s].reshape(shape) for s, shape in zip(self._slices, self.shapes)]

    def adopt(self, name: str, flat: np.ndarray) -> None:
        """Make ``flat`` the buffer ``name``: each parameter's ``state[name]`` a view into it."""
        if name not in self.names:
            self.names += (name,)
        self.buffers[name] = flat
        self.state_views[name] = self.views(flat)
        for view, state in zip(self.state_views[name], self.states):
            state[name] = view

    def scratch(self, i: int) -> np.ndarray:
        """Work array number ``i`` (0, 1, ...), allocated once, of the bucket's size and dtype."""
        while len(self._scratch) <= i:
            self._scratch.append(np.empty_like(self.grad))
            self._cut[id(self._scratch[-1])] = self.views(self._scratch[-1])
        return self._scratch[i]

    def gather_grads(self) -> np.ndarray:
        """The parameters' current ``grad`` arrays copied into :attr:`grad`, which is returned."""
        return np.concatenate([p.grad for p in self.params], axis=None, out=self.grad)

    def gather_data(self, out: np.ndarray) -> np.ndarray:
        """The parameters' current ``data`` copied into ``out`` (a scratch array), returned."""
        return np.concatenate([p.data for p in self.params], axis=None, out=out)

    def subtract(self, update: np.ndarray, scale: float | None = None) -> None:
        """``data *= scale`` (if given), then ``data -= update`` for each parameter, in place."""
        views = self._cut.get(id(update)) or self.views(update)
        for p, view in zip(self.params, views):
            if scale is not None:
                p.data *= scale
            p.data -= view


def _bucket_key(optimizer, group: dict, param, state: dict):
    """``(dtype, key, names)`` of the bucket ``param`` may join, or ``None`` (per-parameter)."""
    layout = optimizer._flat_layout(state, group)
    data, grad = param.data, param.grad
    if layout is None or grad.dtype != data.dtype or grad.shape != data.shape:
        return None
    for name in layout[1]:
        buffer = state.get(name)
        if buffer is not None and not (isinstance(buffer, np.ndarray)
                                       and buffer.dtype == data.dtype
                                       and buffer.shape == data.shape):
            return None
    return (data.dtype, *layout)


class FlatPlan:
    """A group's parameters split into buckets and the rest (``single``, per-parameter)."""

    def __init__(self, optimizer, group: dict, params: list, states: list):
        self.params, self.single, members = list(params), [], {}
        for i, (p, state) in enumerate(zip(params, states)):
            key = _bucket_key(optimizer, group, p, state)
            if key is None:
                self.single.append(i)
            else:
                members.setdefault(key, []).append(i)
        self.buckets = [Bucket([params[i] for i in indices], [states[i] for i in indices],
                               key, names)
                        for (_, key, names), indices in members.items()]
        self._indices = list(members.values())

    def fits(self, optimizer, group: dict, params: list, states: list) -> bool:
        """Whether this plan still describes the group: same parameters, buffers, steps.

        Called at every step, so it is one plain loop over the parameters.
        """
        if params != self.params:
            return False
        layout = optimizer._flat_layout
        for bucket, indices in zip(self.buckets, self._indices):
            expected, dtype, views = (bucket.key, bucket.names), bucket.dtype, bucket.state_views
            for k, i in enumerate(indices):
                p, state = params[i], states[i]
                if (state is not bucket.states[k] or layout(state, group) != expected
                        or p.data.dtype != dtype or p.grad.dtype != dtype
                        or p.data.shape != bucket.shapes[k]):
                    return False
                for name in bucket.names:
                    if state.get(name) is not views[name][k]:
                        return False
        for i in self.single:
            if _bucket_key(optimizer, group, params[i], states[i]) is not None:
                return False
        return True
