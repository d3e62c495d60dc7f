r"""Compiled (numba) passes of the CPU assembly of :math:`\tilde{L}` from an
edge list grouped by source (``edge_index[0]`` non-decreasing, as the graphs of
:mod:`pyg_sphere.graph` are): the row of the transpose :math:`\tilde{L}^\top`
that a node's edges form is assembled, sorted and summed where it is read,
one parallel loop over the nodes per pass, no counting sort.

Imported lazily (see :mod:`pyg_sphere.graph._kernels`); call the parallel
kernels inside :func:`pyg_sphere.graph._kernels.parallel`. ``weight`` is an
empty array for unit weights; ``norm`` is 0 (``None``), 1 (``'sym'``) or 2
(``'rw'``) and ``f`` the matching node factors (:math:`d^{-1/2}`,
:math:`d^{-1}`; unused for 0).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Rows up to this length are sorted by insertion, longer ones by a merge sort.
INSERTION_MAX = 32

_BIG = np.int64(1) << np.int64(62)


@njit(parallel=True, cache=True, nogil=True)
def scan_edges(src, dst, weight, out):
    """Per chunk ``c`` of the edges, ``out[c]`` = (descents of ``src``, smallest
    and largest index, non-finite weights of other edges than self loops, all
    non-finite weights, self loops)."""
    E = src.shape[0]
    chunks = out.shape[0]
    step = (E + chunks - 1) // chunks
    unit = weight.shape[0] == 0
    for c in prange(chunks):
        a = c * step
        b = min(E, a + step)
        descents = 0
        lo = _BIG
        hi = -_BIG
        bad = 0
        bad_all = 0
        loops = 0
        for e in range(a, b):
            s = np.int64(src[e])
            d = np.int64(dst[e])
            lo = min(lo, s, d)
            hi = max(hi, s, d)
            if e + 1 < E and np.int64(src[e + 1]) < s:
                descents += 1
            if s == d:
                loops += 1
            if not unit and not np.isfinite(weight[e]):
                bad_all += 1
                if s != d:
                    bad += 1
        out[c, 0] = descents
        out[c, 1] = lo
        out[c, 2] = hi
        out[c, 3] = bad
        out[c, 4] = bad_all
        out[c, 5] = loops


@njit(parallel=True, cache=True, nogil=True)
def row_degrees(ptr, dst, weight, deg):
    """``deg[i]``: the summed weights (float64, in edge order) of the edges
    leaving ``i``, self loops excluded (``get_laplacian`` drops them)."""
    n = deg.shape[0]
    unit = weight.shape[0] == 0
    for i in prange(n):
        total = 0.0
        for e in range(ptr[i], ptr[i + 1]):
            if dst[e] != i:
                total += 1.0 if unit else np.float64(weight[e])
        deg[i] = total


@njit(inline='always')
def _normalized(norm, f, i, j, w):
    """:math:`-L_{ij}` of an edge of weight ``w`` (as ``cpu_entries`` computes it)."""
    if norm == 1:
        return (f[i] * f[j]) * w
    if norm == 2:
        return f[i] * w
    return w


@njit(parallel=True, cache=True, nogil=True)
def row_max_entry(ptr, dst, weight, norm, f, out):
    """``out[i]``: the largest off-diagonal :math:`L_{ij}` of the edges leaving
    ``i`` (``-inf`` for none)."""
    n = out.shape[0]
    unit = weight.shape[0] == 0
    for i in prange(n):
        best = -np.inf
        for e in range(ptr[i], ptr[i + 1]):
            j = dst[e]
            if j != i:
                w = 1.0 if unit else np.float64(weight[e])
                best = max(best, -_normalized(norm, f, i, j, w))
        out[i] = best


@njit(inline='always')
def _insertion_sort(cols, vals, a, m):
    for x in range(a + 1, a + m):
        c = cols[x]
        v = vals[x]
        y = x
        while y > a and cols[y - 1] > c:
            cols[y] = cols[y - 1]
            vals[y] = vals[y - 1]
            y -= 1
        cols[y] = c
        vals[y] = v


@njit(cache=True, nogil=True)
def _merge_sort(cols, vals, a, m):
    order = np.argsort(cols[a:a + m], kind='mergesort')  # stable
    c = cols[a:a + m].copy()
    v = vals[a:a + m].copy()
    for x in range(m):
        cols[a + x] = c[order[x]]
        vals[a + x] = v[order[x]]


@njit(parallel=True, cache=True, nogil=True)
def fill_rows(ptr, dst, weight, norm, f, scale, diag, cols, vals, counts):
    r"""Row ``i`` of :math:`\tilde{L}^\top` (its diagonal entry
    ``diag[i] * scale - 1``, then ``-scale * (-L_ij)`` for each edge
    ``i -> j``, self loops skipped: they only add zeros) in the slots
    ``ptr[i] + i ..`` of ``cols`` / ``vals``, sorted by column with duplicate
    columns summed (in the dtype of ``vals``, in edge order); ``counts[i]``
    gets the number of entries left."""
    n = diag.shape[0]
    unit = weight.shape[0] == 0
    for i in prange(n):
        a = ptr[i] + i
        cols[a] = i
        vals[a] = diag[i] * scale - 1.0
        m = 1
        for e in range(ptr[i], ptr[i + 1]):
            j = dst[e]
            if j == i:
                continue
            w = 1.0 if unit else np.float64(weight[e])
            cols[a + m] = j
            vals[a + m] = _normalized(norm, f, i, j, w) * -scale
            m += 1
        if m <= INSERTION_MAX:
            _insertion_sort(cols, vals, a, m)
        else:
            _merge_sort(cols, vals, a, m)
        u = 1
        for x in range(a + 1, a + m):
            if cols[x] == cols[a + u - 1]:
                vals[a + u - 1] += vals[x]
            else:
                cols[a + u] = cols[x]
                vals[a + u] = vals[x]
                u += 1
        counts[i] = u


@njit(parallel=True, cache=True, nogil=True)
def compact_rows(ptr, indptr, cols, vals, out_cols, out_vals):
    """Move row ``i`` from the slots ``ptr[i] + i ..`` to ``indptr[i] ..``."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        a = ptr[i] + i
        b = indptr[i]
        for x in range(indptr[i + 1] - b):
            out_cols[b + x] = cols[a + x]
            out_vals[b + x] = vals[a + x]
