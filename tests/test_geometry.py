"""Conv arithmetic: the 15 relationships of Dumoulin & Visin, padding forms, validation."""
import itertools

import pytest

import matconv as mc
from matconv import ConvGeometry, conv_output_size, conv_transpose_output_size

SIZES = range(1, 12)
KERNELS = range(1, 6)
STRIDES = range(1, 4)


def cases(*, stride=None, padding=None):
    for i, k in itertools.product(SIZES, KERNELS):
        for s in ([stride] if stride else STRIDES):
            for p in ([padding] if padding is not None else range(0, k + 1)):
                if i + 2 * p >= k:
                    yield i, k, s, p


# ---- relationships 1-7: convolution and pooling
def test_rel1_no_padding_unit_stride():
    for i, k, _, _ in cases(stride=1, padding=0):
        assert conv_output_size(i, k) == i - k + 1


def test_rel2_zero_padding_unit_stride():
    for i, k, _, p in cases(stride=1):
        assert conv_output_size(i, k, padding=p) == i - k + 2 * p + 1


def test_rel3_half_padding_keeps_size():
    for i, n in itertools.product(SIZES, range(0, 4)):
        k = 2 * n + 1
        if i + 2 * n >= k:
            assert conv_output_size(i, k, padding=n) == i
            assert ConvGeometry(1, 1, k, ndim=1, padding="same").output_size((i,)) == (i,)


def test_rel4_full_padding_grows():
    for i, k in itertools.product(SIZES, KERNELS):
        assert conv_output_size(i, k, padding=k - 1) == i + k - 1
        assert ConvGeometry(1, 1, k, ndim=1, padding="full").output_size((i,)) == (i + k - 1,)


def test_rel5_no_padding_strided():
    for i, k, s, _ in cases(padding=0):
        assert conv_output_size(i, k, stride=s) == (i - k) // s + 1


def test_rel6_general_and_aliasing_of_sizes():
    for i, k, s, p in cases():
        o = conv_output_size(i, k, stride=s, padding=p)
        assert o == (i + 2 * p - k) // s + 1
        # inputs i + a with a < s can give the same output size
        a = (i + 2 * p - k) % s
        if i - a >= 1:
            assert conv_output_size(i - a, k, stride=s, padding=p) == o
        if i - a + s - 1 >= 1:
            assert conv_output_size(i - a + s - 1, k, stride=s, padding=p) == o


def test_rel7_pooling_same_formula():
    for i, k, s, _ in cases(padding=0):
        assert conv_output_size(i, k, stride=s) == (i - k) // s + 1


# ---- relationships 8-14: transposed convolution
def _transpose_equals_direct_conv(i, k, s, p):
    """o' of the transpose equals the direct conv with the relationship's k', s'=1, p'."""
    o = conv_output_size(i, k, stride=s, padding=p)
    a = (i + 2 * p - k) % s
    o_t = conv_transpose_output_size(o, k, stride=s, padding=p, output_padding=a)
    assert o_t == i  # the transpose maps back onto the input size
    return o, o_t


def test_rel8_transpose_of_no_padding():
    for i, k, _, _ in cases(stride=1, padding=0):
        o, o_t = _transpose_equals_direct_conv(i, k, 1, 0)
        assert o_t == o + k - 1  # k' = k, s' = 1, p' = k - 1
        assert o_t == conv_output_size(o, k, padding=k - 1)


def test_rel9_transpose_of_padding():
    for i, k, _, p in cases(stride=1):
        if p <= k - 1:
            o, o_t = _transpose_equals_direct_conv(i, k, 1, p)
            assert o_t == o + (k - 1) - 2 * p
            assert o_t == conv_output_size(o, k, padding=k - p - 1)


def test_rel10_transpose_of_half_padding():
    for i, n in itertools.product(SIZES, range(0, 3)):
        k = 2 * n + 1
        if i + 2 * n >= k:
            o, o_t = _transpose_equals_direct_conv(i, k, 1, n)
            assert o_t == o == i


def test_rel11_transpose_of_full_padding():
    for i, k in itertools.product(SIZES, KERNELS):
        o, o_t = _transpose_equals_direct_conv(i, k, 1, k - 1)
        assert o_t == o - (k - 1)


def test_rel12_transpose_of_strided_no_padding():
    for i, k, s, _ in cases(padding=0):
        if (i - k) % s == 0:
            o, o_t = _transpose_equals_direct_conv(i, k, s, 0)
            assert o_t == s * (o - 1) + k
            # zeros inserted between inputs: s(o-1)+1 cells, padded by k-1, unit stride
            assert o_t == conv_output_size(s * (o - 1) + 1, k, padding=k - 1)


def test_rel13_transpose_of_strided_padded():
    for i, k, s, p in cases():
        if (i + 2 * p - k) % s == 0 and p <= k - 1:
            o, o_t = _transpose_equals_direct_conv(i, k, s, p)
            assert o_t == s * (o - 1) + k - 2 * p


def test_rel14_transpose_general_with_output_padding():
    for i, k, s, p in cases():
        if p <= k - 1:
            o, o_t = _transpose_equals_direct_conv(i, k, s, p)
            a = (i + 2 * p - k) % s
            assert o_t == s * (o - 1) + a + k - 2 * p


