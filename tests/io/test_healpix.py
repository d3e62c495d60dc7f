"""Reading HEALPix maps (pyg_sphere.io.healpix): FITS in either ordering and
NESTED .npy give the same NESTED map; bad files give clear errors."""
import healpy as hp
import numpy as np
import pytest

from pyg_sphere.io import FITS_SUFFIXES, is_fits, read_healpix_fields, read_healpix_map

NSIDE = 4
NPIX = 12 * NSIDE ** 2


def nested_map(seed=0):
    """A map whose value at each NESTED pixel is a known function of its centre."""
    x, y, z = hp.pix2vec(NSIDE, np.arange(NPIX), nest=True)
    return 1.0 + x + 2.0 * y + 3.0 * z ** 2 + seed


def write(path, maps, nest):
    """Write ``maps`` (NESTED) to FITS in the NESTED or the RING ordering."""
    maps = np.atleast_2d(maps)
    stored = maps if nest else np.stack([hp.reorder(m, n2r=True) for m in maps])
    hp.write_map(str(path), list(stored) if len(stored) > 1 else stored[0], nest=nest,
                 overwrite=True, dtype=np.float64)
    return path


def test_ring_nested_fits_and_npy_read_the_same_nested_map(tmp_path):
    expected = nested_map()
    ring = read_healpix_map(write(tmp_path / 'ring.fits', expected, nest=False), NSIDE)
    nest = read_healpix_map(write(tmp_path / 'nest.fits', expected, nest=True), NSIDE)
    np.save(tmp_path / 'map.npy', expected.astype(np.float32))
    npy = read_healpix_map(tmp_path / 'map.npy', NSIDE)
    for got in (ring, nest, npy):
        assert got.dtype == np.float64 and got.shape == (NPIX,)
    np.testing.assert_array_equal(ring, expected)
    np.testing.assert_array_equal(nest, expected)
    np.testing.assert_allclose(npy, expected, rtol=1e-7)
    # the RING file really is stored in RING order
    raw = hp.read_map(str(tmp_path / 'ring.fits'), nest=None, dtype=np.float64)
    assert not np.array_equal(raw, expected)
    np.testing.assert_array_equal(hp.reorder(raw, r2n=True), expected)


def test_fits_without_ordering_keyword_is_ring(tmp_path):
    from astropy.io import fits
    expected = nested_map()
    path = write(tmp_path / 'plain.fits', expected, nest=False)
    with fits.open(path, mode='update') as f:
        del f[1].header['ORDERING']
    np.testing.assert_array_equal(read_healpix_map(path, NSIDE), expected)


def test_fields(tmp_path):
    maps = np.stack([nested_map(k) for k in range(3)])
    for nest in (True, False):
        path = write(tmp_path / f'three-{nest}.fits', maps, nest=nest)
        got = read_healpix_fields(path, NSIDE, 3)
        assert got.shape == (NPIX, 3) and got.dtype == np.float64
        np.testing.assert_array_equal(got, maps.T)
        np.testing.assert_array_equal(read_healpix_fields(path, NSIDE, 2), maps[:2].T)
        np.testing.assert_array_equal(read_healpix_map(path, NSIDE, field=2), maps[2])
    with pytest.raises(ValueError, match=r'three-True\.fits: expected 4 fields \(one per input'):
        read_healpix_fields(tmp_path / 'three-True.fits', NSIDE, 4)


def test_wrong_nside_names_the_file_and_both_sizes(tmp_path):
    path = write(tmp_path / 'm.fits', nested_map(), nest=True)
    with pytest.raises(ValueError, match=r"m\.fits: expected maps of nside 8 \(768 pixels\), "
                                         r"got 192 pixels \(nside 4\)"):
        read_healpix_map(path, 8)
    np.save(tmp_path / 'odd.npy', np.zeros(100))
    with pytest.raises(ValueError, match=r"odd\.npy: expected maps of nside 4 \(192 pixels\), "
                                         r"got 100 pixels$"):
        read_healpix_map(tmp_path / 'odd.npy', NSIDE)
    with pytest.raises(ValueError, match='nside 8'):
        read_healpix_fields(path, 8, 1)


@pytest.mark.parametrize('bad', [np.nan, hp.UNSEEN, np.inf])
def test_missing_pixels_are_refused(tmp_path, bad):
    values = nested_map()
    values[[5, 17]] = bad
    np.save(tmp_path / 'holes.npy', values)
    with pytest.raises(ValueError, match=r"holes\.npy: 2 of 192 pixels are NaN or healpy\.UNSEEN "
                                         r"\(first at NESTED pixel 5\): fill them, or.*"
                                         r"--masked skip"):
        read_healpix_map(tmp_path / 'holes.npy', NSIDE)
    # masked=True returns them as NaN, in NESTED order
    got = read_healpix_map(tmp_path / 'holes.npy', NSIDE, masked=True)
    assert np.nonzero(np.isnan(got))[0].tolist() == [5, 17]
    # in a RING file, the pixel named is the file's (RING) index of the first hole
    ring = write(tmp_path / 'holes.fits', values, nest=False)
    first = int(hp.nest2ring(NSIDE, np.array([5, 17])).min())
    assert first != 5
    with pytest.raises(ValueError, match=rf'2 of 192 pixels .* \(first at RING pixel {first}\)'):
        read_healpix_map(ring, NSIDE)
    with pytest.raises(ValueError, match=rf'2 of 192 pixels .* \(first at RING pixel {first}\)'):
        read_healpix_fields(ring, NSIDE, 1)
    assert np.nonzero(np.isnan(read_healpix_map(ring, NSIDE, masked=True)))[0].tolist() == \
        [5, 17]


def test_missing_garbage_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nope\.fits: no such file'):
        read_healpix_map(tmp_path / 'nope.fits', NSIDE)
    with pytest.raises(FileNotFoundError, match='no such file'):
        read_healpix_fields(tmp_path / 'nope.fits', NSIDE, 2)
    with pytest.raises(FileNotFoundError):
        read_healpix_map(tmp_path, NSIDE)  # a folder is not a file
    (tmp_path / 'junk.fits').write_bytes(b'SIMPLE  = not really a FITS file' * 10)
    with pytest.raises(ValueError, match=r'junk\.fits: cannot read a HEALPix map'):
        read_healpix_map(tmp_path / 'junk.fits', NSIDE)
    with pytest.raises(ValueError, match=r'junk\.fits: cannot read a HEALPix map'):
        read_healpix_fields(tmp_path / 'junk.fits', NSIDE, 1)
    (tmp_path / 'junk.npy').write_bytes(b'\x93NUMPY garbage')
    with pytest.raises(ValueError, match=r'junk\.npy: cannot read a \.npy array'):
        read_healpix_map(tmp_path / 'junk.npy', NSIDE)
    (tmp_path / 'map.txt').write_text('1 2 3')
    with pytest.raises(ValueError, match=r'map\.txt: expected a \.fits or \.npy HEALPix map'):
        read_healpix_map(tmp_path / 'map.txt', NSIDE)
    with pytest.raises(ValueError, match="'path' to be a file path"):
        read_healpix_map(3, NSIDE)


def test_is_fits():
    assert FITS_SUFFIXES == ('.fits', '.fit', '.fz', '.fits.gz')
    assert all(is_fits(f'a/b{s}') for s in FITS_SUFFIXES)
    assert is_fits('MAP.FITS') and not is_fits('map.npy') and not is_fits('fits')
