"""Small ready-made networks sized to the data; each records the spec it was built from, so
checkpoints can rebuild it (:mod:`matconv.checkpoint`).

- :func:`lenet`: (conv 3x3 - ReLU - max pool 2) x 2, then two dense layers, for images
  ``(C, H, W)`` of any size from 4x4 (square or not);
- :func:`mlp`: dense layers on flattened inputs of any shape;
- :func:`build`: rebuild a model from its validated ``spec``.
"""
from __future__ import annotations

import inspect
import numbers

import numpy as np

from . import nn
from .layout import float_dtype

__all__ = ["BUILDERS", "build", "lenet", "mlp"]

#: the ``lowering`` values a builder accepts
LOWERINGS = ("auto", "im2col", "sparse")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "leaky_relu": nn.LeakyReLU}


# -- argument checks ---------------------------------------------------------------------------

def _positive_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {value!r} "
                        f"({type(value).__name__})")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _int_sequence(value, name: str, length: int | None = None) -> tuple:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of positive ints, got {value!r}")
    items = tuple(value)
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must hold {length} positive ints, got {value!r}")
    return tuple(_positive_int(v, f"{name}[{i}]") for i, v in enumerate(items))


def _seed(seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    return int(seed)


def _dtype_name(dtype) -> str:
    try:
        return str(float_dtype(dtype))
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None


# -- builders ----------------------------------------------------------------------------------

def lenet(in_channels: int = 1, num_classes: int = 10, channels=(32, 64), hidden: int = 128,
          input_size=8, *, lowering: str = "auto", dtype="float32", seed=None):
    """A LeNet-style CNN: (conv 3x3 - ReLU - max pool 2) x 2, then two dense layers.

    Parameters
    ----------
    in_channels, num_classes : int
        Input channels ``C`` of the images ``(N, C, H, W)``, and classes (outputs).
    channels : pair of int
        Output channels of the two convolutions.
    hidden : int
        Width of the hidden dense layer.
    input_size : int or (int, int)
        Height and width of the input, each ``>= 4`` (an int for square images). The
        convolutions keep the size and each pool halves it (rounding down, as PyTorch does), so
        the first dense layer has ``channels[1] * (H // 4) * (W // 4)`` inputs.
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
    >>> wide = lenet(in_channels=3, num_classes=4, input_size=(8, 12), channels=(4, 8))
    >>> wide(np.zeros((1, 3, 8, 12), np.float32)).shape, wide[7].in_features
    ((1, 4), 48)
    """
    in_channels = _positive_int(in_channels, "in_channels")
    num_classes = _positive_int(num_classes, "num_classes")
    c1, c2 = _int_sequence(channels, "channels", 2)
    hidden = _positive_int(hidden, "hidden")
    if isinstance(input_size, numbers.Integral) and not isinstance(input_size, (bool, np.bool_)):
        height = width = _positive_int(input_size, "input_size", 4)
    else:
        height, width = (_positive_int(v, f"input_size[{i}]", 4)
                         for i, v in enumerate(_int_sequence(input_size, "input_size", 2)))
    if not isinstance(lowering, str) or lowering not in LOWERINGS:
        raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
    dtype, seed = _dtype_name(dtype), _seed(seed)
    rng = np.random.default_rng(seed)
    kw = {"lowering": lowering, "dtype": dtype, "rng": rng}
    model = nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * (height // 4) * (width // 4), hidden, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(hidden, num_classes, dtype=dtype, rng=rng))
    size = height if height == width and isinstance(input_size, numbers.Integral) \
        else [height, width]
    model.spec = {"builder": "lenet", "kwargs": {
        "in_channels": in_channels, "num_classes": num_classes, "channels": [c1, c2],
        "hidden": hidden, "input_size": size, "lowering": lowering, "dtype": dtype,
        "seed": seed}}
    return model


def mlp(in_features, num_classes: int = 10, hidden=(128,), *, activation: str = "relu",
        dropout: float = 0.0, dtype="float32", seed=None):
    """A multilayer perceptron on flattened inputs: (Linear - activation [- Dropout]) per hidden
    width, then a Linear to ``num_classes`` outputs.

    Parameters
    ----------
    in_features : int or tuple of int
        Inputs per example, or the shape of one example (e.g. ``(1, 8, 8)``): inputs
        ``(N, *shape)`` are flattened first.
    num_classes : int, default 10
        Outputs (classes, or regression targets).
    hidden : int or sequence of int, default (128,)
        Widths of the hidden layers (``()`` for a single linear layer).
    activation : {'relu', 'tanh', 'sigmoid', 'leaky_relu'}, default 'relu'
    dropout : float in [0, 1), default 0
        Dropout after each activation (none at 0).
    dtype : 'float32' or 'float64'
    seed : int, optional
        Seed of the initial weights and of the dropout masks.

    Examples
    --------
    >>> model = mlp((1, 8, 8), num_classes=10, hidden=(32, 16), seed=0)
    >>> model(np.zeros((5, 1, 8, 8), np.float32)).shape
    (5, 10)
    >>> [type(m).__name__ for m in model]
    ['Flatten', 'Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']
    """
    if isinstance(in_features, numbers.Integral) and not isinstance(in_features, (bool,
                                                                                  np.bool_)):
        features, shape = _positive_int(in_features, "in_features"), int(in_features)
    else:
        shape = list(_int_sequence(in_features, "in_features"))
        if not shape:
            raise ValueError("in_features must be a positive int or a non-empty shape")
        features = int(np.prod(shape))
    num_classes = _positive_int(num_classes, "num_classes")
    widths = (_positive_int(hidden, "hidden"),) if isinstance(hidden, numbers.Integral) \
        and not isinstance(hidden, (bool, np.bool_)) else _int_sequence(hidden, "hidden")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    dtype, seed = _dtype_name(dtype), _seed(seed)
    rng = np.random.default_rng(seed)
    layers = [nn.Flatten()]
    for width in widths:
        layers += [nn.Linear(features, width, dtype=dtype, rng=rng), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout), rng=rng))
        features = width
    layers.append(nn.Linear(features, num_classes, dtype=dtype, rng=rng))
    model = nn.Sequential(*layers)
    model.spec = {"builder": "mlp", "kwargs": {
        "in_features": shape, "num_classes": num_classes, "hidden": list(widths),
        "activation": activation, "dropout": float(dropout), "dtype": dtype, "seed": seed}}
    return model


