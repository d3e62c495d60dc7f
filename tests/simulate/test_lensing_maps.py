"""Generating the convergence maps of every class into an ArrayCache
(pyg_sphere.simulate.lensing_maps): cache hits, keys, damaged, truncated or
missing entries, interrupted writes, crashes, seeds, parallel workers, and the
real CAMB + GLASS chain (with the simulator faked by ``fakes`` / ``fake_camb``
elsewhere)."""
import functools
import hashlib
import json
import re
import shutil

import healpy as hp
import numpy as np
import pytest

from pyg_sphere.simulate import CosmologyConfig, generate_maps, lensing, load_maps
from pyg_sphere.utils import atomic

NSIDE = 8
NPIX = 12 * NSIDE ** 2
tiny = functools.partial(CosmologyConfig, nside=NSIDE, n_maps=5)  # a tiny setting


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


def data_file(root, stem):
    """The one data file of entry ``stem`` (e.g. 'maps_c1') in the cache ``root``."""
    found = [p for p in root.iterdir() if re.fullmatch(stem + r'-[0-9a-f]{16}\.np[yz]', p.name)]
    assert len(found) == 1, (stem, sorted(p.name for p in root.iterdir()))
    return found[0]


def manifest(root, stem):
    return json.loads(data_file(root, stem).with_suffix('.json').read_text())


def assert_consistent(root):
    """Every manifest describes a complete data file; no temporaries are left.
    Returns the sorted entry stems (name before the key)."""
    stems = []
    for path in root.glob('*.json'):
        entry = json.loads(path.read_text())
        assert entry['file'] in (path.stem + '.npy', path.stem + '.npz'), path.name
        data = (root / entry['file']).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry['sha256'], path.name
        assert len(data) == entry['bytes']
        stems.append(entry['name'])
    assert not [p.name for p in root.iterdir() if '.tmp-' in p.name]
    return sorted(stems)


def test_bad_generate_arguments(tmp_path, fakes):
    with pytest.raises(ValueError, match="'workers'"):
        generate_maps(tiny(), tmp_path, workers=0)
    with pytest.raises(ValueError, match="'config'"):
        generate_maps({'nside': 8}, tmp_path)
    assert fakes[0].calls == [] and fakes[1].calls == []


def test_cache_hit_reuses_files(tmp_path, fakes):
    spectra, maps = fakes
    paths = generate_maps(tiny(), tmp_path)
    assert [p.parent for p in paths] == [tmp_path, tmp_path]
    assert [p.name for p in paths] == [data_file(tmp_path, f'maps_c{c}').name for c in (0, 1)]
    assert len(spectra.calls) == 2 and len(maps.calls) == 10
    before = mtimes(tmp_path)
    assert generate_maps(tiny(), tmp_path) == paths
    assert len(spectra.calls) == 2 and len(maps.calls) == 10
    assert mtimes(tmp_path) == before
    stored = np.load(paths[1])
    assert stored.dtype == np.float32 and stored.shape == (5, NPIX)
    # load_maps stacks the same files, without simulating again
    np.testing.assert_array_equal(load_maps(tiny(), tmp_path)[1], stored)
    assert len(maps.calls) == 10


def test_default_root_is_the_cosmology_cache(private_cache, fakes):
    paths = generate_maps(tiny(n_maps=1))
    assert {p.parent for p in paths} == {private_cache / 'cosmology' / 'raw'}


def test_manifest_records_parameters_seeds_versions_checksums(tmp_path, fakes):
    config = tiny(seed=7)
    generate_maps(config, tmp_path)
    m = manifest(tmp_path, 'maps_c1')
    assert m['name'] == 'maps_c1' and m['file'] == data_file(tmp_path, 'maps_c1').name
    assert m['params']['label'] == 1 and m['params']['seed'] == 7
    assert m['params']['cosmology'] == [0.26, 0.9002557]
    assert m['info']['config'] == config.to_dict()
    assert set(m['info']['versions']) >= {'glass', 'camb', 'numpy', 'healpy'}
    assert m['info']['seeds']['maps'][3] == lensing.map_seed(7, 1, 3)
    assert assert_consistent(tmp_path) == ['maps_c0', 'maps_c1', 'spectra_c0', 'spectra_c1']
    # The seeds in the manifest are the ones the maps were made with.
    assert fakes[1].calls[-1][-1] == m['info']['seeds']['maps'][4]
    assert [call[-1] for call in fakes[1].calls[5:]] == m['info']['seeds']['maps']
    # the spectra are keyed by physics alone (no seed, no n_maps)
    s = manifest(tmp_path, 'spectra_c0')['params']
    assert 'seed' not in s and 'n_maps' not in s and s['cosmology'] == [0.31, 0.82]


