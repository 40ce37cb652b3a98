"""Gradient clipping against ``torch.nn.utils`` (norm orders, clipping or not, non-finite
gradients) and by hand."""
import numpy as np
import pytest

from matconv.nn.module import Parameter
from matconv.optim import clip_grad_norm_, clip_grad_value_

SHAPES = [(3,), (2, 4), (1, 2, 3)]


def _params(grads):
    params = [Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad[...] = g
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, rng):
    torch = pytest.importorskip("torch")
    grads = [rng.standard_normal(s) for s in SHAPES]
    params = _params(grads)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    tparams = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for t, g in zip(tparams, grads):
        t.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected.item(), rtol=1e-12)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_non_finite_gradients_like_torch():
    torch = pytest.importorskip("torch")
    grads = [np.array([1.0, np.inf]), np.array([2.0])]
    params = _params(grads)
    total = clip_grad_norm_(params, 1.0)
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads):
        t.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
    assert total == expected.item() == np.inf
    for p, t in zip(params, tparams):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
    with pytest.raises(RuntimeError, match=r"The total norm of order 2\.0 for gradients from "
                                           r"`parameters` is non-finite \(inf\)"):
        clip_grad_norm_(_params(grads), 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_by_hand():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1, np.float32))
    a.grad[...] = [3.0, 0.0]
    b.grad[...] = 4.0
    assert clip_grad_norm_([a, b], max_norm=10.0) == 5.0        # below: unchanged
    np.testing.assert_array_equal(a.grad, [3.0, 0.0])
    assert clip_grad_norm_(iter([a, b]), max_norm=2.5) == 5.0
    coef = 2.5 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * coef, 0.0], rtol=1e-15)
    assert b.grad.dtype == np.float32
    np.testing.assert_allclose(b.grad, [4.0 * coef], rtol=1e-7)
    assert clip_grad_norm_(a, max_norm=1.0, norm_type=np.inf) == 3.0 * coef
    assert clip_grad_norm_([], 1.0) == 0.0


def test_clip_grad_value():
    p = Parameter(np.zeros((2, 2)))
    p.grad[...] = [[-3.0, 0.1], [0.2, 7.0]]
    clip_grad_value_([p], 0.5)
    np.testing.assert_array_equal(p.grad, [[-0.5, 0.1], [0.2, 0.5]])


@pytest.mark.parametrize("call, error, match", [
    (lambda p: clip_grad_norm_(p, -1.0), ValueError, (r"max_norm must be a real number >= 0, "
                                                     r"got -1\.0")),
    (lambda p: clip_grad_norm_(p, 1.0, norm_type=0), ValueError,
     r"norm_type must be a real number > 0 or inf, got 0"),
    (lambda p: clip_grad_norm_(p, "1"), ValueError, r"max_norm must be .* got '1'"),
    (lambda p: clip_grad_norm_([np.zeros(2)], 1.0), TypeError,
     r"parameters\[0\] must be a Parameter, got ndarray"),
    (lambda p: clip_grad_norm_(3, 1.0), TypeError, (r"parameters must be a Parameter or an "
                                                   r"iterable of Parameter .* got int")),
    (lambda p: clip_grad_value_(p, -1), ValueError, r"clip_value must be a real number >= 0"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call([Parameter(np.zeros(2))])