#: the builders a checkpoint's spec may name
BUILDERS = {"lenet": lenet, "mlp": mlp}


def build(spec: dict):
    """Rebuild a model from its ``spec`` (``{"builder": name, "kwargs": {...}}``).

    The spec is checked before anything is built: a dict with a known ``builder`` and a
    ``kwargs`` dict of that builder's argument names with JSON values (numbers, strings,
    booleans, ``None`` and lists of them); each builder then checks the values.

    Raises
    ------
    ValueError, TypeError
        If the spec is malformed; the message names the entry.

    Examples
    --------
    >>> model = build(lenet(seed=1, channels=(8, 16)).spec)
    >>> model[0].out_channels, model[3].out_channels
    (8, 16)
    >>> build({"builder": "mlp", "kwargs": {"in_features": 4, "hidden": [3]}})[1].out_features
    3
    """
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be a dict {{'builder': name, 'kwargs': {{...}}}}, got "
                        f"{type(spec).__name__}")
    unexpected = sorted(set(spec) - {"builder", "kwargs"})
    if unexpected:
        raise ValueError(f"spec has unexpected keys {unexpected}; allowed: 'builder', 'kwargs'")
    name = spec.get("builder")
    if not isinstance(name, str) or name not in BUILDERS:
        raise ValueError(f"unknown model builder {name!r}; known: {sorted(BUILDERS)}")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise TypeError(f"spec['kwargs'] must be a dict, got {type(kwargs).__name__}")
    allowed = list(inspect.signature(BUILDERS[name]).parameters)
    for key, value in kwargs.items():
        if key not in allowed:
            raise ValueError(f"spec['kwargs'] has {key!r}, which {name}() does not take; "
                             f"allowed: {allowed}")
        if not _json_scalar(value) and not (isinstance(value, list)
                                            and all(_json_scalar(v) for v in value)):
            raise TypeError(f"spec['kwargs'][{key!r}] must be a number, string, boolean, None "
                            f"or a list of those, got {type(value).__name__}")
    return BUILDERS[name](**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in kwargs.items()})


def _json_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
