"""The cross-border test of issue 10: a small CNN with batch normalisation trained 5 steps in
PyTorch, converted with ``from_torch`` together with its optimizer's state, then 5 more steps in
matconv and in PyTorch from the same state on the same batches, with SGD + momentum and with
AdamW. Parameters, buffers and optimizer state agree to 1e-9 in float64, and ``to_torch`` of the
result computes what PyTorch's model computes."""
import numpy as np
import pytest

import matconv as mc
from matconv import nn

torch = pytest.importorskip("torch")


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(6, momentum=None), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(24, 3)).double()


def batches(rng, count=10):
    return [(rng.standard_normal((6, 1, 8, 8)), rng.integers(0, 3, 6)) for _ in range(count)]


def torch_step(model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    opt.step()
    return loss.item()


def matconv_step(model, opt, criterion, x, y):
    opt.zero_grad()
    loss = criterion(model(x), y)
    model.backward(criterion.backward())
    opt.step()
    return float(loss)


def assert_optimizer_states_agree(ours, theirs):
    mine, other = ours.state_dict(), theirs.state_dict()
    assert sorted(mine["state"]) == sorted(other["state"])
    for index, buffers in other["state"].items():
        for name, value in buffers.items():
            value = np.asarray(value.detach().numpy() if hasattr(value, "detach") else value)
            np.testing.assert_allclose(np.asarray(mine["state"][index][name], dtype=float),
                                       value.astype(float), rtol=1e-9, atol=1e-12,
                                       err_msg=f"state[{index}][{name!r}]")
    for group, group_t in zip(mine["param_groups"], other["param_groups"]):
        for key in ("lr", "weight_decay", "params"):
            assert group[key] == group_t[key], key


@pytest.mark.parametrize("make", [
    (lambda params, T: T.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)),
    (lambda params, T: T.AdamW(params, lr=0.01, betas=(0.8, 0.99), weight_decay=0.05)),
], ids=["SGD-momentum", "AdamW"])
def test_train_in_torch_then_both_from_the_same_state(make, rng):
    torch.manual_seed(0)
    data = batches(rng)
    theirs = cnn()
    opt_t = make(theirs.parameters(), torch.optim)
    for x, y in data[:5]:
        torch_step(theirs, opt_t, x, y)

    ours = mc.from_torch(theirs)
    opt = make(ours.parameters(), mc.optim)
    opt.load_state_dict(opt_t.state_dict())  # PyTorch's layout, tensors and all
    assert_optimizer_states_agree(opt, opt_t)

    criterion = nn.CrossEntropyLoss()
    for x, y in data[5:]:
        loss_t = torch_step(theirs, opt_t, x, y)
        loss = matconv_step(ours, opt, criterion, x, y)
        assert np.isclose(loss, loss_t, rtol=1e-9)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=key)
    assert_optimizer_states_agree(opt, opt_t)

    back = mc.to_torch(ours)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key].numpy(), value, err_msg=key)
    for mode in (False, True):
        back.train(mode), theirs.train(mode)
        x = torch.tensor(rng.standard_normal((4, 1, 8, 8)))
        np.testing.assert_allclose(back(x).detach().numpy(), theirs(x).detach().numpy(),
                                   rtol=1e-9, atol=1e-9)  # outputs of order 1
