"""Loss options against ``torch.nn.functional`` in float64 for every reduction ('none' with a
random upstream gradient): weights, ignore_index, label smoothing, class probabilities,
pos_weight, beta/delta; finite differences without torch; and the option errors."""
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
)

from .test_loss import _class_target

ALL_REDUCTIONS = ["mean", "sum", "none"]


# -- every option and reduction against PyTorch ------------------------------------------------

def _compare(torch, criterion, fn, pred, target, reduction, rng, rtol=1e-12, **torch_kwargs):
    """Our value and gradient (with a random upstream gradient for 'none') against torch's."""
    value = criterion(pred, target)
    t = torch.tensor(pred, requires_grad=True)
    target_t = torch.tensor(target)
    loss = fn(t, target_t, reduction=reduction, **torch_kwargs)
    if reduction == "none":
        upstream = rng.standard_normal(loss.shape)
        loss.backward(torch.tensor(upstream))
        grad = criterion.backward(upstream)
        assert isinstance(value, np.ndarray) and value.dtype == pred.dtype
        np.testing.assert_allclose(value, loss.detach().numpy(), rtol=rtol, atol=1e-14)
    else:
        upstream = 0.75
        (loss * upstream).backward()
        grad = criterion.backward(upstream)
        assert isinstance(value, float)
        np.testing.assert_allclose(value, loss.item(), rtol=rtol, atol=1e-300)
    assert grad.shape == pred.shape and grad.dtype == pred.dtype
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=rtol, atol=1e-15)


def _regression_pred_target(rng, shape, knots=()):
    """Random pairs plus differences exactly 0 and exactly at each knot (the branch points)."""
    pred, target = rng.standard_normal(shape) * 2, rng.standard_normal(shape)
    special = [0.0] + [s * k for k in knots for s in (1, -1)]
    flat_p, flat_t = pred.reshape(-1), target.reshape(-1)
    flat_p[:len(special)] = flat_t[:len(special)] + np.array(special)
    return pred, target


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("name, kwargs", [
    ("mse", {}), ("l1", {}), ("smooth_l1", {"beta": 1.0}), ("smooth_l1", {"beta": 0.5}),
    ("smooth_l1", {"beta": 0.0}), ("smooth_l1", {"beta": 2.5}), ("huber", {"delta": 1.0}),
    ("huber", {"delta": 0.3}), ("huber", {"delta": 4.0}),
], ids=lambda v: str(v))
def test_regression_losses_match_torch(name, kwargs, reduction, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    make, fn = {"mse": (MSELoss, F.mse_loss), "l1": (L1Loss, F.l1_loss),
                "smooth_l1": (SmoothL1Loss, F.smooth_l1_loss),
                "huber": (HuberLoss, F.huber_loss)}[name]
    pred, target = _regression_pred_target(rng, (4, 3, 5), tuple(kwargs.values()))
    _compare(torch, make(reduction=reduction, **kwargs), fn, pred, target, reduction, rng,
             **kwargs)


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3, 4), (4,), (3, 1)], ids=str)
def test_bce_weight_matches_torch(weight_shape, reduction, rng):
    torch = pytest.importorskip("torch")
    pred = rng.uniform(0.01, 0.99, size=(3, 4))
    target = np.round(rng.uniform(0, 1, size=(3, 4)))
    weight = None if weight_shape is None else rng.uniform(0.1, 2, size=weight_shape)
    _compare(torch, BCELoss(weight=weight, reduction=reduction),
             torch.nn.functional.binary_cross_entropy, pred, target, reduction, rng,
             weight=None if weight is None else torch.tensor(weight))


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("weight_shape, pos_weight_shape", [
    (None, None), ((5, 4), None), (None, (4,)), ((4,), (4,)), ((5, 1), (1,)),
], ids=str)
def test_bce_with_logits_matches_torch(weight_shape, pos_weight_shape, reduction, rng):
    torch = pytest.importorskip("torch")
    pred = 3 * rng.standard_normal((5, 4))
    pred[0] = [1e4, -1e4, 40.0, -800.0]                        # saturated logits stay finite
    target = rng.uniform(0, 1, size=(5, 4))
    target[1::2] = np.round(target[1::2])
    weight = None if weight_shape is None else rng.uniform(0.1, 2, size=weight_shape)
    pos_weight = None if pos_weight_shape is None else rng.uniform(0.5, 3, size=pos_weight_shape)
    tt = {"weight": None if weight is None else torch.tensor(weight),
          "pos_weight": None if pos_weight is None else torch.tensor(pos_weight)}
    _compare(torch, BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight),
             torch.nn.functional.binary_cross_entropy_with_logits, pred, target, reduction, rng,
             **tt)


