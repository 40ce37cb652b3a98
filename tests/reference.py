"""Independent oracles written from the formulas, with explicit loops. No matconv code inside.

``y[n, o, i] = sum_{c, m} xpad[n, g*Cg + c, i*s + m*d] * w[o, c, m]`` with ``g = o // (C_out/G)``,
``xpad`` the input padded by ``np.pad`` in the matching mode.
"""
import itertools

import numpy as np

NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_pairs(padding, kernel, dilation, ndim):
    """Per-side pairs from the forms the library accepts (re-derived here from the definitions)."""
    if isinstance(padding, str):
        tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return {"valid": [(0, 0)] * ndim, "full": [(t, t) for t in tot],
                "same": [(t // 2, t - t // 2) for t in tot], "causal": [(tot[0], 0)]}[padding]
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    if isinstance(padding[0], (tuple, list)):
        return [tuple(p) for p in padding]
    return [(p, p) for p in padding]


def tup(v, ndim):
    return (v,) * ndim if isinstance(v, int) else tuple(v)


def conv_forward(x, w, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Direct-loop N-d cross-correlation, one output cell at a time."""
    nd = w.ndim - 2
    s, d = tup(stride, nd), tup(dilation, nd)
    k = w.shape[2:]
    pads = pad_pairs(padding, k, d, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads), mode=NP_PAD_MODE[padding_mode])
    out = [(xp.shape[2 + j] - d[j] * (k[j] - 1) - 1) // s[j] + 1 for j in range(nd)]
    N, Co, Cg = x.shape[0], w.shape[0], w.shape[1]
    y = np.zeros((N, Co, *out), dtype=np.result_type(x, w))
    for n, o in itertools.product(range(N), range(Co)):
        g = o // (Co // groups)
        for pos in itertools.product(*map(range, out)):
            acc = 0.0
            for c in range(Cg):
                for tap in itertools.product(*map(range, k)):
                    src = tuple(pos[j] * s[j] + tap[j] * d[j] for j in range(nd))
                    acc += xp[(n, g * Cg + c) + src] * w[(o, c) + tap]
            y[(n, o) + pos] = acc
    return y


def conv_backward(x, w, dy, stride=1, padding=0, dilation=1, groups=1):
    """Direct-loop gradients (zero padding): ``dx`` by scattering, ``dw`` by summing products."""
    nd = w.ndim - 2
    s, d = tup(stride, nd), tup(dilation, nd)
    k = w.shape[2:]
    pads = pad_pairs(padding, k, d, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    N, Co, Cg = x.shape[0], w.shape[0], w.shape[1]
    for n, o in itertools.product(range(N), range(Co)):
        g = o // (Co // groups)
        for pos in itertools.product(*map(range, dy.shape[2:])):
            g_out = dy[(n, o) + pos]
            for c in range(Cg):
                for tap in itertools.product(*map(range, k)):
                    src = (n, g * Cg + c) + tuple(pos[j] * s[j] + tap[j] * d[j] for j in range(nd))
                    dxp[src] += g_out * w[(o, c) + tap]
                    dw[(o, c) + tap] += g_out * xp[src]
    crop = (slice(None), slice(None)) + tuple(slice(a, xp.shape[2 + j] - b)
                                              for j, (a, b) in enumerate(pads))
    return dxp[crop], dw


def conv_transpose_forward(x, w, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Direct-loop transposed convolution: every input cell scatters ``x * w`` into the output."""
    nd = w.ndim - 2
    s, d, p, a = (tup(v, nd) for v in (stride, dilation, padding, output_padding))
    k = w.shape[2:]
    N, Ci = x.shape[:2]
    Cog = w.shape[1]
    out = [(x.shape[2 + j] - 1) * s[j] - 2 * p[j] + d[j] * (k[j] - 1) + a[j] + 1
           for j in range(nd)]
    full = [o + 2 * p[j] for j, o in enumerate(out)]
    yp = np.zeros((N, Cog * groups, *full), dtype=np.result_type(x, w))
    for n, ci in itertools.product(range(N), range(Ci)):
        g = ci // (Ci // groups)
        for pos in itertools.product(*map(range, x.shape[2:])):
            for oc in range(Cog):
                for tap in itertools.product(*map(range, k)):
                    dst = tuple(pos[j] * s[j] + tap[j] * d[j] for j in range(nd))
                    if all(dst[j] < full[j] for j in range(nd)):
                        yp[(n, g * Cog + oc) + dst] += x[(n, ci) + pos] * w[(ci, oc) + tap]
    crop = (slice(None), slice(None)) + tuple(slice(p[j], p[j] + out[j]) for j in range(nd))
    return yp[crop]


def finite_difference(f, x, v, eps=1e-6):
    """Central difference of scalar ``f`` at ``x`` along ``v``: approx ``<grad f(x), v>``."""
    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
