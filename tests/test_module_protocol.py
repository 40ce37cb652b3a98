"""The module protocol: what a forward keeps, what ``matrix()`` means before and after one,
registration and state dicts, the recording of array operations, caches and size arithmetic.
Each bug report of the operators issue is a test here."""
import subprocess
import sys
import time

import numpy as np
import pytest

import matconv as mc
from matconv import nn

F64 = dict(dtype=np.float64)


# ---------------------------------------------------------------- what a forward keeps
@pytest.mark.parametrize("lowering", ["im2col", "sparse"])
def test_saved_columns_survive_other_products(lowering, rng):
    """Between a forward and its backward, a LinearOperator product on the same layer (which
    unfolds into the same plan's buffers) must not change the weight gradient."""
    conv = nn.Conv2d(2, 3, 3, padding=1, lowering=lowering, rng=rng, **F64)
    twin = nn.Conv2d(2, 3, 3, padding=1, lowering=lowering, **F64)
    twin.load_state_dict(conv.state_dict())
    x = rng.standard_normal((4, 2, 5, 5))
    dy = rng.standard_normal((4, 3, 5, 5))
    twin(x)
    twin.backward(dy)
    conv(x)
    conv.linear_operator(x.shape[1:]).matmat(rng.standard_normal((50, 4)))
    conv.backward(dy)
    np.testing.assert_allclose(conv.weight.grad, twin.weight.grad, rtol=1e-13)


def test_weight_edits_between_forward_and_backward_do_not_change_the_recorded_map(rng):
    conv = nn.Conv1d(1, 1, 3, bias=False, rng=rng, **F64)
    x = rng.standard_normal((2, 1, 6))
    conv(x)
    A = conv.matrix((1, 6)).toarray()
    conv.weight.data *= 10                       # e.g. an optimizer step in the wrong place
    dy = rng.standard_normal((2, 1, 4))
    np.testing.assert_allclose(conv.backward(dy)[0, 0], A.T @ dy[0, 0], rtol=1e-13)


def test_a_layer_used_twice_keeps_both_inputs(rng):
    conv = nn.Conv1d(1, 1, 2, bias=False, **F64)
    conv.weight.data[...] = [[[1.0, -1.0]]]
    net = nn.Sequential(conv, nn.ReLU(), conv)
    x = rng.standard_normal((3, 1, 8))
    y = net(x)
    dy = np.ones_like(y)
    net.backward(dy)
    # by hand: y = A relu(A x); dW sums over both applications
    h = mc.correlate(x[0, 0], [1.0, -1.0], "valid")
    assert np.allclose(y[0, 0], mc.correlate(np.maximum(h, 0), [1.0, -1.0], "valid"))
    expected = np.zeros(2)
    for n in range(3):
        h = mc.correlate(x[n, 0], [1.0, -1.0], "valid")
        r = np.maximum(h, 0)
        d_h = mc.correlate(dy[n, 0], [-1.0, 1.0], "full") * (h > 0)   # A.T dy, then the mask
        expected += mc.correlate(r, dy[n, 0], "valid") + mc.correlate(x[n, 0], d_h, "valid")
    np.testing.assert_allclose(conv.weight.grad.ravel(), expected, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, **F64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12, 4, **F64)),
    lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, **F64),
                          nn.Residual(nn.Conv2d(2, 2, 3, padding=1, **F64))),
    lambda: nn.ResidualBlock(2, 3, stride=2, dtype=np.float64),
], ids=["sequential", "residual-after-conv", "block-reading-x-twice"])
def test_backward_without_input_grad_skips_the_input_products_only(make, rng, monkeypatch):
    """``backward(dy, input_grad=False)`` returns None, gives the parameters the same gradients
    as the full backward, and never forms a product that only the input gradient needs."""
    full, lean = make(), make()
    lean.load_state_dict(full.state_dict())
    x = rng.standard_normal((3, 2, 4, 4))
    dy = rng.standard_normal(full(x).shape)
    full.backward(dy)
    transposed = []
    real = mc.operators.Transposed._matmat

    def spy(self, Y):
        transposed.append(self)
        return real(self, Y)

    lean(x)
    monkeypatch.setattr(mc.operators.Transposed, "_matmat", spy)
    assert lean.backward(dy, input_grad=False) is None
    for (name, p), (_, q) in zip(full.named_parameters(), lean.named_parameters()):
        np.testing.assert_array_equal(q.grad, p.grad, err_msg=name)
    spans = lean._span.records
    readers_of_x = [r for r in spans if r.inputs[0] in lean._span.inputs]
    assert readers_of_x and not any(t.T is r.op for r in readers_of_x for t in transposed)
    assert len(transposed) == len(spans) - len(readers_of_x)
    with pytest.raises(TypeError, match="input_grad must be a bool"):
        lean.backward(dy, input_grad="no")