CLASS_OPTIONS = [
    {}, {"weight": True}, {"ignore_index": 1}, {"weight": True, "ignore_index": 0},
    {"ignore_index": -100, "with_ignored": True}, {"weight": True, "with_ignored": True},
]


def _class_case(rng, shape, options):
    """``(target, weight, ignore_index)`` for a class-index case, some targets ignored."""
    target = _class_target(rng, shape)
    ignore_index = options.get("ignore_index", -100)
    if options.get("with_ignored"):
        target.reshape(-1)[::3] = ignore_index
    weight = rng.uniform(0.2, 3.0, size=shape[1]) if options.get("weight") else None
    return target, weight, ignore_index


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("options", CLASS_OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 7), (2, 3, 4, 2)], ids=str)
def test_nll_options_match_torch(shape, options, reduction, rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal(shape)
    pred = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    target, weight, ignore_index = _class_case(rng, shape, options)
    _compare(torch, NLLLoss(weight=weight, ignore_index=ignore_index, reduction=reduction),
             torch.nn.functional.nll_loss, pred, target, reduction, rng,
             weight=None if weight is None else torch.tensor(weight), ignore_index=ignore_index)


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("options", CLASS_OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4, 2)], ids=str)
def test_cross_entropy_options_match_torch(shape, options, label_smoothing, reduction, rng):
    torch = pytest.importorskip("torch")
    pred = 3 * rng.standard_normal(shape)
    target, weight, ignore_index = _class_case(rng, shape, options)
    criterion = CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction,
                                 label_smoothing=label_smoothing)
    _compare(torch, criterion, torch.nn.functional.cross_entropy, pred, target, reduction, rng,
             weight=None if weight is None else torch.tensor(weight), ignore_index=ignore_index,
             label_smoothing=label_smoothing)


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4, 2)], ids=str)
def test_cross_entropy_probability_targets_match_torch(shape, weighted, label_smoothing,
                                                       reduction, rng):
    torch = pytest.importorskip("torch")
    pred = 3 * rng.standard_normal(shape)
    target = rng.uniform(0, 1, size=shape)
    target /= target.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.2, 3.0, size=shape[1]) if weighted else None
    criterion = CrossEntropyLoss(weight=weight, reduction=reduction,
                                 label_smoothing=label_smoothing)
    _compare(torch, criterion, torch.nn.functional.cross_entropy, pred, target, reduction, rng,
             weight=None if weight is None else torch.tensor(weight),
             label_smoothing=label_smoothing)


@pytest.mark.parametrize("make", [NLLLoss, CrossEntropyLoss])
def test_all_targets_ignored_is_nan_with_zero_gradient_like_torch(make):
    torch = pytest.importorskip("torch")
    pred, target = np.log(np.full((3, 4), 0.25)), np.full(3, -100)
    criterion = make()
    value = criterion(pred, target)
    fn = torch.nn.functional.nll_loss if make is NLLLoss else torch.nn.functional.cross_entropy
    t = torch.tensor(pred, requires_grad=True)
    fn(t, torch.tensor(target)).backward()
    assert np.isnan(value)
    np.testing.assert_array_equal(criterion.backward(), t.grad.numpy())
    assert not criterion.backward().any()


@pytest.mark.parametrize("make, target", [
    (lambda: L1Loss(), "float"), (lambda: SmoothL1Loss(beta=0.5), "float"),
    (lambda: HuberLoss(delta=0.5), "float"), (lambda: BCEWithLogitsLoss(pos_weight=[2.0]), "bin"),
    (lambda: CrossEntropyLoss(label_smoothing=0.1, weight=[1.0, 2.0, 0.5]), "class"),
    (lambda: CrossEntropyLoss(), "probabilities"), (lambda: NLLLoss(weight=[1.0, 2.0, 3.0]), "class"),
], ids=["l1", "smooth_l1", "huber", "bce_logits", "ce_smoothing", "ce_prob", "nll"])
def test_float32_stays_float32_and_matches_float64(make, target, rng):
    pred = rng.standard_normal((6, 3))
    if target == "float":
        t64 = rng.standard_normal((6, 3))
    elif target == "bin":
        t64 = np.round(rng.uniform(0, 1, (6, 3)))
    elif target == "class":
        t64 = rng.integers(0, 3, 6)
    else:
        t64 = rng.dirichlet(np.ones(3), size=6)
    t32 = t64.astype(np.float32) if t64.dtype.kind == "f" else t64
    ours32, ours64 = make(), make()
    v32, v64 = ours32(pred.astype(np.float32), t32), ours64(pred, t64)
    g32, g64 = ours32.backward(), ours64.backward()
    assert g32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


