"""Shared test helpers: stand-ins for CAMB and GLASS, and a private cache.

Every test runs with ``PYG_SPHERE_CACHE`` pointing at a temporary folder, so
no test reads or writes the user's cache (``~/.cache/pyg_sphere``)."""
import math

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope='session')
def _session_cache(tmp_path_factory):
    """Even session- and module-scoped fixtures never see the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PYG_SPHERE_CACHE', str(tmp_path_factory.mktemp('session_cache')))
        yield


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory):
    """A fresh cache folder per test (datasets and graphs made with their
    default root land here); set in its own context, so a test's
    ``monkeypatch.undo()`` cannot drop it."""
    root = tmp_path_factory.mktemp('cache')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PYG_SPHERE_CACHE', str(root))
        yield root


@pytest.fixture
def cache_small_graphs(monkeypatch):
    """Cache graphs of every size on disk, so that tiny samplings exercise the
    disk path; the in-process pyramid cache is emptied before and after."""
    from pyg_sphere.graph import disk_cache
    from pyg_sphere.transforms import SpherePyramid
    monkeypatch.setattr(disk_cache, 'CACHE_MIN_NODES', 1)
    SpherePyramid.clear_cache()
    yield
    SpherePyramid.clear_cache()


def fake_spectra(config, label, pixwin):
    """Stand-in for CAMB: 3 independent shells whose Gaussian spectra scale
    with sigma_8^2, so the higher-sigma_8 class has more power."""
    _, sigma8 = config.cosmologies[label]
    lmax, n = config.lmax, 3
    ell = np.arange(lmax + 1)
    auto = 1e-3 * sigma8 ** 2 * (ell + 1.0) ** -1.0
    auto[0] = 0.0
    rows = [auto if j == 0 else np.zeros(lmax + 1) for i in range(n) for j in range(i + 1)]
    return {'gls': np.stack(rows), 'gls_present': np.ones(len(rows), dtype=bool),
            'cls': np.stack(rows), 'zb': np.array([0.0, 0.3, 0.6, 0.9]),
            'zeff': np.array([0.15, 0.45, 0.75]),
            'lensing_weights': np.array([0.2, 0.5, 0.3]),
            'pixwin': np.ones(lmax + 1) if pixwin is None else pixwin,
            'omega_m': np.float64(config.cosmologies[label][0]),
            'sigma8': np.float64(sigma8), 'As': np.float64(0.0)}


def fake_map(spectra, nside, lmax, ncorr, smoothing_arcmin, seed):
    """Stand-in for GLASS: white noise of std sigma_8 / 100, seeded."""
    sigma8 = math.sqrt(2e3 * float(spectra['gls'][0, 1]))  # see fake_spectra
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(12 * nside ** 2) * sigma8 / 100).astype(np.float32)


class Counter:
    """A callable that counts (and records) its calls."""
    def __init__(self, func):
        self.func, self.calls = func, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.func(*args)


@pytest.fixture
def fakes(monkeypatch):
    """Fake both stages of the lensing simulator (no CAMB, no GLASS) and
    count the calls: ``(spectra_counter, maps_counter)``."""
    from pyg_sphere.simulate import lensing
    spectra, maps = Counter(fake_spectra), Counter(fake_map)
    monkeypatch.setattr(lensing, 'compute_spectra', spectra)
    monkeypatch.setattr(lensing, 'simulate_map', maps)
    return spectra, maps


@pytest.fixture
def fake_camb(monkeypatch):
    """Fake CAMB only: maps are real GLASS lognormal simulations."""
    pytest.importorskip('glass')
    from pyg_sphere.simulate import lensing
    counter = Counter(fake_spectra)
    monkeypatch.setattr(lensing, 'compute_spectra', counter)
    return counter
