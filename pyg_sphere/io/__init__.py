"""Readers of users' data: HEALPix maps (FITS in either ordering, NESTED
``.npy``), netCDF fields on lat-lon grids interpolated onto any sampling, and
triangle meshes (and the SHREC'17 layout of mesh files and CSV labels)."""
from .healpix import (FITS_SUFFIXES, check_real_array, is_fits, masked_pixels,
                      read_healpix_fields, read_healpix_map)
from .mesh import MESH_FORMATS, load_mesh
from .netcdf import NETCDF_ENGINES, NetCDFFields, load_netcdf
from .shrec17 import read_shrec17, shrec17_csvs

__all__ = [
    'read_healpix_map',
    'read_healpix_fields',
    'is_fits',
    'masked_pixels',
    'check_real_array',
    'FITS_SUFFIXES',
    'load_netcdf',
    'NetCDFFields',
    'NETCDF_ENGINES',
    'load_mesh',
    'MESH_FORMATS',
    'read_shrec17',
    'shrec17_csvs',
]