# -- without PyTorch: finite differences of every loss and option ------------------------------

def _finite_difference_check(criterion, pred, target, rng, h=1e-6):
    """The gradient of ``sum(upstream * loss)`` against central differences, for 'none'; of
    the loss itself for 'mean'/'sum'."""
    value = criterion(pred, target)
    upstream = rng.standard_normal(np.shape(value)) if criterion.reduction == "none" else 1.0
    grad = criterion.backward(upstream if criterion.reduction == "none" else None)
    numeric = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = np.sum(upstream * (np.asarray(criterion(up, target))
                                        - np.asarray(criterion(down, target)))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


FD_CASES = [
    ("mse", lambda r: MSELoss(reduction=r)),
    ("l1", lambda r: L1Loss(reduction=r)),
    ("smooth_l1", lambda r: SmoothL1Loss(reduction=r, beta=0.7)),
    ("huber", lambda r: HuberLoss(reduction=r, delta=0.7)),
    ("bce", lambda r: BCELoss(weight=[0.5, 1.0, 2.0, 1.5], reduction=r)),
    ("bce_logits", lambda r: BCEWithLogitsLoss(weight=[[1.0], [2.0], [0.5]], reduction=r,
                                               pos_weight=[1.0, 3.0, 0.5, 2.0])),
    ("nll", lambda r: NLLLoss(weight=[1.0, 2.0, 0.5, 1.5], ignore_index=2, reduction=r)),
    ("ce", lambda r: CrossEntropyLoss(weight=[1.0, 2.0, 0.5, 1.5], ignore_index=2, reduction=r,
                                      label_smoothing=0.3)),
    ("ce_prob", lambda r: CrossEntropyLoss(weight=[1.0, 2.0, 0.5, 1.5], reduction=r,
                                           label_smoothing=0.1)),
]


@pytest.mark.parametrize("reduction", ALL_REDUCTIONS)
@pytest.mark.parametrize("name, make", FD_CASES, ids=[c[0] for c in FD_CASES])
def test_gradients_by_finite_differences(name, make, reduction, rng):
    if name in ("nll", "ce"):
        pred, target = rng.standard_normal((3, 4)), np.array([0, 2, 3])
    elif name == "ce_prob":
        pred, target = rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), size=3)
    elif name == "bce":
        pred, target = rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0, 1, (3, 4))
    else:
        pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        if name in ("smooth_l1", "huber"):       # keep clear of the kinks at |d| = 0.7
            pred = target + np.where(rng.uniform(size=(3, 4)) < 0.5, 0.3, 1.5)
        if name == "bce_logits":
            target = rng.uniform(0, 1, (3, 4))
    _finite_difference_check(make(reduction), pred, target, rng)


def test_weighted_mean_and_smoothing_by_hand():
    logp = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    target = np.array([0, 1])
    weight = np.array([2.0, 1.0, 4.0])
    # NLL weighted mean: (2 * -log .5 + 1 * -log .8) / (2 + 1)
    expected = (-2 * np.log(0.5) - np.log(0.8)) / 3
    assert NLLLoss(weight=weight)(logp, target) == pytest.approx(expected, rel=1e-14)
    # label smoothing 0.3 over 3 classes, no weight, on logits equal to log-probabilities
    ce = CrossEntropyLoss(label_smoothing=0.3, reduction="none")
    q0 = np.array([0.7 + 0.1, 0.1, 0.1])
    q1 = np.array([0.1, 0.8, 0.1])
    np.testing.assert_allclose(ce(logp, target), [-q0 @ logp[0], -q1 @ logp[1]], rtol=1e-14)
    np.testing.assert_allclose(ce.backward(), np.exp(logp) - np.stack([q0, q1]), atol=1e-15)
    # ignored targets contribute nothing and do not count in the mean
    ignore = CrossEntropyLoss(ignore_index=1)
    assert ignore(logp, target) == pytest.approx(-np.log(0.5), rel=1e-14)
    np.testing.assert_allclose(ignore.backward()[1], 0.0)


