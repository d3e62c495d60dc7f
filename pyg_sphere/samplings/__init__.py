"""Samplings of the sphere, each returned as a :class:`torch_geometric.data.Data`."""
from ._base import (SphereSampling, lonlat_to_xyz, pixel_area, sampling_key, sampling_positions,
                    xyz_to_lonlat)
from .coarsen import COARSEN_SAMPLINGS, coarsen
from .cubed import CUBED_SPACINGS, cubed
from .equiangular import EQUIANGULAR_POLES, equiangular
from .gauss_legendre import gauss_legendre
from .healpix import healpix
from .icosahedral import icosahedral
from .points import points

__all__ = [
    'SphereSampling',
    'healpix',
    'equiangular',
    'icosahedral',
    'cubed',
    'gauss_legendre',
    'points',
    'pixel_area',
    'sampling_key',
    'sampling_positions',
    'coarsen',
    'COARSEN_SAMPLINGS',
    'lonlat_to_xyz',
    'xyz_to_lonlat',
    'EQUIANGULAR_POLES',
    'CUBED_SPACINGS',
]
