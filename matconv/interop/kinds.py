"""The layers that cross the border, and how each one's constructor arguments are read.

matconv's layers take PyTorch's names, and both keep their constructor arguments as attributes
of those names, so one row per layer says which arguments to read; a few need translating
(matconv keeps padding as per-side pairs, PyTorch's ``AvgPool1d`` has no ``divisor_override``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..geometry import padding_pairs

__all__ = ["Kind", "KINDS", "by_torch_name", "by_matconv_name", "NotConvertible", "supported"]


class NotConvertible(TypeError):
    """A module with no counterpart on the other side (or an argument that has none)."""


@dataclass(frozen=True)
class Kind:
    """One layer on both sides: ``torch_names`` (PyTorch classes read as it), the matconv class
    name, the constructor arguments, whether it takes a ``dtype``, and fix-ups of the arguments
    read from a matconv layer for PyTorch (``to_torch``) and back (``to_matconv``)."""

    torch_names: tuple
    name: str
    args: tuple = ()
    typed: bool = False
    to_torch: object = None
    to_matconv: object = None

    @property
    def torch_class(self) -> str:
        """The PyTorch class a matconv layer becomes (the first of ``torch_names``)."""
        return self.torch_names[0]


def _symmetric(pairs):
    if any(a != b for a, b in pairs):
        return None
    return tuple(a for a, _ in pairs)


def _conv_padding(args, layer):
    """matconv's per-side pairs as PyTorch's ints, or ``'same'`` when that is what they are."""
    pairs = layer.geometry.padding
    ints = _symmetric(pairs)
    if ints is not None:
        args["padding"] = ints
        return args
    g = layer.geometry
    if all(s == 1 for s in g.stride) and pairs == padding_pairs("same", g.ndim, g.kernel_size,
                                                                 g.dilation, g.stride):
        args["padding"] = "same"
        return args
    raise NotConvertible(f"padding {pairs} (per side) has no torch.nn.{type(layer).__name__} "
                         f"equivalent: PyTorch's convolutions pad both sides equally (or "
                         f"'same'); put a torch.nn.ConstantPad{g.ndim}d before a conv "
                         f"without padding")


def _transpose_padding(args, layer):
    args["padding"] = _symmetric(layer.geometry.padding)  # always symmetric for these
    return args


def _pool_ints(args, layer):
    """A per-dim tuple of one value as that int, the form PyTorch's pools are usually given."""
    for name in ("kernel_size", "stride", "padding", "dilation", "output_size"):
        value = args.get(name)
        if isinstance(value, tuple) and value and len(set(value)) == 1 and value[0] is not None:
            args[name] = value[0]
    return args


def _lp_stride(args, layer):
    """PyTorch's LPPool keeps ``stride=None`` for "the kernel size"."""
    if args["stride"] == args["kernel_size"]:
        args["stride"] = None
    return _pool_ints(args, layer)


def _avg1d(args, layer):
    if layer.divisor_override is not None:
        raise NotConvertible("torch.nn.AvgPool1d has no divisor_override; use AvgPool2d with a "
                             "kernel of height 1")
    return _pool_ints(args, layer)


def _softmax_dim(args, module):
    if args["dim"] is None:
        raise NotConvertible(f"{type(module).__name__}(dim=None) uses PyTorch's deprecated "
                             f"implicit dim; give the module an explicit dim")
    return args


def _samples(args, module):
    samples = args["_random_samples"]
    if samples is not None and hasattr(samples, "detach"):
        args["_random_samples"] = samples.detach().cpu().numpy()
    return args


def _torch_samples(args, layer):
    if args["_random_samples"] is not None:
        import torch

        args["_random_samples"] = torch.from_numpy(args["_random_samples"].copy())
    return _pool_ints(args, layer)


CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
        "bias", "padding_mode")
CONV_T = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
          "groups", "bias", "dilation", "padding_mode")
