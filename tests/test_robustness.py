"""A hostile or careless user, as tests: bad and extreme arguments for every public constructor
(hypothesis), bad inputs and gradients for every layer, huge geometries that must be refused
quickly without allocating, the peak memory of accepted calls, threads, NaN and inf.

Every bad argument must end in a ``ValueError`` or ``TypeError`` (or a documented subclass) whose
message names the argument; nothing may crash, hang, allocate past the budget or return a
silently wrong number."""
import json
import math
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matconv as mc
from matconv import models, nn, optim

F64 = dict(dtype=np.float64)

# ---------------------------------------------------------------- hostile values
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70), st.lists(st.integers(-3, 5), max_size=4),
    st.tuples(st.integers(-2, 4)), st.sampled_from([object(), np.int64(-3), np.float32(2.5),
                                                    np.array([1, 2]), {"a": 1}, b"x", 1j]))

# constructor, valid base arguments, arguments to attack, input shape for a forward after
CONSTRUCTORS = [
    (nn.Conv2d, dict(in_channels=2, out_channels=4, kernel_size=3),
     ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
      "padding_mode", "lowering", "dtype", "rng"], (2, 2, 6, 6)),
    (nn.ConvTranspose1d, dict(in_channels=2, out_channels=4, kernel_size=3),
     ["in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
      "dilation", "groups", "padding_mode", "lowering", "dtype", "rng"], (2, 2, 5)),
    (nn.MaxPool2d, dict(kernel_size=2), ["kernel_size", "stride", "padding", "dilation"],
     (2, 3, 6, 6)),
    (nn.AvgPool1d, dict(kernel_size=2), ["kernel_size", "stride", "padding",
                                         "divisor_override"], (2, 3, 7)),
    (nn.AdaptiveAvgPool2d, dict(output_size=2), ["output_size"], (2, 3, 6, 6)),
    (nn.AdaptiveMaxPool2d, dict(output_size=2), ["output_size"], (2, 3, 6, 6)),
    (nn.LPPool2d, dict(norm_type=2, kernel_size=2), ["norm_type", "kernel_size", "stride"],
     (2, 3, 6, 6)),
    (nn.Upsample, dict(scale_factor=2), ["scale_factor", "mode"], (2, 3, 4, 4)),
    (nn.Upsample, dict(size=5), ["size"], (2, 3, 3, 3)),
    (nn.Linear, dict(in_features=3, out_features=2), ["in_features", "out_features", "dtype",
                                                      "rng"], (2, 3)),
    (nn.Dropout, dict(p=0.5), ["p", "rng"], (2, 3)),
    (nn.LeakyReLU, dict(), ["negative_slope"], (2, 3)),
    (nn.Softmax, dict(dim=1), ["dim"], (2, 3)),
    (nn.Flatten, dict(), ["start_dim", "end_dim"], (2, 3, 4)),
    (nn.ChannelMaxPool, dict(group_size=2), ["group_size"], (2, 4, 3)),
    (nn.ResidualBlock, dict(in_channels=2, out_channels=2), ["kernel_size", "stride", "ndim"],
     (2, 2, 6, 6)),
    (mc.ConvGeometry, dict(in_channels=2, out_channels=2, kernel_size=3),
     ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
      "padding_mode", "ndim"], None),
    (models.lenet, dict(), ["in_channels", "num_classes", "channels", "hidden", "input_size",
                            "lowering", "dtype", "seed"], (2, 1, 8, 8)),
]
CASES = [(ctor, base, arg, shape) for ctor, base, args, shape in CONSTRUCTORS for arg in args]
ALIASES = {"kernel_size": ("kernel_size",), "input_size": ("input_size", "input spatial size")}


@pytest.mark.parametrize("ctor, base, arg, shape", CASES,
                         ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=HOSTILE)
