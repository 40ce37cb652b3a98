"""``models``: LeNet sized to any input (non-square, odd sizes, channels, classes), the MLP
builder, specs that rebuild the same model, and an error naming the argument for each bad value."""
import json

import numpy as np
import pytest

from matconv import models, nn


@pytest.mark.parametrize("in_channels, size, num_classes", [
    (1, 8, 10), (1, (8, 12), 10), (3, (9, 13), 4), (2, (4, 4), 2), (1, (28, 28), 10),
    (1, (5, 16), 3),
])
def test_lenet_sized_to_the_data(in_channels, size, num_classes):
    """The issue: lenet(input_size=(8, 12)) was a raw TypeError. The dense layer's width must
    equal what the convolutions and pools actually produce."""
    height, width = (size, size) if isinstance(size, int) else size
    model = models.lenet(in_channels=in_channels, num_classes=num_classes, channels=(3, 5),
                         hidden=7, input_size=size, seed=0)
    x = np.random.default_rng(0).standard_normal((2, in_channels, height, width))
    out = model(x.astype(np.float32))
    assert out.shape == (2, num_classes)
    features = model[:7](x.astype(np.float32)).shape[1]          # up to the Flatten
    assert features == 5 * (height // 2 // 2) * (width // 2 // 2) == model[7].in_features


def test_lenet_spec_rebuilds_the_same_model():
    model = models.lenet(in_channels=3, num_classes=4, input_size=(8, 12), channels=(4, 6),
                         hidden=9, dtype="float64", seed=3)
    json.dumps(model.spec)                                    # JSON-safe for checkpoints
    assert model.spec["kwargs"]["input_size"] == [8, 12]
    again = models.build(json.loads(json.dumps(model.spec)))
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), again.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.data, p2.data)
    assert again[0].weight.dtype == np.float64
    assert models.lenet(input_size=8).spec["kwargs"]["input_size"] == 8


def test_mlp():
    model = models.mlp((1, 8, 8), num_classes=3, hidden=(16, 8), activation="tanh",
                       dropout=0.25, dtype="float64", seed=1)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout",
                     "Linear"]
    assert [m.in_features for m in model if isinstance(m, nn.Linear)] == [64, 16, 8]
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    assert model(x).shape == (4, 3)
    model.eval()
    flat = x.reshape(4, 64)
    w = [m for m in model if isinstance(m, nn.Linear)]
    h = np.tanh(np.tanh(flat @ w[0].weight.data.T + w[0].bias.data) @ w[1].weight.data.T
                + w[1].bias.data)
    np.testing.assert_allclose(model(x), h @ w[2].weight.data.T + w[2].bias.data, rtol=1e-12)
    again = models.build(json.loads(json.dumps(model.spec)))
    np.testing.assert_array_equal(again.eval()(x), model(x))
    assert len(models.mlp(5, hidden=()).parameters()) == 2         # one linear layer
    assert models.mlp(5, hidden=4)[1].out_features == 4


@pytest.mark.parametrize("kwargs, error, match", [
    ({"in_channels": 0}, ValueError, r"in_channels must be an int >= 1, got 0"),
    ({"in_channels": 1.5}, TypeError, r"in_channels must be an int >= 1, got 1\.5 \(float\)"),
    ({"num_classes": True}, TypeError, r"num_classes must be an int >= 1, got True \(bool\)"),
    ({"channels": (4,)}, ValueError, r"channels must hold 2 positive ints, got \(4,\)"),
    ({"channels": 4}, TypeError, r"channels must be a sequence of positive ints, got 4"),
    ({"channels": (4, -1)}, ValueError, r"channels\[1\] must be an int >= 1, got -1"),
    ({"hidden": 0}, ValueError, r"hidden must be an int >= 1, got 0"),
    ({"input_size": 3}, ValueError, r"input_size must be an int >= 4, got 3"),
    ({"input_size": (8, 2)}, ValueError, r"input_size\[1\] must be an int >= 4, got 2"),
    ({"input_size": (8, 8, 8)}, ValueError, r"input_size must hold 2 positive ints"),
    ({"input_size": "8x8"}, TypeError, (r"input_size must be a sequence of positive ints, got "
                                       r"'8x8'")),
    ({"lowering": "fast"}, ValueError, (r"lowering must be one of \('auto', 'im2col', "
                                       r"'sparse'\), got 'fast'")),
    ({"dtype": "float16"}, TypeError, r"dtype must be 'float32' or 'float64', got 'float16'"),
    ({"seed": -1}, ValueError, r"seed must be None or an int >= 0, got -1"),
])
def test_lenet_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        models.lenet(**kwargs)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0,), {}, ValueError, r"in_features must be an int >= 1, got 0"),
    (((),), {}, ValueError, r"in_features must be a positive int or a non-empty shape"),
    ((4,), {"hidden": (3, 0)}, ValueError, r"hidden\[1\] must be an int >= 1, got 0"),
    ((4,), {"activation": "gelu"}, ValueError, (r"activation must be one of \['leaky_relu', "
                                               r"'relu', 'sigmoid', 'tanh'\], got 'gelu'")),
    ((4,), {"dropout": 1.0}, ValueError, r"dropout must be a probability in \[0, 1\), got 1\.0"),
    ((4,), {"num_classes": 0}, ValueError, r"num_classes must be an int >= 1, got 0"),
])
def test_mlp_argument_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        models.mlp(*args, **kwargs)


@pytest.mark.parametrize("spec, error, match", [
    ([1, 2], TypeError, r"spec must be a dict \{'builder': name, 'kwargs': \{...\}\}, got list"),
    ({"builder": "resnet"}, ValueError, (r"unknown model builder 'resnet'; known: \['lenet', "
                                        r"'mlp'\]")),
    ({"builder": ["lenet"]}, ValueError, r"unknown model builder \['lenet'\]"),
    ({"builder": "lenet", "extra": 1}, ValueError, r"spec has unexpected keys \['extra'\]"),
    ({"builder": "lenet", "kwargs": [1]}, TypeError, (r"spec\['kwargs'\] must be a dict, got "
                                                     r"list")),
    ({"builder": "lenet", "kwargs": {"depth": 3}}, ValueError,
     r"spec\['kwargs'\] has 'depth', which lenet\(\) does not take; allowed: \['in_channels'"),
    ({"builder": "lenet", "kwargs": {"channels": [{"a": 1}, 2]}}, TypeError,
     (r"spec\['kwargs'\]\['channels'\] must be a number, string, boolean, None or a list of "
     r"those, got list")),
    ({"builder": "lenet", "kwargs": {"hidden": -5}}, ValueError,
     r"hidden must be an int >= 1, got -5"),
])
def test_build_validates_the_spec(spec, error, match):
    with pytest.raises(error, match=match):
        models.build(spec)
