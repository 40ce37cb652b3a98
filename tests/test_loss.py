"""Losses: values and gradients against ``torch.nn.functional`` in float64 for 'mean' and
'sum', hand-computed values, extreme inputs, and the input errors (the options of every loss are
in ``test_loss_options.py``)."""
import numpy as np
import pytest

from matconv.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    SquaredError,
)

REDUCTIONS = ["mean", "sum"]
REGRESSION_SHAPES = [(5,), (4, 3), (2, 3, 4, 5)]
CLASS_SHAPES = [(1, 2), (6, 4), (3, 5, 7), (2, 3, 4, 2)]      # (N, C, d1, ...)


def _torch_value_and_grad(torch, fn, pred, *args, **kwargs):
    t = torch.tensor(pred, requires_grad=True)
    loss = fn(t, *args, **kwargs)
    loss.backward()
    return loss.item(), t.grad.numpy()


def _check(ours_value, ours_grad, pred, theirs_value, theirs_grad, rtol=1e-12):
    assert isinstance(ours_value, float)
    assert ours_grad.shape == pred.shape and ours_grad.dtype == pred.dtype
    np.testing.assert_allclose(ours_value, theirs_value, rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=rtol, atol=1e-15)


def _class_target(rng, shape):
    return rng.integers(0, shape[1], size=shape[:1] + shape[2:])


# -- against PyTorch ---------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", REGRESSION_SHAPES, ids=str)
def test_mse_matches_torch(shape, reduction, rng):
    torch = pytest.importorskip("torch")
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    criterion = MSELoss(reduction=reduction)
    value = criterion(pred, target)
    expected = _torch_value_and_grad(torch, torch.nn.functional.mse_loss, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, criterion.backward(), pred, *expected)


@pytest.mark.parametrize("shape", REGRESSION_SHAPES, ids=str)
def test_squared_error_is_half_summed_mse(shape, rng):
    torch = pytest.importorskip("torch")
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    criterion = SquaredError()
    value = criterion(pred, target)
    torch_value, torch_grad = _torch_value_and_grad(
        torch, lambda p, t: 0.5 * torch.nn.functional.mse_loss(p, t, reduction="sum"), pred,
        torch.tensor(target))
    _check(value, criterion.backward(), pred, torch_value, torch_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
def test_cross_entropy_matches_torch(shape, reduction, rng):
    torch = pytest.importorskip("torch")
    pred, target = 3 * rng.standard_normal(shape), _class_target(rng, shape)
    criterion = CrossEntropyLoss(reduction=reduction)
    value = criterion(pred, target)
    expected = _torch_value_and_grad(torch, torch.nn.functional.cross_entropy, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, criterion.backward(), pred, *expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [1e4, -1e4, 1e300])
def test_cross_entropy_extreme_logits_match_torch(scale, reduction, rng):
    torch = pytest.importorskip("torch")
    pred = scale * np.array([[1.0, 0.0, -1.0], [0.5, 0.5, -0.2], [0.0, 1.0, 0.999],
                             [0.3, 0.3, 0.3]])
    target = np.array([0, 2, 1, 1])
    criterion = CrossEntropyLoss(reduction=reduction)
    value = criterion(pred, target)
    grad = criterion.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    expected = _torch_value_and_grad(torch, torch.nn.functional.cross_entropy, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, grad, pred, *expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES, ids=str)
def test_nll_matches_torch(shape, reduction, rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal(shape)
    pred = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    target = _class_target(rng, shape)
    criterion = NLLLoss(reduction=reduction)
    value = criterion(pred, target)
    expected = _torch_value_and_grad(torch, torch.nn.functional.nll_loss, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, criterion.backward(), pred, *expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", REGRESSION_SHAPES, ids=str)
def test_bce_matches_torch(shape, reduction, rng):
    torch = pytest.importorskip("torch")
    pred = rng.uniform(0.01, 0.99, size=shape)
    target = rng.uniform(0, 1, size=shape)
    target.flat[::2] = np.round(target.flat[::2])            # hard and soft labels
    criterion = BCELoss(reduction=reduction)
    value = criterion(pred, target)
    expected = _torch_value_and_grad(torch, torch.nn.functional.binary_cross_entropy, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, criterion.backward(), pred, *expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_saturated_probabilities_match_torch(reduction):
    torch = pytest.importorskip("torch")
    pred = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1e-50, 1 - 1e-16, 1e-10, 1 - 1e-10])
    target = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0, 0.0, 0.0, 1.0])
    criterion = BCELoss(reduction=reduction)
    value = criterion(pred, target)
    grad = criterion.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    expected = _torch_value_and_grad(torch, torch.nn.functional.binary_cross_entropy, pred,
                                     torch.tensor(target), reduction=reduction)
    _check(value, grad, pred, *expected)


