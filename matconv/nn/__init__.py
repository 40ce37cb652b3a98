"""Layers, losses and the module protocol (``y = m(x)``, ``dx = m.backward(dy)``).

Names, arguments and defaults follow ``torch.nn``; arrays are numpy ``(N, C, *spatial)``. Custom
networks subclass :class:`Module` and write ``forward`` with layers, ``+``, ``-``, ``*``,
slicing and :func:`cat`; calling one records the operators it applies, and its ``backward`` is
their transpose (see :mod:`matconv.nn.tape`).
"""
from .activation import (ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU,
                         Softmax, Softplus, Tanh)
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .blocks import Concat, Residual, ResidualBlock, WaveNetBlock, WaveNetStack
from .container import ModuleList, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .fractional import FractionalMaxPool2d, FractionalMaxPool3d
from .init import manual_seed
from .linear import Dropout, Flatten, Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss, SquaredError)
from .maxpool import (AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, ChannelMaxPool,
                      MaxPool1d, MaxPool2d, MaxPool3d)
from .module import Module, Parameter
from .normalization import GroupNorm, LayerNorm
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AvgPool1d,
                      AvgPool2d, AvgPool3d, LPPool1d, LPPool2d, LPPool3d)
from .position_bias import PositionBias
from .recorded import cat
from .tape import ForwardRequiredError, no_grad
from .unpool import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d
from .upsample import Upsample

__all__ = [
    "Module", "Parameter", "manual_seed", "cat", "no_grad", "ForwardRequiredError",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "FractionalMaxPool2d", "FractionalMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "ChannelMaxPool", "Upsample",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "GELU", "ELU", "SiLU",
    "Softplus", "Hardtanh",
    "Linear", "Flatten", "Dropout", "Identity", "PositionBias", "Sequential", "ModuleList",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
    "Residual", "ResidualBlock", "Concat", "WaveNetBlock", "WaveNetStack",
    "MSELoss", "SquaredError", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
]
