"""k nearest neighbours on HEALPix, using the grid structure of its 12 faces.

Each HEALPix base face is an ``nside x nside`` grid of pixels indexed by
``(x, y)`` (``healpy.pix2xyf``). The k nearest neighbours of a pixel lie in a
small window of its face, so the search is one compiled pass over the face
images (:func:`pyg_sphere.graph._kernels.window_knn`) instead of a tree.
Pixels whose window leaves the face (or, on a partial sky, touches a missing
pixel) are answered by a k-d tree.

The window radius for each k is the smallest that reproduces an exact
k-d-tree search at nside 32 to 256 (checked in the test-suite); it is not a
heuristic on the result.
"""
from __future__ import annotations

from typing import Optional, Tuple

import healpy as hp
import numpy as np
import torch

# Smallest window radius (in pixels) that contains the k nearest neighbours of
# every face-interior HEALPix pixel, measured against a k-d tree at nside
# 64-512 (r=2..6 were exact up to k=12, 23, 34, 51, 67 at nside 512), with a margin.
_WINDOW_RADIUS = ((10, 2), (20, 3), (30, 4), (45, 5), (60, 6), (80, 7))
MAX_FAST_K = _WINDOW_RADIUS[-1][0]


def window_radius(k: int) -> int:
    for kmax, radius in _WINDOW_RADIUS:
        if k <= kmax:
            return radius
    raise ValueError(f'no window radius for k={k} (max {MAX_FAST_K})')


def _edge_band(nside: int, width: int) -> torch.Tensor:
    """[12, nside, nside] mask of the pixels within ``width`` of a face edge."""
    band = torch.ones(12, nside, nside, dtype=torch.bool)
    if nside > 2 * width:
        band[:, width:nside - width, width:nside - width] = False
    return band


def healpix_knn(pos: torch.Tensor, nside: int, nest: bool, k: int,
                ipix: Optional[np.ndarray] = None,
                tree_knn=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of HEALPix pixel centres.

    Args:
        pos: [n, 3] float positions of the pixels (float64 used internally).
        nside, nest: the HEALPix grid.
        k: number of neighbours.
        ipix: pixel index of each row for a partial sky (None: full sky,
            row i is pixel i).
        tree_knn: fallback ``f(points, queries, k) -> (idx, chord2)`` that
            skips coincident points (the query itself).

    Returns:
        ``(nbr, chord2)``: [n, k] neighbour rows (int32 when ``n`` allows,
        else int64) and squared chordal distances (dtype of ``pos``; float64
        for other dtypes), nearest first.
    """
    from . import _kernels
    n = pos.size(0)
    r = window_radius(k)
    side = nside + 2 * r
    # (large buffers come from torch: its 4 KiB pages fault in faster than
    # numpy's transparent huge pages on virtual machines)
    index_dtype = torch.int32 if n < 2**31 - 1 else torch.int64
    rows = (torch.arange(n) if ipix is None else torch.as_tensor(ipix, dtype=torch.int64)).numpy()
    # image of row indices, -1 outside the face or missing
    img = torch.full((12, side, side), -1, dtype=index_dtype).numpy()
    # renormalise: the dot-product form 2 - 2 p.q assumes exact unit vectors,
    # and float32 positions are off by ~1e-7, which is 10 % of a squared
    # neighbour distance at nside 1024
    pos64 = pos.detach().cpu().to(torch.float64)
    pos64 = pos64 / pos64.norm(dim=1, keepdim=True)
    # nearest offsets first: fewer insertions into the running top k
    offsets = sorted(((dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                      if (dy, dx) != (0, 0)), key=lambda o: (o[0] ** 2 + o[1] ** 2, o))
    dy = np.array([o[0] for o in offsets], dtype=np.int64)
    dx = np.array([o[1] for o in offsets], dtype=np.int64)

    out_dtype = pos.dtype if pos.dtype in (torch.float32, torch.float64) else torch.float64
    nbr = torch.empty(n, k, dtype=index_dtype)
    chord2 = torch.empty(n, k, dtype=out_dtype)
    fallback = torch.zeros(n, dtype=torch.bool).numpy()
    with _kernels.parallel():
        if nest:
            _kernels.nest_image(rows, nside, r, img)
        else:
            x, y, f = hp.pix2xyf(nside, rows, nest=False)
            _kernels.xyf_image(x, y, f, r, img)
            del x, y, f
        _kernels.window_knn(img, pos64.numpy(), r, dy, dx, nbr.numpy(), chord2.numpy(),
                            fallback)
    del rows
    if fallback.any():
        queries = torch.from_numpy(np.flatnonzero(fallback))
        if ipix is None:
            # full sky: neighbours of a pixel near a face edge are near an
            # edge too (within 2r of it), so a tree on that band suffices.
            inner = torch.from_numpy(img[:, r:r + nside, r:r + nside]).long()
            cand = inner[_edge_band(nside, 2 * r)]
        else:
            cand = torch.arange(n)  # partial sky: holes may be wide; search all
        idx, d2 = tree_knn(pos64[cand].numpy(), pos64[queries].numpy(), k)
        nbr[queries] = cand[torch.from_numpy(idx)].to(nbr.dtype)
        chord2[queries] = torch.from_numpy(d2).to(out_dtype)
    return nbr, chord2
