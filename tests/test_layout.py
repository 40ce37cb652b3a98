"""Batch-last layout helpers: values never change, only memory order."""
import numpy as np
import pytest

from matconv.layout import from_batch_last, to_batch_last


@pytest.mark.parametrize("shape", [(3, 5), (256, 16, 8, 8), (4, 2, 32, 32), (7, 512), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_batch_last_is_the_transpose(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    X = to_batch_last(x)
    assert X.flags.c_contiguous and X.dtype == dtype
    np.testing.assert_array_equal(X, x.reshape(shape[0], -1).T)
    y = from_batch_last(X, shape)
    np.testing.assert_array_equal(y, x)
    assert to_batch_last(y) is not X and np.shares_memory(to_batch_last(y), X)  # free way back