@pytest.mark.parametrize("name", ["mse", "cross_entropy", "bce"])
def test_float32_matches_torch_and_stays_float32(name, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred = rng.uniform(0.05, 0.95, size=(6, 4)).astype(np.float32)
    if name == "cross_entropy":
        target = _class_target(rng, pred.shape)
        criterion, fn = CrossEntropyLoss(), F.cross_entropy
    else:
        target = rng.uniform(0, 1, size=pred.shape).astype(np.float32)
        criterion, fn = (MSELoss(), F.mse_loss) if name == "mse" else (BCELoss(),
                                                                       F.binary_cross_entropy)
    value = criterion(pred, target)
    grad = criterion.backward()
    assert grad.dtype == np.float32
    expected = _torch_value_and_grad(torch, fn, pred, torch.tensor(target))
    _check(value, grad, pred, *expected, rtol=1e-5)


@pytest.mark.parametrize("criterion, target", [
    (MSELoss(), np.arange(12.0).reshape(3, 4)),
    (BCELoss(reduction="sum"), np.linspace(0, 1, 12).reshape(3, 4)),
    (CrossEntropyLoss(), np.array([0, 2, 2, 1])),
    (NLLLoss(reduction="sum"), np.array([1, 1, 0, 2])),
], ids=["mse", "bce", "cross_entropy", "nll"])
def test_non_contiguous_pred_matches_contiguous(criterion, target, rng):
    base = rng.uniform(0.05, 0.95, size=(4, 3))
    view = base.T if target.ndim == 2 else base[:, ::-1]        # a transposed / reversed view
    assert not view.flags.c_contiguous
    value = criterion(view, target)
    grad = criterion.backward()
    assert value == pytest.approx(criterion(np.ascontiguousarray(view), target), rel=1e-14)
    np.testing.assert_allclose(grad, criterion.backward(), rtol=1e-14)


# -- without PyTorch: hand-computed values -----------------------------------------------------

def test_mse_by_hand():
    pred, target = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 4.0]])
    criterion = MSELoss()
    assert criterion(pred, target) == (0 + 4 + 9 + 0) / 4
    np.testing.assert_array_equal(criterion.backward(), [[0.0, 1.0], [1.5, 0.0]])
    assert MSELoss(reduction="sum")(pred, target) == 13.0


def test_squared_error_by_hand():
    criterion = SquaredError()
    pred, target = np.array([[3.0], [0.0]]), np.array([[1.0], [1.0]])
    assert criterion(pred, target) == 0.5 * (4 + 1)
    np.testing.assert_array_equal(criterion.backward(), [[2.0], [-1.0]])
    assert criterion(pred, target) == 0.5 * MSELoss(reduction="sum")(pred, target)


def test_cross_entropy_by_hand():
    criterion = CrossEntropyLoss()
    logits = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))        # softmax rows: [.25 .75], [.5 .5]
    value = criterion(logits, np.array([1, 0]))
    assert value == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2, rel=1e-14)
    np.testing.assert_allclose(criterion.backward(), [[0.125, -0.125], [-0.25, 0.25]],
                               rtol=1e-14)
    assert CrossEntropyLoss()(np.array([[1e4, -1e4, 0.0]]), np.array([1])) == 2e4


