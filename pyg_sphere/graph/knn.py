"""Symmetric k-nearest-neighbour graphs of points on the sphere."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from .._validation import check_int, check_pos
from ._healpix_knn import MAX_FAST_K, healpix_knn

# Points closer than this (chordal distance on the unit sphere) are the same
# point: the pole rows of Driscoll-Healy / Clenshaw-Curtis grids, or two
# stations at one site. They are not joined to each other.
COINCIDENT = 1e-9
# Below this many pixels the k-d tree is as fast as the HEALPix window search.
_FAST_MIN_NODES = 12 * 32 * 32
_CHUNK = 1 << 19


def tree_knn(points: np.ndarray, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """k nearest ``points`` of each query with a k-d tree, skipping coincident ones.

    Returns ``(idx [q, k] int64, chord2 [q, k] float64)``, nearest first.
    """
    tree = cKDTree(points)
    nq = queries.shape[0]
    idx = np.empty((nq, k), dtype=np.int64)
    chord2 = np.empty((nq, k), dtype=np.float64)
    for start in range(0, nq, _CHUNK):
        q = queries[start:start + _CHUNK]
        kk = min(k + 1, points.shape[0])
        d, i = tree.query(q, kk, workers=-1)
        d, i = d.reshape(len(q), kk), i.reshape(len(q), kk)
        ok = d > COINCIDENT
        short = ok.sum(axis=1) < k
        # rows with coincident points: ask for more neighbours, row by row
        take = np.argsort(~ok, axis=1, kind='stable')[:, :k]
        sel_i = np.take_along_axis(i, take, axis=1)
        sel_d = np.take_along_axis(d, take, axis=1)
        for row in np.nonzero(short)[0]:
            mult = len(tree.query_ball_point(q[row], COINCIDENT))
            kk2 = k + mult
            if kk2 > points.shape[0]:
                raise ValueError(f"Expected 'k' to be smaller than the number of distinct "
                                 f"points ({points.shape[0] - mult + 1}) (got k={k})")
            d2, i2 = tree.query(q[row], kk2)
            keep = d2 > COINCIDENT
            sel_i[row], sel_d[row] = i2[keep][:k], d2[keep][:k]
        idx[start:start + len(q)] = sel_i
        chord2[start:start + len(q)] = sel_d ** 2
    return idx, chord2


def knn(pos: torch.Tensor, k: int, sampling: Any = None,
        ipix: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Directed k nearest neighbours on the sphere.

    Uses the HEALPix face-grid search when ``sampling`` is a HEALPix
    descriptor (full or partial sky), a k-d tree otherwise.

    Returns ``(nbr [n, k] int64, chord2 [n, k])``, nearest first, where
    ``chord2`` is the squared chordal distance (dtype of ``pos``; computed in
    float64).
    """
    n = pos.size(0)
    if k >= n:
        raise ValueError(f"Expected 'k' to be smaller than the number of nodes ({n}) "
                         f"(got {k})")
    if (getattr(sampling, 'name', None) == 'healpix' and k <= MAX_FAST_K
            and n >= _FAST_MIN_NODES):
        rows = None if ipix is None else ipix.detach().cpu().numpy()
        return healpix_knn(pos, sampling['nside'], sampling['nest'], k, ipix=rows,
                           tree_knn=tree_knn)
    pts = pos.detach().cpu().to(torch.float64)
    pts = (pts / pts.norm(dim=1, keepdim=True)).numpy()
    idx, chord2 = tree_knn(pts, pts, k)
    return torch.from_numpy(idx), torch.from_numpy(chord2).to(pos.dtype)


