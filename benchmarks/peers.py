"""The conv layers matconv is timed against in ``bench_conv.py``, written the way people write them.

* :class:`NumpyIm2colConv`: im2col by fancy indexing, one GEMM, col2im with ``np.add.at``
  (CS231n's ``conv_forward_im2col`` / numpy-ml style); index arrays cached per input shape (a
  favour to it); :class:`GroupedPeer` adds groups the usual way, one layer per group.
* :class:`SlidingWindowConv`: ``numpy.lib.stride_tricks.sliding_window_view`` and
  ``np.tensordot``; the input gradient as one strided ``+=`` per kernel tap.
* :class:`CorrelateConv`: ``scipy.signal.correlate`` / ``convolve`` on the stack of examples,
  one call per filter (single input channel, stride 1, no dilation only).
* :func:`jax_conv`: ``jax.jit`` of ``lax.conv_general_dilated`` and of its ``jax.vjp``.

Every peer has ``forward(x)`` and ``backward(dy)`` (returns ``dx``, sets ``dw`` and ``db``).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class NumpyIm2colConv:
    """A conv layer as people usually write it in numpy (CS231n ``conv_forward_im2col`` style)."""

    def __init__(self, w, b, stride, pad, dilation):
        self.w, self.b = w, b
        self.stride, self.pad, self.dilation = stride, pad, dilation
        self._idx = {}

    def _indices(self, x_shape):
        if x_shape not in self._idx:
            N, C, H, W = x_shape
            F_, _, kh, kw = self.w.shape
            s, p, d = self.stride, self.pad, self.dilation
            Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
            Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
            i0 = np.tile(d * np.repeat(np.arange(kh), kw), C)
            i1 = s * np.repeat(np.arange(Ho), Wo)
            j0 = np.tile(d * np.arange(kw), kh * C)
            j1 = s * np.tile(np.arange(Wo), Ho)
            i = i0.reshape(-1, 1) + i1.reshape(1, -1)
            j = j0.reshape(-1, 1) + j1.reshape(1, -1)
            k = np.repeat(np.arange(C), kh * kw).reshape(-1, 1)
            self._idx[x_shape] = (k, i, j, Ho, Wo)
        return self._idx[x_shape]

    def forward(self, x):
        N = x.shape[0]
        F_ = self.w.shape[0]
        p = self.pad
        k, i, j, Ho, Wo = self._indices(x.shape)
        x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
        cols = x_padded[:, k, i, j]                              # (N, C*kh*kw, Ho*Wo)
        cols = cols.transpose(1, 2, 0).reshape(cols.shape[1], -1)
        out = self.w.reshape(F_, -1) @ cols + self.b.reshape(-1, 1)
        out = out.reshape(F_, Ho, Wo, N).transpose(3, 0, 1, 2)
        self.cache = (x.shape, cols)
        return out

    def backward(self, dout):
        x_shape, cols = self.cache
        N, C, H, W = x_shape
        F_ = self.w.shape[0]
        p = self.pad
        k, i, j, Ho, Wo = self._indices(x_shape)
        self.db = dout.sum(axis=(0, 2, 3))
        dout_r = dout.transpose(1, 2, 3, 0).reshape(F_, -1)
        self.dw = (dout_r @ cols.T).reshape(self.w.shape)
        dx_cols = self.w.reshape(F_, -1).T @ dout_r
        x_padded = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dx_cols.dtype)
        cols_r = dx_cols.reshape(dx_cols.shape[0], -1, N).transpose(2, 0, 1)
        np.add.at(x_padded, (slice(None), k, i, j), cols_r)
        return x_padded if p == 0 else x_padded[:, :, p:-p, p:-p]


class SlidingWindowConv:
    """``sliding_window_view`` + ``tensordot``: no index arrays, the windows are a strided view."""

    def __init__(self, w, b, stride, pad, dilation):
        self.w, self.b = w, b
        self.stride, self.pad, self.dilation = stride, pad, dilation

    def forward(self, x):
        s, p, d = self.stride, self.pad, self.dilation
        kh, kw = self.w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = sliding_window_view(xp, (d * (kh - 1) + 1, d * (kw - 1) + 1), axis=(2, 3))
        win = win[:, :, ::s, ::s, ::d, ::d]                      # (N, C, Ho, Wo, kh, kw)
        self.cache = (x.shape, win)
        y = np.tensordot(win, self.w, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
        return y.transpose(0, 3, 1, 2) + self.b[None, :, None, None]

    def backward(self, dy):
        (N, C, H, W), win = self.cache
        s, p, d = self.stride, self.pad, self.dilation
        kh, kw = self.w.shape[2:]
        Ho, Wo = dy.shape[2:]
        self.db = dy.sum(axis=(0, 2, 3))
        self.dw = np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))  # (O, C, kh, kw)
        dxp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dy.dtype)
        for a in range(kh):
            for b in range(kw):
                part = np.tensordot(dy, self.w[:, :, a, b], axes=([1], [0]))  # (N, Ho, Wo, C)
                dxp[:, :, a * d:a * d + s * (Ho - 1) + 1:s,
                    b * d:b * d + s * (Wo - 1) + 1:s] += part.transpose(0, 3, 1, 2)
        return dxp[:, :, p:p + H, p:p + W]


class CorrelateConv:
    """``scipy.signal.correlate`` over the stack of examples, one call per filter (one input
    channel, stride 1, dilation 1)."""

    def __init__(self, w, b, stride, pad, dilation):
        if w.shape[1] != 1 or stride != 1 or dilation != 1:
            raise ValueError("CorrelateConv needs one input channel, stride 1 and dilation 1")
        self.w, self.b, self.pad = w, b, pad

    def forward(self, x):
        from scipy.signal import correlate

        p = self.pad
        xp = np.pad(x[:, 0], ((0, 0), (p, p), (p, p)))
        self.xp = xp
        y = np.stack([correlate(xp, self.w[o, 0][None], mode="valid")
                      for o in range(self.w.shape[0])], axis=1)
        return y + self.b[None, :, None, None]

    def backward(self, dy):
        from scipy.signal import convolve, correlate

        p, xp = self.pad, self.xp
        self.db = dy.sum(axis=(0, 2, 3))
        self.dw = np.stack([correlate(xp, dy[:, o], mode="valid")
                            for o in range(self.w.shape[0])])           # (O, 1, kh, kw)
        dxp = sum(convolve(dy[:, o], self.w[o, 0][None], mode="full")
                  for o in range(self.w.shape[0]))
        H, W = xp.shape[1] - 2 * p, xp.shape[2] - 2 * p
        return dxp[:, None, p:p + H, p:p + W]


class GroupedPeer:
    """The usual way to add groups to a peer: one layer per group, outputs concatenated."""

    def __init__(self, cls, w, b, stride, pad, dilation, groups):
        o = w.shape[0] // groups
        self.groups = groups
        self.parts = [cls(w[i * o:(i + 1) * o], b[i * o:(i + 1) * o], stride, pad, dilation)
                      for i in range(groups)]

    def forward(self, x):
        xs = np.split(x, self.groups, axis=1)
        return np.concatenate([part.forward(xi) for part, xi in zip(self.parts, xs)], axis=1)

    def backward(self, dout):
        douts = np.split(dout, self.groups, axis=1)
        dx = np.concatenate([part.backward(d) for part, d in zip(self.parts, douts)], axis=1)
        self.dw = np.concatenate([part.dw for part in self.parts])
        self.db = np.concatenate([part.db for part in self.parts])
        return dx


def numpy_peer(cls, w, b, stride, pad, dilation, groups):
    """``cls`` for one group, :class:`GroupedPeer` of it for several."""
    if groups == 1:
        return cls(w, b, stride, pad, dilation)
    return GroupedPeer(cls, w, b, stride, pad, dilation, groups)


def jax_conv(w, b, stride, pad, dilation, groups):
    """``(fwd(x), fwdbwd(x, dy) -> (dx, dw, db))``, both ``jax.jit``-compiled, on JAX's CPU
    device; ``None`` when JAX is not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def conv(x, w, b):
        y = jax.lax.conv_general_dilated(
            x, w, (stride, stride), [(pad, pad), (pad, pad)], rhs_dilation=(dilation, dilation),
            feature_group_count=groups, dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + b[None, :, None, None]

    def fwdbwd(x, w, b, dy):
        _, vjp = jax.vjp(conv, x, w, b)
        return vjp(dy)

    wj, bj = jnp.asarray(w), jnp.asarray(b)
    fwd_jit, fwdbwd_jit = jax.jit(conv), jax.jit(fwdbwd)

    def run_fwd(x):
        return fwd_jit(x, wj, bj).block_until_ready()

    def run_fwdbwd(x, dy):
        return jax.block_until_ready(fwdbwd_jit(x, wj, bj, dy))

    return run_fwd, run_fwdbwd, jnp.asarray
