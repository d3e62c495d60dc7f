"""k nearest neighbours on HEALPix, using the grid structure of its 12 faces.

Each HEALPix base face is an ``nside x nside`` grid of pixels indexed by
``(x, y)`` (``healpy.pix2xyf``). The k nearest neighbours of a pixel lie in a
small window of its face, so the search is a handful of shifted, vectorised
array operations instead of a tree. Pixels whose window leaves the face (or,
on a partial sky, touches a missing pixel) are answered by a k-d tree.

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


def _near_missing(present: torch.Tensor, radius: int, nside: int, full: bool) -> torch.Tensor:
    """[12, nside, nside] mask of pixels with a missing pixel within ``radius``
    (Chebyshev distance on the face grid); ``present`` is the padded image."""
    if full:  # only the face edges are missing
        near = torch.ones(12, nside, nside, dtype=torch.bool)
        if nside > 2 * radius:
            near[:, radius:nside - radius, radius:nside - radius] = False
        return near
    pad = (present.size(-1) - nside) // 2
    missing = (~present).to(torch.float32)[:, None]
    near = torch.nn.functional.max_pool2d(missing, kernel_size=2 * radius + 1, stride=1,
                                          padding=radius)
    return near[:, 0, pad:pad + nside, pad:pad + nside] > 0


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
        ``(nbr, chord2)``: [n, k] int64 neighbour rows and squared chordal
        distances (dtype of ``pos``), nearest first.
    """
    n = pos.size(0)
    r = window_radius(k)
    side = nside + 2 * r
    rows = np.arange(n) if ipix is None else np.asarray(ipix)
    x, y, f = hp.pix2xyf(nside, rows, nest=nest)
    # image of row indices, -1 outside the face or missing
    img = torch.full((12, side, side), -1, dtype=torch.int64)
    img[torch.from_numpy(f), torch.from_numpy(y + r), torch.from_numpy(x + r)] = \
        torch.arange(n)
    inner_img = img[:, r:r + nside, r:r + nside]
    present = img >= 0
    # renormalise: the dot-product form 2 - 2 p.q assumes exact unit vectors,
    # and float32 positions are off by ~1e-7, which is 10 % of a squared
    # neighbour distance at nside 1024
    pos64 = pos.detach().to(torch.float64)
    pos64 = pos64 / pos64.norm(dim=1, keepdim=True)
    # planar layout [12, 3, side, side]; the zero vector where there is no
    # pixel: its dot product 0 never beats a neighbour's (close to 1).
    planes = torch.zeros((12, 3, side, side), dtype=torch.float64)
    if ipix is None:
        planes[:, :, r:r + nside, r:r + nside] = pos64[inner_img].permute(0, 3, 1, 2)
    else:
        planes.permute(0, 2, 3, 1)[present] = pos64[img[present]]
    # rows whose window holds a missing pixel (face edge or hole)
    incomplete = _near_missing(present, r, nside, full=ipix is None)

    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
               if (dy, dx) != (0, 0)]
    m = len(offsets)
    flat_off = torch.tensor([dy * side + dx for dy, dx in offsets])
    centre = ((torch.arange(nside) + r)[:, None] * side +
              (torch.arange(nside) + r)[None, :]).reshape(-1, 1)

    out_dtype = pos.dtype if pos.dtype in (torch.float32, torch.float64) else torch.float64
    nbr = torch.empty(n, k, dtype=torch.int64)
    chord2 = torch.empty(n, k, dtype=out_dtype)
    fallback = torch.zeros(n, dtype=torch.bool)
    # Faces are processed in groups of about 2**20 pixels: each elementwise op
    # then has enough work to amortise a parallel region (tiny ops are slow
    # when the cores are shared with other processes).
    per_group = max(1, min(12, (1 << 20) // (nside * nside)))
    faces = torch.unique(torch.from_numpy(f)).tolist()
    groups = [faces[i:i + per_group] for i in range(0, len(faces), per_group)]
    npf = nside * nside
    for group in groups:
        g = torch.tensor(group)
        c = len(group)
        p = planes[g]  # [c, 3, side, side] (a copy; contiguous)
        inner = p[:, :, r:r + nside, r:r + nside]
        dist = torch.empty(m, c, nside, nside, dtype=torch.float64)
        # dot products (float64: 1 - dot keeps ~1e-10 relative accuracy
        # at nside 1024); nearest = largest dot
        for o, (dy, dx) in enumerate(offsets):
            d = dist[o]
            shifted = p[:, :, r + dy:r + dy + nside, r + dx:r + dx + nside]
            torch.mul(inner[:, 0], shifted[:, 0], out=d)
            d.addcmul_(inner[:, 1], shifted[:, 1])
            d.addcmul_(inner[:, 2], shifted[:, 2])
        dist_t = dist.view(m, c * npf).t().contiguous()
        del dist
        val, arg = dist_t.topk(k, dim=1, largest=True, sorted=True)
        del dist_t
        lin = (centre.view(1, npf, 1) + flat_off[arg].view(c, npf, k) +
               (torch.arange(c) * side * side).view(c, 1, 1))
        found = img[g].reshape(-1)[lin.view(-1, k)]
        val = val.mul_(-2.0).add_(2.0).clamp_(min=0.0).to(out_dtype)
        dest = inner_img[g].reshape(-1)
        near = incomplete[g].reshape(-1)
        if ipix is not None:
            here = dest >= 0
            dest, found, val, near = dest[here], found[here], val[here], near[here]
        nbr[dest] = found
        chord2[dest] = val
        fallback[dest] = near
    del planes

    if bool(fallback.any()):
        queries = fallback.nonzero().view(-1)
        if ipix is None:
            # full sky: neighbours of a pixel near a face edge are near an
            # edge too (within 2r of it), so a tree on that band suffices.
            cand = inner_img[_near_missing(present, 2 * r, nside, full=True)]
        else:
            cand = torch.arange(n)  # partial sky: holes may be wide; search all
        idx, d2 = tree_knn(pos64[cand].numpy(), pos64[queries].numpy(), k)
        nbr[queries] = cand[torch.from_numpy(idx)]
        chord2[queries] = torch.from_numpy(d2).to(out_dtype)
    return nbr, chord2
