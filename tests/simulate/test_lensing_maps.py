import hashlib
import json
import math
import shutil

import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.datasets import (SPLITS, CosmologyConfig, CosmologyMaps, LinearClassifier,
                                 baseline_accuracies, generate_maps, histogram_edges,
                                 histogram_features, power_spectrum_features, split_maps)
from pyg_sphere.datasets import _cache, _cosmo_sim
from pyg_sphere.datasets.cosmology import _noise

NSIDE = 8
NPIX = 12 * NSIDE ** 2


def tiny(**kwargs):
    kwargs.setdefault('nside', NSIDE)
    kwargs.setdefault('n_maps', 5)
    return CosmologyConfig(**kwargs)


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
    def __init__(self, func):
        self.func, self.calls = func, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.func(*args)


@pytest.fixture
def fakes(monkeypatch):
    """Fake both stages (no CAMB, no GLASS) and count the calls."""
    spectra, maps = Counter(fake_spectra), Counter(fake_map)
    monkeypatch.setattr(_cosmo_sim, 'compute_spectra', spectra)
    monkeypatch.setattr(_cosmo_sim, 'simulate_map', maps)
    return spectra, maps


@pytest.fixture
def fake_camb(monkeypatch):
    """Fake CAMB only: maps are real GLASS lognormal simulations."""
    pytest.importorskip('glass')
    counter = Counter(fake_spectra)
    monkeypatch.setattr(_cosmo_sim, 'compute_spectra', counter)
    return counter


