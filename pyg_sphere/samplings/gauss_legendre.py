"""Gauss-Legendre grids, regular or reduced (ECMWF octahedral, "O-grid")."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int
from ._base import SphereSampling, make_data, register, register_area


def _check_args(nlat: Any, nlon: Any, reduced: Any) -> Tuple[int, Optional[int], bool]:
    if not isinstance(reduced, bool):
        raise ValueError(f"Expected 'reduced' to be a bool (got {reduced!r})")
    if reduced:
        nlat = check_int('nlat', nlat, minimum=2)
        if nlat % 2:
            raise ValueError(f"Expected 'nlat' to be even when reduced=True (got {nlat})")
        if nlon is not None:
            raise ValueError(f"Expected 'nlon' to be None when reduced=True, as the "
                             f"octahedral grid fixes the row lengths (got {nlon!r})")
        return nlat, None, True
    nlat = check_int('nlat', nlat, minimum=1)
    nlon = 2 * nlat if nlon is None else check_int('nlon', nlon, minimum=1)
    return nlat, nlon, False


def _row_lengths(nlat: int, nlon: Optional[int], reduced: bool) -> np.ndarray:
    """Number of points of each row, north to south, int64 [nlat].

    Regular grid: ``nlon`` everywhere. Octahedral reduced grid: ``4 i + 16``
    for the ``i``-th row from either pole (``i = 1 .. nlat / 2``). The pixels
    of row ``r`` are ``offsets[r] .. offsets[r + 1] - 1`` with
    ``offsets = [0, *cumsum(lengths)]``, and the row of every pixel is
    ``np.repeat(np.arange(nlat), lengths)``.
    """
    if not reduced:
        return np.full(nlat, nlon, dtype=np.int64)
    half = 4 * np.arange(1, nlat // 2 + 1, dtype=np.int64) + 16
    return np.concatenate([half, half[::-1]])


def _gauss_nodes(nlat: int) -> Tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (cos of the colatitude = sin of the latitude) and
    weights (summing to 2), north to south, float64 [nlat]."""
    x, w = np.polynomial.legendre.leggauss(nlat)
    return x[::-1].copy(), w[::-1].copy()


@register('gauss_legendre')
def gauss_legendre(nlat: int, nlon: Optional[int] = None, reduced: bool = False,
                   dtype: Optional[torch.dtype] = None) -> Data:
    r"""Gauss-Legendre grid: rows at the Gauss-Legendre latitudes, equally
    spaced points along each row, as used by spectral weather models
    (regular "F-grid") and ECMWF's IFS (`octahedral reduced "O-grid"
    <https://confluence.ecmwf.int/display/FCST/Introducing+the+octahedral+reduced+Gaussian+grid>`_).

    Row :math:`j` (north to south) is at latitude :math:`\lambda_j` with
    :math:`\sin \lambda_j = x_j`, the :math:`j`-th largest root of the
    Legendre polynomial :math:`P_{n_{lat}}`; point :math:`k` of a row of
    :math:`m_j` points is at longitude :math:`\phi_k = 2\pi k / m_j`.
    Regular grid: :math:`m_j = n_{lon}`. Reduced octahedral grid (O-grid,
    ``reduced=True``, :math:`n_{lat} = 2N`): the :math:`i`-th row from either
    pole has :math:`m = 4i + 16` points, :math:`i = 1, \dots, N`, so
    :math:`n = 4N^2 + 36N` (O1280 = ``gauss_legendre(2560, reduced=True)``).

    Pixels are ordered row by row, north to south, longitudes increasing
    eastwards from 0 within a row (for a regular grid, pixel
    ``j * nlon + k`` is row ``j``, column ``k``).

    The pixel areas (:func:`pixel_area`) are the quadrature weights

    .. math::
        a_{jk} = w_j \frac{2\pi}{m_j}, \quad \sum_{j,k} a_{jk} = 4\pi,

    with :math:`w_j` the Gauss-Legendre weights, which integrate band-limited
    functions exactly (degree up to :math:`2 n_{lat} - 1` in latitude).

    Args:
        nlat (int): number of rows (latitudes), at least 1 (an even number
            at least 2 with ``reduced=True``).
        nlon (int, optional): number of points per row of the regular grid;
            must be :obj:`None` with ``reduced=True``.
            (default: :obj:`2 * nlat`)
        reduced (bool, optional): the octahedral reduced grid if :obj:`True`.
            (default: :obj:`False`)
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors),
        ``num_nodes`` and ``sampling`` (a :class:`SphereSampling` with
        ``nlat``, ``nlon`` (:obj:`None` for the reduced grid), ``reduced``).

    Example:
        >>> gauss_legendre(4).num_nodes
        32
        >>> gauss_legendre(4, reduced=True).num_nodes  # rows of 20, 24, 24, 20
        88
    """
    nlat, nlon, reduced = _check_args(nlat, nlon, reduced)
    z, _ = _gauss_nodes(nlat)
    lengths = _row_lengths(nlat, nlon, reduced)
    row = np.repeat(np.arange(nlat), lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    k = np.arange(int(offsets[-1]), dtype=np.int64) - offsets[row]
    phi = k / lengths[row] * (2 * np.pi)
    z = z[row]
    s = np.sqrt((1 - z) * (1 + z))
    xyz = np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)
    sampling = SphereSampling('gauss_legendre',
                              {'nlat': nlat, 'nlon': nlon, 'reduced': reduced})
    return make_data(xyz, sampling, dtype)


@register_area('gauss_legendre')
def _gauss_legendre_area(data: Data) -> torch.Tensor:
    nlat, nlon, reduced = (data.sampling[k] for k in ('nlat', 'nlon', 'reduced'))
    _, w = _gauss_nodes(nlat)
    lengths = _row_lengths(nlat, nlon, reduced)
    return torch.from_numpy(np.repeat(w * (2 * np.pi) / lengths, lengths))
