"""The batch iterator: coverage, order, determinism per seed, drop_last, len(), x-only and
(x, y) datasets, and the argument errors."""
import numpy as np
import pytest

import matconv
from matconv.batches import DataLoader, batch_indices


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                                      (2, 5, False), (2, 5, True), (0, 4, False)])
def test_len_and_coverage(n, batch_size, drop_last):
    x = np.arange(n) * 10
    loader = DataLoader(x, batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    full, rest = divmod(n, batch_size)
    expected_len = full if drop_last or rest == 0 else full + 1
    assert len(loader) == len(batches) == expected_len
    assert all(len(b) == batch_size for b in batches[:full])
    covered = np.concatenate(batches) if batches else np.array([], int)
    expected = x[:full * batch_size] if drop_last else x
    np.testing.assert_array_equal(covered, expected)            # in order without shuffle


def test_shuffle_is_a_permutation_each_epoch_and_reproducible():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=5)
    epochs = [list(loader) for _ in range(3)]
    orders = [np.concatenate([yb for _, yb in epoch]) for epoch in epochs]
    for order, epoch in zip(orders, epochs):
        assert sorted(order.tolist()) == list(range(10))
        for xb, yb in epoch:                                   # pairs stay together
            np.testing.assert_array_equal(xb[:, 0], 2 * yb)
    assert not np.array_equal(orders[0], orders[1])            # a new permutation per epoch
    again = DataLoader((x, y), batch_size=4, shuffle=True, seed=5)
    for order in orders:
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in again]), order)
    other = DataLoader((x, y), batch_size=4, shuffle=True, seed=6)
    assert not np.array_equal(np.concatenate([yb for _, yb in other]), orders[0])


def test_the_same_permutations_as_a_seeded_generator():
    rng = np.random.default_rng(3)
    expected = [rng.permutation(7) for _ in range(2)]
    loader = DataLoader(np.arange(7), batch_size=7, shuffle=True, seed=3)
    for order in expected:
        np.testing.assert_array_equal(next(iter(loader)), order)


def test_default_generator_follows_manual_seed():
    matconv.manual_seed(4)
    a = list(DataLoader(np.arange(8), batch_size=8, shuffle=True))
    matconv.manual_seed(4)
    b = list(DataLoader(np.arange(8), batch_size=8, shuffle=True))
    np.testing.assert_array_equal(a[0], b[0])


def test_batches_are_copies_of_any_array_kind():
    x = np.arange(12.0).reshape(3, 4).T                        # not C-contiguous
    loader = DataLoader(x, batch_size=2)
    first = next(iter(loader))
    first[...] = -1
    assert x.min() == 0
    xs, ys, ws = next(iter(DataLoader((x, np.arange(4), np.ones((4, 2, 2))), batch_size=3)))
    assert xs.shape == (3, 3) and ys.shape == (3,) and ws.shape == (3, 2, 2)


def test_batch_indices_over_a_subset():
    rng = np.random.default_rng(0)
    subset = np.array([9, 4, 7, 1, 3])
    batches = list(batch_indices(subset, 2, shuffle=True, rng=rng))
    assert sorted(np.concatenate(batches).tolist()) == sorted(subset.tolist())
    assert [len(b) for b in batches] == [2, 2, 1]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dataset": [1, 2, 3]}, TypeError, (r"dataset must be a numpy ndarray or a tuple of "
                                        r"ndarrays, e.g. \(x, y\), got list")),
    ({"dataset": ()}, TypeError, r"dataset must be"),
    ({"dataset": (np.zeros(3), np.zeros(4))}, ValueError,
     (r"dataset arrays must have the same length \(one entry per example\), got lengths "
     r"\[3, 4\]")),
    ({"dataset": np.float64(1.0)}, TypeError, r"dataset must be"),
    ({"dataset": np.array(1.0)}, ValueError, r"must have at least one axis"),
    ({"batch_size": 0}, ValueError, r"batch_size must be a positive int, got 0"),
    ({"batch_size": True}, TypeError, r"batch_size must be a positive int, got True \(bool\)"),
    ({"batch_size": 2.0}, TypeError, r"batch_size must be a positive int, got 2\.0 \(float\)"),
    ({"shuffle": 1}, TypeError, r"shuffle must be True or False, got 1"),
    ({"shuffle": True, "seed": -1}, ValueError, (r"seed must be None, an int >= 0 or a "
                                                r"numpy.random.Generator, got -1")),
    ({"shuffle": True, "seed": "0"}, ValueError, r"seed must be None"),
])
def test_errors(kwargs, error, match):
    kwargs = {"dataset": np.zeros(5), **kwargs}
    with pytest.raises(error, match=match):
        DataLoader(**kwargs)
