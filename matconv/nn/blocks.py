"""Ready-made graph modules: residual connections, channel concatenation and WaveNet's gated,
dilated, causal residual stack (van den Oord et al., "WaveNet: A Generative Model for Raw Audio",
2016). Each is an ordinary :class:`Module` whose ``forward`` adds, multiplies, slices and
concatenates layer outputs; the recorded operators make their backward exact."""
from __future__ import annotations

import numbers

import numpy as np

from .activation import ReLU, Sigmoid, Tanh
from .container import ModuleList
from .conv import Conv1d, Conv2d, Conv3d
from .linear import Identity
from .module import Module
from .recorded import cat

__all__ = ["Residual", "ResidualBlock", "Concat", "WaveNetBlock", "WaveNetStack"]

_CONVS = {1: Conv1d, 2: Conv2d, 3: Conv3d}


def _positive(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _conv_class(ndim):
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in _CONVS:
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    return _CONVS[ndim]


class Residual(Module):
    """``y = x + f(x)`` for any module ``f`` that keeps the shape.

    >>> from matconv import nn
    >>> block = Residual(nn.Conv1d(2, 2, 3, padding=1))
    >>> block(np.zeros((1, 2, 5), np.float32)).shape
    (1, 2, 5)
    """

    def __init__(self, fn: Module):
        super().__init__()
        if not isinstance(fn, Module):
            raise TypeError(f"fn must be a Module, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


class ResidualBlock(Module):
    """A ResNet basic block without normalisation: ``relu(x' + conv(relu(conv(x))))``.

    ``x'`` is ``x``, or a 1x1 convolution of it when the channel count or the stride changes
    (He et al., "Deep Residual Learning for Image Recognition", 2016).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default 3 (odd; ``same`` padding)
    stride : int, default 1
    ndim : {1, 2, 3}, default 2
    dtype, rng, lowering : as for the convolutions

    >>> block = ResidualBlock(2, 4, stride=2, dtype=np.float64)
    >>> block(np.zeros((3, 2, 8, 8))).shape
    (3, 4, 4, 4)
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, ndim=2,
                 dtype=np.float32, rng=None, lowering="auto"):
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) \
                or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size!r}")
        conv = _conv_class(ndim)
        kw = dict(dtype=dtype, rng=rng, lowering=lowering)
        pad = kernel_size // 2
        self.conv1 = conv(in_channels, out_channels, kernel_size, stride, pad, **kw)
        self.relu1 = ReLU()
        self.conv2 = conv(out_channels, out_channels, kernel_size, 1, pad, **kw)
        self.shortcut = conv(in_channels, out_channels, 1, stride, **kw) \
            if (in_channels != out_channels or stride != 1) else Identity()
        self.relu2 = ReLU()

    def forward(self, x):
        return self.relu2(self.shortcut(x) + self.conv2(self.relu1(self.conv1(x))))


class Concat(Module):
    """Run several branches on one input and concatenate their outputs along ``dim``
    (channels by default), like an Inception block or a U-Net skip.

    >>> from matconv import nn
    >>> both = Concat(nn.Conv1d(1, 2, 3, padding=1), nn.Identity())
    >>> both(np.zeros((4, 1, 6), np.float32)).shape
    (4, 3, 6)
    """

    def __init__(self, *branches: Module, dim: int = 1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        self.branches = ModuleList(branches)
        self.dim = dim

    def forward(self, x):
        return cat([branch(x) for branch in self.branches], dim=self.dim)


class WaveNetBlock(Module):
    """One gated, dilated, causal residual layer of WaveNet (1-D).

    ``h = conv_dilated(x)`` (causal, ``2C`` channels), ``z = tanh(h[:, :C]) * sigmoid(h[:, C:])``,
    and two 1x1 convolutions of ``z``: the residual output ``x + res(z)`` and the skip output
    ``skip(z)``. ``forward`` returns ``(residual, skip)``.

    >>> block = WaveNetBlock(4, 3, dilation=2, dtype=np.float64)
    >>> res, skip = block(np.zeros((2, 4, 10)))
    >>> res.shape, skip.shape
    ((2, 4, 10), (2, 3, 10))
    """

    def __init__(self, channels, skip_channels, kernel_size=2, dilation=1, *, dtype=np.float32,
                 rng=None, lowering="auto"):
        super().__init__()
        kw = dict(dtype=dtype, rng=rng, lowering=lowering)
        self.channels = _positive("channels", channels)
        _positive("skip_channels", skip_channels)
        self.dilated = Conv1d(channels, 2 * channels, kernel_size, padding="causal",
                              dilation=dilation, **kw)
        self.tanh, self.sigmoid = Tanh(), Sigmoid()
        self.res = Conv1d(channels, channels, 1, **kw)
        self.skip = Conv1d(channels, skip_channels, 1, **kw)

    def forward(self, x):
        h = self.dilated(x)
        c = self.channels
        z = self.tanh(h[:, :c]) * self.sigmoid(h[:, c:])
        return x + self.res(z), self.skip(z)


class WaveNetStack(Module):
    """A stack of :class:`WaveNetBlock` with growing dilations; returns the sum of their skip
    outputs (what WaveNet's output head reads).

    Parameters
    ----------
    channels, skip_channels : int
    dilations : sequence of int, default (1, 2, 4, 8)
    kernel_size : int, default 2

    >>> stack = WaveNetStack(4, 6, dilations=(1, 2), dtype=np.float64)
    >>> stack(np.zeros((1, 4, 12))).shape
    (1, 6, 12)
    """

    def __init__(self, channels, skip_channels, dilations=(1, 2, 4, 8), kernel_size=2, *,
                 dtype=np.float32, rng=None, lowering="auto"):
        super().__init__()
        if not isinstance(dilations, (tuple, list)) or not dilations:
            raise TypeError(f"dilations must be a non-empty tuple of positive ints, got "
                            f"{dilations!r}")
        for d in dilations:
            _positive("dilations", d)
        self.blocks = ModuleList([WaveNetBlock(channels, skip_channels, kernel_size, d,
                                               dtype=dtype, rng=rng, lowering=lowering)
                                  for d in dilations])

    def forward(self, x):
        total = None
        for block in self.blocks:
            x, skip = block(x)
            total = skip if total is None else total + skip
        return total