def _is_mutual(nbr: torch.Tensor, value: torch.Tensor, sorted_knn: bool) -> torch.Tensor:
    """[n, k] mask: is i among the neighbours of j = nbr[i, a]?"""
    n, k = nbr.shape
    rows = torch.arange(n)
    small = torch.int32 if n < 2**31 - 1 else torch.int64
    mutual = torch.empty(n, k, dtype=torch.bool)
    if sorted_knn:
        # In an exact kNN table, i is among the k nearest of j iff it is
        # closer to j than j's k-th neighbour; only (near-)ties at that
        # distance need the explicit look-up below.
        kth = value[:, -1]
        rtol = 1e-9 if value.dtype == torch.float64 else 1e-5
        step = 1 << 22
        unsure_rows, unsure_cols = [], []
        for s in range(0, n, step):
            v = value[s:s + step]
            kj = kth[nbr[s:s + step]]
            mutual[s:s + step] = v < kj * (1 - rtol)
            unsure = (v <= kj * (1 + rtol)) & ~mutual[s:s + step]
            idx = unsure.nonzero()
            unsure_rows.append(idx[:, 0] + s)
            unsure_cols.append(idx[:, 1])
        r = torch.cat(unsure_rows)
        c = torch.cat(unsure_cols)
        if r.numel():
            mutual[r, c] = (nbr[nbr[r, c]] == r[:, None]).any(dim=-1)
        return mutual
    # general table: compare with all k neighbours of j (chunked [c, k, k],
    # int32 when it fits: half the memory traffic)
    table = nbr.to(small)
    rows_s = rows.to(small)
    step = max(1, (1 << 23) // (k * k))
    for s in range(0, n, step):
        mutual[s:s + step] = (table[table[s:s + step]] ==
                              rows_s[s:s + step, None, None]).any(dim=-1)
    return mutual


def symmetrize(nbr: torch.Tensor, value: torch.Tensor,
               sorted_knn: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric edge list of a directed kNN table.

    Node ``i`` is joined to ``j`` if ``j`` is among the k nearest of ``i`` or
    ``i`` among those of ``j``. Each undirected edge appears once in each
    direction, rows sorted (CSR order).

    Args:
        nbr: [n, k] neighbour table.
        value: [n, k] per-edge values (e.g. distances), symmetric in (i, j).
        sorted_knn: :obj:`True` if ``nbr`` is an exact kNN table, each row
            sorted nearest first and ``value`` increasing with distance (as
            :func:`knn` returns): enables an O(nk) instead of O(nk^2)
            reciprocity test.

    Returns:
        ``(edge_index [2, E], value [E])``.
    """
    n, k = nbr.shape
    rows = torch.arange(n)
    lone = (~_is_mutual(nbr, value, sorted_knn)).nonzero()
    # edge j -> i is missing when i -> j is not reciprocated
    extra_dst = lone[:, 0]
    extra_src = nbr[lone[:, 0], lone[:, 1]]
    extra_val = value[lone[:, 0], lone[:, 1]]
    del lone
    order = torch.sort(extra_src, stable=True).indices
    extra_src, extra_dst, extra_val = extra_src[order], extra_dst[order], extra_val[order]

    deg = torch.full((n,), k, dtype=torch.int64)
    deg += torch.bincount(extra_src, minlength=n)
    ptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(deg, 0, out=ptr[1:])
    num_edges = int(ptr[-1])
    edge_index = torch.empty(2, num_edges, dtype=torch.int64)
    out_val = torch.empty(num_edges, dtype=value.dtype)

    # row of each edge: a running count of row starts
    starts = edge_index[0]
    starts.zero_()
    starts[ptr[1:-1]] = 1
    torch.cumsum(starts, 0, out=starts)
    # the k directed edges of row i go to ptr[i] .. ptr[i] + k - 1
    ar = torch.arange(k)
    step = 1 << 20
    for s in range(0, n, step):
        slot = (ptr[s:min(s + step, n), None] + ar).view(-1)
        edge_index[1, slot] = nbr[s:s + step].reshape(-1)
        out_val[slot] = value[s:s + step].reshape(-1)
    # the added reverse edges follow them, in order within each row
    first = torch.searchsorted(extra_src, extra_src, right=False)
    rank = torch.arange(extra_src.numel()) - first
    slot = ptr[extra_src] + k + rank
    edge_index[1, slot] = extra_dst
    out_val[slot] = extra_val
    return edge_index, out_val
