"""Layers with PyTorch's names and the module protocol of :mod:`matconv.nn.module`."""
from .conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
from .init import manual_seed
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "manual_seed",
           "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