MAX = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
BN = ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias")
FRACTIONAL = ("kernel_size", "output_size", "output_ratio", "return_indices", "_random_samples")

KINDS = [
    *(Kind((f"Conv{n}d",), f"Conv{n}d", CONV, True, _conv_padding) for n in (1, 2, 3)),
    *(Kind((f"ConvTranspose{n}d",), f"ConvTranspose{n}d", CONV_T, True, _transpose_padding)
      for n in (1, 2, 3)),
    Kind(("Linear",), "Linear", ("in_features", "out_features", "bias"), True),
    *(Kind((f"BatchNorm{n}d",), f"BatchNorm{n}d", BN, True) for n in (1, 2, 3)),
    Kind(("LayerNorm",), "LayerNorm", ("normalized_shape", "eps", "elementwise_affine", "bias"),
         True),
    Kind(("GroupNorm",), "GroupNorm", ("num_groups", "num_channels", "eps", "affine", "bias"),
         True),
    *(Kind((f"MaxPool{n}d",), f"MaxPool{n}d", MAX, to_torch=_pool_ints) for n in (1, 2, 3)),
    Kind(("AvgPool1d",), "AvgPool1d", AVG[:-1], to_torch=_avg1d),  # no divisor_override
    *(Kind((f"AvgPool{n}d",), f"AvgPool{n}d", AVG, to_torch=_pool_ints) for n in (2, 3)),
    *(Kind((f"LPPool{n}d",), f"LPPool{n}d", ("norm_type", "kernel_size", "stride", "ceil_mode"),
           to_torch=_lp_stride) for n in (1, 2, 3)),
    *(Kind((f"AdaptiveAvgPool{n}d",), f"AdaptiveAvgPool{n}d", ("output_size",),
           to_torch=_pool_ints) for n in (1, 2, 3)),
    *(Kind((f"AdaptiveMaxPool{n}d",), f"AdaptiveMaxPool{n}d", ("output_size", "return_indices"),
           to_torch=_pool_ints) for n in (1, 2, 3)),
    *(Kind((f"FractionalMaxPool{n}d",), f"FractionalMaxPool{n}d", FRACTIONAL,
           to_torch=_torch_samples, to_matconv=_samples) for n in (2, 3)),
    *(Kind((f"MaxUnpool{n}d",), f"MaxUnpool{n}d", ("kernel_size", "stride", "padding"),
           to_torch=_pool_ints) for n in (1, 2, 3)),
    Kind(("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"), "Upsample",
         ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")),
    Kind(("Flatten",), "Flatten", ("start_dim", "end_dim")),
    Kind(("Dropout",), "Dropout", ("p",)),
    Kind(("Identity",), "Identity"),
    Kind(("ReLU",), "ReLU"),
    Kind(("LeakyReLU",), "LeakyReLU", ("negative_slope",)),
    Kind(("Sigmoid",), "Sigmoid"),
    Kind(("Tanh",), "Tanh"),
    Kind(("Softmax",), "Softmax", ("dim",), to_matconv=_softmax_dim),
    Kind(("LogSoftmax",), "LogSoftmax", ("dim",), to_matconv=_softmax_dim),
    Kind(("GELU",), "GELU", ("approximate",)),
    Kind(("ELU",), "ELU", ("alpha",)),
    Kind(("SiLU",), "SiLU"),
    Kind(("Softplus",), "Softplus", ("beta", "threshold")),
    Kind(("Hardtanh", "ReLU6"), "Hardtanh", ("min_val", "max_val")),
]

_BY_TORCH = {name: kind for kind in KINDS for name in kind.torch_names}
_BY_MATCONV = {kind.name: kind for kind in KINDS}


def by_torch_name(name: str):
    return _BY_TORCH.get(name)


def by_matconv_name(name: str):
    return _BY_MATCONV.get(name)


def supported() -> str:
    """The supported layers, for error messages."""
    return ", ".join(sorted(_BY_TORCH)) + ", Sequential"
