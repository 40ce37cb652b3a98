"""Small ready-made networks; each records the spec it was built from, so checkpoints can
rebuild it (:mod:`matconv.checkpoint`)."""
from __future__ import annotations

import numpy as np

from . import nn

__all__ = ["lenet", "build", "BUILDERS"]


def lenet(in_channels: int = 1, num_classes: int = 10, channels=(32, 64), hidden: int = 128,
          input_size: int = 8, *, lowering: str = "auto", dtype="float32", seed=None):
    """A LeNet-style CNN: (conv 3x3 - ReLU - max pool 2) x 2, then two dense layers.

    Parameters
    ----------
    in_channels, num_classes : int
    channels : tuple of 2 ints
        Output channels of the two convolutions.
    hidden : int
        Width of the hidden dense layer.
    input_size : int
        Height and width of the (square) input; must be divisible by 4.
    lowering : {'auto', 'im2col', 'sparse'}
    dtype : 'float32' or 'float64'
    seed : int, optional
        Seed of the initial weights.

    Examples
    --------
    >>> model = lenet(seed=0)
    >>> model(np.zeros((2, 1, 8, 8), np.float32)).shape
    (2, 10)
    >>> model.spec["builder"]
    'lenet'
    """
    if input_size % 4 or input_size < 4:
        raise ValueError(f"input_size must be a positive multiple of 4, got {input_size}")
    c1, c2 = channels
    rng = np.random.default_rng(seed)
    kw = dict(lowering=lowering, dtype=dtype, rng=rng)
    model = nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * (input_size // 4) ** 2, hidden, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(hidden, num_classes, dtype=dtype, rng=rng))
    model.spec = {"builder": "lenet", "kwargs": dict(
        in_channels=in_channels, num_classes=num_classes, channels=list(channels),
        hidden=hidden, input_size=input_size, lowering=lowering, dtype=str(np.dtype(dtype)))}
    return model


BUILDERS = {"lenet": lenet}


def build(spec: dict):
    """Rebuild a model from its ``spec`` (``{"builder": name, "kwargs": {...}}``).

    >>> model = build(lenet(seed=1, channels=(8, 16)).spec)
    >>> model[0].out_channels, model[3].out_channels
    (8, 16)
    """
    name = spec.get("builder") if isinstance(spec, dict) else None
    if name not in BUILDERS:
        raise ValueError(f"unknown model builder {name!r}; known: {sorted(BUILDERS)}")
    kwargs = dict(spec.get("kwargs", {}))
    if "channels" in kwargs:
        kwargs["channels"] = tuple(kwargs["channels"])
    return BUILDERS[name](**kwargs)