def test_bce_with_logits_by_hand():
    criterion = BCEWithLogitsLoss(reduction="none", pos_weight=[3.0])
    x, y = np.array([0.0, 2.0, -1.0]), np.array([1.0, 0.0, 1.0])
    # -(3 y log s(x) + (1 - y) log(1 - s(x)))
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(criterion(x, y), -(3 * y * np.log(s) + (1 - y) * np.log(1 - s)),
                               rtol=1e-14)
    np.testing.assert_allclose(criterion.backward(), (1 + 2 * y) * s - 3 * y, rtol=1e-14)


def test_smooth_l1_and_huber_by_hand():
    d = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    zero = np.zeros_like(d)
    smooth = SmoothL1Loss(reduction="none", beta=1.0)
    np.testing.assert_array_equal(smooth(d, zero), [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5])
    np.testing.assert_array_equal(smooth.backward(), [-1, -1, -0.5, 0, 0.5, 1, 1])
    huber = HuberLoss(reduction="none", delta=2.0)
    np.testing.assert_array_equal(huber(d, zero), [4.0, 0.5, 0.125, 0.0, 0.125, 0.5, 4.0])
    np.testing.assert_array_equal(huber.backward(), [-2, -1, -0.5, 0, 0.5, 1, 2])
    l1 = L1Loss(reduction="sum")
    assert l1(d, zero) == 9.0
    np.testing.assert_array_equal(l1.backward(2.0), 2 * np.sign(d))


# -- option and backward-argument errors --------------------------------------------------------

@pytest.mark.parametrize("make, error, match", [
    (lambda: CrossEntropyLoss(label_smoothing=1.5), ValueError,
     r"label_smoothing must be a real number between 0\.0 and 1\.0, got 1\.5"),
    (lambda: CrossEntropyLoss(ignore_index=1.0), TypeError, (r"ignore_index must be an int, got "
                                                            r"1\.0")),
    (lambda: NLLLoss(weight="abc"), TypeError, r"weight must be None or a real array"),
    (lambda: NLLLoss(weight=[[1.0, 2.0]]), ValueError, (r"weight must be 1-D, one entry per "
                                                       r"class, got shape \(1, 2\)")),
    (lambda: SmoothL1Loss(beta=-1.0), ValueError, (r"beta must be a finite real number >= 0, got "
                                                  r"-1\.0")),
    (lambda: HuberLoss(delta=0), ValueError, r"delta must be a finite real number > 0, got 0"),
    (lambda: BCEWithLogitsLoss(pos_weight=2.0), TypeError, (r"pos_weight must be None or a real "
                                                           r"array \(at least 1-D\)")),
])
def test_option_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_forward_option_errors():
    pred = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"weight must have one entry per class, C = "
                                         r"pred.shape\[1\] = 4, got shape \(3,\)"):
        CrossEntropyLoss(weight=[1.0, 2.0, 3.0])(pred, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"ignore_index is not supported for floating point "
                                         r"target \(class probabilities\), got ignore_index=0"):
        CrossEntropyLoss(ignore_index=0)(pred, np.full((3, 4), 0.25))
    with pytest.raises(TypeError, match=r"target of pred's shape \(3, 4\) holds class "
                                        r"probabilities and must be a floating-point array, got "
                                        r"dtype int64"):
        CrossEntropyLoss()(pred, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\) does not broadcast to "
                                         r"pred's shape \(3, 4\)"):
        BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 3.0])(pred, pred)
    with pytest.raises(ValueError, match=r"weight of shape \(2, 3, 4\) does not broadcast to "
                                         r"pred's shape \(3, 4\)"):
        BCELoss(weight=np.ones((2, 3, 4)))(pred, pred)


def test_backward_grad_errors():
    none = MSELoss(reduction="none")
    none(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"grad must be a real array of the loss's shape "
                                         r"\(2, 3\) \(reduction='none'\), got dtype float64, "
                                         r"shape \(3,\)"):
        none.backward(np.ones(3))
    mean = MSELoss()
    mean(np.zeros(2), np.zeros(2))
    with pytest.raises(TypeError, match=r"grad must be a real number for reduction='mean' \(the "
                                        r"loss is a scalar\), got ndarray"):
        mean.backward(np.ones(2))
    np.testing.assert_array_equal(mean.backward(np.array(3.0)), [0.0, 0.0])
