"""Symmetric k-nearest-neighbour graphs of points on the sphere."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from scipy.spatial import cKDTree

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


def knn_table(pos: torch.Tensor, k: int, sampling: Any = None,
              ipix: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn` with the neighbour table in int32 when the HEALPix search
    made it (half the memory of int64 at 10^7 pixels)."""
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


def knn(pos: torch.Tensor, k: int, sampling: Any = None,
        ipix: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Directed k nearest neighbours on the sphere.

    Uses the HEALPix face-grid search when ``sampling`` is a HEALPix
    descriptor (full or partial sky), a k-d tree otherwise.

    Returns ``(nbr [n, k] int64, chord2 [n, k])``, nearest first, where
    ``chord2`` is the squared chordal distance (dtype of ``pos``; computed in
    float64).
    """
    nbr, chord2 = knn_table(pos, k, sampling, ipix)
    return nbr.long(), chord2


def symmetrize(nbr: torch.Tensor, value: torch.Tensor,
               sorted_knn: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric edge list of a directed kNN table.

    Node ``i`` is joined to ``j`` if ``j`` is among the k nearest of ``i`` or
    ``i`` among those of ``j``. Each undirected edge appears once in each
    direction, rows sorted (CSR order): row ``i`` holds its ``k`` neighbours
    in table order, then the nodes ``j`` (increasing) that have ``i`` among
    their neighbours but are not among those of ``i``.

    Args:
        nbr: [n, k] neighbour table (int32 or int64).
        value: [n, k] per-edge values (e.g. distances), symmetric in (i, j)
            up to rounding: both directions of an edge get the value of the
            lower row (``min(i, j)``), so the output is exactly symmetric.
        sorted_knn: unused; kept for compatibility (the reciprocity test is a
            compiled O(nk^2) scan that is as fast as the O(nk) one was).

    Returns:
        ``(edge_index [2, E] int64, value [E])``.
    """
    from . import _kernels
    n, k = nbr.shape
    table = nbr.detach().cpu().contiguous()
    if table.dtype not in (torch.int32, torch.int64):
        table = table.long()
    val = value.detach().cpu().contiguous()
    tab_np, val_np = table.numpy(), val.numpy()
    # (torch buffers: see _healpix_knn)
    mutual = torch.empty(n, k, dtype=torch.bool).numpy()
    extra = torch.zeros(n, dtype=torch.int64).numpy()
    with _kernels.parallel():
        _kernels.reciprocated(tab_np, mutual)
        _kernels.count_lone(tab_np, mutual, extra)
        extra += k
        ptr = torch.zeros(n + 1, dtype=torch.int64).numpy()
        np.cumsum(extra, out=ptr[1:])
        del extra
        edge_index = torch.empty(2, int(ptr[-1]), dtype=torch.int64)
        out_val = torch.empty(int(ptr[-1]), dtype=val.dtype)
        ei = edge_index.numpy()
        _kernels.fill_rows(tab_np, val_np, mutual, ptr, ei[0], ei[1], out_val.numpy())
        _kernels.fill_lone(tab_np, val_np, mutual, ptr, ei[1], out_val.numpy())
    return edge_index, out_val
