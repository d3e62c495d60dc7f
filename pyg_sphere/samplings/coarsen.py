"""Coarsen a sampling of the sphere: the next level of a multi-resolution pyramid."""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import healpy as hp
import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor
from torch_geometric.data import Data

from .._validation import check_int, is_power_of_two
from ._base import SphereSampling, make_data
from .cubed import cubed
from .equiangular import equiangular
from .gauss_legendre import _row_lengths, gauss_legendre
from .healpix import healpix
from .icosahedral import _icosphere, icosahedral

#: Samplings with a dedicated coarsening; any other (or no) descriptor is
#: coarsened like ``'points'``.
COARSEN_SAMPLINGS = ('healpix', 'icosahedral', 'equiangular', 'gauss_legendre', 'cubed',
                     'points')

#: Two distances to coarse vertices closer than this (radians) are a tie
#: (icosahedral edge midpoints are exactly equidistant from both ends).
_TIE_TOLERANCE = 1e-9

#: Finest HEALPix order tried when clustering arbitrary points.
_MAX_POINTS_ORDER = 29


def coarsen(data: Data, factor: int = 2) -> Tuple[Data, Tensor]:
    r"""Coarsen a sampling by a linear factor: the coarse sampling and the map
    from fine to coarse pixels, for pooling (:class:`pyg_sphere.nn.SpherePool`)
    as in `DeepSphere (Defferrard et al. 2020) <https://arxiv.org/abs/2012.15000>`_.

    ``factor`` is linear: with ``factor=2`` about :math:`2^2 = 4` fine pixels
    pool into each coarse one, with ``factor=4`` about 16. Fine pixel ``i``
    pools into coarse pixel ``cluster[i]``:

    * ``'healpix'``: the parent pixel at :math:`n_{side} / f`. In NESTED
      ordering, :math:`\mathrm{parent}(p) = \lfloor p / f^2 \rfloor`, so the
      :math:`f^2` children of a parent are contiguous and pooling is a reshape.
      RING maps are supported through the NESTED numbering (``ring2nest``, so
      ``nside`` must be a power of two); the coarse map is in RING ordering
      too, and its cluster map is not contiguous (pooling takes the slower
      gather path: use ``nest=True`` for speed). ``nside`` must be divisible by
      ``factor``. **Partial sky** (``data.ipix``): only the parents whose
      :math:`f^2` children are all present are kept (sorted by pixel index);
      the children of the other parents get ``cluster = -1`` and are dropped
      by pooling. ``coarsen`` says so: the coarse ``Data`` holds the number of
      dropped fine pixels in ``num_dropped`` (also set when it is 0), and a
      :class:`UserWarning` is issued when it is not 0.
    * ``'icosahedral'``: level :math:`l \to l - m` for :math:`f = 2^m`. The
      coarse vertices are the first :math:`10 \cdot 4^{l-m} + 2` fine vertices
      (the hierarchical ordering) and each fine vertex pools into its nearest
      coarse vertex (great-circle distance, computed in float64 on the exact
      grid). Ties, which are exactly the midpoints of coarse edges, go to the
      lower vertex index, so cluster sizes vary (1 to 7 for :math:`f = 2`)
      and every coarse vertex is in its own cluster. The "keep the coarse
      vertices" pooling of `Jiang et al. (2019)
      <https://arxiv.org/abs/1901.02039>`_ (``x[:n_coarse]``) is
      ``SpherePool(cluster, reduce='keep')``, which takes the lowest-index
      member of each cluster: here the coarse vertex itself.
    * ``'equiangular'``: :math:`f \times f` blocks of the (lat, lon) grid,
      fine pixel ``(r, k)`` (row, column) pools into coarse pixel
      :math:`(\lfloor r / f \rfloor, \lfloor k / f \rfloor)` of
      ``equiangular(nlat_c, nlon / f, poles)``. SOFT (``'none'``):
      :math:`n_{lat,c} = n_{lat} / f`, and each coarse row is at the mean
      colatitude of its block. Driscoll-Healy (``'north'``):
      :math:`n_{lat,c} = n_{lat} / f`, and the coarse rows are the fine rows
      :math:`f j` (north pole kept). Clenshaw-Curtis (``'both'``):
      :math:`n_{lat,c} = (n_{lat} - 1) / f + 1`, so that the coarse rows are
      again the fine rows :math:`f j` and both poles are kept; the blocks are
      rows :math:`f j, \dots, f j + f - 1`, except the south pole row, which
      forms :math:`1 \times f` blocks on its own. In longitude every grid
      starts at 0, so a coarse point sits at the first column of its block
      (half a fine step west of the block centre for :math:`f = 2`).
      ``nlat`` (``nlat - 1`` for ``'both'``) and ``nlon`` must be divisible by
      ``factor``.
    * ``'gauss_legendre'`` regular: :math:`f \times f` blocks as above onto
      ``gauss_legendre(nlat / f, nlon / f)`` (the coarse rows are the
      Gauss-Legendre latitudes of the coarse grid, inside their blocks).
      Reduced (octahedral): rows :math:`f j .. f j + f - 1` pool into coarse
      row :math:`j` of ``gauss_legendre(nlat / f, reduced=True)`` (``nlat``
      must be divisible by :math:`2 f`), and point :math:`k` of a fine row of
      :math:`m` points into point :math:`\lfloor k\, m_c / m \rfloor` of the
      coarse row of :math:`m_c \le m` points: the coarse cell whose longitude
      range contains it (the regular rule when :math:`m = f m_c`). Cluster
      sizes then vary (2 to 6 for :math:`f = 2`); no coarse point is empty.
    * ``'cubed'``: :math:`f \times f` blocks of each face onto
      ``cubed(subdivisions - m, spacing)``, :math:`f = 2^m`: pixel
      ``p * N * N + j * N + i`` pools into
      ``p * Nc * Nc + (j // f) * Nc + i // f`` with :math:`N_c = N / f`. The
      coarse cells are exactly the unions of their fine cells.
    * ``'points'`` and any other (or no) sampling: the points are clustered
      by the HEALPix NESTED cell they fall in, at the power-of-two
      :math:`n_{side}` whose mean number of points per non-empty cell is the
      closest to :math:`f^2` (in ratio); the clusters are numbered by cell
      index, and a coarse point is the normalised mean of its members:

      .. math::
          \mathbf{x}_c = \frac{\sum_{i \in c} \mathbf{x}_i}
          {\lVert \sum_{i \in c} \mathbf{x}_i \rVert}.

      The coarse ``Data`` is a ``'points'`` sampling and keeps that
      :math:`n_{side}` in ``cluster_nside``. Every cluster is non-empty.

    The coarse ``Data`` has ``pos`` (the dtype of ``data.pos``),
    ``num_nodes``, ``sampling`` and, for a partial HEALPix sky, ``ipix`` (and
    ``face`` for icosahedral grids), but no graph: build it with
    :func:`pyg_sphere.graph.sphere_knn_graph` or use
    :class:`pyg_sphere.transforms.SpherePyramid`.

    Args:
        data (torch_geometric.data.Data): a sampling made by
            :mod:`pyg_sphere.samplings` (or any ``Data`` with unit vectors
            ``pos``, coarsened like ``'points'``).
        factor (int, optional): linear coarsening factor, at least 2; a power
            of two for HEALPix, icosahedral and cubed grids. (default: :obj:`2`)

    Returns:
        ``(coarse, cluster)``: the coarse ``Data`` and a LongTensor [n_fine]
        with values in ``[0, coarse.num_nodes)``, or ``-1`` for the fine pixels
        of a partial HEALPix sky that are dropped.

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> coarse, cluster = coarsen(healpix(2), factor=2)
        >>> coarse.sampling, cluster[:8].tolist()
        (healpix(nest=True, nside=1), [0, 0, 0, 0, 1, 1, 1, 1])
    """
    if not isinstance(data, Data):
        raise ValueError(f"Expected 'data' to be a torch_geometric.data.Data "
                         f"(got {type(data).__name__})")
    pos = getattr(data, 'pos', None)
    if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.size(1) != 3:
        got = tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__
        raise ValueError(f"Expected 'data.pos' to be a tensor of shape [n, 3] (got {got})")
    factor = check_int('factor', factor, minimum=2)
    sampling = getattr(data, 'sampling', None)
    name = sampling.name if isinstance(sampling, SphereSampling) else None
    fn = _COARSENERS.get(name, _coarsen_points)
    coarse, cluster = fn(data, sampling, factor)
    assert cluster.dtype == torch.long and cluster.shape == (pos.size(0),)
    return coarse, cluster


