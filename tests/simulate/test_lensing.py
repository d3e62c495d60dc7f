"""The two stages of the weak-lensing simulator (pyg_sphere.simulate.lensing):
optional dependencies, per-map seeds, the computed HEALPix pixel window, and
the statistics of GLASS maps (with CAMB faked by ``fake_camb``)."""
import functools

import healpy as hp
import numpy as np
import pytest

from pyg_sphere.simulate import CosmologyConfig, lensing, load_maps

NSIDE = 8
tiny = functools.partial(CosmologyConfig, nside=NSIDE, n_maps=5)  # a tiny setting


def test_missing_optional_dependency_names_package_and_extra(monkeypatch):
    import importlib
    real = importlib.import_module

    def fail(name, *args):
        if name == 'camb':
            raise ImportError('No module named camb')
        return real(name, *args)
    monkeypatch.setattr(importlib, 'import_module', fail)
    with pytest.raises(ImportError, match=r"'camb'.*pyg-sphere\[cosmo\]"):
        lensing.compute_spectra(tiny(), 0, None)


def test_map_seeds_are_distinct_and_depend_on_their_triple_only():
    seeds = {lensing.map_seed(s, c, i) for s in range(3) for c in range(2) for i in range(50)}
    assert len(seeds) == 300 and all(0 <= s < 2 ** 64 for s in seeds)
    assert lensing.map_seed(4, 1, 7) == lensing.map_seed(4, 1, 7)


def test_map_statistics_follow_the_spectra(tmp_path, fake_camb):
    # GLASS lognormal maps: zero mean, variance set by the spectra
    maps = load_maps(tiny(n_maps=4), tmp_path)
    std = maps.std(axis=2).mean(axis=1)
    assert abs(float(maps.mean())) < 0.1 * float(std.mean())
    assert std[1] > std[0]  # sigma_8 = 0.90 > 0.82 in the fake spectra
    assert std[1] / std[0] == pytest.approx(0.9002557 / 0.82, rel=0.15)


def test_pixel_window_closed_forms_and_oracle():
    nside, lmax = 4, 11
    w = lensing.pixel_window(nside, lmax)
    assert w[0] == pytest.approx(1.0, abs=1e-12)
    assert (np.diff(w) < 0).all() and w[-1] > 0.5
    # oracle: power kept by averaging each harmonic over the pixels, through
    # healpy's transforms, with 4**3 and 4**4 sub-pixels per pixel, Richardson-
    # extrapolated (the sub-pixel mean converges as 4**-k)
    npix = 12 * nside ** 2
    levels = []
    for k in (3, 4):
        expected = []
        for ell in range(lmax + 1):
            total = 0.0
            for m in range(ell + 1):
                for value in ([1.0] if m == 0 else [1.0, 1j]):
                    alm = np.zeros(hp.Alm.getsize(lmax), dtype=complex)
                    alm[hp.Alm.getidx(lmax, ell, m)] = value
                    sky = hp.reorder(hp.alm2map(alm, nside << k, lmax=lmax), r2n=True)
                    avg = sky.reshape(npix, -1).mean(axis=1)
                    total += (4 * np.pi / npix) * np.sum(avg ** 2) * (1.0 if m == 0 else 0.5)
            expected.append(total / (2 * ell + 1))
        levels.append(np.array(expected))
    oracle = np.sqrt((4 * levels[1] - levels[0]) / 3)
    np.testing.assert_allclose(w, oracle, rtol=0, atol=2e-4)
    # without extrapolation the error would be ~1e-3 at l = 3 nside - 1
    assert abs(np.sqrt(levels[1][-1]) - oracle[-1]) > 5e-4


def test_pixel_window_face_subsampling_is_accurate():
    full = lensing.pixel_window(16, 47, subdivisions=2, max_pixels_per_face=256)
    sub = lensing.pixel_window(16, 47, subdivisions=2, max_pixels_per_face=64)
    np.testing.assert_allclose(sub, full, rtol=0, atol=1e-3)
    assert not np.array_equal(sub, full)
