"""HEALPix sampling (Gorski et al. 2005), full or partial sky."""
from __future__ import annotations

import math
from typing import Any, Optional

import healpy as hp
import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int, is_power_of_two
from ._base import SphereSampling, make_data, register, register_area


def _check_nside(nside: Any, nest: bool) -> int:
    nside = check_int('nside', nside, minimum=1)
    if nest and not is_power_of_two(nside):
        raise ValueError(f"Expected 'nside' to be a power of two when nest=True (got {nside})")
    if nside > 2**29:
        raise ValueError(f"Expected 'nside' to be <= 2**29 (got {nside})")
    return nside


def _check_indexes(indexes: Any, npix: int) -> np.ndarray:
    if isinstance(indexes, torch.Tensor):
        indexes = indexes.detach().cpu().numpy()
    arr = np.asarray(indexes)
    if arr.ndim != 1:
        raise ValueError(f"Expected 'indexes' to be a 1-D array of pixel indices "
                         f"(got shape {arr.shape})")
    if arr.size == 0:
        raise ValueError("Expected 'indexes' to hold at least one pixel index (got none)")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Expected 'indexes' to hold integers (got dtype {arr.dtype})")
    arr = arr.astype(np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= npix:
        bad = lo if lo < 0 else hi
        raise ValueError(f"Expected 'indexes' in [0, {npix - 1}] for 12 * nside**2 = {npix} "
                         f"pixels (got {bad})")
    if np.unique(arr).size != arr.size:
        raise ValueError("Expected 'indexes' to hold distinct pixel indices (got duplicates)")
    return arr


@register('healpix')
def healpix(nside: int, nest: bool = True, indexes: Optional[Any] = None,
            dtype: Optional[torch.dtype] = None) -> Data:
    r"""HEALPix sampling of the sphere, :math:`n = 12\,n_{side}^2` pixels.

    Pixel ``i`` of the returned graph is HEALPix pixel ``i`` in NESTED
    (``nest=True``) or RING ordering; for a partial sky it is pixel
    ``indexes[i]``, and the pixel indices are kept in ``data.ipix``.

    Args:
        nside (int): HEALPix resolution parameter (a power of two if
            ``nest=True``).
        nest (bool, optional): NESTED ordering if :obj:`True`, RING otherwise.
            NESTED is what pooling needs. (default: :obj:`True`)
        indexes (array-like, optional): distinct pixel indices of a partial sky
            (a mask / footprint), in the chosen ordering. (default: :obj:`None`,
            full sky)
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors),
        ``num_nodes``, ``sampling`` (a :class:`SphereSampling` with ``nside``,
        ``nest``) and, for a partial sky, ``ipix`` [n].

    Example:
        >>> data = healpix(8)
        >>> data.num_nodes
        768
    """
    if not isinstance(nest, bool):
        raise ValueError(f"Expected 'nest' to be a bool (got {nest!r})")
    nside = _check_nside(nside, nest)
    npix = 12 * nside * nside
    if indexes is None:
        ipix = np.arange(npix, dtype=np.int64)
        extra = {}
    else:
        ipix = _check_indexes(indexes, npix)
        extra = {'ipix': torch.from_numpy(ipix)}
    xyz = hp.pix2vec(nside, ipix, nest=nest)  # three columns
    return make_data(xyz, SphereSampling('healpix', {'nside': nside, 'nest': nest}), dtype,
                     **extra)


@register_area('healpix')
def _healpix_area(data: Data) -> torch.Tensor:
    nside = data.sampling['nside']
    return torch.full((data.num_nodes,), 4 * math.pi / (12 * nside * nside), dtype=torch.float64)
