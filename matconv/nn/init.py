r"""Parameter initialisation with ``torch.nn.init``'s names and formulas, from a seedable generator.

The in-place functions (``uniform_``, ``kaiming_normal_``, ...) fill a
:class:`~matconv.nn.module.Parameter`'s ``data`` or a floating-point ndarray in place, keep its
dtype, and return what they were given. They draw from ``generator=`` (a
``numpy.random.Generator``) or, by default, from the module's generator that
:func:`manual_seed` seeds (as ``torch.manual_seed`` does).

Fans follow PyTorch's ``_calculate_fan_in_and_fan_out`` for a weight of shape
``(out, in, *kernel)``: ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)`` (also for
transposed-convolution weights ``(in, out/groups, *kernel)``, exactly as PyTorch computes them).

Examples
--------
>>> import numpy as np
>>> from matconv import nn
>>> conv = nn.Conv2d(3, 8, 3)
>>> _ = kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu",
...                     generator=np.random.default_rng(0))
>>> _ = zeros_(conv.bias)
>>> conv.weight.dtype, float(abs(conv.bias.data).max())
(dtype('float32'), 0.0)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..memory import check_memory
from .parameter import Parameter

__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "default_rng",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "uniform_",
    "uniform_fan_in",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
    "init_parameter",
]

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator layers draw their initial weights from (like ``torch.manual_seed``).

    >>> manual_seed(0)
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    _rng = np.random.default_rng(int(seed))


def default_rng() -> np.random.Generator:
    """The generator used when a layer is not given ``rng=``."""
    return _rng


def uniform_fan_in(shape, fan_in: int, dtype, rng=None) -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for conv and linear layers.

    (``kaiming_uniform_(a=sqrt(5))`` for the weight and the bias rule both reduce to this bound.)

    >>> w = uniform_fan_in((4, 9), 9, np.float32, np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 1 / 3), w.dtype
    (True, dtype('float32'))
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    rng = _rng if rng is None else rng
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


# -- gains and fans ----------------------------------------------------------------------------

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    r"""The recommended gain for a nonlinearity, PyTorch's table.

    ==========================================  ==========================================
    nonlinearity                                gain
    ==========================================  ==========================================
    linear, conv*d, conv_transpose*d, sigmoid   1
    tanh                                        5/3
    relu                                        :math:`\sqrt 2`
    leaky_relu                                  :math:`\sqrt{2 / (1 + \mathrm{slope}^2)}`
    selu                                        3/4
    ==========================================  ==========================================

    Parameters
    ----------
    nonlinearity : str
    param : float, optional
        The negative slope of ``leaky_relu`` (default 0.01).

    Examples
    --------
    >>> calculate_gain("relu") == 2 ** 0.5, calculate_gain("leaky_relu", 0)
    (True, 1.4142135623730951)
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, np.bool_)) or not isinstance(param, numbers.Real) \
                or not math.isfinite(param):
            raise ValueError(f"negative_slope {param!r} not a valid number (param must be a "
                             f"finite real number for leaky_relu)")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}; allowed: "
                     f"{sorted(_LINEAR + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def _array(tensor, name: str = "tensor") -> np.ndarray:
    """The array to fill in place: a Parameter's ``data`` or a floating-point ndarray."""
    array = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a Parameter or a numpy ndarray, got "
                        f"{type(tensor).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must hold floating-point values to be initialised, got dtype "
                        f"{array.dtype}")
    return array


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``, PyTorch's rule.

    Examples
    --------
    >>> calculate_fan_in_and_fan_out(np.zeros((16, 3, 5, 5)))
    (75, 400)
    """
    array = _array(tensor)
    if array.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {array.shape})")
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def _fan(tensor, mode: str) -> int:
    if not isinstance(mode, str) or mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode!r} not supported, please use one of 'fan_in', 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _generator(generator) -> np.random.Generator:
    if generator is None:
        return _rng
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator (np.random.default_rng"
                        f"(seed)) or None, got {type(generator).__name__}")
    return generator


def _real(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


# -- in-place fills ----------------------------------------------------------------------------

def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with draws from :math:`U(a, b)`, in place; returns ``tensor``.

    Examples
    --------
    >>> w = uniform_(np.empty(1000), -2.0, 2.0, generator=np.random.default_rng(0))
    >>> bool(w.min() >= -2 and w.max() < 2)
    True
    """
    array = _array(tensor)
    a, b = _real(a, "a"), _real(b, "b")
    if a > b:
        raise ValueError(f"uniform_ expects a <= b, got a={a}, b={b}")
    array[...] = _generator(generator).uniform(a, b, size=array.shape)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    r"""Fill with draws from :math:`N(\mathrm{mean}, \mathrm{std}^2)`, in place.

    Examples
    --------
    >>> w = normal_(np.empty(10000), 3.0, 0.5, generator=np.random.default_rng(0))
    >>> round(float(w.mean()), 1), round(float(w.std()), 1)
    (3.0, 0.5)
    """
    array = _array(tensor)
    mean, std = _real(mean, "mean"), _real(std, "std")
    if std < 0:
        raise ValueError(f"normal_ expects std >= 0.0, got std={std}")
    array[...] = _generator(generator).normal(mean, std, size=array.shape)
    return tensor