def test_changed_parameter_makes_new_entries_beside_the_old(tmp_path, fakes):
    spectra, maps = fakes
    first_paths = generate_maps(tiny(), tmp_path)
    first = np.load(first_paths[0])
    # A map-only parameter: new maps, the CAMB spectra are reused.
    seeded = generate_maps(tiny(seed=1), tmp_path)
    assert len(spectra.calls) == 2 and len(maps.calls) == 20
    assert seeded[0] != first_paths[0]
    assert not np.array_equal(np.load(seeded[0]), first)
    np.testing.assert_array_equal(np.load(first_paths[0]), first)  # not overwritten
    # A physical parameter: everything is recomputed.
    generate_maps(tiny(seed=1, h=0.68), tmp_path)
    assert len(spectra.calls) == 4 and len(maps.calls) == 30
    # A changed cosmology of class 1 only recomputes class 1.
    generate_maps(tiny(seed=1, h=0.68, cosmologies=((0.31, 0.82), (0.25, 0.95))), tmp_path)
    assert [call[1] for call in spectra.calls[4:]] == [1]
    assert len(maps.calls) == 35
    # Back to the first config: a cache hit on the first files.
    assert generate_maps(tiny(), tmp_path) == first_paths
    assert len(spectra.calls) == 5 and len(maps.calls) == 35
    np.testing.assert_array_equal(np.load(first_paths[0]), first)
    # side by side: the maps of 3 (class 0) and 4 (class 1) settings, the
    # spectra of 2 and 3 physics
    assert assert_consistent(tmp_path) == (['maps_c0'] * 3 + ['maps_c1'] * 4
                                           + ['spectra_c0'] * 2 + ['spectra_c1'] * 3)


