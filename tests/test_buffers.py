"""The buffer pool's results: handed out again only once nothing refers to them.

A result (a layer's output, an input gradient) is memory the caller owns; the pool may reuse it
only when the caller has dropped it and every view of it. These tests hold results in every way a
caller can (the array, a view, a container, the tape of a recorded forward) and check that later
calls never write into them, and that dropped results are reused.
"""
import gc

import numpy as np
import pytest

from matconv import nn
from matconv.operators.buffers import BufferPool, shared_pool

BIG = (256, 64)  # 128 KiB in float64: above the size the pool leaves to the allocator


def _dropped(pool, shape=BIG, dtype=np.float64) -> int:
    """The address of a result the caller took from ``pool`` and dropped at once."""
    return pool.result(shape, dtype, "an output").ctypes.data


def test_a_dropped_result_is_handed_out_again():
    pool = BufferPool()
    address = _dropped(pool)
    again = pool.result(BIG, np.float64, "an output")
    assert again.ctypes.data == address


@pytest.mark.parametrize("hold", ["array", "view", "transpose", "list", "dict"])
def test_a_held_result_is_never_handed_out_again(hold):
    pool = BufferPool()
    first = pool.result(BIG, np.float64, "an output")
    first[...] = 7.0
    holder = {"array": lambda a: a, "view": lambda a: a[3:, ::2], "transpose": lambda a: a.T,
              "list": lambda a: [a], "dict": lambda a: {"y": a}}[hold](first)
    address = first.ctypes.data
    del first
    others = [pool.result(BIG, np.float64, "an output") for _ in range(5)]
    assert all(o.ctypes.data != address for o in others)
    for o in others:
        o[...] = -1.0
    kept = holder if isinstance(holder, np.ndarray) else next(iter(
        holder.values() if isinstance(holder, dict) else holder))
    assert np.all(kept == 7.0)


def test_results_are_told_apart_by_shape_and_dtype():
    pool = BufferPool()
    address = _dropped(pool)
    b = pool.result(BIG, np.float32, "b")
    c = pool.result((64, 256), np.float64, "c")
    assert b.dtype == np.float32 and c.shape == (64, 256)
    assert address not in (b.ctypes.data, c.ctypes.data)


def test_small_and_huge_results_are_not_kept():
    pool = BufferPool()
    small = pool.result((4, 4), np.float64, "small")
    huge_shape = (BufferPool.RESULT_BYTES // 8 + 1,)
    huge = pool.result(huge_shape, np.float64, "huge")
    assert small.shape == (4, 4) and huge.shape == huge_shape
    del small, huge
    assert pool.nbytes == 0


def test_the_pool_keeps_a_bounded_number_of_results():
    pool = BufferPool()
    held = [pool.result(BIG, np.float64, "an output") for _ in range(10)]
    assert len({h.ctypes.data for h in held}) == 10
    assert pool.nbytes == BufferPool._KEEP_RESULTS * held[0].nbytes


def test_results_are_checked_against_the_memory_budget():
    from matconv.memory import get_memory_budget
    with pytest.raises(ValueError, match="the big output"):
        BufferPool().result((get_memory_budget() // 8 + 1,), np.float64, "the big output")


def _layers(seed=0):
    rng = np.random.default_rng(seed)
    conv = nn.Conv2d(4, 8, 3, padding=1, rng=rng)
    pool = nn.MaxPool2d(2)
    relu = nn.ReLU()
    dense = nn.Linear(8 * 8 * 8, 400, rng=rng)  # 400 x 64 float32: a pooled size
    net = nn.Sequential(conv, relu, pool, nn.Flatten(), dense)
    return net, rng


def test_a_network_never_writes_into_outputs_and_gradients_the_caller_holds():
    # every pooled result of a forward and backward (conv output and input gradient, ReLU
    # output, mask and product, max pool gradient, dense product), held across later calls
    net, rng = _layers()
    held = []
    for _ in range(4):
        x = rng.standard_normal((64, 4, 16, 16))
        y = net(x)
        dx = net.backward(rng.standard_normal(y.shape))
        held.append((y, y.copy(), dx, dx.copy()))
        gc.collect()
    for y, y_copy, dx, dx_copy in held:
        np.testing.assert_array_equal(y, y_copy)
        np.testing.assert_array_equal(dx, dx_copy)


def test_a_network_reuses_the_memory_of_dropped_results():
    # the point of the pool: after the first steps a training step takes its big results from
    # memory the pool already holds (this step's and the tape's last), and the pool stops growing
    from matconv import clear_caches
    clear_caches()
    net, rng = _layers()
    x = rng.standard_normal((64, 4, 16, 16))
    sizes = []
    for _ in range(5):
        y = net(x)  # the dense layer's product
        net.backward(np.ones_like(y))
        assert any(np.shares_memory(y, a) for arrays in shared_pool()._results.values()
                   for a in arrays)
        sizes.append(shared_pool().nbytes)
        del y  # (a list of the pool's arrays kept here would hold them, and so grow it)
    assert sizes[1] == sizes[2] == sizes[3] == sizes[4] > 0


def test_the_shared_pool_lives_in_the_one_cache():
    from matconv import clear_caches
    pool = shared_pool()
    assert shared_pool() is pool
    clear_caches()
    assert shared_pool() is not pool


def test_results_of_shapes_no_longer_used_make_room(monkeypatch):
    # inference over many batch sizes must not pile up results: past the pool's total, the
    # results nothing holds are dropped before a new one is kept, and held ones never are
    monkeypatch.setattr(BufferPool, "RESULTS_TOTAL", 4 * 128 * 1024)
    pool = BufferPool()
    held = pool.result((256, 64), np.float64, "held")
    for n in range(64, 80):
        pool.result((256, n), np.float64, "an output")  # dropped at once by the caller
        assert pool.nbytes <= BufferPool.RESULTS_TOTAL
    assert any(a is held for kept in pool._results.values() for a in kept)


def test_two_threads_sharing_the_pool_get_the_serial_results():
    # the one shared pool serves both threads' results of the same shapes: a result one
    # thread holds is never handed to the other
    import threading

    def run(seed):
        net, rng = _layers(seed)
        out = []
        for _ in range(6):
            x = rng.standard_normal((64, 4, 16, 16))
            y = net(x)
            dx = net.backward(np.ones_like(y))
            out.append((y, dx))  # held, not copied: later steps must not write into them
        return [(y.copy(), dx.copy()) for y, dx in out]

    serial = {seed: run(seed) for seed in (1, 2)}
    got = {}
    threads = [threading.Thread(target=lambda s=s: got.__setitem__(s, run(s))) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        for (y, dx), (y_want, dx_want) in zip(got[seed], serial[seed]):
            np.testing.assert_array_equal(y, y_want)
            np.testing.assert_array_equal(dx, dx_want)
