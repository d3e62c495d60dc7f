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

    Returns ``(nbr [n, k] int64, chord2 [n, k] float64)``, nearest first,
    where ``chord2`` is the squared chordal distance.
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
    pts = pos.detach().cpu().to(torch.float64).numpy()
    idx, chord2 = tree_knn(pts, pts, k)
    return torch.from_numpy(idx), torch.from_numpy(chord2)


def symmetrize(nbr: torch.Tensor, value: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric edge list of a directed kNN table.

    Node ``i`` is joined to ``j`` if ``j`` is among the k nearest of ``i`` or
    ``i`` among those of ``j``. Each undirected edge appears once in each
    direction, rows sorted (CSR order).

    Args:
        nbr: [n, k] neighbour table.
        value: [n, k] per-edge values (e.g. distances), symmetric in (i, j).

    Returns:
        ``(edge_index [2, E], value [E])``.
    """
    n, k = nbr.shape
    rows = torch.arange(n)
    # Is i among the neighbours of j = nbr[i, a]? (chunked: [c, k, k] compares,
    # in int32 when it fits: half the memory traffic)
    small = torch.int32 if n < 2**31 - 1 else torch.int64
    table = nbr.to(small)
    rows_s = rows.to(small)
    mutual = torch.empty(n, k, dtype=torch.bool)
    step = max(1, (1 << 23) // (k * k))
    for s in range(0, n, step):
        mutual[s:s + step] = (table[table[s:s + step]] ==
                              rows_s[s:s + step, None, None]).any(dim=-1)
    del table
    lone = ~mutual
    extra_dst = rows[:, None].expand(n, k)[lone]  # i
    extra_src = nbr[lone]  # j: edge j -> i is missing
    extra_val = value[lone]
    order = torch.sort(extra_src, stable=True).indices
    extra_src, extra_dst, extra_val = extra_src[order], extra_dst[order], extra_val[order]

    deg = torch.full((n,), k, dtype=torch.int64)
    deg += torch.bincount(extra_src, minlength=n)
    ptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(deg, 0, out=ptr[1:])
    num_edges = int(ptr[-1])
    edge_index = torch.empty(2, num_edges, dtype=torch.int64)
    out_val = torch.empty(num_edges, dtype=value.dtype)

    # the k directed edges of row i go to ptr[i] .. ptr[i] + k - 1
    slot = (ptr[:-1, None] + torch.arange(k)).view(-1)
    edge_index[0] = rows.repeat_interleave(deg, output_size=num_edges)
    edge_index[1, slot] = nbr.reshape(-1)
    out_val[slot] = value.reshape(-1)
    del slot
    # the added reverse edges follow them, in order within each row
    first = torch.searchsorted(extra_src, extra_src, right=False)
    rank = torch.arange(extra_src.numel()) - first
    slot = ptr[extra_src] + k + rank
    edge_index[1, slot] = extra_dst
    out_val[slot] = extra_val
    return edge_index, out_val
