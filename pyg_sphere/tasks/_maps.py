"""Reading users' HEALPix maps (FITS in either ordering, or NESTED ``.npy``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import TaskError


def read_healpix_fields(path: Path, nside: int, count: int) -> np.ndarray:
    """``count`` fields of a HEALPix FITS file as a NESTED float64 array
    ``[12 nside^2, count]`` (fields in file order; RING files are reordered)."""
    import healpy as hp
    path = Path(path)
    if not path.exists():
        raise TaskError(f'{path}: no such file')
    try:
        values, header = hp.read_map(str(path), field=tuple(range(count)), nest=None, h=True,
                                     dtype=np.float64)
    except IndexError:
        raise TaskError(f'{path}: expected {count} fields (one per input channel)') from None
    except Exception as err:  # healpy raises many kinds of errors
        raise TaskError(f'{path}: cannot read a HEALPix map ({err})') from None
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if values.shape[1] != 12 * nside * nside:
        raise TaskError(f'{path}: expected maps of nside {nside} ({12 * nside * nside} '
                        f'pixels), got {values.shape[1]} pixels')
    bad = ~np.isfinite(values) | (values == hp.UNSEEN)
    if bad.any():
        raise TaskError(f'{path}: {int(bad.sum())} NaN / UNSEEN pixels; fill or mask them first')
    ordering = str(dict(header).get('ORDERING', 'RING')).strip().upper()
    if not ordering.startswith('NEST'):
        values = np.stack([hp.reorder(v, r2n=True) for v in values])
    return values.T


def read_healpix_map(path: Path, nside: int, field: int = 0) -> np.ndarray:
    """A HEALPix map as a NESTED float64 array of ``12 nside^2`` pixels.

    FITS files are read with healpy in the ordering their header states
    (RING when it states none); ``.npy`` files must be NESTED. Raises
    :class:`TaskError` for a missing or unreadable file, a wrong number of
    pixels and NaN / UNSEEN pixels.
    """
    import healpy as hp
    path = Path(path)
    if not path.exists():
        raise TaskError(f'{path}: no such file')
    if path.suffix.lower() == '.npy':
        try:
            values = np.load(path, allow_pickle=False)
        except Exception as err:
            raise TaskError(f'{path}: cannot read a .npy array ({err})') from None
        nest = True
    elif path.suffix.lower() in ('.fits', '.fit', '.fz') or path.name.endswith('.fits.gz'):
        try:
            values, header = hp.read_map(str(path), field=field, nest=None, h=True,
                                         dtype=np.float64)
        except Exception as err:  # healpy raises many kinds of errors
            raise TaskError(f'{path}: cannot read a HEALPix map ({err})') from None
        ordering = str(dict(header).get('ORDERING', 'RING')).strip().upper()
        nest = ordering.startswith('NEST')
    else:
        raise TaskError(f'{path}: expected a .fits or .npy HEALPix map')
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != 12 * nside * nside:
        got = hp.npix2nside(values.size) if hp.isnpixok(values.size) else None
        raise TaskError(f'{path}: expected a map of nside {nside} ({12 * nside * nside} '
                        f'pixels), got {values.size} pixels' + (f' (nside {got})' if got else ''))
    bad = ~np.isfinite(values) | (values == hp.UNSEEN)
    if bad.any():
        raise TaskError(f'{path}: {int(bad.sum())} NaN / UNSEEN pixels (first at pixel '
                        f'{int(np.nonzero(bad)[0][0])}); fill or mask them first')
    if not nest:
        values = hp.reorder(values, r2n=True)
    return values
