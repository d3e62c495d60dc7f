"""Compiled (numba) loops of the fused batch norm + ReLU + max pooling on CPUs.

Each kernel makes one pass over one chunk of maps (the ``[R, g, F]`` children
of ``R`` clusters, or ``[N, F]`` pixels), in a single thread, without the GIL:
the chunks run in parallel on the kernel threads of
:mod:`pyg_sphere.nn._threads`. The same computation as the PyTorch ops of
:mod:`._fused` (which run on GPUs and under ``torch.compile``), in a fraction
of the passes: PyTorch needs about eight ops per child slot forward, each a
pass over a pooled-size tensor, and more backward.

Sums are accumulated in float64. Ties pick the lowest slot and NaNs propagate,
as in the PyTorch path. Slots are stored as ``int8`` (clusters of at most 127
children; the callers check).

Imported lazily: numba takes a moment to import, and compiles each kernel once
per dtype (cached on disk by numba).
"""
from __future__ import annotations

import numpy as np
from numba import njit

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def chunk_stats(x, out):
    """``out[0]`` = per-channel mean of ``x`` [N, F], ``out[1]`` = its sum of squared
    deviations, in one pass: float64 sums of the deviations from the first row
    (a shift near the mean keeps the sum of squares accurate where the mean is
    large against the spread)."""
    N, F = x.shape
    shift = np.zeros(F)
    if N > 0:
        for f in range(F):
            shift[f] = x[0, f]
    s1 = np.zeros(F)
    s2 = np.zeros(F)
    for i in range(N):
        for f in range(F):
            d = x[i, f] - shift[f]
            s1[f] += d
            s2[f] += d * d
    for f in range(F):
        mean = s1[f] / max(N, 1)
        out[0, f] = shift[f] + mean
        out[1, f] = max(s2[f] - s1[f] * mean, 0.0)


@njit(**_JIT)
def pool_forward(x, a, b, y, slot, x_sel, track):
    """``y[r, f] = relu(max_j a[f] x[r, j, f] + b[f])`` for ``x`` [R, g, F], and (with
    ``track``) ``slot[r, f]`` the first ``j`` of the maximum, ``x_sel[r, f]`` its input.

    With ``track``, the running maximum, its slot (int32, the width of a float32
    lane) and its input live in row-sized scratch arrays and are updated by
    selects, not branches: the loop over channels vectorizes (2.5-4x faster at
    16-32 channels than branching on the three output arrays, same results).
    Without, the maximum alone is kept in ``y`` (faster so from 32 channels)."""
    R, g, F = x.shape
    if not track:
        for r in range(R):
            for f in range(F):
                y[r, f] = a[f] * x[r, 0, f] + b[f]
            for j in range(1, g):
                for f in range(F):
                    u = a[f] * x[r, j, f] + b[f]
                    bf = y[r, f]
                    # a strictly larger value, or the first NaN (which then stays)
                    if u > bf or (u != u and bf == bf):
                        y[r, f] = u
            for f in range(F):
                if y[r, f] < 0:  # NaN stays
                    y[r, f] = 0
        return
    best = np.empty(F, x.dtype)
    s = np.zeros(F, np.int32)
    v = np.empty(F, x.dtype)
    for r in range(R):
        for f in range(F):
            xv = x[r, 0, f]
            best[f] = a[f] * xv + b[f]
            s[f] = 0
            v[f] = xv
        for j in range(1, g):
            for f in range(F):
                xv = x[r, j, f]
                u = a[f] * xv + b[f]
                bf = best[f]
                take = (u > bf) | ((u != u) & (bf == bf))
                best[f] = u if take else bf
                s[f] = j if take else s[f]
                v[f] = xv if take else v[f]
        for f in range(F):
            bf = best[f]
            y[r, f] = 0 if bf < 0 else bf
            slot[r, f] = s[f]
            x_sel[r, f] = v[f]


@njit(**_JIT)
def pool_backward_sums(gy, y, x_sel, mean, rstd, a, ag, parts):
    """``ag = a * gp`` with ``gp = gy`` where the pooled value ``y`` is positive (0
    elsewhere), and per channel ``parts[0] = sum gp``, ``parts[1] = sum gp * xhat``
    at the selected children (``xhat = (x_sel - mean) rstd``); all [R, F]."""
    R, F = y.shape
    s0 = np.zeros(F)
    s1 = np.zeros(F)
    for r in range(R):
        for f in range(F):
            gp = gy[r, f] if y[r, f] > 0 else gy[r, f] * 0
            s0[f] += gp
            s1[f] += gp * ((x_sel[r, f] - mean[f]) * rstd[f])
            ag[r, f] = gp * a[f]
    for f in range(F):
        parts[0, f] = s0[f]
        parts[1, f] = s1[f]


@njit(**_JIT)
def pool_backward_dx(x, slot, ag, c0, c1, training, gx):
    """``gx[r, j, f] = c0[f] + c1[f] x[r, j, f]`` (0 if not ``training``), plus
    ``ag[r, f]`` at the selected child (a select on an int32 copy of the row's
    slots, so that the loop over channels vectorizes)."""
    R, g, F = x.shape
    s = np.empty(F, np.int32)
    zero = x.dtype.type(0)
    for r in range(R):
        for f in range(F):
            s[f] = slot[r, f]
        for j in range(g):
            for f in range(F):
                base = c0[f] + c1[f] * x[r, j, f] if training else zero
                gx[r, j, f] = base + ag[r, f] if s[f] == j else base