def constant_(tensor, val: float):
    """Fill with ``val``, in place.

    >>> constant_(np.empty(3), 0.5)
    array([0.5, 0.5, 0.5])
    """
    array = _array(tensor)
    array[...] = _real(val, "val")
    return tensor


def zeros_(tensor):
    """Fill with zeros, in place.

    >>> zeros_(np.ones(2))
    array([0., 0.])
    """
    _array(tensor)[...] = 0
    return tensor


def ones_(tensor):
    """Fill with ones, in place.

    >>> ones_(np.zeros(2, np.float32))
    array([1., 1.], dtype=float32)
    """
    _array(tensor)[...] = 1
    return tensor


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    r"""He et al.'s uniform initialisation: :math:`U(-b, b)`, :math:`b = \mathrm{gain}
    \sqrt{3 / \mathrm{fan}}`, with ``gain = calculate_gain(nonlinearity, a)``.

    Parameters
    ----------
    tensor : Parameter or ndarray, at least 2-D
    a : float, default 0
        The negative slope of the rectifier after this layer (``leaky_relu`` only).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
        Preserve the variance of the forward pass (``fan_in``) or of the backward pass.
    nonlinearity : str, default 'leaky_relu'
        See :func:`calculate_gain`; ``'relu'`` or ``'leaky_relu'`` recommended.
    generator : numpy.random.Generator, optional

    Examples
    --------
    >>> w = kaiming_uniform_(np.empty((64, 27)), nonlinearity="relu",
    ...                      generator=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 27))
    True
    """
    array = _array(tensor)
    if array.size == 0:                 # PyTorch: a no-op on zero-element tensors
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(array, mode))
    bound = math.sqrt(3.0) * std
    array[...] = _generator(generator).uniform(-bound, bound, size=array.shape)
    return tensor


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    r"""He et al.'s normal initialisation: :math:`N(0, \sigma^2)`, :math:`\sigma =
    \mathrm{gain} / \sqrt{\mathrm{fan}}`; arguments as for :func:`kaiming_uniform_`.

    Examples
    --------
    >>> w = kaiming_normal_(np.empty((200, 50)), generator=np.random.default_rng(0))
    >>> round(float(w.std() * np.sqrt(50 / 2)), 1)          # sigma = sqrt(2 / (1 + .01^2) / 50)
    1.0
    """
    array = _array(tensor)
    if array.size == 0:                 # PyTorch: a no-op on zero-element tensors
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(array, mode))
    array[...] = _generator(generator).normal(0.0, std, size=array.shape)
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    r"""Glorot & Bengio's uniform initialisation: :math:`U(-b, b)`, :math:`b = \mathrm{gain}
    \sqrt{6 / (\mathrm{fan\_in} + \mathrm{fan\_out})}`.

    Examples
    --------
    >>> w = xavier_uniform_(np.empty((30, 20)), generator=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 50))
    True
    """
    array = _array(tensor)
    if array.size == 0:                 # PyTorch: a no-op on zero-element tensors
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(array)
    std = _real(gain, "gain") * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    array[...] = _generator(generator).uniform(-bound, bound, size=array.shape)
    return tensor


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    r"""Glorot & Bengio's normal initialisation: :math:`N(0, \sigma^2)`, :math:`\sigma =
    \mathrm{gain} \sqrt{2 / (\mathrm{fan\_in} + \mathrm{fan\_out})}`.

    Examples
    --------
    >>> w = xavier_normal_(np.empty((300, 200)), generator=np.random.default_rng(0))
    >>> round(float(w.std() / np.sqrt(2 / 500)), 1)
    1.0
    """
    array = _array(tensor)
    if array.size == 0:                 # PyTorch: a no-op on zero-element tensors
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(array)
    std = _real(gain, "gain") * math.sqrt(2.0 / float(fan_in + fan_out))
    array[...] = _generator(generator).normal(0.0, std, size=array.shape)
    return tensor


def init_parameter(shape, fan_in: int, dtype, rng, owner: str) -> Parameter:
    """A parameter drawn from PyTorch's default ``U(±1/sqrt(fan_in))``, its size estimated
    against the memory budget first (drawing happens in float64, then the gradient)."""
    n = math.prod(shape)
    check_memory(n * (8 + 2 * np.dtype(dtype).itemsize),
                 f"the parameters of {owner} ({' x '.join(map(str, shape))})",
                 "use fewer channels or features")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    return Parameter(uniform_fan_in(shape, fan_in, dtype, rng))
