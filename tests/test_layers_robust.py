"""Robustness of the pooling, upsampling, activation and normalisation layers: an empty batch
gives an empty output (as PyTorch), and every bad argument raises ValueError or TypeError naming
the argument (never AttributeError, IndexError, ZeroDivisionError or OverflowError)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matconv import nn

SAMPLES = np.full((1, 2, 2), 0.5)

EMPTY = [
    (nn.MaxPool2d(2), (2, 4, 4)), (nn.MaxPool1d(3, 2, 1, ceil_mode=True), (2, 7)),
    (nn.MaxPool3d(2), (1, 2, 2, 2)), (nn.AvgPool2d(3, 2, 1), (2, 5, 5)), (nn.AvgPool1d(2), (1, 4)),
    (nn.LPPool2d(2, 2), (1, 4, 4)), (nn.LPPool1d(float("inf"), 2), (1, 4)),
    (nn.LPPool3d(1, 2), (1, 2, 2, 2)), (nn.AdaptiveAvgPool2d(3), (2, 5, 7)),
    (nn.AdaptiveMaxPool1d(2), (1, 5)), (nn.AdaptiveMaxPool3d(1), (1, 2, 2, 2)),
    (nn.AdaptiveAvgPool3d((1, 2, 1)), (1, 3, 3, 3)), (nn.FractionalMaxPool2d(2, 3), (2, 6, 6)),
    (nn.FractionalMaxPool3d(2, output_ratio=0.5), (1, 6, 6, 6)), (nn.ChannelMaxPool(2), (4, 3)),
    (nn.Upsample(scale_factor=2), (2, 3, 3)),
    (nn.Upsample(size=(4, 5), mode="bicubic", align_corners=True), (1, 3, 3)),
    (nn.Upsample(size=2, mode="area"), (1, 5)), (nn.Upsample(size=3, mode="trilinear"),
                                                  (1, 2, 2, 2)),
    (nn.ReLU(), (3,)), (nn.GELU(), (2, 3)), (nn.ELU(), (3,)), (nn.SiLU(), (3,)),
    (nn.Softplus(), (3,)), (nn.Hardtanh(), (3,)), (nn.LeakyReLU(), (3,)), (nn.Tanh(), (3,)),
    (nn.Sigmoid(), (3,)), (nn.Softmax(dim=1), (3,)), (nn.LogSoftmax(dim=-1), (2, 3)),
    (nn.BatchNorm1d(3), (3,)), (nn.BatchNorm2d(2), (2, 3, 3)), (nn.BatchNorm3d(1), (1, 2, 2, 2)),
    (nn.LayerNorm(3), (2, 3)), (nn.GroupNorm(2, 4), (4, 3)),
]


@pytest.mark.parametrize("layer, example", EMPTY, ids=lambda v: repr(v).split("(")[0]
                         if not isinstance(v, tuple) else str(v))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_empty_batch_gives_an_empty_output(layer, example, dtype):
    y = layer(np.zeros((0, *example), dtype))
    y = y[0] if isinstance(y, tuple) else y
    params = layer.parameters()
    assert y.dtype == (params[0].dtype if params else dtype)  # a layer's weights decide
    assert y.shape == (0, *layer.output_shape(example))


def test_empty_batch_through_return_indices_and_unpool():
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, indices = pool(np.zeros((0, 3, 4, 6)))
    assert indices.shape == (0, 3, 2, 3) and indices.dtype == np.int64
    assert unpool(y, indices).shape == (0, 3, 4, 6)


def test_empty_batch_like_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs, shape in [
            (nn.AvgPool2d(2, ceil_mode=True), torch.nn.AvgPool2d(2, ceil_mode=True), (0, 1, 5, 5)),
            (nn.Upsample(scale_factor=1.5, mode="bilinear"),
             torch.nn.Upsample(scale_factor=1.5, mode="bilinear"), (0, 2, 3, 4)),
            (nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2), (0, 2, 3, 3))]:
        x = np.zeros(shape, np.float32)
        assert ours(x).shape == tuple(theirs(torch.tensor(x)).shape)


BAD = [
    (lambda: nn.MaxPool2d(0), ValueError, r"kernel_size must be >= 1"),
    (lambda: nn.MaxPool2d("2"), TypeError, r"kernel_size must be an int or a tuple"),
    (lambda: nn.MaxPool2d((2, 2, 2)), ValueError, r"kernel_size must be an int or a tuple of 2"),
    (lambda: nn.MaxPool2d(2, -1), ValueError, r"stride must be >= 1"),
    (lambda: nn.MaxPool2d(3, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: nn.MaxPool2d(2, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda: nn.MaxPool2d(2, ceil_mode="no"), TypeError, r"ceil_mode must be a bool"),
    (lambda: nn.MaxPool2d(2, return_indices=1), TypeError, r"return_indices must be a bool"),
    (lambda: nn.AvgPool2d(2, count_include_pad="x"), TypeError, r"count_include_pad must be a"),
    (lambda: nn.AvgPool2d(2, divisor_override=1.5), ValueError, r"divisor_override must be a "
                                                                r"nonzero int"),
    (lambda: nn.AvgPool2d(2, divisor_override=True), ValueError, r"divisor_override"),
    (lambda: nn.LPPool2d(float("nan"), 2), ValueError, r"norm_type must be a nonzero number"),
    (lambda: nn.LPPool2d("2", 2), ValueError, r"norm_type must be a nonzero number"),
    (lambda: nn.AdaptiveMaxPool2d((1, 2, 3)), ValueError, r"output_size must be a positive int"),
    (lambda: nn.AdaptiveAvgPool3d(-1), ValueError, r"output_size must be a positive int"),
    (lambda: nn.FractionalMaxPool2d(2), ValueError, r"needs exactly one of output_size and "
                                                    r"output_ratio"),
    (lambda: nn.FractionalMaxPool2d(2, 3, 0.5), ValueError, r"exactly one of"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=1.0), ValueError, r"output_ratio must be"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=0), ValueError, r"output_size must be >= 1"),
    (lambda: nn.FractionalMaxPool2d(2, 3, _random_samples=np.ones((1, 2, 2))), ValueError,
     r"_random_samples must lie in \[0, 1\)"),
    (lambda: nn.FractionalMaxPool2d(2, 3, _random_samples=[0.5]), ValueError,
     r"_random_samples must be a float array of shape \(N, C, 2\)"),
    (lambda: nn.FractionalMaxPool2d(2, 3, rng=0), TypeError, r"rng must be a numpy.random"),
    (lambda: nn.FractionalMaxPool2d(2, 6)(np.zeros((1, 1, 6, 6))), ValueError,
     r"output \+ kernel_size - 1 <= input size in spatial dim 0, got input size 6"),
    (lambda: nn.MaxUnpool2d(0), ValueError, r"kernel_size must be >= 1"),
    (lambda: nn.MaxUnpool1d(2, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: nn.MaxUnpool1d(2)(np.zeros((1, 1, 2)), np.zeros((1, 1, 2), int),
                               output_size="x"), ValueError, r"output_size must be 1 ints"),
    (lambda: nn.Upsample(scale_factor=float("inf")), ValueError, r"scale_factor must be a "
                                                                 r"finite number > 0"),
    (lambda: nn.Upsample(scale_factor=(2, float("nan"))), ValueError, r"scale_factor"),
    (lambda: nn.Upsample(scale_factor=-1), ValueError, r"scale_factor"),
    (lambda: nn.Upsample(size=0), ValueError, r"size must be a positive int"),
    (lambda: nn.Upsample(size=(2, "a")), ValueError, r"size must be a positive int"),
    (lambda: nn.Upsample(size=2, mode=None), ValueError, r"mode must be one of"),
    (lambda: nn.Upsample(size=2, mode="bilinear", align_corners="yes"), TypeError,
     r"align_corners must be True, False or None"),
    (lambda: nn.Upsample(size=2, recompute_scale_factor=True), ValueError,
     r"recompute_scale_factor is not meaningful with an explicit size"),
    (lambda: nn.Upsample(scale_factor=2, recompute_scale_factor="x"), TypeError,
     r"recompute_scale_factor must be True, False or None"),
    (lambda: nn.Upsample(size=2, mode="nearest-exact", align_corners=False), ValueError,
     r"align_corners can only be set with the interpolating modes"),
    (lambda: nn.Upsample(size=2, mode="bicubic")(np.zeros((1, 1, 4))), ValueError,
     r"with 2 spatial dims for mode='bicubic'"),
    (lambda: nn.Upsample(scale_factor=0.1)(np.zeros((1, 1, 4))), ValueError,
     r"gives an empty output"),
    (lambda: nn.ChannelMaxPool(0), ValueError, r"group_size must be >= 1"),
    (lambda: nn.LeakyReLU("x"), TypeError, r"negative_slope must be a finite real number"),
    (lambda: nn.ELU(float("inf")), TypeError, r"alpha must be a finite real number"),
    (lambda: nn.Softplus(beta=0), ValueError, r"beta must be nonzero"),
    (lambda: nn.Softplus(threshold=float("nan")), TypeError, r"threshold must be a real number"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, r"min_val must be smaller than max_val"),
    (lambda: nn.Hardtanh("a"), TypeError, r"min_val must be a finite real number"),
    (lambda: nn.GELU("fast"), ValueError, r"approximate must be 'none' or 'tanh'"),
    (lambda: nn.ReLU(inplace="yes"), TypeError, r"inplace must be a bool"),
    (lambda: nn.SiLU(1), TypeError, r"inplace must be a bool"),
    (lambda: nn.Softmax(dim="x"), TypeError, r"dim must be an int"),
    (lambda: nn.GELU()([1.0]), TypeError, r"GELU expects input as a numpy ndarray, got list"),
    (lambda: nn.ELU()(np.array(["a"])), TypeError, r"input must be a real floating-point"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                   st.text(max_size=3), st.tuples(st.integers(-2, 4), st.integers(-2, 4)),
                   st.lists(st.floats(-2, 2), max_size=4))
CONSTRUCTORS = [nn.MaxPool2d, nn.AvgPool2d, nn.MaxUnpool2d, nn.AdaptiveMaxPool2d,
                nn.AdaptiveAvgPool3d, nn.FractionalMaxPool2d, nn.LeakyReLU, nn.ELU,
                nn.Softplus, nn.Hardtanh, nn.GELU, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm,
                lambda a, b: nn.LPPool2d(a, b), lambda a, b: nn.Upsample(a, b),
                lambda a, b: nn.Upsample(size=a, mode=b)]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CONSTRUCTORS), VALUES, VALUES)
def test_fuzzed_constructor_arguments_raise_only_value_or_type_errors(make, a, b):
    try:
        layer = make(a, b) if not isinstance(make, type) or make in (
            nn.Hardtanh, nn.Softplus, nn.GroupNorm) else make(a)
    except (ValueError, TypeError):
        return
    x = np.ones((1, 2, 4, 4), np.float32)
    try:
        layer(x)
    except (ValueError, TypeError):
        pass
