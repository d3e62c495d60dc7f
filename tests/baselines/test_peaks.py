"""Peak counts of NESTED patches (pyg_sphere.baselines.peaks), on patches with
planted peaks whose positions and heights are known."""
import numpy as np
import pytest
import torch

from pyg_sphere.baselines.peaks import find_peaks, peak_count_features, smooth_nested
from pyg_sphere.samplings.nested_patch import nested_patch_grid

SIDE = 16
N = SIDE * SIDE


def planted(peaks, background=None):
    """A patch [1, N] (NESTED) that is 0 (or ``background``) except at the grid
    cells ``(x, y) -> height`` of ``peaks``."""
    grid = nested_patch_grid(N)
    img = np.zeros((SIDE, SIDE)) if background is None else background.copy()
    for (x, y), h in peaks.items():
        img[y, x] = h
    x = np.empty(N)
    x[grid.ravel()] = img.ravel()
    return x[None], grid


def test_planted_peaks_are_found_with_their_heights():
    # a smooth dome below every planted peak: its one maximum, at (7, 8), sits
    # next to the plateau below and so is no peak
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    background = -0.01 * ((xx - 7.3) ** 2 + (yy - 8.1) ** 2) - 1.0
    peaks = {(3, 4): 0.5, (10, 2): 2.5, (12, 12): 5.5, (6, 11): -0.5}
    x, grid = planted(peaks, background)
    # a border pixel higher than everything is not a peak (neighbours outside)
    x[0, grid[0, 5]] = 9.0
    # a plateau of two equal pixels: neither is larger than all its neighbours
    x[0, grid[8, 8]] = x[0, grid[8, 9]] = 3.0
    mask = find_peaks(x)
    found = {(int(np.nonzero(grid == i)[1][0]), int(np.nonzero(grid == i)[0][0]))
             for i in np.nonzero(mask[0])[0]}
    assert found == set(peaks)
    # counts by height / sigma: sigma 0.5 -> heights 1, 5, 11, -1 sigma
    edges = [-2.0, 0.0, 2.0, 4.0, 6.0]
    f = peak_count_features(torch.from_numpy(x), 0.5, (0,), edges)
    assert f.tolist() == [[1.0, 1.0, 0.0, 2.0]]  # 11 sigma falls in the last bin


def test_smoothing_scale_finds_coarse_peaks():
    # one coarse pixel (4 NESTED children) raised: a peak at scale 1, of height
    # mean * 2 / sigma (the noise of a 4-pixel mean is sigma / 2)
    x = np.zeros((1, N))
    coarse = nested_patch_grid(N // 4)
    target = coarse[3, 4]                      # coarse cell (4, 3)
    x[0, 4 * target:4 * target + 4] = [1.0, 2.0, 3.0, 2.0]
    assert smooth_nested(x, 1)[0, target] == pytest.approx(2.0)
    f = peak_count_features(x, 1.0, (1,), [0.0, 3.0, 5.0])
    assert f.tolist() == [[0.0, 1.0]]          # 2.0 / (1 / 2) = 4 sigma
    both = peak_count_features(x, 1.0, (0, 1), [0.0, 3.0, 5.0])
    assert both.shape == (1, 4)


def test_peak_arguments_are_checked():
    x = np.zeros((2, N))
    with pytest.raises(ValueError, match="'sigma'"):
        peak_count_features(x, 0.0)
    with pytest.raises(ValueError, match="'edges'"):
        peak_count_features(x, 1.0, edges=[1.0, 0.0])
    with pytest.raises(ValueError, match="'n'"):
        find_peaks(np.zeros((2, 48)))


def test_peaks_of_noise_are_the_pixels_above_their_healpix_neighbours():
    import healpy as hp
    nside = 16  # one base pixel of nside 16: patch 5 of the map
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, nside * nside))
    first = 5 * nside * nside
    mask = find_peaks(x)
    for row, found in zip(x, mask):
        expected = np.zeros_like(found)
        for i in range(nside * nside):
            nb = hp.get_all_neighbours(nside, first + i, nest=True) - first
            if (nb >= 0).all() and (nb < nside * nside).all():
                expected[i] = (row[i] > row[nb]).all()
        np.testing.assert_array_equal(found, expected)
        assert 0 < found.sum() < nside * nside / 4