@pytest.fixture
def no_download(monkeypatch):
    """Make any attempt to fetch healpy data files fail loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(hp, 'pixwin', refuse)
    import astropy.utils.data
    monkeypatch.setattr(astropy.utils.data, 'download_file', refuse)


def mtimes(root):
    return {p.name: p.stat().st_mtime_ns for p in root.iterdir() if not p.name.startswith('.')}


def manifest(root):
    return json.loads((root / 'manifest.json').read_text())


def assert_consistent(root):
    """Every file the manifest lists is complete; no temporaries are left."""
    entries = manifest(root)['files']
    for name, entry in entries.items():
        data = (root / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry['sha256'], name
        assert len(data) == entry['bytes']
    assert not [p.name for p in root.iterdir() if '.tmp-' in p.name]
    return entries


# ----------------------------------------------------------------------------
# Configuration and input checks
# ----------------------------------------------------------------------------

def test_config_resolves_lmax_and_is_hashable():
    config = CosmologyConfig(nside=16)
    assert config.lmax == 47
    assert config == CosmologyConfig(nside=16, lmax=47)
    assert hash(config) == hash(CosmologyConfig(nside=16, lmax=47))
    assert config.cosmologies == ((0.31, 0.82), (0.26, 0.91))
    assert json.loads(json.dumps(config.to_dict()))['cosmologies'] == [[0.31, 0.82],
                                                                       [0.26, 0.91]]
    with pytest.raises(Exception):
        config.nside = 8


@pytest.mark.parametrize('kwargs,name', [
    ({'nside': 12}, 'nside'),
    ({'nside': 0}, 'nside'),
    ({'n_maps': 0}, 'n_maps'),
    ({'lmax': 100, 'nside': 8}, 'lmax'),
    ({'omega_b': 0.3}, 'omega_b'),
    ({'cosmologies': ((0.3, 0.8),)}, 'cosmologies'),
    ({'cosmologies': ((0.3, 0.8), (0.3, -0.8))}, 'cosmologies'),
    ({'halofit_version': 'foo'}, 'halofit_version'),
    ({'smoothing_arcmin': -1.0}, 'smoothing_arcmin'),
    ({'shell_spacing': 0.0}, 'shell_spacing'),
    ({'pixel_window': 1}, 'pixel_window'),
])
def test_bad_config(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        CosmologyConfig(**kwargs)


@pytest.mark.parametrize('kwargs,name', [
    ({'noise_std': -0.1}, 'noise_std'),
    ({'noise_std': float('nan')}, 'noise_std'),
    ({'patch_order': 3}, 'patch_order'),
    ({'patch_order': 16}, 'patch_order'),  # 16 does not divide nside = 8
    ({'patch_order': 0}, 'patch_order'),
    ({'split': 'training'}, 'split'),
    ({'split_fractions': (0.5, 0.5, 0.5)}, 'split_fractions'),
    ({'split_fractions': (0.0, 0.5, 0.5)}, 'split_fractions'),
])
def test_bad_dataset_arguments_fail_before_generating(tmp_path, fakes, kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        CosmologyMaps(str(tmp_path), config=tiny(), **kwargs)
    assert fakes[0].calls == [] and fakes[1].calls == []


def test_bad_generate_arguments(tmp_path, fakes):
    with pytest.raises(ValueError, match="'workers'"):
        generate_maps(tiny(), tmp_path, workers=0)
    with pytest.raises(ValueError, match="'config'"):
        generate_maps({'nside': 8}, tmp_path)


def test_missing_optional_dependency_names_package_and_extra(monkeypatch):
    import importlib
    real = importlib.import_module

    def fail(name, *args):
        if name == 'camb':
            raise ImportError('No module named camb')
        return real(name, *args)
    monkeypatch.setattr(importlib, 'import_module', fail)
    with pytest.raises(ImportError, match=r"'camb'.*pyg-sphere\[cosmo\]"):
        _cosmo_sim.compute_spectra(tiny(), 0, None)


# ----------------------------------------------------------------------------
# Cache: reuse, invalidation, corruption, interruption
# ----------------------------------------------------------------------------

def test_cache_hit_reuses_files(tmp_path, fakes):
    spectra, maps = fakes
    paths = generate_maps(tiny(), tmp_path)
    assert [p.name for p in paths] == ['maps_c0.npy', 'maps_c1.npy']
    assert len(spectra.calls) == 2 and len(maps.calls) == 10
    before = mtimes(tmp_path)
    assert generate_maps(tiny(), tmp_path) == paths
    assert len(spectra.calls) == 2 and len(maps.calls) == 10
    assert mtimes(tmp_path) == before
    stored = np.load(paths[1])
    assert stored.dtype == np.float32 and stored.shape == (5, NPIX)


def test_manifest_records_parameters_seeds_versions_checksums(tmp_path, fakes):
    config = tiny(seed=7)
    generate_maps(config, tmp_path)
    m = manifest(tmp_path)
    assert m['complete'] is True
    assert m['config'] == config.to_dict()
    assert set(m['versions']) >= {'glass', 'camb', 'numpy', 'healpy'}
    assert m['seeds']['maps'][1][3] == _cosmo_sim.map_seed(7, 1, 3)
    assert sorted(assert_consistent(tmp_path)) == ['maps_c0.npy', 'maps_c1.npy',
                                                    'spectra_c0.npz', 'spectra_c1.npz']
    # The seeds in the manifest are the ones the maps were made with.
    assert fakes[1].calls[-1][-1] == m['seeds']['maps'][1][4]


def test_changed_parameter_regenerates(tmp_path, fakes):
    spectra, maps = fakes
    generate_maps(tiny(), tmp_path)
    first = np.load(tmp_path / 'maps_c0.npy')
    # A map-only parameter: new maps, the CAMB spectra are reused.
    generate_maps(tiny(seed=1), tmp_path)
    assert len(spectra.calls) == 2 and len(maps.calls) == 20
    assert not np.array_equal(np.load(tmp_path / 'maps_c0.npy'), first)
    assert manifest(tmp_path)['config']['seed'] == 1
    # A physical parameter: everything is recomputed.
    generate_maps(tiny(seed=1, h=0.68), tmp_path)
    assert len(spectra.calls) == 4 and len(maps.calls) == 30
    # A changed cosmology of class 1 only recomputes the spectra of class 1.
    generate_maps(tiny(seed=1, h=0.68, cosmologies=((0.31, 0.82), (0.25, 0.95))), tmp_path)
    assert [call[1] for call in spectra.calls[4:]] == [1]
    # Back to the first config: nothing is reused wrongly, the maps are the same.
    generate_maps(tiny(), tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / 'maps_c0.npy'), first)
    assert_consistent(tmp_path)


@pytest.mark.parametrize('name', ['maps_c1.npy', 'spectra_c0.npz'])
def test_corrupted_file_is_detected_and_regenerated(tmp_path, fakes, name):
    spectra, maps = fakes
    generate_maps(tiny(), tmp_path)
    good = (tmp_path / name).read_bytes()
    bad = bytearray(good)
    for k in range(len(bad) - 40, len(bad) - 8):  # flip bytes, keep the size
        bad[k] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(bad))
    n_spectra, n_maps = len(spectra.calls), len(maps.calls)
    generate_maps(tiny(), tmp_path)
    if name.startswith('maps'):
        assert len(spectra.calls) == n_spectra and len(maps.calls) == n_maps + 5
        assert {call[-1] for call in maps.calls[n_maps:]} == {
            _cosmo_sim.map_seed(0, 1, i) for i in range(5)}
    else:
        assert [call[1] for call in spectra.calls[n_spectra:]] == [0]
        assert len(maps.calls) == n_maps
    assert (tmp_path / name).read_bytes() == good
    assert_consistent(tmp_path)


def test_missing_file_is_regenerated(tmp_path, fakes):
    generate_maps(tiny(), tmp_path)
    good = (tmp_path / 'maps_c0.npy').read_bytes()
    (tmp_path / 'maps_c0.npy').unlink()
    generate_maps(tiny(), tmp_path)
    assert len(fakes[1].calls) == 15
    assert (tmp_path / 'maps_c0.npy').read_bytes() == good


def test_unreadable_manifest_regenerates_everything(tmp_path, fakes):
    generate_maps(tiny(), tmp_path)
    (tmp_path / 'manifest.json').write_text('{"key": ')
    generate_maps(tiny(), tmp_path)
    assert len(fakes[0].calls) == 4 and len(fakes[1].calls) == 20
    assert_consistent(tmp_path)


def test_interrupted_write_leaves_no_half_written_file(tmp_path, fakes, monkeypatch):
    spectra, maps = fakes
    real_save = np.save
    writes = []

    def crash_in_second_map_file(f, array, **kwargs):
        writes.append(array.shape)
        if len(writes) == 2:  # maps_c1.npy: write half of it, then die
            f.write(b'\x93NUMPY' + b'\0' * 100)
            raise KeyboardInterrupt
        real_save(f, array, **kwargs)
    monkeypatch.setattr(_cache.np, 'save', crash_in_second_map_file)
    with pytest.raises(KeyboardInterrupt):
        generate_maps(tiny(), tmp_path)
    assert not (tmp_path / 'maps_c1.npy').exists()
    entries = assert_consistent(tmp_path)
    assert sorted(entries) == ['maps_c0.npy', 'spectra_c0.npz', 'spectra_c1.npz']
    assert manifest(tmp_path)['complete'] is False

    monkeypatch.setattr(_cache.np, 'save', real_save)
    generate_maps(tiny(), tmp_path)
    assert len(spectra.calls) == 2  # the spectra written before the crash are kept
    assert len(maps.calls) == 15  # only class 1 is simulated again
    assert len(assert_consistent(tmp_path)) == 4


def test_interrupted_overwrite_keeps_old_file_intact(tmp_path, fakes, monkeypatch):
    generate_maps(tiny(), tmp_path)
    old = (tmp_path / 'maps_c0.npy').read_bytes()

    def crash(f, array, **kwargs):
        f.write(b'garbage')
        raise RuntimeError('disk full')
    monkeypatch.setattr(_cache.np, 'save', crash)
    with pytest.raises(RuntimeError, match='disk full'):
        generate_maps(tiny(seed=3), tmp_path)
    # the old file is whole, and not listed for the new key
    assert (tmp_path / 'maps_c0.npy').read_bytes() == old
    assert 'maps_c0.npy' not in assert_consistent(tmp_path)


def test_crash_during_simulation_keeps_cache_consistent(tmp_path, fakes, monkeypatch):
    spectra, maps = fakes

    def fail_on_class_1(spec, *args):
        if args[-1] == _cosmo_sim.map_seed(0, 1, 2):
            raise RuntimeError('worker died')
        return fake_map(spec, *args)
    monkeypatch.setattr(_cosmo_sim, 'simulate_map', fail_on_class_1)
    with pytest.raises(RuntimeError, match='worker died'):
        generate_maps(tiny(), tmp_path)
    assert sorted(assert_consistent(tmp_path)) == ['maps_c0.npy', 'spectra_c0.npz',
                                                    'spectra_c1.npz']
    monkeypatch.setattr(_cosmo_sim, 'simulate_map', maps)
    generate_maps(tiny(), tmp_path)
    assert len(maps.calls) == 5 and len(spectra.calls) == 2


def test_atomic_write_and_stale_temporaries(tmp_path):
    target = tmp_path / 'a.bin'

    def half(f):
        f.write(b'half')
        raise ValueError('stop')
    with pytest.raises(ValueError):
        _cache.atomic_write(target, half)
    assert list(tmp_path.iterdir()) == []
    _cache.atomic_write(target, lambda f: f.write(b'whole'))
    with pytest.raises(ValueError):
        _cache.atomic_write(target, half)
    assert target.read_bytes() == b'whole'
    (tmp_path / '.a.bin.tmp-123-abc').write_bytes(b'left by a killed process')
    _cache.remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ['a.bin']


# ----------------------------------------------------------------------------
# Maps: seeding, parallel generation, physics
# ----------------------------------------------------------------------------

def test_maps_are_seeded_and_reproducible(tmp_path, fake_camb, no_download):
    config = tiny(n_maps=3)
    a = np.stack([np.load(p) for p in generate_maps(config, tmp_path / 'a')])
    b = np.stack([np.load(p) for p in generate_maps(config, tmp_path / 'b')])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 3, NPIX) and a.dtype == np.float32 and np.isfinite(a).all()
    # map i of class c is the simulation with the seed of (seed, c, i), alone
    spectra = fake_spectra(config, 1, None)
    one = _cosmo_sim.simulate_map(spectra, NSIDE, config.lmax, config.ncorr,
                                  config.smoothing_arcmin, _cosmo_sim.map_seed(0, 1, 2))
    np.testing.assert_array_equal(a[1, 2], one)
    flat = a.reshape(6, -1)
    assert len({row.tobytes() for row in flat}) == 6  # all maps differ
    c = np.stack([np.load(p) for p in generate_maps(tiny(n_maps=3, seed=1), tmp_path / 'c')])
    assert not np.array_equal(a, c)
    # more maps: the first ones are the same maps (seeds depend on the index only)
    d = np.stack([np.load(p) for p in generate_maps(tiny(n_maps=4), tmp_path / 'd')])
    np.testing.assert_array_equal(d[:, :3], a)


@pytest.mark.slow  # ~20 s: two 'spawn' workers import torch
def test_parallel_generation_matches_serial(tmp_path, fake_camb):
    serial, parallel = tmp_path / 'serial', tmp_path / 'parallel'
    generate_maps(tiny(n_maps=4), serial)
    shutil.copytree(serial, parallel)
    for name in ('maps_c0.npy', 'maps_c1.npy'):
        (parallel / name).unlink()
    calls = len(fake_camb.calls)
    # the (fake) spectra come from the cache, the maps from 2 spawned workers
    generate_maps(tiny(n_maps=4), parallel, workers=2)
    assert len(fake_camb.calls) == calls
    for name in ('maps_c0.npy', 'maps_c1.npy'):
        np.testing.assert_array_equal(np.load(parallel / name), np.load(serial / name))
    assert manifest(parallel)['files'] == manifest(serial)['files']


def test_map_statistics_follow_the_spectra(tmp_path, fake_camb):
    # GLASS lognormal maps: zero mean, variance set by the spectra
    maps = np.stack([np.load(p) for p in generate_maps(tiny(n_maps=4), tmp_path)])
    std = maps.std(axis=2).mean(axis=1)
    assert abs(float(maps.mean())) < 0.1 * float(std.mean())
    assert std[1] > std[0]  # sigma_8 = 0.91 > 0.82 in the fake spectra
    assert std[1] / std[0] == pytest.approx(0.91 / 0.82, rel=0.15)


def test_pixel_window_closed_forms_and_oracle():
    nside, lmax = 4, 11
    w = _cosmo_sim.pixel_window(nside, lmax)
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
    full = _cosmo_sim.pixel_window(16, 47, subdivisions=2, max_pixels_per_face=256)
    sub = _cosmo_sim.pixel_window(16, 47, subdivisions=2, max_pixels_per_face=64)
    np.testing.assert_allclose(sub, full, rtol=0, atol=1e-3)
    assert not np.array_equal(sub, full)


# ----------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------

def make(tmp_path, split='train', **kwargs):
    kwargs.setdefault('config', tiny())
    kwargs.setdefault('noise_std', 0.0)
    kwargs.setdefault('log', False)
    return CosmologyMaps(str(tmp_path), split, **kwargs)


def raw_maps(tmp_path):
    return np.stack([np.load(tmp_path / 'raw' / f'maps_c{c}.npy') for c in range(2)])


def test_split_is_disjoint_deterministic_and_by_map(tmp_path, fakes):
    parts = split_maps(10, seed=3)
    assert [len(parts[s]) for s in SPLITS] == [6, 2, 2]
    assert sorted(np.concatenate([parts[s] for s in SPLITS]).tolist()) == list(range(10))
    again = split_maps(10, seed=3)
    assert all(np.array_equal(parts[s], again[s]) for s in SPLITS)
    assert any(not np.array_equal(parts[s], split_maps(10, seed=4)[s]) for s in SPLITS)

    sets = {}
    for split in SPLITS:
        ds = make(tmp_path, split, patch_order=1)
        sets[split] = {(int(c), int(i)) for c, i in zip(ds.labels, ds.map_indices)}
        assert {c for c, _ in sets[split]} == {0, 1}
        # every patch of a map is in the split of the map
        assert len(ds) == len(sets[split]) * 12
    assert not sets['train'] & sets['val'] and not sets['train'] & sets['test']
    assert not sets['val'] & sets['test']
    assert len(sets['train'] | sets['val'] | sets['test']) == 10
    assert len(fakes[1].calls) == 10  # generated once for the three splits


def test_full_sky_samples(tmp_path, fakes):
    ds = make(tmp_path, 'test', patch_order=None)
    assert ds.num_patches == 1 and ds.patch_size == NPIX
    data = ds[0]
    assert data.x.shape == (NPIX, 1) and data.x.dtype == torch.float32
    assert data.y.tolist() == [0]
    assert 'ipix' not in data
    assert data.sampling.name == 'healpix' and data.sampling['nside'] == NSIDE
    assert data.sampling['nest'] is True
    expected = np.stack(hp.pix2vec(NSIDE, np.arange(NPIX), nest=True), axis=1)
    np.testing.assert_allclose(data.pos.double().numpy(), expected, atol=1e-6)
    raw = raw_maps(tmp_path)
    np.testing.assert_array_equal(data.x[:, 0].numpy(), raw[0, int(data.map_index)])
    assert repr(ds) == f'CosmologyMaps({len(ds)})' and len(ds) == 2  # 1 test map per class


def test_patches_are_contiguous_nested_ranges(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=2)
    assert ds.num_patches == 48 and ds.patch_size == 16
    raw = raw_maps(tmp_path)
    for idx in (0, 1, 47, 50, len(ds) - 1):
        data = ds[idx]
        p = int(data.patch)
        assert data.ipix.tolist() == list(range(16 * p, 16 * (p + 1)))
        expected = np.stack(hp.pix2vec(NSIDE, data.ipix.numpy(), nest=True), axis=1)
        np.testing.assert_allclose(data.pos.double().numpy(), expected, atol=1e-6)
        np.testing.assert_array_equal(data.x[:, 0].numpy(),
                                      raw[int(data.y), int(data.map_index), 16 * p:16 * (p + 1)])
    # the 48 patches of one map tile the sphere: together, all the pixels once
    first = torch.cat([ds[i].ipix for i in range(48)])
    assert sorted(first.tolist()) == list(range(NPIX))
    # order 1 = the 12 base pixels
    base = make(tmp_path, 'train', patch_order=1)
    assert base.num_patches == 12 and base[3].ipix.tolist() == list(range(3 * 64, 4 * 64))
    batch = Batch.from_data_list([ds[0], ds[1]])
    assert batch.x.shape == (32, 1) and batch.y.tolist() == [int(ds[0].y), int(ds[1].y)]


def test_noise_is_deterministic_per_sample(tmp_path, fakes):
    clean = make(tmp_path, 'test', patch_order=1)
    noisy = make(tmp_path, 'test', patch_order=1, noise_std=0.5)
    again = make(tmp_path, 'test', patch_order=1, noise_std=0.5)
    other = make(tmp_path, 'test', patch_order=1, noise_std=0.5, noise_seed=1)
    n = len(clean)
    for i in (0, 5, n - 1):
        assert torch.equal(noisy[i].x, noisy[i].x)  # reading twice: same noise
        assert torch.equal(noisy[i].x, again[i].x)  # a fresh dataset: same noise
        assert not torch.equal(noisy[i].x, other[i].x)
        assert not torch.equal(noisy[i].x, clean[i].x)
    noise = torch.stack([noisy[i].x - clean[i].x for i in range(n)])
    assert noise.std().item() == pytest.approx(0.5, rel=0.05)
    assert abs(noise.mean().item()) < 0.02
    assert not torch.equal(noise[0], noise[1])  # each sample its own noise
    # the noise of a sample does not depend on the split fractions or order
    shuffled = noisy[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    for k in range(3):
        d = shuffled[k]
        j = [i for i in range(n) if int(noisy[i].map_index) == int(d.map_index)
             and int(noisy[i].y) == int(d.y) and int(noisy[i].patch) == int(d.patch)]
        assert torch.equal(d.x, noisy[j[0]].x)
    data = noisy[2]
    expected = _noise(0, int(data.y), int(data.map_index), int(data.patch), 64, 0.5)
    np.testing.assert_allclose((data.x - clean[2].x)[:, 0].numpy(), expected, atol=1e-6)


def test_dense_tensors_match_samples(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=1, noise_std=0.1)
    X, y = ds.tensors()
    assert X.shape == (len(ds), 64, 1) and X.dtype == torch.float32
    assert y.shape == (len(ds),) and y.dtype == torch.long
    for i in (0, 7, len(ds) - 1):
        assert torch.equal(X[i], ds[i].x) and int(y[i]) == int(ds[i].y)
    sub = ds[torch.tensor([5, 2])]
    Xs, ys = sub.tensors()
    assert torch.equal(Xs, X[[5, 2]]) and torch.equal(ys, y[[5, 2]])
    assert torch.equal(sub.patches, ds.patches[[5, 2]])


class AddDegree:
    """A pre_transform that needs the pixel positions."""
    def __call__(self, data):
        data = data.clone()
        data.z_mean = data.pos[:, 2].mean().view(1)
        return data

    def __repr__(self):
        return 'AddDegree()'


def test_pre_transform_sees_clean_samples_with_pixels(tmp_path, fakes):
    ds = make(tmp_path, 'val', patch_order=1, noise_std=0.1, pre_transform=AddDegree())
    plain = make(tmp_path / 'other', 'val', patch_order=1, noise_std=0.1)
    for i in (0, len(ds) - 1):
        assert torch.equal(ds[i].x, plain[i].x)
        assert ds[i].z_mean.item() == pytest.approx(ds[i].pos[:, 2].mean().item(), abs=1e-6)
    X, _ = ds.tensors()
    assert torch.equal(X, plain.tensors()[0])


def test_processed_split_follows_the_raw_maps(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=None)
    x0 = ds[0].x.clone()
    ds2 = make(tmp_path, 'train', patch_order=None, config=tiny(seed=5))
    assert not torch.equal(ds2[0].x, x0)
    back = make(tmp_path, 'train', patch_order=None)
    assert torch.equal(back[0].x, x0)


# ----------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------

def test_power_spectrum_features_of_white_noise():
    # white noise of std s: C_l = 4 pi s^2 / npix at every l; 3 bins of l,
    # averaged over 8 maps: ~2000 modes per bin, ~3 % scatter (0.013 dex)
    rng = np.random.default_rng(0)
    sky = rng.standard_normal((8, 12 * 16 ** 2)) * 2.0
    expected = math.log10(4 * math.pi * 4.0 / sky.shape[1])
    full = power_spectrum_features(torch.from_numpy(sky), 16, n_bins=3)
    assert full.shape == (8, 3) and full.dtype == torch.float32
    np.testing.assert_allclose(full.mean(0).numpy(), expected, atol=0.04)
    # pseudo-C_l of a patch (1/4 of the sky), divided by f_sky: unbiased for
    # white noise (without the division it would be off by log10(4) = 0.6)
    patch = power_spectrum_features(torch.from_numpy(sky[:, :768]).unsqueeze(-1), 16,
                                    patches=torch.zeros(8, dtype=torch.long), n_bins=3)
    np.testing.assert_allclose(patch.mean(0).numpy(), expected, atol=0.04)
    # the patch index places the pixels: patch 1 of the same values, same power
    moved = power_spectrum_features(torch.from_numpy(sky[:, :768]), 16,
                                    patches=torch.ones(8, dtype=torch.long), n_bins=3)
    np.testing.assert_allclose(moved.mean(0).numpy(), expected, atol=0.04)
    with pytest.raises(ValueError, match="'patches'"):
        power_spectrum_features(torch.from_numpy(sky[:, :768]), 16)


def test_histogram_features():
    x = torch.tensor([[0.0, 0.1, 0.9, 5.0], [-3.0, 0.5, 0.5, 0.5]])
    edges = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    h = histogram_features(x, edges)
    assert h.tolist() == [[0.5, 0.0, 0.0, 0.5], [0.25, 0.0, 0.75, 0.0]]
    e = histogram_edges(torch.linspace(0, 1, 10001).view(1, -1), n_bins=4, tail=0.1)
    np.testing.assert_allclose(e.numpy(), [0.1, 0.3, 0.5, 0.7, 0.9], atol=1e-9)


def test_linear_classifier_separates_and_fails_honestly():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(200, 3, generator=g)
    y = (f[:, 0] + 0.5 * f[:, 1] > 0).long()
    clf = LinearClassifier().fit(f[:100], y[:100])
    assert clf.score(f[100:], y[100:]) > 0.95
    noise_labels = torch.randint(0, 2, (200,), generator=g)
    chance = LinearClassifier().fit(f[:100], noise_labels[:100]).score(f[100:],
                                                                       noise_labels[100:])
    assert chance < 0.7


def test_baselines_tell_apart_different_amplitudes(tmp_path, fakes):
    # fake maps: white noise of std sigma_8 / 100 -> both statistics see it
    config = tiny(n_maps=10)
    train = make(tmp_path, 'train', config=config, patch_order=None)
    test = make(tmp_path, 'test', config=config, patch_order=None)
    acc = baseline_accuracies(train, test, n_ps_bins=4, n_hist_bins=8)
    assert acc == {'power_spectrum': 1.0, 'histogram': 1.0}
    # drowned in noise 100x the signal, they fall towards chance
    train = make(tmp_path, 'train', config=config, patch_order=None, noise_std=1.0)
    test = make(tmp_path, 'test', config=config, patch_order=None, noise_std=1.0)
    acc = baseline_accuracies(train, test, n_ps_bins=4, n_hist_bins=8)
    assert acc['power_spectrum'] < 0.9 and acc['histogram'] < 0.9


# ----------------------------------------------------------------------------
# The real CAMB + GLASS chain, on a tiny setting
# ----------------------------------------------------------------------------

@pytest.mark.slow
def test_real_camb_glass_chain(tmp_path, no_download):
    """CAMB + GLASS end to end on a tiny setting (nside 8, 5 shells of 800 Mpc),
    ~15-30 s: sigma_8 normalisation, cache, and the physics sanity check that
    the sigma_8 = 0.91 model has more small-scale convergence power."""
    camb = pytest.importorskip('camb')
    pytest.importorskip('glass')
    pytest.importorskip('cosmology.compat.camb')
    config = tiny(n_maps=4, shell_spacing=800.0)
    paths = generate_maps(config, tmp_path, workers=1)
    maps = np.stack([np.load(p) for p in paths])
    assert maps.shape == (2, 4, NPIX) and np.isfinite(maps).all()
    assert 1e-4 < float(maps.std()) < 0.1  # convergence at z = 1: ~1e-2 per pixel
    assert_consistent(tmp_path)
    theory = []
    for c, (omega_m, sigma8) in enumerate(config.cosmologies):
        with np.load(tmp_path / f'spectra_c{c}.npz') as spec:
            weights, cls = spec['lensing_weights'], spec['cls']
            assert (weights >= 0).all() and weights.sum() > 0
            assert spec['zb'][0] == 0 and spec['zb'][-1] >= config.z_source
            np.testing.assert_allclose(spec['pixwin'],
                                       _cosmo_sim.pixel_window(NSIDE, config.lmax))
            n = len(weights)
            assert (cls[[i * (i + 1) // 2 for i in range(n)], 2:] > 0).all()  # autos
            # the convergence spectrum: sum_ij w_i w_j C_ij
            theory.append(sum((1 if j == 0 else 2) * weights[i] * weights[i - j]
                              * cls[i * (i + 1) // 2 + j] for i in range(n) for j in range(i + 1)))
            # the A_s found gives the requested linear sigma_8
            pars = camb.set_params(H0=70.0, ombh2=0.05 * 0.49, omch2=(omega_m - 0.05) * 0.49,
                                   mnu=0.0, num_massive_neutrinos=0, ns=0.96,
                                   As=float(spec['As']), WantTransfer=True)
            pars.set_matter_power(redshifts=[0.0], kmax=2.0)
            assert camb.get_results(pars).get_sigma8_0() == pytest.approx(sigma8, rel=1e-4)
    high = slice(NSIDE, config.lmax + 1)
    assert (theory[1][high] > theory[0][high]).all()
    power = np.array([[hp.anafast(hp.reorder(m, n2r=True), lmax=config.lmax)[high].mean()
                       for m in maps[c]] for c in range(2)])
    assert power[1].mean() > 1.1 * power[0].mean()
    # a cache hit on the real chain: nothing is recomputed
    before = mtimes(tmp_path)
    generate_maps(config, tmp_path)
    assert mtimes(tmp_path) == before
