"""``train.fit`` and ``train.evaluate`` for any task: metrics that follow the targets (the bugs of
accuracy on autoencoders and on 2-D or string labels), validation, callbacks, early stopping,
schedulers, checkpoints, and the argument errors."""

import numpy as np
import pytest

from matconv import checkpoint, data, nn, optim, train
from matconv.batches import batch_indices
from matconv.optim import lr_scheduler
from matconv.train import EarlyStopping


def _digits(n=96):
    x, y = data.load_digits("train", dtype=np.float64)
    return x[:n], y[:n]


def _conv_autoencoder(seed=0):
    rng = np.random.default_rng(seed)
    kw = {"padding": 1, "dtype": np.float64, "rng": rng}
    return nn.Sequential(nn.Conv2d(1, 4, 3, **kw), nn.ReLU(), nn.Conv2d(4, 1, 3, **kw))


def _linear(n_in, n_out, seed=0):
    return nn.Linear(n_in, n_out, dtype=np.float64, rng=np.random.default_rng(seed))


# -- metrics follow the task (bugs first) -------------------------------------------------------

def test_autoencoder_reports_its_loss_and_no_accuracy():
    """The issue: an MSE autoencoder showed 'accuracies' of 1981 (argmax(out) == y broadcast)."""
    x, _ = _digits()
    model = _conv_autoencoder()
    history = train.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), x, x,
                        x[:32], x[:32], epochs=3, batch_size=16, progress=False)
    assert not any("accuracy" in key for key in history)
    assert history["train_loss"][-1] < history["train_loss"][0]
    model.eval()
    expected = np.mean((model(x[:32]) - x[:32]) ** 2)            # the oracle: numpy's MSE
    assert history["test_loss"][-1] == pytest.approx(expected, rel=1e-12)


def test_fit_skips_the_input_gradient_and_trains_like_the_full_backward():
    """fit asks matconv modules for the parameters' gradients alone; a custom backward without
    ``input_grad`` still trains; both give the weights of a full-backward loop."""
    x, _ = _digits(64)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _conv_autoencoder()

        def forward(self, x):
            return self.net(x)

        def backward(self, *grads):          # an override from before input_grad existed
            return super().backward(*grads)

    seen = []
    models = [_conv_autoencoder(), Custom()]
    real = models[0].backward

    def spy(*grads, input_grad=True):
        seen.append(input_grad)
        return real(*grads, input_grad=input_grad)

    models[0].backward = spy
    by_hand = _conv_autoencoder()
    opt = optim.SGD(by_hand.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()
    rng = np.random.default_rng(0)          # fit's batches for seed=0: one epoch
    for idx in batch_indices(np.arange(64), 16, shuffle=True, rng=rng):
        opt.zero_grad()
        loss_fn(by_hand(x[idx]), x[idx])
        by_hand.backward(loss_fn.backward())
        opt.step()
    for model in models:
        train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), x, x, epochs=1,
                  batch_size=16, seed=0, progress=False)
        weights = model.state_dict() if model is models[0] else model.net.state_dict()
        for key, value in by_hand.state_dict().items():
            np.testing.assert_allclose(weights[key], value, rtol=1e-12, err_msg=key)
    assert seen == [False] * 4                # four batches, no input gradient asked


def test_classification_accuracy_is_the_fraction_of_correct_argmax():
    x, y = _digits()
    model = nn.Sequential(nn.Flatten(), _linear(64, 10))
    history = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                        x, y, x, y, epochs=2, batch_size=32, progress=False)
    model.eval()
    expected = np.mean(np.argmax(model(x), axis=1) == y)
    assert history["test_accuracy"][-1] == expected
    assert train.evaluate(model, x, y) == expected


