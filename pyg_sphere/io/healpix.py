"""Reading HEALPix maps: FITS files in either ordering (healpy) and NESTED
``.npy`` arrays, returned in NESTED order, float64."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

#: File suffixes read as FITS.
FITS_SUFFIXES = ('.fits', '.fit', '.fz', '.fits.gz')


def is_fits(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` has a FITS suffix (:obj:`FITS_SUFFIXES`)."""
    name = Path(path).name.lower()
    return any(name.endswith(s) for s in FITS_SUFFIXES)


def _check_file(path: Union[str, os.PathLike]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a file path (got {path!r})")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such file')
    return path


def check_real_array(path: Path, values: Any) -> np.ndarray:
    """``values`` as an array of real numbers (int, uint or float), or a
    ValueError naming the file and the dtype (complex values are refused,
    not silently cut to their real part)."""
    values = np.asarray(values)
    if values.dtype.kind not in 'iuf':
        raise ValueError(f'{path}: expected real numbers (got an array of dtype '
                         f'{values.dtype})')
    return values


def masked_pixels(values: np.ndarray) -> np.ndarray:
    """Where a map has no value: NaN, infinite or :obj:`healpy.UNSEEN`
    (-1.6375e30, the mark of cosmologists' masked FITS maps), bool."""
    import healpy as hp
    return ~np.isfinite(values) | np.isclose(values, hp.UNSEEN, rtol=1e-6, atol=0.0)


def _check_values(path: Path, values: np.ndarray, nside: int, masked: bool = False,
                  order: str = 'NESTED') -> None:
    import healpy as hp
    npix = 12 * nside * nside
    if values.shape[-1] != npix:
        got = hp.npix2nside(values.shape[-1]) if hp.isnpixok(values.shape[-1]) else None
        raise ValueError(f'{path}: expected maps of nside {nside} ({npix} pixels), got '
                         f'{values.shape[-1]} pixels' + (f' (nside {got})' if got else ''))
    bad = masked_pixels(values)
    if bad.any() and not masked:
        first = int(np.nonzero(bad.reshape(-1))[0][0]) % npix
        raise ValueError(f'{path}: {int(bad.sum())} of {bad.size} pixels are NaN or '
                         f'healpy.UNSEEN (first at {order} pixel {first}): fill them, or, for a '
                         f'partial sky, use only the patches without masked pixels '
                         f'(pyg-sphere predict --masked skip)')


def _ordering(header) -> bool:
    """Whether a FITS header says NESTED (RING when it says nothing)."""
    ordering = str(dict(header).get('ORDERING', 'RING')).strip().upper()
    return ordering.startswith('NEST')


def read_healpix_map(path: Union[str, os.PathLike], nside: int, field: int = 0,
                     masked: bool = False) -> np.ndarray:
    """A HEALPix map as a NESTED float64 array of ``12 nside^2`` pixels.

    FITS files are read with healpy in the ordering their header states
    (RING when it states none); ``.npy`` files must be NESTED. Raises
    FileNotFoundError for a missing file and ValueError for an unreadable
    file, a wrong number of pixels, and NaN / UNSEEN pixels unless
    ``masked``, which returns them as NaN (see :func:`masked_pixels`).
    """
    import healpy as hp
    path = _check_file(path)
    if path.suffix.lower() == '.npy':
        try:
            values = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises several kinds on bad files
            raise ValueError(f'{path}: cannot read a .npy array ({err})') from None
        values = check_real_array(path, values)
        nest = True
    elif is_fits(path):
        try:
            values, header = hp.read_map(str(path), field=field, nest=None, h=True,
                                         dtype=np.float64)
        except Exception as err:  # healpy raises many kinds of errors
            raise ValueError(f'{path}: cannot read a HEALPix map ({err})') from None
        nest = _ordering(header)
    else:
        raise ValueError(f'{path}: expected a .fits or .npy HEALPix map')
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    _check_values(path, values, nside, masked, 'NESTED' if nest else 'RING')
    values = np.where(masked_pixels(values), np.nan, values)
    return values if nest else hp.reorder(values, r2n=True)


def read_healpix_fields(path: Union[str, os.PathLike], nside: int, count: int) -> np.ndarray:
    """``count`` fields of a HEALPix FITS file as a NESTED float64 array
    ``[12 nside^2, count]`` (fields in file order; RING files are reordered)."""
    import healpy as hp
    path = _check_file(path)
    try:
        values, header = hp.read_map(str(path), field=tuple(range(count)), nest=None, h=True,
                                     dtype=np.float64)
    except IndexError:
        raise ValueError(f'{path}: expected {count} fields (one per input channel)') from None
    except Exception as err:  # healpy raises many kinds of errors
        raise ValueError(f'{path}: cannot read a HEALPix map ({err})') from None
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    _check_values(path, values, nside, order='NESTED' if _ordering(header) else 'RING')
    if not _ordering(header):
        values = np.stack([hp.reorder(v, r2n=True) for v in values])
    return values.T