def _check_count(data: Data, expected: int, sampling: SphereSampling) -> None:
    n = data.pos.size(0)
    if n != expected:
        raise ValueError(f"Expected 'data' to hold the {expected} pixels of {sampling!r} "
                         f"(got {n}); a subset of a grid can only be coarsened as "
                         f"'points'")


def _power_factor(factor: int, what: str) -> int:
    if not is_power_of_two(factor):
        raise ValueError(f"Expected 'factor' to be a power of two for {what} (got {factor})")
    return factor.bit_length() - 1


def _coarsen_healpix(data: Data, sampling: SphereSampling, factor: int) -> Tuple[Data, Tensor]:
    nside, nest = sampling['nside'], sampling['nest']
    if nside % factor:
        raise ValueError(f"Expected 'factor' to divide nside = {nside}, so that every "
                         f"coarse pixel has factor**2 children (got factor={factor})")
    _power_factor(factor, 'HEALPix')
    if not nest and not is_power_of_two(nside):
        raise ValueError(f"Coarsening a RING HEALPix map goes through the NESTED "
                         f"numbering, which needs 'nside' to be a power of two "
                         f"(got {nside})")
    nside_c = nside // factor
    children = factor * factor
    dtype = data.pos.dtype
    n = data.pos.size(0)
    ipix = getattr(data, 'ipix', None)
    if ipix is None:
        _check_count(data, 12 * nside * nside, sampling)
        fine = np.arange(n, dtype=np.int64)
    else:
        fine = ipix.detach().cpu().numpy().astype(np.int64)
        if fine.shape != (n,):
            raise ValueError(f"Expected 'data.ipix' to have shape [{n}] (one pixel index "
                             f"per row of 'pos') (got {tuple(ipix.shape)})")
        if np.unique(fine).size != n:
            raise ValueError("Expected 'data.ipix' to hold distinct pixel indices "
                             "(got duplicates)")
    fine_nest = fine if nest else hp.ring2nest(nside, fine)
    parent_nest = fine_nest // children
    if ipix is None:
        parent = parent_nest if nest else hp.nest2ring(nside_c, parent_nest)
        coarse = healpix(nside_c, nest=nest, dtype=dtype)
        return coarse, torch.from_numpy(np.ascontiguousarray(parent, dtype=np.int64))

    uniq, inverse, counts = np.unique(parent_nest, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    complete = counts == children
    if not complete.any():
        raise ValueError(f"Cannot coarsen this partial HEALPix sky by factor={factor}: "
                         f"none of the parents (nside {nside_c}) of its {n} pixels has all "
                         f"{children} children present")
    kept = uniq[complete]
    kept = kept if nest else hp.nest2ring(nside_c, kept)
    order = np.argsort(kept, kind='stable')
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    lookup = np.full(uniq.size, -1, dtype=np.int64)
    lookup[np.flatnonzero(complete)] = rank
    cluster = lookup[inverse]
    num_dropped = int((cluster < 0).sum())
    coarse = healpix(nside_c, nest=nest, indexes=kept[order], dtype=dtype)
    coarse.num_dropped = num_dropped
    if num_dropped:
        warnings.warn(f"coarsen: {num_dropped} of the {n} pixels of this partial HEALPix "
                      f"sky (nside {nside}) have an incomplete parent at nside {nside_c} and "
                      f"are dropped (cluster -1); see coarse.num_dropped", UserWarning,
                      stacklevel=3)
    return coarse, torch.from_numpy(cluster)


def _coarsen_icosahedral(data: Data, sampling: SphereSampling,
                         factor: int) -> Tuple[Data, Tensor]:
    level = sampling['subdivisions']
    m = _power_factor(factor, 'icosahedral grids')
    if m > level:
        raise ValueError(f"Expected 'factor' to be at most 2**subdivisions = {2 ** level} "
                         f"for an icosahedral grid of level {level} (got {factor})")
    _check_count(data, 10 * 4 ** level + 2, sampling)
    vertices, _ = _icosphere(level)
    n_coarse = 10 * 4 ** (level - m) + 2
    tree = cKDTree(vertices[:n_coarse])
    dist, idx = tree.query(vertices, k=3)
    # chordal -> great-circle, then the lowest index among the (near-)ties
    angle = 2 * np.arcsin(np.clip(dist / 2, 0.0, 1.0))
    tie = angle - angle[:, :1] <= _TIE_TOLERANCE
    cluster = np.where(tie, idx, np.iinfo(np.int64).max).min(axis=1)
    coarse = icosahedral(level - m, dtype=data.pos.dtype)
    return coarse, torch.from_numpy(np.ascontiguousarray(cluster, dtype=np.int64))


def _grid_cluster(row_fine: np.ndarray, col_fine: np.ndarray, len_fine: np.ndarray,
                  len_coarse: np.ndarray, offsets_coarse: np.ndarray,
                  factor: int) -> np.ndarray:
    """Row ``r // factor`` and column ``floor(k * m_c / m)`` of each fine pixel."""
    row_c = row_fine // factor
    col_c = (col_fine * len_coarse[row_c]) // len_fine[row_fine]
    return offsets_coarse[row_c] + col_c


def _regular_cluster(nlat: int, nlon: int, nlat_c: int, factor: int) -> np.ndarray:
    r = np.repeat(np.arange(nlat, dtype=np.int64), nlon)
    k = np.tile(np.arange(nlon, dtype=np.int64), nlat)
    nlon_c = nlon // factor
    assert int(r[-1]) // factor == nlat_c - 1
    return (r // factor) * nlon_c + k // factor


def _check_divisible(name: str, value: int, divisor: int, what: str) -> None:
    if value % divisor:
        raise ValueError(f"Expected '{name}' to be divisible by 'factor' = {divisor} for "
                         f"{what} (got {name}={value})")


def _coarsen_equiangular(data: Data, sampling: SphereSampling,
                         factor: int) -> Tuple[Data, Tensor]:
    nlat, nlon, poles = sampling['nlat'], sampling['nlon'], sampling['poles']
    what = f'{factor}x{factor} pooling of the equiangular grid (poles={poles!r})'
    if poles == 'both':
        if (nlat - 1) % factor:
            raise ValueError(f"Expected 'nlat' - 1 to be divisible by 'factor' = {factor} "
                             f"for {what}, which keeps both poles (got nlat={nlat})")
        nlat_c = (nlat - 1) // factor + 1
    else:
        _check_divisible('nlat', nlat, factor, what)
        nlat_c = nlat // factor
    _check_divisible('nlon', nlon, factor, what)
    _check_count(data, nlat * nlon, sampling)
    coarse = equiangular(nlat_c, nlon // factor, poles=poles, dtype=data.pos.dtype)
    return coarse, torch.from_numpy(_regular_cluster(nlat, nlon, nlat_c, factor))


def _coarsen_gauss_legendre(data: Data, sampling: SphereSampling,
                            factor: int) -> Tuple[Data, Tensor]:
    nlat, nlon, reduced = sampling['nlat'], sampling['nlon'], sampling['reduced']
    dtype = data.pos.dtype
    if not reduced:
        what = f'{factor}x{factor} pooling of the Gauss-Legendre grid'
        _check_divisible('nlat', nlat, factor, what)
        _check_divisible('nlon', nlon, factor, what)
        _check_count(data, nlat * nlon, sampling)
        coarse = gauss_legendre(nlat // factor, nlon // factor, dtype=dtype)
        return coarse, torch.from_numpy(_regular_cluster(nlat, nlon, nlat // factor, factor))
    if nlat % (2 * factor):
        raise ValueError(f"Expected 'nlat' to be divisible by 2 * 'factor' = {2 * factor} "
                         f"for the reduced Gauss-Legendre grid, whose coarse nlat must be "
                         f"even (got nlat={nlat})")
    nlat_c = nlat // factor
    len_f = _row_lengths(nlat, None, True)
    len_c = _row_lengths(nlat_c, None, True)
    _check_count(data, int(len_f.sum()), sampling)
    row = np.repeat(np.arange(nlat, dtype=np.int64), len_f)
    offsets_f = np.concatenate([[0], np.cumsum(len_f)])
    offsets_c = np.concatenate([[0], np.cumsum(len_c)])
    col = np.arange(row.size, dtype=np.int64) - offsets_f[row]
    cluster = _grid_cluster(row, col, len_f, len_c, offsets_c, factor)
    coarse = gauss_legendre(nlat_c, reduced=True, dtype=dtype)
    return coarse, torch.from_numpy(cluster)


def _coarsen_cubed(data: Data, sampling: SphereSampling, factor: int) -> Tuple[Data, Tensor]:
    level, spacing = sampling['subdivisions'], sampling['spacing']
    m = _power_factor(factor, 'cubed-sphere grids')
    if m > level:
        raise ValueError(f"Expected 'factor' to be at most 2**subdivisions = {2 ** level} "
                         f"for a cubed sphere with subdivisions={level} (got {factor})")
    num = 2 ** level
    _check_count(data, 6 * num * num, sampling)
    num_c = num // factor
    p = np.arange(6 * num * num, dtype=np.int64)
    face, rest = p // (num * num), p % (num * num)
    j, i = rest // num, rest % num
    cluster = face * num_c * num_c + (j // factor) * num_c + i // factor
    coarse = cubed(level - m, spacing=spacing, dtype=data.pos.dtype)
    return coarse, torch.from_numpy(cluster)


def _points_nside(xyz: np.ndarray, target: float) -> Tuple[int, np.ndarray]:
    """The power-of-two nside whose mean occupancy of non-empty NESTED cells is
    the closest to ``target`` (in ratio), and the cells of the points."""
    n = xyz.shape[0]
    best = None
    for order in range(_MAX_POINTS_ORDER + 1):
        nside = 2 ** order
        cells = hp.vec2pix(nside, xyz[:, 0], xyz[:, 1], xyz[:, 2], nest=True)
        occupied = np.unique(cells).size
        mean = n / occupied
        score = abs(math.log(mean / target))
        if best is None or score < best[0]:
            best = (score, nside, cells)
        # finer cells only split clusters: the mean occupancy never grows
        if mean <= target or occupied == n:
            break
    return best[1], best[2]


def _coarsen_points(data: Data, sampling: Any, factor: int) -> Tuple[Data, Tensor]:
    xyz = data.pos.detach().cpu().to(torch.float64).numpy()
    norm = np.linalg.norm(xyz, axis=1, keepdims=True)
    if not np.all(np.isfinite(xyz)) or np.any(np.abs(norm - 1) > 1e-3):
        raise ValueError("Expected 'data.pos' to hold finite unit vectors")
    xyz = xyz / norm
    nside, cells = _points_nside(xyz, float(factor * factor))
    uniq, cluster = np.unique(cells, return_inverse=True)
    cluster = cluster.reshape(-1).astype(np.int64)
    total = np.zeros((uniq.size, 3))
    np.add.at(total, cluster, xyz)
    coarse = make_data(total, SphereSampling('points', {'n': int(uniq.size)}), data.pos.dtype)
    coarse.cluster_nside = nside
    return coarse, torch.from_numpy(cluster)


_COARSENERS: Dict[Optional[str], Callable[[Data, Any, int], Tuple[Data, Tensor]]] = {
    'healpix': _coarsen_healpix,
    'icosahedral': _coarsen_icosahedral,
    'equiangular': _coarsen_equiangular,
    'gauss_legendre': _coarsen_gauss_legendre,
    'cubed': _coarsen_cubed,
    'points': _coarsen_points,
}
assert set(_COARSENERS) == set(COARSEN_SAMPLINGS)