def test_rel15_dilation():
    for i, k, s, p in cases():
        for d in range(1, 4):
            khat = k + (k - 1) * (d - 1)
            if i + 2 * p >= khat:
                assert conv_output_size(i, k, s, p, d) == (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1
                assert ConvGeometry(1, 1, k, s, p, d, ndim=1).effective_kernel_size == (khat,)


def test_slide_cases():
    # the (i, k, s, p) cases listed in Kuwajima's slides and dilation (7, 3, d=2)
    assert conv_output_size(4, 3, 1, 0) == 2
    assert conv_output_size(5, 3, 2, 1) == 3
    assert conv_output_size(6, 3, 2, 1) == 3
    assert conv_output_size(5, 3, 2, 0) == 2
    assert conv_output_size(5, 4, 1, 2) == 6
    assert conv_output_size(7, 3, dilation=2) == 3


def test_tuples_in_tuples_out():
    assert conv_output_size((28, 14), (5, 3), (1, 2), (2, 1)) == (28, 7)
    assert conv_output_size((8, 8, 8), 3) == (6, 6, 6)
    assert conv_transpose_output_size((3, 4), 3, stride=2, padding=1, output_padding=(0, 1)) == (5, 8)


# ---- padding forms
@pytest.mark.parametrize("padding, expected", [
    (1, ((1, 1), (1, 1))),
    ((1, 2), ((1, 1), (2, 2))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))),
    ("valid", ((0, 0), (0, 0))),
    ("full", ((2, 2), (4, 4))),
    ("same", ((1, 1), (2, 2))),
])
def test_padding_forms(padding, expected):
    g = ConvGeometry(1, 1, (3, 3), dilation=(1, 2), padding=padding)
    assert g.padding == expected


def test_same_even_kernel_puts_extra_after_like_pytorch():
    assert ConvGeometry(1, 1, 4, ndim=1, padding="same").padding == ((1, 2),)
    assert ConvGeometry(1, 1, 2, ndim=1, padding="same", dilation=3).padding == ((1, 2),)


def test_causal_is_all_before():
    g = ConvGeometry(1, 1, 2, ndim=1, padding="causal", dilation=4)
    assert g.padding == ((4, 0),)
    assert g.output_size((10,)) == (10,)


def test_geometry_is_hashable_and_normalised():
    a = ConvGeometry(2, 4, 3, padding=1)
    b = ConvGeometry(2, 4, (3, 3), stride=(1, 1), padding=((1, 1), (1, 1)))
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.stride = 2


# ---- validation: messages name the argument, the value and what is allowed
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=0), ValueError, r"kernel_size must be >= 1.*0"),
    (dict(stride=0), ValueError, r"stride must be >= 1.*0"),
    (dict(dilation=(1, -1)), ValueError, r"dilation must be >= 1.*\(1, -1\)"),
    (dict(padding=-1), ValueError, r"padding must be >= 0.*-1"),
    (dict(padding="half"), ValueError, r"padding must be one of .*'valid'.*'half'"),
    (dict(padding="same", stride=2), ValueError, r"padding='same' needs stride=1.*\(2, 2\)"),
    (dict(padding="causal"), ValueError, r"'causal' is only defined for 1-D"),
    (dict(groups=3), ValueError, r"divisible by groups \(3\)"),
    (dict(in_channels=0), ValueError, r"in_channels must be a positive int, got 0"),
    (dict(padding_mode="mirror"), ValueError, r"padding_mode must be one of .*'mirror'"),
    (dict(kernel_size=(3, 3, 3)), ValueError, r"kernel_size must be an int or a tuple of 2 ints"),
    (dict(kernel_size=2.5), TypeError, r"kernel_size must be an int or a tuple of 2 ints, got 2.5"),
])
def test_geometry_errors(kwargs, error, match):
    args = dict(in_channels=2, out_channels=4, kernel_size=3, ndim=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ConvGeometry(**args)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"spans 5 cells .* padded input size 3 \+ 1 \+ 0 = 4"):
        ConvGeometry(1, 1, 3, ndim=1, dilation=2, padding=((1, 0),)).output_size((3,))
    with pytest.raises(ValueError, match=r"kernel_size 5 with dilation 1 spans 5 cells"):
        conv_output_size(3, 5)


def test_zero_or_negative_sizes():
    with pytest.raises(ValueError, match=r"input_size must be >= 1"):
        conv_output_size(0, 1)
    with pytest.raises(ValueError, match=r"input spatial size must be >= 1"):
        ConvGeometry(1, 1, 1).output_size((0, 4))


def test_output_padding_limit():
    with pytest.raises(ValueError, match=r"output_padding must be smaller than max\(stride, "
                                         r"dilation\) = 2, got output_padding=2"):
        conv_transpose_output_size(3, 3, stride=2, output_padding=2)
    # dilation allows a larger output_padding than the stride alone
    assert conv_transpose_output_size(3, 3, stride=1, dilation=3, output_padding=2) == 11


def test_padding_mode_limits():
    g = ConvGeometry(1, 1, 5, ndim=1, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"'reflect' needs padding < input size"):
        g.output_size((3,))
    g = ConvGeometry(1, 1, 5, ndim=1, padding=4, padding_mode="circular")
    with pytest.raises(ValueError, match=r"'circular' needs padding <= input size"):
        g.output_size((3,))


def test_public_names():
    assert mc.conv_output_size is conv_output_size