def test_nll_by_hand():
    criterion = NLLLoss(reduction="sum")
    pred = np.array([[-1.0, -2.0, -3.0], [-0.5, -0.25, -4.0]])
    assert criterion(pred, np.array([2, 1])) == 3.25
    np.testing.assert_array_equal(criterion.backward(), [[0, 0, -1.0], [0, -1.0, 0]])


def test_bce_by_hand():
    criterion = BCELoss()
    pred, target = np.array([0.25, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])
    # -log(.75), clamped -(-100), -log(1) = 0
    assert criterion(pred, target) == pytest.approx((-np.log(0.75) + 100 + 0) / 3, rel=1e-14)
    grad = criterion.backward()
    eps = float(np.float32(1e-12))
    np.testing.assert_allclose(grad, [0.25 / 0.1875 / 3, -1 / eps / 3, 0.0], rtol=1e-14)


@pytest.mark.parametrize("make", [MSELoss, SquaredError, CrossEntropyLoss, NLLLoss, BCELoss])
def test_backward_before_forward(make):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        make().backward()


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [MSELoss, CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss,
                                  L1Loss, SmoothL1Loss, HuberLoss])
def test_bad_reduction(make):
    with pytest.raises(ValueError, match=r"reduction must be one of \('none', 'mean', 'sum'\), "
                                         r"got 'avg'"):
        make(reduction="avg")


@pytest.mark.parametrize("make", [MSELoss, SquaredError, BCELoss])
def test_float_target_errors(make):
    pred = np.full((2, 3), 0.5)
    with pytest.raises(TypeError, match=r"pred must be a numpy ndarray .* got list"):
        make()([0.5, 0.5], np.zeros(2))
    with pytest.raises(TypeError, match=r"pred must be a real floating-point array .* got dtype "
                                        r"int64"):
        make()(np.zeros((2, 3), np.int64), pred)
    with pytest.raises(ValueError, match=r"target must have the shape of pred \(2, 3\), got "
                                         r"shape \(3, 2\)"):
        make()(pred, np.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"target must be a real floating-point array like pred "
                                        r"\(float64\), got dtype int64"):
        make()(pred, np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match=r"target must be a numpy ndarray, got float"):
        make()(pred, 1.0)


@pytest.mark.parametrize("make", [CrossEntropyLoss, NLLLoss])
def test_class_target_errors(make):
    name = make.__name__
    pred = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target holds class index 4 at position \(1,\); "
                                         r"allowed are 0 <= index < 4 \(C = pred.shape\[1\]\) "
                                         r"or ignore_index=-100"):
        make()(pred, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target holds class index -1 at position \(2,\)"):
        make()(pred, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match=r"target must hold integer class indices \(e.g. "
                                        r"int64\).*, got dtype float64"):
        make()(pred, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\) for pred of shape "
                                         r"\(3, 4\) .* got shape \(3, 1\)"):
        make()(pred, np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=rf"{name} expects pred of shape \(N, C\) or "
                                         r"\(N, C, d1, ...\), got shape \(4,\)"):
        make()(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=rf"{name} expects at least one class"):
        make()(np.zeros((2, 0)), np.array([0, 0]))
    with pytest.raises(TypeError, match=r"pred must be a real floating-point array .* got dtype "
                                        r"int64"):
        make()(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_bce_rejects_non_probabilities(bad):
    pred = np.array([0.2, bad, 0.7])
    with pytest.raises(ValueError, match=rf"BCELoss expects pred to hold probabilities, "
                                         rf"0 <= pred <= 1, got {bad!r}"):
        BCELoss()(pred, np.ones(3))


def test_empty_mean_is_an_error_but_empty_sum_is_zero():
    with pytest.raises(ValueError, match=r"MSELoss\(reduction='mean'\) got an empty pred of "
                                         r"shape \(0, 3\)"):
        MSELoss()(np.zeros((0, 3)), np.zeros((0, 3)))
    criterion = CrossEntropyLoss(reduction="sum")
    assert criterion(np.zeros((0, 3)), np.zeros(0, np.int64)) == 0.0
    assert criterion.backward().shape == (0, 3)