def test_constructors_refuse_bad_arguments_by_name(ctor, base, arg, shape, value):
    kwargs = dict(base, **{arg: value})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = ctor(**kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert any(name in message for name in ALIASES.get(arg, (arg,))) or \
            "memory budget" in message, f"{ctor.__name__}({arg}={value!r}): {message}"
        return
    if shape is None:
        return
    # accepted (a valid value): a forward and a backward work or refuse cleanly
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    try:
        y = m(x)
        m.backward(np.ones_like(y))
    except (ValueError, TypeError):
        pass


# ---------------------------------------------------------------- bad inputs and gradients
LAYERS = {
    "conv": lambda: nn.Conv2d(2, 3, 3, padding=1, **F64),
    "conv-sparse": lambda: nn.Conv2d(2, 2, 3, groups=2, **F64),
    "convT": lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, **F64),
    "maxpool": lambda: nn.MaxPool2d(2), "avgpool": lambda: nn.AvgPool2d(2),
    "adaptive": lambda: nn.AdaptiveAvgPool2d(2), "lppool": lambda: nn.LPPool2d(2, 2),
    "upsample": lambda: nn.Upsample(scale_factor=2, mode="bilinear"), "relu": nn.ReLU,
    "softmax": lambda: nn.Softmax(1), "flatten": nn.Flatten, "dropout": lambda: nn.Dropout(0.3),
    "maxout": lambda: nn.ChannelMaxPool(2), "identity": nn.Identity,
    "sequential": lambda: nn.Sequential(nn.Conv2d(2, 2, 3, **F64), nn.ReLU()),
    "residual": lambda: nn.ResidualBlock(2, 2, **F64),
}
BAD_INPUTS = {
    "int": np.ones((2, 2, 4, 4), int), "complex": np.ones((2, 2, 4, 4), complex),
    "str": np.full((2, 2, 4, 4), "a"), "object": np.full((2, 2, 4, 4), None, object),
    "list": [[1.0]], "none": None, "scalar": 3.0, "rank5": np.ones((1, 2, 2, 4, 4)),
    "channels3": np.ones((2, 3, 4, 4)), "empty-spatial": np.ones((2, 2, 0, 4)),
}


@pytest.mark.parametrize("layer", LAYERS, ids=str)
@pytest.mark.parametrize("bad", BAD_INPUTS, ids=str)
def test_bad_inputs_are_refused(layer, bad):
    m = LAYERS[layer]()
    try:
        y = m(BAD_INPUTS[bad])
    except (ValueError, TypeError) as exc:
        assert "input" in str(exc) or "channels" in str(exc) or "shape" in str(exc), str(exc)
        return
    assert isinstance(y, np.ndarray) and y.dtype.kind == "f"  # accepted: a real result


@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_bad_gradients_are_refused_by_name(layer, rng):
    m = LAYERS[layer]()
    y = m(rng.standard_normal((2, 2, 4, 4)))
    for dy in (None, y.tolist(), np.ones(y.shape, int), np.ones(y.shape, complex),
               np.ones((*y.shape, 1)), np.ones(y.shape[::-1] + (2,))):
        with pytest.raises((ValueError, TypeError), match="grad_output"):
            m.backward(dy)
    assert m.backward(np.ones_like(y)).shape == (2, 2, 4, 4)


@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_an_empty_batch_gives_an_empty_result(layer):
    m = LAYERS[layer]()
    y = m(np.zeros((0, 2, 4, 4)))
    assert y.shape[0] == 0
    assert m.backward(np.zeros(y.shape)).shape == (0, 2, 4, 4)


def test_nan_and_inf_propagate_silently_like_pytorch():
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(1, 2, 3, padding=1, **F64)
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1], x[0, 0, 2, 3] = np.nan, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = conv(x)
    t = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(conv.weight.data),
                                   torch.tensor(conv.bias.data), padding=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(t.numpy()))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(t.numpy()))


@pytest.mark.parametrize("call, error, match", [
    (lambda: mc.symbolic(None, (1, 4)), TypeError, "layer must be a matconv Module"),
    (lambda: mc.symbolic(nn.ReLU(), "x"), TypeError, "input_shape must be a tuple"),
    (lambda: mc.compose(3, (1, 4)), TypeError, "model must be a matconv Module"),
    (lambda: mc.compose([nn.Conv1d(1, 1, 2)], None), ValueError, "needs input_shape"),
    (lambda: mc.jacobian(nn.ReLU(), "abc"), TypeError, "x must be a real numeric ndarray"),
    (lambda: mc.transposed_conv_direct(np.ones((1, 1, 3), complex), np.ones((1, 1, 2))),
     TypeError, "x must be a real numeric array"),
    (lambda: mc.transposed_conv_direct(np.ones((1, 1, 3)), np.ones((1, 1, 2)), stride=2,
                                       output_padding=2), ValueError, "output_padding"),
    (lambda: mc.set_memory_budget("1GB"), TypeError, "memory budget"),
    (lambda: mc.set_memory_budget(0), ValueError, "memory budget"),
    (lambda: mc.set_cache_limit(-1), ValueError, "cache limit"),
    (lambda: nn.Conv1d(1, 1, 2).matrix((1, 4), example=2), ValueError, "example"),
    (lambda: nn.Linear(2, 2)(np.ones((1, 2), complex)), TypeError, "input"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, "Module instances"),
    (lambda: nn.Module().register_buffer("a.b", np.zeros(1)), ValueError, "buffer name"),
    (lambda: nn.Linear(2, 2).load_state_dict([1, 2]), TypeError, "state_dict must be a dict"),
    (lambda: nn.Linear(2, 2).train("yes"), TypeError, "mode must be a bool"),
    (lambda: nn.Linear(2, 2).to("int8"), TypeError, "dtype must be"),
    (lambda: mc.cat("ab", dim=1), TypeError, "arrays must be"),
    (lambda: mc.cat([np.ones((1, 2))], dim="x"), TypeError, "dim must be an int"),
])
def test_functions_refuse_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_example_is_only_for_data_dependent_operators():
    conv = nn.Conv1d(1, 1, 2)
    with pytest.raises(ValueError, match=r"example= applies to data-dependent operators"):
        conv.matrix((1, 4), example=0)