# ---------------------------------------------------------------- matrix() before a forward
@pytest.mark.parametrize("layer", [nn.ReLU(), nn.Tanh(), nn.Softmax(dim=1), nn.MaxPool2d(2),
                                   nn.LPPool2d(2, 2), nn.Dropout(0.5)], ids=repr)
def test_data_dependent_matrix_before_forward_names_forward(layer):
    for call in (lambda: layer.matrix((1, 4, 4)), lambda: mc.symbolic(layer, (1, 4, 4)),
                 lambda: layer.backward(np.zeros((1, 1, 4, 4)))):
        with pytest.raises(nn.ForwardRequiredError, match=r"before forward\(\)") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


def test_nonlinear_network_has_no_matrix_without_a_point(rng):
    net = nn.Sequential(nn.Conv1d(1, 2, 3, **F64), nn.ReLU())
    with pytest.raises(ValueError, match=r"ReLU is not a fixed linear map: use jacobian"):
        net.matrix((1, 8))
    J = mc.jacobian(net, rng.standard_normal((1, 8)))
    assert J.shape == (12, 8)


# ---------------------------------------------------------------- symbolic sums
@pytest.mark.parametrize("mode, row0, row3", [
    ("reflect", ["w1", "w0+w2", "0", "0"], ["0", "0", "w0+w2", "w1"]),
    ("replicate", ["w0+w1", "w2", "0", "0"], ["0", "0", "w0", "w1+w2"]),
    ("circular", ["w1", "w2", "0", "w0"], ["w2", "0", "w0", "w1"]),
])
def test_symbolic_shows_the_sum_where_taps_meet(mode, row0, row3, rng):
    layer = nn.Conv1d(1, 1, 3, padding=1, padding_mode=mode, **F64)
    sym = mc.symbolic(layer, (1, 4))
    rows = [line.split() for line in sym.to_text().splitlines()]
    assert rows[0] == row0 and rows[3] == row3
    sympy = pytest.importorskip("sympy")
    M = sym.to_sympy()
    w = rng.standard_normal(3)
    values = dict(zip(sym.weight_symbols(), w))
    layer.weight.data[...] = w.reshape(1, 1, 3)
    A = layer.matrix((1, 4)).toarray()
    np.testing.assert_allclose(np.array(M.subs(values), dtype=float), A, rtol=1e-12)
    assert "w_{0} + w_{2}" in sym.to_latex() or mode != "reflect"
    assert isinstance(sympy.expand(M[0, 1]), sympy.Expr)


def test_symbolic_of_a_transposed_reflect_free_layer_reads_columns():
    sym = mc.symbolic(nn.ConvTranspose1d(1, 1, 3, stride=2), (1, 2))
    assert sym.to_text().splitlines()[0].split() == ["w0", "0"]


def test_symbolic_of_a_composed_stack_says_it_shows_numbers(rng):
    stack = nn.Sequential(nn.Conv1d(1, 1, 2, bias=False, **F64), nn.AvgPool1d(2))
    sym = mc.symbolic(stack, (1, 5))
    assert sym.note and "polynomials" in sym.note and sym.to_text().startswith("# numbers")
    np.testing.assert_allclose(sym.values, stack.matrix((1, 5)).toarray())


def test_symbolic_refuses_large_operators_before_building():
    mc.clear_caches()
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"too large to render \(16777216 cells"):
        mc.symbolic(nn.Conv2d(1, 1, 3, padding=1), (1, 64, 64))
    assert time.perf_counter() - start < 1 and mc.cache_info()["entries"] == 0