@pytest.mark.parametrize("labels, match", [
    (np.zeros((96, 1), np.int64), r"got targets of dtype int64 and shape \(96, 1\)"),
    (np.array(["a", "b"] * 48), r"got targets of dtype <U1 and shape \(96,\)"),
    (np.zeros(96), r"got targets of dtype float64 and shape \(96,\)"),
], ids=["2-d", "strings", "floats"])
def test_evaluate_refuses_accuracy_for_targets_that_are_not_class_labels(labels, match):
    """The issue: 2-D labels gave accuracy 5.0 and string labels 0.0."""
    x, _ = _digits()
    model = nn.Sequential(nn.Flatten(), _linear(64, 10))
    with pytest.raises(ValueError, match=r"evaluate reports accuracy, which needs integer class "
                                         r"labels of shape \(N,\); " + match):
        train.evaluate(model, x, labels)


def test_evaluate_with_metrics_returns_a_dict_for_any_target():
    x, _ = _digits()
    model = _conv_autoencoder()
    results = train.evaluate(model, x, x, batch_size=40, loss_fn=nn.MSELoss(),
                             metrics={"mae": lambda out, y: np.abs(out - y).mean()})
    out = model(x)
    assert set(results) == {"loss", "mae"}
    assert results["loss"] == pytest.approx(np.mean((out - x) ** 2), rel=1e-12)
    assert results["mae"] == pytest.approx(np.mean(np.abs(out - x)), rel=1e-12)


def test_evaluate_checks_labels_against_the_outputs():
    x, y = _digits()
    model = nn.Sequential(nn.Flatten(), _linear(64, 3))
    with pytest.raises(ValueError, match=r"class label \d is outside \[0, 3\) for model outputs "
                                         r"of 3 classes"):
        train.evaluate(model, x, y)
    with pytest.raises(ValueError, match=r"accuracy needs model outputs of shape \(N, C\) for "
                                         r"class labels of shape \(N,\), got outputs of shape "
                                         r"\(96, 1, 8, 8\)"):
        train.evaluate(_conv_autoencoder(), x, y)


def test_summed_loss_is_reported_per_example():
    x, _ = _digits(40)
    model = _conv_autoencoder()
    results = train.evaluate(model, x, x, batch_size=16, loss_fn=nn.SquaredError(), metrics={})
    assert results["loss"] == pytest.approx(0.5 * np.sum((model(x) - x) ** 2) / 40, rel=1e-12)


def test_user_metrics_in_the_history():
    x, _ = _digits(64)
    model = _conv_autoencoder()
    history = train.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), x, x,
                        epochs=2, batch_size=16, progress=False, validation_data=(x, x),
                        metrics={"peak": lambda out, y: float(np.max(out))})
    assert set(history) == {"train_loss", "train_peak", "val_loss", "val_peak",
                            "epoch_seconds", "eval_seconds"}
    model.eval()
    assert history["val_peak"][-1] == pytest.approx(np.max(model(x)), rel=1e-12)


# -- validation -------------------------------------------------------------------------------

def test_validation_split_holds_out_a_seeded_fraction():
    n = 50
    x = np.arange(n, dtype=np.float64)[:, None]
    seen = {"train": [], "val": []}

    def record(out, y):
        seen["train" if model.training else "val"].extend(y[:, 0].tolist())
        return 0.0

    model = _linear(1, 1)
    train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e-4), x, x, epochs=2,
              batch_size=8, progress=False, validation_split=0.2, metrics={"seen": record})
    train_set, val_set = set(seen["train"]), set(seen["val"])
    assert len(val_set) == 10 and len(train_set) == 40 and not train_set & val_set
    assert len(seen["train"]) == 80 and len(seen["val"]) == 20     # each once per epoch
    seen["train"], seen["val"] = [], []
    train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e-4), x, x, epochs=1,
              batch_size=8, progress=False, validation_split=0.2, metrics={"seen": record})
    assert set(seen["val"]) == val_set                             # same seed, same split


def test_validation_loss_is_the_evaluation_of_the_final_model():
    x, y = _digits()
    model = nn.Sequential(nn.Flatten(), _linear(64, 10))
    history = train.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2),
                        x[:64], y[:64], epochs=3, batch_size=16, progress=False,
                        validation_data=(x[64:], y[64:]))
    accuracy, loss = train.evaluate(model, x[64:], y[64:], loss_fn=nn.CrossEntropyLoss())
    assert history["val_accuracy"][-1] == accuracy
    assert history["val_loss"][-1] == pytest.approx(loss, rel=1e-12)


