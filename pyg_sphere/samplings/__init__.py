"""Samplings of the sphere, each returned as a :class:`torch_geometric.data.Data`."""
from ._base import SphereSampling, lonlat_to_xyz, pixel_area, xyz_to_lonlat
from .healpix import healpix

__all__ = [
    'SphereSampling',
    'healpix',
    'pixel_area',
    'lonlat_to_xyz',
    'xyz_to_lonlat',
]