# ---------------------------------------------------------------- sizes are arithmetic
@pytest.mark.parametrize("layer, expected", [
    (nn.AvgPool2d(2), (64, 128, 128)), (nn.MaxPool2d(3, 2, 1, ceil_mode=True), (64, 129, 129)),
    (nn.Upsample(scale_factor=2), (64, 512, 512)), (nn.AdaptiveAvgPool2d(7), (64, 7, 7)),
    (nn.Conv2d(64, 8, 3, stride=2), (8, 127, 127)),
    (nn.ConvTranspose2d(64, 8, 3, stride=2), (8, 513, 513)),
    (nn.Sequential(nn.Conv2d(64, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), (8, 128, 128)),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None)
def test_output_shape_builds_nothing(layer, expected):
    mc.clear_caches()
    old = mc.set_memory_budget(1 << 10)        # 1 KiB: any structure would be refused
    try:
        start = time.perf_counter()
        assert layer.output_shape((64, 256, 256)) == expected
        assert time.perf_counter() - start < 0.05
    finally:
        mc.set_memory_budget(old)
    assert mc.cache_info()["entries"] == 0


def test_caches_are_bounded_and_clearable(rng):
    mc.clear_caches()
    old = mc.set_cache_limit(4 << 20)
    try:
        for size in (48, 56, 64, 72):
            nn.Conv2d(4, 4, 3, padding=1, lowering="sparse").matrix((4, size, size))
            nn.AvgPool2d(2).matrix((4, size, size))
            info = mc.cache_info()
            assert info["nbytes"] <= info["limit"] or info["entries"] == 1
    finally:
        mc.set_cache_limit(old)
    assert mc.cache_info()["entries"] > 0
    mc.clear_caches()
    assert mc.cache_info() == {"entries": 0, "nbytes": 0, "limit": mc.lowering.cache.cache_limit()}


def test_show_refuses_huge_operators_quickly():
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "matconv", "show", "--input", "512x512", "--kernel",
                        "3x3", "--channels", "64,64"], capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - start < 20
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "would take about" in r.stderr and "memory budget" in r.stderr


# ---------------------------------------------------------------- registration and state
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(1, 2, 3, **F64), nn.ReLU())
        self.head = nn.Linear(8, 2, **F64)
        self.register_buffer("seen", np.zeros(1))
        self.register_buffer("scratch", np.zeros(3), persistent=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        self.seen += len(x)
        return self.head(self.drop(self.body(x).reshape(len(x), -1)))


def test_registration_and_state_dict_keys_follow_pytorch():
    net = Net()
    assert list(net.state_dict()) == ["seen", "body.0.weight", "body.0.bias", "head.weight",
                                      "head.bias"]
    assert [n for n, _ in net.named_parameters()] == ["body.0.weight", "body.0.bias",
                                                      "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == ["seen", "scratch"]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "head", "drop"]
    net.eval()
    assert not net.drop.training and not net.body[1].training
    net.train()
    assert net.drop.training


def test_load_state_dict_checks_before_writing():
    net, other = Net(), Net()
    state = other.state_dict()
    before = net.head.weight.data.copy()
    bad = dict(state, **{"head.bias": np.ones(3)})
    with pytest.raises(ValueError, match=r"shape mismatch for 'head.bias'"):
        net.load_state_dict(bad)
    np.testing.assert_array_equal(net.head.weight.data, before)   # nothing written
    with pytest.raises(ValueError, match=r"missing keys \['seen'\]"):
        net.load_state_dict({k: v for k, v in state.items() if k != "seen"})
    for value in (np.ones((2, 8), complex), np.array(["a"] * 16).reshape(2, 8), None,
                  np.zeros((2, 8), "datetime64[D]")):
        with pytest.raises(TypeError, match=r"'head.weight' must"):
            net.load_state_dict(dict(state, **{"head.weight": value}))
    result = net.load_state_dict({"seen": np.array([5.0])}, strict=False)
    assert result.missing_keys == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert net.seen[0] == 5.0


def test_load_state_dict_takes_torch_tensors():
    torch = pytest.importorskip("torch")
    net = Net()
    state = {k: torch.tensor(v) * 2 for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.head.bias.data, state["head.bias"].numpy())


def test_float_and_double_cast_parameters_and_buffers(rng):
    net = Net().float()
    assert net.head.weight.dtype == np.float32 and net.seen.dtype == np.float32
    assert net(rng.standard_normal((2, 1, 6)).astype(np.float32)).dtype == np.float32
    net.double()
    assert net.body[0].weight.grad.dtype == np.float64


def test_dropout_honours_train_and_eval(rng):
    net = Net()
    x = rng.standard_normal((4, 1, 6))
    net.eval()
    a, b = net(x), net(x)
    np.testing.assert_array_equal(a, b)
    net.train()
    assert not np.allclose(net(x), a)


# ---------------------------------------------------------------- recording array operations
def test_an_operation_matconv_cannot_differentiate_fails_at_backward(rng):
    class Exp(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, **F64)

        def forward(self, x):
            return self.conv(np.exp(self.conv(x)))

    net = Exp()
    y = net(rng.standard_normal((2, 1, 9)))
    with pytest.raises(ValueError, match=r"reached np.exp applied to a layer's output"):
        net.backward(np.ones_like(y))


def test_a_path_a_forward_drops_is_no_error(rng):
    class Side(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, **F64)

        def forward(self, x):
            h = self.conv(x)
            _ = np.exp(h).sum()          # a statistic, never part of the output
            return h * 2.0

    net = Side()
    y = net(rng.standard_normal((2, 1, 9)))
    assert net.backward(np.ones_like(y)).shape == (2, 1, 9)


def test_cat_along_the_batch_is_refused_inside_a_forward(rng):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, **F64)

        def forward(self, x):
            return mc.cat([self.conv(x), self.conv(x)], dim=0)

    with pytest.raises(ValueError, match=r"cat along dim 0 \(the batch\)"):
        Bad()(rng.standard_normal((2, 1, 9)))
    assert mc.cat([np.ones((1, 2)), np.zeros((1, 2))], dim=0).shape == (2, 2)


def test_calling_forward_directly_records_nothing(rng):
    conv = nn.Conv1d(1, 1, 3, **F64)
    conv.forward(rng.standard_normal((2, 1, 9)))
    with pytest.raises(nn.ForwardRequiredError, match=r"call the module on an input first"):
        conv.backward(np.ones((2, 1, 7)))


def test_backward_through_a_released_forward_raises(rng):
    class Maybe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, **F64)
            self.use = True

        def forward(self, x):
            return self.conv(x) if self.use else x * 1.0

    net = Maybe()
    net(rng.standard_normal((2, 1, 9)))
    net.use = False
    net(rng.standard_normal((2, 1, 9)))          # releases the first forward
    with pytest.raises(nn.ForwardRequiredError, match=r"was released when Maybe ran its next"):
        net.conv.backward(np.ones((2, 1, 7)))