# -- early stopping and callbacks ---------------------------------------------------------------

def _diverging_problem():
    """Training pulls the weights along w1 = (1, 0); validation wants w2 = (0.5, 1), so the
    validation loss |w - w2|^2 falls until w reaches (0.5, 0), then rises."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 2))
    x_val = rng.standard_normal((200, 2))
    return x, x @ np.array([[1.0], [0.0]]), x_val, x_val @ np.array([[0.5], [1.0]])


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y, x_val, y_val = _diverging_problem()
    model = nn.Linear(2, 1, bias=False, dtype=np.float64)
    model.weight.data[...] = 0
    stop = EarlyStopping("val_loss", patience=2)
    history = train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.02), x, y,
                        epochs=100, batch_size=50, progress=False, validation_data=(x_val, y_val),
                        early_stopping=stop)
    losses = history["val_loss"]
    best = int(np.argmin(losses))
    assert 0 < best < 20 and stop.best_epoch == best and stop.best == losses[best]
    assert len(losses) == best + 3 and stop.stopped_epoch == best + 2
    assert all(later >= losses[best] for later in losses[best + 1:])
    results = train.evaluate(model, x_val, y_val, loss_fn=nn.MSELoss(), metrics={})
    assert results["loss"] == losses[best]                         # the best weights are back
    assert model.weight.data[0, 0] == pytest.approx(0.5, abs=0.05)


def test_early_stopping_min_delta_mode_and_no_restore():
    x, y, _x_val, _y_val = _diverging_problem()
    model = nn.Linear(2, 1, bias=False, dtype=np.float64)
    model.weight.data[...] = 0
    stop = EarlyStopping("train_loss", patience=0, min_delta=1.0, restore_best_weights=False)
    history = train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.02), x, y,
                        epochs=50, batch_size=50, progress=False, early_stopping=stop)
    # the training loss falls by less than 1.0 after the first epoch: stop at the second
    assert len(history["train_loss"]) == 2 and stop.best_epoch == 0
    assert EarlyStopping("val_accuracy").mode == "max" and EarlyStopping("val_mae").mode == "min"


def test_callbacks_see_each_epoch_and_can_stop():
    x, y, _, _ = _diverging_problem()
    calls = []

    def callback(epoch, history):
        calls.append((epoch, len(history["train_loss"])))
        return epoch == 3

    model = _linear(2, 1)
    history = train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), x, y,
                        epochs=10, batch_size=50, progress=False, callbacks=[callback])
    assert calls == [(0, 1), (1, 2), (2, 3), (3, 4)] and len(history["train_loss"]) == 4


# -- schedulers ---------------------------------------------------------------------------------

def test_scheduler_stepped_per_epoch():
    x, y, _, _ = _diverging_problem()
    model = _linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    history = train.fit(model, nn.MSELoss(), opt, x, y, epochs=5, batch_size=50,
                        progress=False, scheduler=sched)
    assert history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert sched.last_epoch == 5


def test_scheduler_stepped_per_batch():
    x, y, _, _ = _diverging_problem()                 # 200 examples, 4 batches per epoch
    model = _linear(2, 1)
    opt = optim.Adam(model.parameters())
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=4)
    reference_opt = optim.Adam([nn.module.Parameter(np.zeros(1))])
    reference = lr_scheduler.OneCycleLR(reference_opt, max_lr=0.1, epochs=3, steps_per_epoch=4)
    expected = []
    for step in range(12):
        if step % 4 == 0:
            expected.append(reference.get_last_lr()[0])
        reference.step()
    history = train.fit(model, nn.MSELoss(), opt, x, y, epochs=3, batch_size=50,
                        progress=False, scheduler=sched, scheduler_step="batch")
    assert sched.last_epoch == 12 and history["lr"] == expected


# -- checkpoints --------------------------------------------------------------------------------

def test_checkpoint_saves_model_and_optimizer_every_epoch(tmp_path):
    from matconv import models
    x, y = _digits(64)
    model = models.lenet(seed=0, channels=(2, 4), hidden=8, dtype="float64")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    path = tmp_path / "run.npz"
    history = train.fit(model, nn.CrossEntropyLoss(), opt, x, y, epochs=2, batch_size=32,
                        progress=False, checkpoint=path)
    again = models.lenet(seed=5, channels=(2, 4), hidden=8, dtype="float64")
    again_opt = optim.Adam(again.parameters(), lr=0.5)
    _, meta = checkpoint.load(path, model=again, optimizer=again_opt)
    assert meta["epoch"] == 2 and meta["history"]["train_loss"] == history["train_loss"]
    for p, q in zip(model.parameters(), again.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    saved, loaded = opt.state_dict(), again_opt.state_dict()
    assert loaded["param_groups"][0]["lr"] == 1e-2
    for i, buffers in saved["state"].items():
        for name, value in buffers.items():
            np.testing.assert_array_equal(loaded["state"][i][name], value)


def test_checkpoint_into_a_missing_directory_fails_before_training(tmp_path):
    x, y, _, _ = _diverging_problem()
    model = _linear(2, 1)
    before = model.weight.data.copy()
    with pytest.raises(FileNotFoundError, match=r"the directory .*missing.* does not exist "
                                                r"\(checked before training\)"):
        train.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), x, y, epochs=1,
                  progress=False, checkpoint=tmp_path / "missing" / "run.npz")
    np.testing.assert_array_equal(model.weight.data, before)


# -- argument errors ----------------------------------------------------------------------------

def _fit_error(**kwargs):
    x, y, _, _ = _diverging_problem()
    model = _linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    args = {"loss_fn": nn.MSELoss(), "optimizer": opt, "epochs": 1, "progress": False}
    args.update(kwargs)
    return train.fit(model, x_train=x, y_train=y, **args)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"loss_fn": nn.MSELoss(reduction="none")}, ValueError,
     (r"loss_fn has reduction='none', so it returns one loss per element; training and "
      r"scoring need a number: use MSELoss\(reduction='mean'\) or 'sum'")),
    ({"loss_fn": np.mean}, TypeError, (r"loss_fn must be a loss module with forward and "
                                      r"backward")),
    ({"validation_split": 1.0}, ValueError, (r"validation_split must be a fraction in \(0, 1\), "
                                            r"got 1\.0")),
    ({"validation_split": 0.001}, ValueError, r"leaves 0 for validation"),
    ({"validation_split": 0.1, "validation_data": (np.zeros((2, 2)), np.zeros((2, 1)))},
     ValueError, r"give validation_split or validation_data, not both"),
    ({"validation_data": np.zeros(3)}, TypeError, r"validation_data must be a pair"),
    ({"early_stopping": EarlyStopping()}, ValueError,
     r"early_stopping monitors 'val_loss' but there is no validation data"),
    ({"early_stopping": "val_loss"}, TypeError, (r"early_stopping must be a "
                                                r"matconv.train.EarlyStopping")),
    ({"scheduler": 3}, TypeError, r"scheduler must have a step\(\) method"),
    ({"scheduler_step": "step"}, ValueError, (r"scheduler_step must be 'epoch' or 'batch', got "
                                             r"'step'")),
    ({"callbacks": [1]}, TypeError, (r"callbacks\[0\] must be callable as callback\(epoch, "
                                    r"history\)")),
    ({"metrics": {"accuracy": np.mean}}, ValueError, (r"metrics names must be identifiers other "
                                                     r"than 'loss' and 'accuracy'")),
    ({"metrics": {"m": lambda out, y: out}}, TypeError, (r"metrics\['m'\] must return a number, "
                                                        r"got ndarray")),
    ({"epochs": True}, ValueError, r"epochs must be a positive int, got True"),
    ({"seed": -1}, ValueError, r"seed must be None or an int >= 0, got -1"),
    ({"checkpoint": 5}, TypeError, r"checkpoint must be a path \(str or os.PathLike\), got int"),
])
def test_fit_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _fit_error(**kwargs)


def test_scheduler_of_another_optimizer_is_refused():
    other = optim.SGD([nn.module.Parameter(np.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"scheduler schedules another optimizer"):
        _fit_error(scheduler=lr_scheduler.StepLR(other, step_size=1))
