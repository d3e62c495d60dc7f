"""Compiled (numba) loops of the graph build: the HEALPix window search, the
symmetrisation of a kNN table, and the CSR form of edge lists grouped by source.

Imported lazily (numba takes a moment to import and compiles each kernel
once; compiled code is cached on disk by numba). Each kernel touches every
``[n, k]`` array once or twice, so the graph build runs at memory speed.

Parallel kernels are called inside :func:`parallel`: numba's default threading
layer (``workqueue``) must not be entered by two Python threads at once, and
the first launch of its OpenMP layer sets the calling thread's OpenMP thread
count (PyTorch's too) to numba's pool size.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

#: Serialises calls into numba's parallel runtime (see the module docstring);
#: re-entrant, so a locked section may call another.
LOCK = threading.RLock()


def set_threads(threads: int) -> None:
    """Use ``threads`` numba threads (at most numba's pool size)."""
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


@contextlib.contextmanager
def parallel() -> Iterator[None]:
    """A section that calls parallel kernels: under :data:`LOCK`, with
    ``torch.get_num_threads()`` numba threads, and PyTorch's thread count as it
    was afterwards (numba's OpenMP layer resets it when its pool starts)."""
    import torch
    with LOCK:
        threads = torch.get_num_threads()
        set_threads(threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (LLVM's fma), as torch's vectorised
    ``addcmul`` computes it: the dot products below then equal, bit for bit,
    those of the earlier torch implementation of the window search."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return sig, codegen


@njit(cache=True)
def _compact_bits(v):
    # the even bits of v, packed (inverse of the NESTED bit interleave)
    v = v & 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


@njit(parallel=True, cache=True)
def nest_image(pix, nside, r, img):
    """Scatter row numbers into the padded face images ``img`` [12, nside + 2r,
    nside + 2r] (int32, pre-filled with -1): row ``i`` is NESTED pixel
    ``pix[i]`` at ``img[f, y + r, x + r]`` (healpy's ``pix2xyf``)."""
    npface = nside * nside
    for i in prange(pix.shape[0]):
        p = pix[i]
        f = p // npface
        local = p - f * npface
        x = _compact_bits(local)
        y = _compact_bits(local >> 1)
        img[f, y + r, x + r] = i


@njit(parallel=True, cache=True)
def xyf_image(x, y, f, r, img):
    """Like :func:`nest_image`, from healpy's ``pix2xyf`` of each row."""
    for i in prange(x.shape[0]):
        img[f[i], y[i] + r, x[i] + r] = i


@njit(parallel=True, cache=True)
def window_knn(img, pos, r, dy, dx, nbr, chord2, incomplete):
    """k nearest rows of each pixel among the offsets ``(dy, dx)`` of its
    window on the face grid: largest dot product first, equal ones by
    increasing row (so the table does not depend on the order of the
    offsets; nearest offsets first saves work). A pixel whose window holds
    an empty cell (off the face, or a missing pixel of a partial sky) gets
    ``incomplete[i] = True`` and is left to the caller.
    ``chord2 = max(2 - 2 p.q, 0)``, in float64, stored in the dtype of
    ``chord2``."""
    faces, side, _ = img.shape
    nside = side - 2 * r
    k = nbr.shape[1]
    m = dy.shape[0]
    for line in prange(faces * nside):
        f = line // nside
        yc = line - f * nside + r
        best = np.empty(k, dtype=np.float64)
        arg = np.empty(k, dtype=np.int64)
        for xc in range(r, r + nside):
            i = img[f, yc, xc]
            if i < 0:
                continue
            p0 = pos[i, 0]
            p1 = pos[i, 1]
            p2 = pos[i, 2]
            count = 0
            bad = False
            for o in range(m):
                j = np.int64(img[f, yc + dy[o], xc + dx[o]])
                if j < 0:
                    bad = True
                    break
                dot = _fma(p2, pos[j, 2], _fma(p1, pos[j, 1], p0 * pos[j, 0]))
                if count == k:
                    last = best[k - 1]
                    if dot < last or (dot == last and j > arg[k - 1]):
                        continue
                    a = k - 1
                else:
                    a = count
                    count += 1
                while a > 0 and (best[a - 1] < dot or (best[a - 1] == dot and arg[a - 1] > j)):
                    best[a] = best[a - 1]
                    arg[a] = arg[a - 1]
                    a -= 1
                best[a] = dot
                arg[a] = j
            if bad:
                incomplete[i] = True
                continue
            for a in range(k):
                nbr[i, a] = arg[a]
                chord2[i, a] = max(2.0 - 2.0 * best[a], 0.0)


@njit(parallel=True, cache=True)
def reciprocated(nbr, mutual):
    """``mutual[i, a]``: is ``i`` among the neighbours of ``nbr[i, a]``?"""
    n, k = nbr.shape
    for i in prange(n):
        for a in range(k):
            j = nbr[i, a]
            hit = False
            for b in range(k):
                if nbr[j, b] == i:
                    hit = True
                    break
            mutual[i, a] = hit


@njit(cache=True)
def count_lone(nbr, mutual, extra):
    """``extra[j]`` += 1 for every unreciprocated ``i -> j``; returns their number."""
    n, k = nbr.shape
    total = 0
    for i in range(n):
        for a in range(k):
            if not mutual[i, a]:
                extra[nbr[i, a]] += 1
                total += 1
    return total


@njit(parallel=True, cache=True)
def fill_rows(nbr, value, mutual, ptr, row, col, out):
    """The ``k`` edges of row ``i`` to ``ptr[i] .. ptr[i] + k - 1`` and the
    row index of every edge of row ``i``. Both directions of a reciprocated
    edge get one value, that of the lower row: the two were computed apart
    (e.g. one by the window search, one by the fallback near a face edge) and
    may differ by rounding, and an exactly symmetric graph gives an exactly
    symmetric operator (one CSR matrix instead of two)."""
    n, k = nbr.shape
    for i in prange(n):
        s = ptr[i]
        for a in range(k):
            j = nbr[i, a]
            col[s + a] = j
            v = value[i, a]
            if j < i and mutual[i, a]:
                for b in range(k):
                    if nbr[j, b] == i:
                        v = value[j, b]
                        break
            out[s + a] = v
        for e in range(s, ptr[i + 1]):
            row[e] = i


@njit(cache=True)
def fill_lone(nbr, value, mutual, ptr, col, out):
    """The reverse ``j -> i`` of every unreciprocated ``i -> j``, after the
    ``k`` edges of row ``j``, in increasing ``i``."""
    n, k = nbr.shape
    fill = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for a in range(k):
            if not mutual[i, a]:
                j = nbr[i, a]
                s = ptr[j] + k + fill[j]
                fill[j] += 1
                col[s] = i
                out[s] = value[i, a]


@njit(parallel=True, cache=True)
def csr_asymmetric_rows(indptr, indices, data, bad):
    """``bad[i]``: row ``i`` of a canonical CSR matrix (sorted, unique columns)
    has an entry ``(i, j)`` whose mirror ``(j, i)`` is missing or differs.
    One binary search in row ``j`` per entry: reads only, no transpose."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            lo = indptr[j]
            end = indptr[j + 1]
            hi = end
            while lo < hi:
                mid = (lo + hi) // 2
                if indices[mid] < i:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == end or indices[lo] != i or data[lo] != data[e]:
                bad[i] = True
                break


@njit(cache=True)
def is_non_decreasing(row):
    """Is ``row`` sorted (each entry at least the previous one)?"""
    for e in range(1, row.shape[0]):
        if row[e] < row[e - 1]:
            return False
    return True


@njit(parallel=True, cache=True)
def row_starts(row, ptr):
    """``ptr[i]``: the first edge of source ``i`` (``ptr[n]`` = E) of a
    non-decreasing ``row`` with entries in ``[0, n)``, ``n = len(ptr) - 1``."""
    E = row.shape[0]
    n = ptr.shape[0] - 1
    for e in prange(E + 1):
        prev = np.int64(row[e - 1]) if e > 0 else np.int64(-1)
        cur = np.int64(row[e]) if e < E else np.int64(n)
        for r in range(prev + 1, cur + 1):
            ptr[r] = e


@njit(parallel=True, cache=True)
def expand_rows(ptr, col, out):
    """The edge list ``out`` [2, E] (int64) of the CSR form ``(ptr, col)``."""
    for i in prange(ptr.shape[0] - 1):
        for e in range(ptr[i], ptr[i + 1]):
            out[0, e] = i
            out[1, e] = col[e]