def test_no_grad_records_nothing(rng):
    conv = nn.Conv1d(1, 1, 3, **F64)
    with mc.no_grad():
        y = conv(rng.standard_normal((2, 1, 9)))
    assert type(y) is np.ndarray and y.shape == (2, 1, 7)
    with pytest.raises(nn.ForwardRequiredError):
        conv.backward(np.ones_like(y))


def test_outputs_are_plain_arrays_at_the_top_level(rng):
    net = nn.Sequential(nn.Conv1d(1, 1, 3, **F64), nn.ReLU())
    y = net(rng.standard_normal((2, 1, 9)))
    assert type(y) is np.ndarray and repr(y).startswith("array(")


def test_html_repr_lists_modules_shapes_parameters_and_operators(rng):
    model = mc.models.lenet(seed=0, dtype="float64")
    model(rng.standard_normal((2, 1, 8, 8)))
    page = model._repr_html_()
    assert page.count("<tr>") == 2 + len(model) + 1        # header, root, layers, total
    assert "(2, 32, 8, 8)" in page and f"{sum(p.data.size for p in model.parameters()):,}" in page
    conv = model[0]
    assert f"{conv.matrix((1, 8, 8)).nnz:,} nonzeros" in page
    for op in (conv.operator((1, 8, 8)), conv.operator((1, 8, 8)).T,
               nn.Conv2d(2, 2, 3, groups=2, lowering="sparse").operator((2, 5, 5))):
        assert op.nnz == op.matrix().nnz
