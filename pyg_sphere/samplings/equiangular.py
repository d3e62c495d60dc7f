"""Equiangular (latitude-longitude) grids: SOFT, Driscoll-Healy, Clenshaw-Curtis."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_choice, check_int
from ._base import SphereSampling, make_data, register, register_area

#: Allowed values of ``poles``: ``'none'`` (SOFT), ``'north'`` (Driscoll-Healy),
#: ``'both'`` (Clenshaw-Curtis).
EQUIANGULAR_POLES = ('none', 'north', 'both')


def _check_args(nlat: Any, nlon: Any, poles: Any) -> tuple:
    poles = check_choice('poles', poles, EQUIANGULAR_POLES)
    nlat = check_int('nlat', nlat, minimum=2 if poles == 'both' else 1)
    if nlon is None:
        nlon = 2 * (nlat - 1) if poles == 'both' else 2 * nlat
    else:
        nlon = check_int('nlon', nlon, minimum=1)
    return nlat, nlon, poles


def _colatitudes(nlat: int, poles: str) -> np.ndarray:
    """Colatitudes of the rows in radians, north to south, float64 [nlat]."""
    j = np.arange(nlat, dtype=np.float64)
    # The fraction is formed first so that the poles come out as exactly 0 and pi.
    if poles == 'none':
        return (2 * j + 1) / (2 * nlat) * np.pi
    if poles == 'north':
        return j / nlat * np.pi
    return j / (nlat - 1) * np.pi


@register('equiangular')
def equiangular(nlat: int, nlon: Optional[int] = None, poles: str = 'none',
                dtype: Optional[torch.dtype] = None) -> Data:
    r"""Equiangular (latitude-longitude) grid of :math:`n = n_{lat}\,n_{lon}`
    points, as used by `Driscoll & Healy (1994)
    <https://doi.org/10.1006/aama.1994.1008>`_, SOFT (`Kostelec & Rockmore
    (2008) <https://doi.org/10.1007/s00041-008-9013-5>`_) and Clenshaw-Curtis
    quadrature.

    Row :math:`j` (north to south) is at colatitude

    .. math::
        \theta_j = \begin{cases}
            \pi (2j + 1) / (2 n_{lat}) & \text{poles='none' (SOFT)} \\
            \pi j / n_{lat} & \text{poles='north' (Driscoll-Healy)} \\
            \pi j / (n_{lat} - 1) & \text{poles='both' (Clenshaw-Curtis)}
        \end{cases}

    for :math:`j = 0, \dots, n_{lat} - 1`, and column :math:`k` at longitude
    :math:`\phi_k = 2\pi k / n_{lon}`. A bandwidth :math:`b` gives the
    :math:`2b \times 2b` grids ``equiangular(2 * b)`` (SOFT) and
    ``equiangular(2 * b, poles='north')`` (Driscoll-Healy).

    Pixel ``i_lat * nlon + i_lon`` is row ``i_lat`` and column ``i_lon``
    (row-major, rows from north to south, longitudes increasing eastwards), so
    a signal reshapes to ``[nlat, nlon]`` and 2x2 blocks pool to the grid with
    half the rows and columns.

    Pole rows (``poles='north'`` and ``'both'``) keep the data layout of those
    grids: they hold ``nlon`` coincident points at the pole (distance 0 from
    each other), each given a ``1 / nlon`` share of the polar cap's area.

    The pixel areas (:func:`pixel_area`) are those of the cells bounded by
    the meridians :math:`\phi_k \pm \pi / n_{lon}` and by the parallels halfway
    between consecutive rows (the first and last rows extend to the poles):

    .. math::
        a_{jk} = \frac{2\pi}{n_{lon}} \left(\cos \bar\theta_j -
        \cos \bar\theta_{j+1}\right), \quad
        \bar\theta_j = \tfrac{1}{2}(\theta_{j-1} + \theta_j), \quad
        \bar\theta_0 = 0, \quad \bar\theta_{n_{lat}} = \pi,

    which sum to :math:`4\pi`.

    Args:
        nlat (int): number of rows (latitudes), at least 1 (2 for
            ``poles='both'``).
        nlon (int, optional): number of columns (longitudes).
            (default: :obj:`2 * nlat`, or :obj:`2 * (nlat - 1)` for
            ``poles='both'``)
        poles (str, optional): which poles are sampled, one of
            :obj:`EQUIANGULAR_POLES`: ``'none'`` (SOFT), ``'north'``
            (Driscoll-Healy) or ``'both'`` (Clenshaw-Curtis).
            (default: ``'none'``)
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors,
        :math:`(\sin\theta\cos\phi, \sin\theta\sin\phi, \cos\theta)`),
        ``num_nodes`` and ``sampling`` (a :class:`SphereSampling` with
        ``nlat``, ``nlon``, ``poles``).

    Example:
        >>> data = equiangular(4, poles='north')
        >>> data.num_nodes
        32
        >>> data.pos[0].tolist()  # the north pole
        [0.0, 0.0, 1.0]
    """
    nlat, nlon, poles = _check_args(nlat, nlon, poles)
    theta = _colatitudes(nlat, poles)
    phi = np.arange(nlon, dtype=np.float64) / nlon * (2 * np.pi)
    sin_t = np.sin(theta)
    cos_t = np.cos(theta)
    # exact poles (sin(pi) is 1.2e-16, not 0)
    sin_t[(theta == 0) | (theta == np.pi)] = 0.0
    xyz = np.empty((nlat, nlon, 3), dtype=np.float64)
    xyz[..., 0] = sin_t[:, None] * np.cos(phi)[None, :]
    xyz[..., 1] = sin_t[:, None] * np.sin(phi)[None, :]
    xyz[..., 2] = cos_t[:, None]
    sampling = SphereSampling('equiangular', {'nlat': nlat, 'nlon': nlon, 'poles': poles})
    return make_data(xyz.reshape(-1, 3), sampling, dtype)


@register_area('equiangular')
def _equiangular_area(data: Data) -> torch.Tensor:
    nlat, nlon, poles = (data.sampling[k] for k in ('nlat', 'nlon', 'poles'))
    theta = _colatitudes(nlat, poles)
    bounds = np.concatenate([[0.0], (theta[:-1] + theta[1:]) / 2, [np.pi]])
    # cos(a) - cos(b) = 2 sin((a + b) / 2) sin((b - a) / 2), accurate for thin rows
    row = 2 * np.sin((bounds[:-1] + bounds[1:]) / 2) * np.sin((bounds[1:] - bounds[:-1]) / 2)
    area = np.repeat(row * (2 * np.pi / nlon), nlon)
    return torch.from_numpy(area)
