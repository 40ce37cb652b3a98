"""Property test: random geometries, forward and backward against the direct-loop oracle."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matconv import nn

from . import reference as ref

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@st.composite
def geometries(draw):
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    d = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    s = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    forms = ["int", "tuple", "pairs", "valid", "full"] + (["same"] if set(s) == {1} else []) + (
        ["causal"] if ndim == 1 else [])
    form = draw(st.sampled_from(forms))
    if form == "int":
        padding = draw(st.integers(0, 2))
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(ndim))
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(ndim))
    else:
        padding = form
    pads = ref.pad_pairs(padding, k, d, ndim)
    # an input at least as large as the dilated kernel minus the padding
    spatial = tuple(max(1, d[j] * (k[j] - 1) + 1 - sum(pads[j])) + draw(st.integers(0, 3))
                    for j in range(ndim))
    lowering = draw(st.sampled_from(["im2col", "sparse"]))
    return ndim, cin, cout, k, s, padding, d, groups, spatial, lowering


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries(), st.integers(0, 2**32 - 1))
def test_random_geometry_matches_direct_loop(geometry, seed):
    ndim, cin, cout, k, s, padding, d, groups, spatial, lowering = geometry
    rng = np.random.default_rng(seed)
    layer = CONV[ndim](cin, cout, k, s, padding, d, groups, bias=False, lowering=lowering,
                       dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, cin, *spatial))
    y = layer(x)
    np.testing.assert_allclose(y, ref.conv_forward(x, layer.weight.data, s, padding, d, groups),
                               rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dw_ref = ref.conv_backward(x, layer.weight.data, dy, s, padding, d, groups)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dw_ref, rtol=1e-12, atol=1e-12)
