"""Arbitrary points on the sphere (e.g. weather stations)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from scipy.spatial import SphericalVoronoi, cKDTree
from torch_geometric.data import Data

from .._validation import _got
from ._base import SphereSampling, lonlat_to_xyz, make_data, register_area

#: Two points closer than this (chord length on the unit sphere) are
#: considered coincident for the Voronoi areas (scipy's threshold).
DUPLICATE_TOLERANCE = 1e-6


def _as_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"Expected '{name}' to be a 1-D array of numbers "
                         f"(got {_got(value)})") from error
    if arr.ndim != 1:
        raise ValueError(f"Expected '{name}' to be a 1-D array of numbers "
                         f"(got shape {arr.shape})")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"Expected '{name}' to hold real numbers (got dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"Expected '{name}' to be finite, but {name}[{bad}] is {arr[bad]} "
                         f"({int((~finite).sum())} non-finite values)")
    return arr


def _check_range(name: str, arr: np.ndarray, bound: float, unit: str, degrees: bool) -> None:
    outside = np.abs(arr) > bound
    if not outside.any():
        return
    bad = int(np.flatnonzero(outside)[0])
    msg = (f"Expected '{name}' in [-{bound:g}, {bound:g}] {unit}, but {name}[{bad}] "
           f"is {arr[bad]:g}")
    if not degrees and np.abs(arr).max() <= np.rad2deg(bound):
        # |lat| <= 90 or |lon| <= 360: these look like degrees
        msg += '; these look like degrees: pass degrees=True'
    raise ValueError(msg)


def points(lon: Any, lat: Any, degrees: bool = False,
           dtype: Optional[torch.dtype] = None) -> Data:
    r"""Arbitrary points on the sphere, such as weather stations, given by
    their longitudes and latitudes.

    Point :math:`i` is the unit vector

    .. math::
        \mathbf{x}_i = (\cos\lambda_i \cos\phi_i,\ \cos\lambda_i \sin\phi_i,\
        \sin\lambda_i)

    with longitude :math:`\phi_i` = ``lon[i]`` and latitude
    :math:`\lambda_i` = ``lat[i]``; the pixel order is the input order.

    Unlike the other samplings, the descriptor holds only the number of
    points (``data.sampling['n']``), so ``data.sampling.rebuild()`` raises a
    ValueError: call :func:`points` again with the coordinates.

    The pixel areas (:func:`pixel_area`) are the areas of the spherical
    Voronoi cells of the points (:class:`scipy.spatial.SphericalVoronoi`),
    which sum to :math:`4\pi`. They need at least 4 distinct points not all
    on one plane (e.g. not all on one great circle).

    Args:
        lon (array-like or torch.Tensor): longitudes [n], in :math:`[-2\pi,
            2\pi]` (:math:`[-360, 360]` with ``degrees=True``).
        lat (array-like or torch.Tensor): latitudes [n], in :math:`[-\pi/2,
            \pi/2]` (:math:`[-90, 90]` with ``degrees=True``).
        degrees (bool, optional): if :obj:`True`, ``lon`` and ``lat`` are in
            degrees, otherwise in radians. (default: :obj:`False`)
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors),
        ``num_nodes`` and ``sampling`` (a :class:`SphereSampling` with ``n``).

    Example:
        >>> data = points([0, 90, 180], [0, 0, 90], degrees=True)
        >>> data.pos.round(decimals=6).abs().tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if not isinstance(degrees, bool):
        raise ValueError(f"Expected 'degrees' to be a bool (got {degrees!r})")
    lon = _as_array('lon', lon)
    lat = _as_array('lat', lat)
    if lon.shape != lat.shape:
        raise ValueError(f"Expected 'lon' and 'lat' to have the same shape "
                         f"(got {lon.shape} and {lat.shape})")
    if lon.size == 0:
        raise ValueError("Expected 'lon' and 'lat' to hold at least one point (got none)")
    if degrees:
        _check_range('lat', lat, 90.0, 'degrees', degrees)
        _check_range('lon', lon, 360.0, 'degrees', degrees)
        lon, lat = np.deg2rad(lon), np.deg2rad(lat)
    else:
        _check_range('lat', lat, np.pi / 2, 'radians', degrees)
        _check_range('lon', lon, 2 * np.pi, 'radians', degrees)
    sampling = SphereSampling('points', {'n': int(lon.size)})
    return make_data(lonlat_to_xyz(lon, lat), sampling, dtype)


def _voronoi_areas(xyz: np.ndarray) -> np.ndarray:
    """Spherical Voronoi cell areas of unit vectors [n, 3], with our errors."""
    n = xyz.shape[0]
    if n < 4:
        raise ValueError(f"Pixel areas of 'points' need at least 4 points for a spherical "
                         f"Voronoi diagram (got {n})")
    pairs = cKDTree(xyz).query_pairs(DUPLICATE_TOLERANCE, output_type='ndarray')
    if len(pairs):
        i, j = min((int(a), int(b)) for a, b in np.sort(pairs, axis=1))
        raise ValueError(f"Pixel areas of 'points' are undefined with duplicate points: "
                         f"points {i} and {j} coincide (distance "
                         f"{np.linalg.norm(xyz[i] - xyz[j]):.3g} < {DUPLICATE_TOLERANCE:g})")
    if np.linalg.matrix_rank(xyz - xyz[0], tol=DUPLICATE_TOLERANCE) < 3:
        raise ValueError("Pixel areas of 'points' are undefined when all points lie on one "
                         "plane (e.g. one great circle or one parallel)")
    return SphericalVoronoi(xyz, radius=1.0, threshold=DUPLICATE_TOLERANCE).calculate_areas()


@register_area('points')
def _points_area(data: Data) -> torch.Tensor:
    xyz = data.pos.detach().cpu().double().numpy()
    xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    return torch.from_numpy(np.ascontiguousarray(_voronoi_areas(xyz), dtype=np.float64))
