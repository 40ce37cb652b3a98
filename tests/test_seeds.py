"""The worked examples of the source notes, reproduced exactly: Nilanjan Ray, "Training Convnet
with Backprop" (flips, ``dK`` and ``dI``), and Hiroshi Kuwajima's slides after "Memo:
Backpropagation in Convolutional Neural Network" (the strided, padded slide and the conv matrix
with its transpose)."""
import numpy as np

import matconv as mc
from matconv import nn


def test_ray_flip():
    k = np.array([[1, 3, 5], [2, 4, 6]])
    np.testing.assert_array_equal(k[::-1, ::-1], [[6, 4, 2], [5, 3, 1]])


def test_ray_dK_is_input_correlated_with_dJ_and_dI_is_full_correlation_with_flipped_K(rng):
    """dK = I * dJ (valid correlation); dI = pad(dJ) * flip(K) (full correlation)."""
    image = rng.standard_normal((6, 5))
    kernel = rng.standard_normal((3, 2))
    layer = nn.Conv2d(1, 1, (3, 2), bias=False, dtype=np.float64)
    layer.weight.data[0, 0] = kernel
    out = layer(image[None, None])
    dJ = rng.standard_normal(out.shape)
    dI = layer.backward(dJ)
    np.testing.assert_allclose(layer.weight.grad[0, 0], mc.correlate(image, dJ[0, 0], "valid"),
                               rtol=1e-12)
    np.testing.assert_allclose(dI[0, 0], mc.correlate(dJ[0, 0], kernel[::-1, ::-1], "full"),
                               rtol=1e-12)


def test_kuwajima_slide_strided_padded_example():
    """5x5 input, 3x3 kernel, padding 1, stride 2 -> the true cross-correlation (the figure's
    printed output is a known erratum)."""
    x = np.array([[2, 2, 3, 3, 3], [0, 1, 3, 0, 3], [2, 3, 0, 1, 3], [3, 3, 2, 1, 2],
                  [3, 3, 0, 2, 3]], dtype=np.float64)
    k = np.array([[2, 0, 1], [1, 0, 0], [0, 1, 1]], dtype=np.float64)
    A = mc.conv_matrix(k[None, None], (1, 5, 5), stride=2, padding=1)
    y = (A @ x.ravel()).reshape(3, 3)
    np.testing.assert_array_equal(y, [[1, 5, 6], [7, 8, 3], [3, 10, 4]])
    assert not np.array_equal(y, [[1, 6, 5], [7, 10, 9], [7, 10, 8]])


def test_kuwajima_sparse_matrix_shape_and_transpose():
    """The slide prints the 16x4 transpose of the 4x16 conv matrix."""
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    A = mc.conv_matrix(w, (1, 4, 4))
    assert A.shape == (4, 16) and A.T.shape == (16, 4)
    up = nn.ConvTranspose2d(1, 1, 3, bias=False, dtype=np.float64)
    up.weight.data[...] = w
    np.testing.assert_array_equal(up.matrix((1, 2, 2)).toarray(), A.toarray().T)