def damage(path, how):
    good = path.read_bytes()
    if how == 'flipped':  # flip bytes, keep the size
        bad = bytearray(good)
        for k in range(len(bad) - 40, len(bad) - 8):
            bad[k] ^= 0xFF
        path.write_bytes(bytes(bad))
    elif how == 'truncated':
        path.write_bytes(good[:len(good) // 2])
    elif how == 'missing':
        path.unlink()
    elif how == 'garbage manifest':
        path.with_suffix('.json').write_text('{"params": ')
    return good


@pytest.mark.parametrize('how', ['flipped', 'truncated', 'missing', 'garbage manifest'])
@pytest.mark.parametrize('stem', ['maps_c1', 'spectra_c0'])
def test_damaged_entry_is_detected_and_regenerated(tmp_path, fakes, stem, how):
    spectra, maps = fakes
    generate_maps(tiny(), tmp_path)
    path = data_file(tmp_path, stem)
    good = damage(path, how)
    if stem.startswith('spectra'):
        # the spectra are only read to make maps: damage the maps of class 0 too
        damage(data_file(tmp_path, 'maps_c0'), 'missing')
    n_spectra, n_maps = len(spectra.calls), len(maps.calls)
    generate_maps(tiny(), tmp_path)
    label = int(stem[-1])
    assert {call[-1] for call in maps.calls[n_maps:]} == {
        lensing.map_seed(0, label, i) for i in range(5)}
    assert len(maps.calls) == n_maps + 5
    if stem.startswith('maps'):
        assert len(spectra.calls) == n_spectra
    else:
        assert [call[1] for call in spectra.calls[n_spectra:]] == [0]
    assert path.read_bytes() == good  # same seeds, same fake physics: the same bytes
    assert assert_consistent(tmp_path) == ['maps_c0', 'maps_c1', 'spectra_c0', 'spectra_c1']


def test_valid_maps_do_not_need_their_spectra(tmp_path, fakes):
    generate_maps(tiny(), tmp_path)
    damage(data_file(tmp_path, 'spectra_c1'), 'flipped')
    generate_maps(tiny(), tmp_path)
    assert len(fakes[0].calls) == 2 and len(fakes[1].calls) == 10


def test_every_manifest_unreadable_regenerates_everything(tmp_path, fakes):
    generate_maps(tiny(), tmp_path)
    for path in tmp_path.glob('*.json'):
        path.write_text('{"key": ')
    generate_maps(tiny(), tmp_path)
    assert len(fakes[0].calls) == 4 and len(fakes[1].calls) == 20
    assert len(assert_consistent(tmp_path)) == 4


def test_interrupted_write_leaves_no_half_written_file(tmp_path, fakes, monkeypatch):
    spectra, maps = fakes
    real_save = atomic._write_npy
    writes = []

    def crash_in_second_map_file(f, array, head, body):
        if array.shape != (5, NPIX):
            return real_save(f, array, head, body)
        writes.append(array.shape)
        if len(writes) == 2:  # maps_c1: write half of it, then die
            f.write(b'\x93NUMPY' + b'\0' * 100)
            raise KeyboardInterrupt
        real_save(f, array, head, body)
    monkeypatch.setattr(atomic, '_write_npy', crash_in_second_map_file)
    with pytest.raises(KeyboardInterrupt):
        generate_maps(tiny(), tmp_path)
    assert writes == [(5, NPIX), (5, NPIX)]
    assert not list(tmp_path.glob('maps_c1-*'))
    assert assert_consistent(tmp_path) == ['maps_c0', 'spectra_c0', 'spectra_c1']

    monkeypatch.setattr(atomic, '_write_npy', real_save)
    # a temporary left by a writer killed outright is removed under the lock
    (tmp_path / '.maps_c1-0123456789abcdef.npy.tmp-99-abcd').write_bytes(b'\x93NUMPY')
    generate_maps(tiny(), tmp_path)
    assert len(spectra.calls) == 2  # the spectra written before the crash are kept
    assert len(maps.calls) == 15  # only class 1 is simulated again
    assert assert_consistent(tmp_path) == ['maps_c0', 'maps_c1', 'spectra_c0', 'spectra_c1']


def test_interrupted_rewrite_keeps_old_files_intact(tmp_path, fakes, monkeypatch):
    real_save = atomic._write_npy
    generate_maps(tiny(), tmp_path)
    old_path = data_file(tmp_path, 'maps_c0')
    old = old_path.read_bytes()

    def crash(f, array, head, body):
        f.write(b'garbage')
        raise RuntimeError('disk full')
    monkeypatch.setattr(atomic, '_write_npy', crash)
    # new entries (another seed): the old ones stay whole and valid
    with pytest.raises(RuntimeError, match='disk full'):
        generate_maps(tiny(seed=3), tmp_path)
    assert old_path.read_bytes() == old
    assert assert_consistent(tmp_path) == ['maps_c0', 'maps_c1', 'spectra_c0', 'spectra_c1']
    # the same entry rewritten (its manifest is unreadable): the old bytes stay
    old_path.with_suffix('.json').write_text('not json')
    with pytest.raises(RuntimeError, match='disk full'):
        generate_maps(tiny(), tmp_path)
    assert old_path.read_bytes() == old
    monkeypatch.setattr(atomic, '_write_npy', real_save)
    n_maps = len(fakes[1].calls)
    generate_maps(tiny(), tmp_path)
    assert len(fakes[1].calls) == n_maps + 5 and old_path.read_bytes() == old


def test_crash_during_simulation_keeps_cache_consistent(tmp_path, fakes, monkeypatch):
    spectra, maps = fakes

    def fail_on_class_1(spec, *args):
        if args[-1] == lensing.map_seed(0, 1, 2):
            raise RuntimeError('worker died')
        return maps(spec, *args)
    monkeypatch.setattr(lensing, 'simulate_map', fail_on_class_1)
    with pytest.raises(RuntimeError, match='worker died'):
        generate_maps(tiny(), tmp_path)
    assert assert_consistent(tmp_path) == ['maps_c0', 'spectra_c0', 'spectra_c1']
    monkeypatch.setattr(lensing, 'simulate_map', maps)
    n_maps = len(maps.calls)
    generate_maps(tiny(), tmp_path)
    assert len(maps.calls) - n_maps == 5 and len(spectra.calls) == 2
    assert {call[-1] for call in maps.calls[n_maps:]} == {
        lensing.map_seed(0, 1, i) for i in range(5)}


def test_maps_are_seeded_and_reproducible(tmp_path, fake_camb, no_download):
    config = tiny(n_maps=3)
    a = load_maps(config, tmp_path / 'a')
    b = load_maps(config, tmp_path / 'b')
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 3, NPIX) and a.dtype == np.float32 and np.isfinite(a).all()
    # map i of class c is the simulation with the seed of (seed, c, i), alone
    spectra = fake_camb.func(config, 1, None)
    one = lensing.simulate_map(spectra, NSIDE, config.lmax, config.ncorr,
                               config.smoothing_arcmin, lensing.map_seed(0, 1, 2))
    np.testing.assert_array_equal(a[1, 2], one)
    flat = a.reshape(6, -1)
    assert len({row.tobytes() for row in flat}) == 6  # all maps differ
    c = load_maps(tiny(n_maps=3, seed=1), tmp_path / 'c')
    assert not np.array_equal(a, c)
    # more maps: the first ones are the same maps (seeds depend on the index only)
    d = load_maps(tiny(n_maps=4), tmp_path / 'd')
    np.testing.assert_array_equal(d[:, :3], a)


@pytest.mark.slow  # ~20 s: two 'spawn' workers import torch
def test_parallel_generation_matches_serial(tmp_path, fake_camb):
    serial, parallel = tmp_path / 'serial', tmp_path / 'parallel'
    generate_maps(tiny(n_maps=4), serial)
    shutil.copytree(serial, parallel)
    for c in (0, 1):
        data_file(parallel, f'maps_c{c}').unlink()
    calls = len(fake_camb.calls)
    # the (fake) spectra come from the cache, the maps from 2 spawned workers
    generate_maps(tiny(n_maps=4), parallel, workers=2)
    assert len(fake_camb.calls) == calls
    for c in (0, 1):
        stem = f'maps_c{c}'
        np.testing.assert_array_equal(np.load(data_file(parallel, stem)),
                                      np.load(data_file(serial, stem)))
        p, s = manifest(parallel, stem), manifest(serial, stem)
        assert p['sha256'] == s['sha256'] and p['params'] == s['params']
        assert p['info']['workers'] == 2 and s['info']['workers'] == 1


@pytest.mark.slow
def test_real_camb_glass_chain(tmp_path, no_download):
    """CAMB + GLASS end to end on a tiny setting (nside 8, 5 shells of 800 Mpc),
    ~15-30 s: sigma_8 normalisation, cache, and the physics sanity check that
    the sigma_8 = 0.91 model (the pair before the degenerate default) has more
    small-scale convergence power."""
    camb = pytest.importorskip('camb')
    pytest.importorskip('glass')
    pytest.importorskip('cosmology.compat.camb')
    config = tiny(n_maps=4, shell_spacing=800.0, cosmologies=((0.31, 0.82), (0.26, 0.91)))
    paths = generate_maps(config, tmp_path, workers=1)
    maps = np.stack([np.load(p) for p in paths])
    assert maps.shape == (2, 4, NPIX) and np.isfinite(maps).all()
    assert 1e-4 < float(maps.std()) < 0.1  # convergence at z = 1: ~1e-2 per pixel
    assert len(assert_consistent(tmp_path)) == 4
    theory = []
    for c, (omega_m, sigma8) in enumerate(config.cosmologies):
        with np.load(data_file(tmp_path, f'spectra_c{c}')) as spec:
            weights, cls = spec['lensing_weights'], spec['cls']
            assert (weights >= 0).all() and weights.sum() > 0
            assert spec['zb'][0] == 0 and spec['zb'][-1] >= config.z_source
            np.testing.assert_allclose(spec['pixwin'], lensing.pixel_window(NSIDE, config.lmax))
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
