"""The power-spectrum degeneracy solver (pyg_sphere.simulate.degeneracy),
against closed forms: a power-law model whose degenerate sigma_8 is known
exactly, the sum over shells by hand, Knox errors, the Gaussian beam."""
import math

import numpy as np
import pytest

from pyg_sphere.simulate import CosmologyConfig
from pyg_sphere.simulate import degeneracy as dg

LMAX = 95


def model(omega_m, sigma8):
    """A Limber-like toy: amplitude sigma_8^2.5 Omega_m^1.6, tilt set by Omega_m."""
    ell = np.arange(LMAX + 1, dtype=np.float64)
    return sigma8 ** 2.5 * omega_m ** 1.6 * (ell + 10.0) ** (-1.0 - 2.0 * (omega_m - 0.3))


def test_solved_sigma8_matches_the_closed_form():
    config = CosmologyConfig(nside=32)
    fsky = 1 / 12
    pair = dg.degenerate_sigma8(config, 0.26, fsky, spectrum=model, tol=1e-10)
    # closed form: sum_b w_b log(s^2.5 g_b / c_b) = 0 with g = model(0.26, 1)
    edges = dg.band_edges(LMAX, 16, 2)
    c0 = dg.binned(model(0.31, 0.82), edges)
    err = dg.patch_band_errors(model(0.31, 0.82), edges, fsky)
    w = err ** -2 / np.sum(err ** -2)
    g = dg.binned(model(0.26, 1.0), edges)
    expected = math.exp(-np.sum(w * np.log(g / c0)) / 2.5)
    assert pair.cosmologies[0] == (0.31, 0.82)
    assert pair.cosmologies[1][0] == 0.26
    assert pair.cosmologies[1][1] == pytest.approx(expected, rel=1e-8)
    # the residual ratio: weighted mean log ratio zero, the tilt left per band
    ratio = pair.ratio.ratio
    assert np.sum(w * np.log(ratio)) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(ratio, g * expected ** 2.5 / c0, rtol=1e-8)
    assert ratio[0] < 1.0 < ratio[-1]  # lower Omega_m: a flatter toy spectrum
    assert len(pair.ratio.lines()) == 17 and 0.5 <= pair.ratio.accuracy_bound < 1.0


def test_convergence_spectrum_sums_the_correlated_shell_pairs():
    rng = np.random.default_rng(0)
    n, lmax = 4, 20
    cls = rng.uniform(0.1, 1.0, (n * (n + 1) // 2, lmax + 1))
    w = np.array([0.1, 0.4, 0.3, 0.2])
    spectra = {'cls': cls, 'lensing_weights': w}
    pixwin = np.linspace(1.0, 0.8, lmax + 1)
    expected = np.zeros(lmax + 1)
    k = 0
    for i in range(n):
        for j in range(i + 1):  # GLASS order: row k is C^{i, i - j}
            if j <= 1:
                expected += (1 if j == 0 else 2) * w[i] * w[i - j] * cls[k]
            k += 1
    out = dg.convergence_spectrum(spectra, ncorr=1, smoothing_arcmin=60.0, pixwin=pixwin)
    sigma = math.radians(1.0) / math.sqrt(8 * math.log(2))
    ell = np.arange(lmax + 1)
    np.testing.assert_allclose(out, expected * pixwin ** 2 * np.exp(-ell * (ell + 1) * sigma ** 2),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="'cls'"):
        dg.convergence_spectrum({'cls': cls[:-1], 'lensing_weights': w}, 1)


def test_knox_errors_of_one_band():
    cl = np.ones(51)
    edges = np.array([10, 20, 51])
    err = dg.patch_band_errors(cl, edges, fsky=0.25, noise_cl=1.0)
    modes = sum(2 * l + 1 for l in range(10, 20))
    assert err[0] == pytest.approx(math.sqrt(2 / (0.25 * modes)) * 2.0, rel=1e-12)
    assert err[1] < err[0]
    assert dg.noise_spectrum(2.0, 4) == pytest.approx(4.0 * 4 * math.pi / 192)