# ---------------------------------------------------------------- memory: refuse fast, peak bound
HARNESS = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
import matconv as mc
from matconv import nn, models
cases, budget = json.loads(sys.argv[1]), int(sys.argv[2])
if budget:
    mc.set_memory_budget(budget)
out = {}
for name, code in cases:
    fn = eval("lambda: " + code)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        fn()
        result = ["accepted", ""]
    except Exception as exc:
        result = [type(exc).__name__, str(exc)[:300]]
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out[name] = result + [seconds, peak]
print(json.dumps(out))
"""


def run_capped(cases, budget=0, timeout=240):
    """Run ``cases`` (name, expression) in one subprocess whose address space is capped."""
    root = os.path.dirname(os.path.dirname(mc.__file__))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cap = "import resource; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
    r = subprocess.run([sys.executable, "-c", cap + HARNESS, json.dumps(cases), str(budget)],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


HUGE = [
    ("conv padding 50000", "nn.Conv2d(1, 1, 3, padding=50000)(np.ones((1, 1, 4, 4), np.float32))"),
    ("transposed stride 10**4",
     "nn.ConvTranspose2d(1, 1, 3, stride=10**4)(np.ones((1, 1, 40, 40), np.float32))"),
    ("max pool 20000", "nn.MaxPool2d(20000, 1, 10000)(np.ones((1, 1, 4, 4), np.float32))"),
    ("adaptive 10**6", "nn.AdaptiveAvgPool2d(10**6)(np.ones((1, 1, 4, 4), np.float32))"),
    ("adaptive max 10**6", "nn.AdaptiveMaxPool2d(10**6)(np.ones((1, 1, 4, 4), np.float32))"),
    ("upsample 10**4", "nn.Upsample(scale_factor=10**4)(np.ones((1, 1, 4, 4), np.float32))"),
    ("bilinear 10**4",
     "nn.Upsample(scale_factor=10**4, mode='bilinear')(np.ones((1, 1, 4, 4), np.float32))"),
    ("unfold_matrix 10**5", "mc.unfold_matrix((1, 10**5, 10**5), 3)"),
    ("correlate", "mc.correlate(np.ones(10**5), np.ones(10**4))"),
    ("conv 10**6 channels", "nn.Conv2d(10**6, 10**6, 3)"),
    ("linear 10**6", "nn.Linear(10**6, 10**6)"),
    ("lenet hidden 10**12", "models.lenet(hidden=10**12)"),
    ("compose", "mc.compose([nn.Conv2d(64, 64, 3, padding=1)], (64, 512, 512))"),
    ("receptive field", "mc.receptive_field([nn.Conv2d(64, 64, 3, padding=1), nn.ReLU()], "
                        "(64, 512, 512), 0)"),
    ("jacobian", "mc.jacobian(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()), "
                 "np.zeros((8, 512, 512), np.float32))"),
    ("conv_matrix", "mc.conv_matrix(np.ones((64, 64, 3, 3)), (64, 512, 512))"),
    ("symbolic", "mc.symbolic(nn.Conv2d(64, 64, 3), (64, 512, 512))"),
    ("weight_index_matrix", "mc.weight_index_matrix((8, 8, 3, 3), (8, 256, 256))"),
    ("huge batch", "nn.Conv2d(64, 64, 3)(np.broadcast_to(np.float32(1), (10**5, 64, 32, 32)))"),
]


@pytest.fixture(scope="module")
def huge():
    return run_capped(HUGE)


@pytest.mark.parametrize("name", [c[0] for c in HUGE])
def test_huge_requests_are_refused_fast_without_allocating(huge, name):
    kind, message, seconds, peak = huge[name]
    assert kind == "ValueError", f"{name}: {kind}: {message}"
    assert "memory budget" in message or "too large to render" in message, message
    assert seconds < 1.0, f"{name} took {seconds:.2f} s to refuse"
    assert peak < 48 << 20, f"{name} allocated {peak / 2**20:.0f} MiB before refusing"


BUDGET = 96 << 20
NEAR_BUDGET = [
    ("bilinear", "nn.Upsample(scale_factor=2, mode='bilinear')(np.ones((2, 4, 96, 96)))"),
    ("bilinear over", "nn.Upsample(scale_factor=4, mode='bilinear')(np.ones((2, 8, 128, 128)))"),
    ("conv batch", "nn.Conv2d(8, 8, 3, padding=1)(np.ones((64, 8, 24, 24), np.float32))"),
    ("sparse conv", "nn.Conv2d(8, 8, 3, padding=1, groups=8)(np.ones((16, 8, 48, 48)))"),
    ("max pool", "nn.MaxPool2d(3, 1, 1)(np.ones((16, 8, 48, 48)))"),
    ("avg pool backward", "(lambda p: p.backward(np.ones(p(np.ones((16, 8, 48, 48))).shape)))"
                          "(nn.AvgPool2d(3, 1, 1))"),
    ("conv matrix", "nn.Conv2d(4, 4, 3, padding=1).matrix((4, 96, 96))"),
    ("jacobian", "mc.jacobian(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()), "
                 "np.ones((2, 48, 48), np.float32))"),
]


def test_accepted_calls_peak_within_four_budgets():
    results = run_capped(NEAR_BUDGET, budget=BUDGET)
    accepted = 0
    for name, (kind, message, seconds, peak) in results.items():
        if kind == "accepted":
            accepted += 1
            assert peak <= 4 * BUDGET, f"{name}: peak {peak / 2**20:.0f} MiB"
        else:
            assert kind == "ValueError" and "memory budget" in message, f"{name}: {message}"
            assert peak <= BUDGET, f"{name}: refused after {peak / 2**20:.0f} MiB"
    assert accepted >= 5 and results["bilinear over"][0] == "ValueError"


# ---------------------------------------------------------------- threads
def _net(seed):
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=np.random.default_rng(seed), **F64),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64, 3, rng=np.random.default_rng(seed + 1), **F64))


def _steps(net, seed, n=15):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((5, 2, 8, 8))
        y = net(x)
        net.zero_grad()
        dx = net.backward(np.ones_like(y))
        out.append((y.copy(), dx.copy(), net[0].weight.grad.copy()))
    return out


def test_separate_layers_in_two_threads_agree_with_serial():
    """Two networks of one geometry share the cached plan and its buffers."""
    serial = [_steps(_net(s), 100 + s) for s in (1, 2)]
    results = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, _steps(_net(s),
                                                                                  100 + s)))
               for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, expected in zip((1, 2), serial):
        for got, want in zip(results[s], expected):
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)


def test_one_layer_forward_in_two_threads_is_correct():
    """Forward only: one layer may serve two threads (its backward is per forward, so a shared
    layer should not be trained from two threads at once)."""
    conv = nn.Conv2d(3, 4, 3, padding=1, **F64)
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((8, 3, 16, 16)) for _ in range(2)]
    with mc.no_grad():
        expected = [conv(x) for x in xs]
    got = {}

    def work(i):
        with mc.no_grad():
            got[i] = [conv(xs[i]).copy() for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for y in got[i]:
            np.testing.assert_array_equal(y, expected[i])


# ---------------------------------------------------------------- optimizers and training
@pytest.mark.parametrize("call, match", [
    (lambda p: optim.SGD(p, lr=math.inf), "lr"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "betas"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "momentum"),
    (lambda p: optim.SGD([], lr=0.1), "empty"),
])
def test_optimizers_refuse_bad_arguments(call, match):
    params = nn.Linear(2, 2).parameters()
    with pytest.raises((ValueError, TypeError), match=match):
        call(params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=True), "batch_size"), (dict(batch_size=0), "batch_size"),
    (dict(epochs=0), "epochs"), (dict(epochs=1.5), "epochs"),
])
def test_fit_refuses_bad_arguments(kwargs, match):
    model = nn.Sequential(nn.Linear(3, 2, **F64))
    x, y = np.zeros((4, 3)), np.zeros(4, int)
    with pytest.raises((ValueError, TypeError), match=match):
        mc.train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), x, y,
                     progress=False, **kwargs)


def test_evaluate_refuses_labels_that_are_not_classes():
    model = nn.Sequential(nn.Linear(3, 2, **F64))
    for labels in (np.zeros((4, 2)), np.array(["a", "b", "c", "d"])):
        with pytest.raises((ValueError, TypeError)):
            mc.train.evaluate(model, np.zeros((4, 3)), labels)


def test_jacobian_of_a_batch_says_x_is_one_example():
    with pytest.raises(ValueError, match=r"jacobian runs the model on x as one example .* batch "
                                         r"of shape \(1, 1, 1, 5\).*x\[i\]"):
        mc.jacobian(nn.Conv1d(1, 1, 3), np.ones((1, 1, 5)))
