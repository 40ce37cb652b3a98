"""Layers, losses and the module protocol (``y = m(x)``, ``dx = m.backward(dy)``).

Names, arguments and defaults follow ``torch.nn``; arrays are numpy ``(N, C, *spatial)``.
"""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .init import manual_seed
from .linear import Dropout, Flatten, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss, SquaredError)
from .module import Module, Parameter
from .maxpool import AdaptiveMaxPool2d, ChannelMaxPool, MaxPool1d, MaxPool2d, MaxPool3d
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, AvgPool3d,
                      LPPool1d, LPPool2d)
from .upsample import Upsample

__all__ = [
    "Module", "Parameter", "manual_seed",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "ChannelMaxPool", "Upsample",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Linear", "Flatten", "Dropout", "Sequential",
    "MSELoss", "SquaredError", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
]
