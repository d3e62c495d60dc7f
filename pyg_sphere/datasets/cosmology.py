r"""Weak-lensing convergence maps of two cosmologies, the DeepSphere cosmology
task (`Perraudin et al. 2019 <https://arxiv.org/abs/1810.12186>`_): tell
:math:`(\Omega_m, \sigma_8) = (0.31, 0.82)` from :math:`(0.26, 0.91)`, two
models chosen so that their convergence power spectra are nearly the same.

Maps are simulated on first use with `GLASS <https://glass.readthedocs.io>`_
(lognormal matter shells, multi-plane convergence) and
`CAMB <https://camb.info>`_ (shell power spectra), then cached on disk with a
manifest of parameters, seeds, package versions and checksums.
Needs ``pip install pyg-sphere[cosmo]``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import os.path as osp
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from ._progress import progress as _progress
from .._validation import check_choice, check_int, is_power_of_two
from ..samplings import healpix
from . import _cache, _cosmo_sim

#: The two models of the paper, (Omega_m, sigma_8); class label = position.
COSMOLOGIES: Tuple[Tuple[float, float], ...] = ((0.31, 0.82), (0.26, 0.91))
#: Dataset splits.
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: Halofit versions accepted (CAMB's names).
HALOFIT_VERSIONS: Tuple[str, ...] = ('takahashi', 'original', 'mead2020')
#: Default fractions of maps in the train / val / test splits.
SPLIT_FRACTIONS: Tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Default partial-sky patch order o (12 o^2 NESTED patches per map).
DEFAULT_PATCH_ORDER: Optional[int] = 1
#: Default std of the white noise added to the convergence maps: about the
#: pixel std of the default maps (0.0042), i.e. shape noise 0.26 for ~1.2
#: galaxies per arcmin^2 at nside 64.
DEFAULT_NOISE_STD: float = 0.004

_FORMAT = 1
# Packages whose version enters the cache key (they decide the maps' values).
_KEYED_PACKAGES = ('glass', 'camb')
_SPLIT_TAG = 0x5EED5
_NOISE_TAG = 0x401CE


def _check_real(name: str, value: Any, minimum: float | None = None,
                strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Expected '{name}' to be a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Expected '{name}' to be finite (got {value})")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = '>' if strict else '>='
        raise ValueError(f"Expected '{name}' to be {op} {minimum} (got {value})")
    return value


def default_root() -> Path:
    """Where generated data goes by default: ``$PYG_SPHERE_CACHE/cosmology``,
    else ``$XDG_CACHE_HOME/pyg_sphere/cosmology``, else
    ``~/.cache/pyg_sphere/cosmology``."""
    base = os.environ.get('PYG_SPHERE_CACHE')
    if base:
        return Path(base).expanduser() / 'cosmology'
    xdg = os.environ.get('XDG_CACHE_HOME') or osp.join('~', '.cache')
    return Path(xdg).expanduser() / 'pyg_sphere' / 'cosmology'


@dataclasses.dataclass(frozen=True)
class CosmologyConfig:
    r"""Every parameter of the simulated convergence maps (hashable, frozen).

    Flat :math:`\Lambda`CDM with massless neutrinos; the matter power is CAMB's
    with non-linear halofit and :math:`A_s` tuned so that the linear
    :math:`\sigma_8(z=0)` is the requested one. Matter is simulated in
    lognormal shells of ``shell_spacing`` comoving Mpc (``ncorr`` neighbouring
    shells correlated), lensed onto sources with a Gaussian redshift
    distribution, and the convergence maps are smoothed by a Gaussian beam.

    Args:
        cosmologies (tuple of (float, float), optional): one
            :math:`(\Omega_m, \sigma_8)` per class. (default: :obj:`COSMOLOGIES`)
        n_maps (int, optional): maps per class. (default: :obj:`128`)
        seed (int, optional): master seed; map ``i`` of class ``c`` uses a seed
            derived from ``(seed, c, i)``. (default: :obj:`0`)
        nside (int, optional): HEALPix resolution, a power of two (maps are
            NESTED). (default: :obj:`64`)
        lmax (int, optional): band limit of the spectra and maps.
            (default: :obj:`3 * nside - 1`)
        h (float, optional): :math:`H_0 / (100` km/s/Mpc). (default: :obj:`0.7`)
        omega_b (float, optional): baryon density :math:`\Omega_b`.
            (default: :obj:`0.05`)
        n_s (float, optional): scalar spectral index. (default: :obj:`0.96`)
        halofit_version (str, optional): CAMB's halofit, one of
            :obj:`HALOFIT_VERSIONS`. (default: :obj:`'takahashi'`)
        shell_spacing (float, optional): comoving distance between shell edges,
            in Mpc. (default: :obj:`200.0`)
        ncorr (int, optional): number of neighbouring shells correlated.
            (default: :obj:`3`)
        z_source (float, optional): mean source redshift. (default: :obj:`1.0`)
        sigma_z (float, optional): std of the Gaussian source n(z).
            (default: :obj:`0.05`)
        smoothing_arcmin (float, optional): FWHM of the Gaussian smoothing in
            arcmin, 0 for none. (default: :obj:`3.0`)
        limber_lmin (int, optional): CAMB uses the Limber approximation for the
            shell spectra from this multipole on (:obj:`None`: never; ~4x
            slower). (default: :obj:`100`)
        pixel_window (bool, optional): apply the HEALPix pixel window to the
            shell spectra (computed, not downloaded). (default: :obj:`True`)

    Example:
        >>> config = CosmologyConfig(nside=32, n_maps=8)
        >>> config.lmax
        95
    """
    cosmologies: Tuple[Tuple[float, float], ...] = COSMOLOGIES
    n_maps: int = 128
    seed: int = 0
    nside: int = 64
    lmax: Optional[int] = None
    h: float = 0.7
    omega_b: float = 0.05
    n_s: float = 0.96
    halofit_version: str = 'takahashi'
    shell_spacing: float = 200.0
    ncorr: int = 3
    z_source: float = 1.0
    sigma_z: float = 0.05
    smoothing_arcmin: float = 3.0
    limber_lmin: Optional[int] = 100
    pixel_window: bool = True

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        cosmologies = self.cosmologies
        if (isinstance(cosmologies, (str, bytes)) or not isinstance(cosmologies, Sequence)
                or len(cosmologies) < 2):
            raise ValueError(f"Expected 'cosmologies' to be a sequence of at least two "
                             f"(Omega_m, sigma_8) pairs (got {cosmologies!r})")
        pairs = []
        for pair in cosmologies:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"Expected 'cosmologies' to hold (Omega_m, sigma_8) pairs "
                                 f"(got {pair!r})")
            pairs.append((_check_real('cosmologies', pair[0], 0.0, strict=True),
                          _check_real('cosmologies', pair[1], 0.0, strict=True)))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"Expected 'cosmologies' to be distinct (got {pairs})")
        put('cosmologies', tuple(pairs))
        put('n_maps', check_int('n_maps', self.n_maps, minimum=1))
        put('seed', check_int('seed', self.seed, minimum=0))
        nside = check_int('nside', self.nside, minimum=1)
        if not is_power_of_two(nside):
            raise ValueError(f"Expected 'nside' to be a power of two (maps are NESTED) "
                             f"(got {nside})")
        put('nside', nside)
        lmax = 3 * nside - 1 if self.lmax is None else check_int('lmax', self.lmax, minimum=2)
        if lmax > 3 * nside - 1:
            raise ValueError(f"Expected 'lmax' <= 3 * nside - 1 = {3 * nside - 1} "
                             f"(got {lmax})")
        put('lmax', lmax)
        put('h', _check_real('h', self.h, 0.0, strict=True))
        omega_b = _check_real('omega_b', self.omega_b, 0.0)
        if any(om <= omega_b for om, _ in pairs):
            raise ValueError(f"Expected 'omega_b' to be below every Omega_m in "
                             f"'cosmologies' (got {omega_b})")
        put('omega_b', omega_b)
        put('n_s', _check_real('n_s', self.n_s, 0.0, strict=True))
        check_choice('halofit_version', self.halofit_version, HALOFIT_VERSIONS)
        put('shell_spacing', _check_real('shell_spacing', self.shell_spacing, 0.0,
                                         strict=True))
        put('ncorr', check_int('ncorr', self.ncorr, minimum=1))
        put('z_source', _check_real('z_source', self.z_source, 0.0, strict=True))
        put('sigma_z', _check_real('sigma_z', self.sigma_z, 0.0, strict=True))
        put('smoothing_arcmin', _check_real('smoothing_arcmin', self.smoothing_arcmin, 0.0))
        if self.limber_lmin is not None:
            put('limber_lmin', check_int('limber_lmin', self.limber_lmin, minimum=1))
        if not isinstance(self.pixel_window, bool):
            raise ValueError(f"Expected 'pixel_window' to be a bool (got {self.pixel_window!r})")

    @property
    def num_classes(self) -> int:
        return len(self.cosmologies)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able parameters (what the manifest records)."""
        out = dataclasses.asdict(self)
        out['cosmologies'] = [list(pair) for pair in self.cosmologies]
        return out


# Parameters that the maps depend on but the CAMB spectra do not.
_MAP_ONLY = ('n_maps', 'seed', 'smoothing_arcmin')


def _digest(payload: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode('utf-8')).hexdigest()


def _cache_keys(config: CosmologyConfig, versions: Dict[str, Any]) -> Dict[str, str]:
    """The key of each cache file: a file is reused only under the same key.

    Maps depend on everything; the spectra of class ``c`` on everything but
    the other classes' cosmologies and :obj:`_MAP_ONLY`, so that more maps,
    another seed or another smoothing reuse the (slow) CAMB spectra.
    """
    keyed = {name: versions.get(name) for name in _KEYED_PACKAGES}
    params = config.to_dict()
    full = _digest({'format': _FORMAT, 'config': params, 'versions': keyed})
    keys = {'manifest': full}
    physics = {k: v for k, v in params.items() if k not in _MAP_ONLY and k != 'cosmologies'}
    for c, cosmology in enumerate(params['cosmologies']):
        keys[_spectra_name(c)] = _digest({'format': _FORMAT, 'physics': physics,
                                          'cosmology': cosmology, 'versions': keyed})
        keys[_maps_name(c)] = full
    return keys


def _spectra_name(label: int) -> str:
    return f'spectra_c{label}.npz'


def _maps_name(label: int) -> str:
    return f'maps_c{label}.npy'


def map_file_names(config: CosmologyConfig) -> List[str]:
    """File names of the maps of each class, in class order."""
    return [_maps_name(c) for c in range(config.num_classes)]


# ----------------------------------------------------------------------------
# Parallel workers (module level: picklable for the 'spawn' start method)
# ----------------------------------------------------------------------------

def _spectra_task(args: tuple) -> tuple:
    config, label, pixwin = args
    start = time.perf_counter()
    spectra = _cosmo_sim.compute_spectra(config, label, pixwin)
    return label, spectra, time.perf_counter() - start


def _map_task(args: tuple) -> tuple:
    label, index, seed, spectra, config = args
    out = _cosmo_sim.simulate_map(spectra, config.nside, config.lmax, config.ncorr,
                                  config.smoothing_arcmin, seed)
    return label, index, out


_THREAD_VARS = ('OMP_NUM_THREADS', 'DUCC0_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
                'MKL_NUM_THREADS')


@contextlib.contextmanager
def _environment(values: Dict[str, str]) -> Any:
    saved = {var: os.environ.get(var) for var in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _run(tasks: list, func: Callable, workers: int) -> Any:
    """Yield ``func(task)`` for each task (in completion order), in process
    (``workers == 1``) or in a pool of 'spawn' processes, each limited to its
    share of the CPU threads. A failed task or worker raises here; the tasks
    not started yet are cancelled."""
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            yield func(task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = str(max(1, (os.cpu_count() or 1) // workers))
    executor = ProcessPoolExecutor(min(workers, len(tasks)),
                                   mp_context=multiprocessing.get_context('spawn'))
    try:
        # Workers start during submit() and inherit the environment then,
        # before their OpenMP / ducc runtimes read it.
        with _environment({var: threads for var in _THREAD_VARS}):
            futures = [executor.submit(func, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _check_not_bootstrapping() -> None:
    import multiprocessing.process

    # A 'spawn' worker re-imports the main module; a script that generates at
    # import time would wait forever on the lock its parent holds.
    if getattr(multiprocessing.process.current_process(), '_inheriting', False):
        raise RuntimeError("generate_maps() was called while a worker process was "
                           "importing the main module. Protect the entry point of your "
                           "script with `if __name__ == '__main__':`")


def _new_manifest(config: CosmologyConfig, key: str, versions: Dict[str, Any],
                  files: Dict[str, Any]) -> Dict[str, Any]:
    seeds = [[_cosmo_sim.map_seed(config.seed, c, i) for i in range(config.n_maps)]
             for c in range(config.num_classes)]
    return {
        'format': _FORMAT,
        'generator': 'pyg_sphere.datasets.cosmology.generate_maps',
        'key': key,
        'config': config.to_dict(),
        'versions': versions,
        'seeds': {'scheme': 'numpy.random.SeedSequence([seed, label, index]) -> 64 bits',
                  'maps': seeds},
        'files': files,
        'timings': {},
        'complete': False,
    }


def generate_maps(config: Optional[CosmologyConfig] = None,
                  root: Optional[str | os.PathLike] = None, workers: int = 1,
                  progress: bool = False, verify: bool = True) -> List[Path]:
    r"""Simulate (or find in the cache) the convergence maps of ``config``.

    Writes into ``root``: ``spectra_c{c}.npz`` (the CAMB shell spectra and
    everything derived from them, per class), ``maps_c{c}.npy`` (float32
    [n_maps, 12 nside^2], NESTED, per class) and ``manifest.json`` (all
    parameters, per-map seeds, package versions, SHA-256 and size of each
    file, timings).

    The cache is reused only if the manifest's key (parameters, format, GLASS
    and CAMB versions) matches and each file has its recorded checksum; a
    missing, corrupted or stale file is regenerated, the valid ones are kept.
    Files are written atomically and entered in the manifest only once
    complete, under an exclusive lock on ``root``, so an interrupted run
    leaves a consistent cache that the next run completes.

    Args:
        config (CosmologyConfig, optional): what to simulate.
            (default: :obj:`CosmologyConfig()`)
        root (str or PathLike, optional): cache directory.
            (default: :func:`default_root`)
        workers (int, optional): processes ('spawn') for the CAMB spectra
            (one per class) and the maps. (default: :obj:`1`, in process)
        progress (bool, optional): show a tqdm progress bar if tqdm is
            installed. (default: :obj:`False`)
        verify (bool, optional): check the SHA-256 of cached files (else only
            their sizes). (default: :obj:`True`)

    Returns:
        The paths of the map files, in class order.
    """
    config = CosmologyConfig() if config is None else config
    if not isinstance(config, CosmologyConfig):
        raise ValueError(f"Expected 'config' to be a CosmologyConfig (got "
                         f"{type(config).__name__})")
    workers = check_int('workers', workers, minimum=1)
    _check_not_bootstrapping()
    root = default_root() if root is None else Path(root).expanduser()
    versions = _cosmo_sim.package_versions()
    keys = _cache_keys(config, versions)
    num_classes = config.num_classes
    map_paths = [root / _maps_name(c) for c in range(num_classes)]

    with _cache.locked(root):
        _cache.remove_stale_temporaries(root)
        old = _cache.load_json(root / _cache.MANIFEST)
        files: Dict[str, Any] = {}
        timings: Dict[str, Any] = {}
        if old is not None and isinstance(old.get('files'), dict):
            if isinstance(old.get('timings'), dict):
                timings = dict(old['timings'])
            for name, entry in old['files'].items():
                if (name in keys and isinstance(entry, dict) and entry.get('key') == keys[name]
                        and _cache.entry_is_valid(root / name, entry, verify)):
                    files[name] = entry
        todo_spectra = [c for c in range(num_classes) if _spectra_name(c) not in files]
        todo_maps = [c for c in range(num_classes) if _maps_name(c) not in files]
        if (not todo_spectra and not todo_maps and old.get('key') == keys['manifest']
                and old.get('complete') is True and len(old['files']) == len(files)):
            return map_paths

        # From here on the manifest lists only files known to be complete.
        manifest = _new_manifest(config, keys['manifest'], versions, files)
        manifest['timings'] = timings
        _cache.save_json(root / _cache.MANIFEST, manifest)

        def record(name: str) -> None:
            manifest['files'][name] = dict(_cache.file_entry(root / name), key=keys[name])
            _cache.save_json(root / _cache.MANIFEST, manifest)

        spectra: Dict[int, Dict[str, np.ndarray]] = {}
        if todo_spectra:
            pixwin = None
            if config.pixel_window:
                pixwin = _cosmo_sim.pixel_window(config.nside, config.lmax)
            bar = _progress(len(todo_spectra), 'CAMB spectra', progress)
            tasks = [(config, c, pixwin) for c in todo_spectra]
            for label, spec, seconds in _run(tasks, _spectra_task, workers):
                _cache.save_npz(root / _spectra_name(label), **spec)
                timings[f'spectra_c{label}_s'] = round(seconds, 3)
                record(_spectra_name(label))
                spectra[label] = spec
                bar.update()
            bar.close()

        if todo_maps:
            for c in todo_maps:
                if c not in spectra:
                    with np.load(root / _spectra_name(c), allow_pickle=False) as npz:
                        spectra[c] = {k: npz[k] for k in npz.files}
            npix = 12 * config.nside ** 2
            maps = {c: np.empty((config.n_maps, npix), dtype=np.float32) for c in todo_maps}
            left = {c: config.n_maps for c in todo_maps}
            light = {c: {k: spectra[c][k] for k in ('gls', 'gls_present', 'lensing_weights')}
                     for c in todo_maps}
            tasks = [(c, i, _cosmo_sim.map_seed(config.seed, c, i), light[c], config)
                     for c in todo_maps for i in range(config.n_maps)]
            bar = _progress(len(tasks), 'convergence maps', progress)
            start = time.perf_counter()
            for label, index, out in _run(tasks, _map_task, workers):
                maps[label][index] = out
                left[label] -= 1
                bar.update()
                if left[label] == 0:
                    _cache.save_npy(root / _maps_name(label), maps.pop(label))
                    record(_maps_name(label))
            bar.close()
            timings['maps_s_per_map'] = round((time.perf_counter() - start) / len(tasks), 4)
            timings['maps_workers'] = workers

        manifest['complete'] = True
        _cache.save_json(root / _cache.MANIFEST, manifest)
    return map_paths


def load_maps(config: Optional[CosmologyConfig] = None,
              root: Optional[str | os.PathLike] = None, **kwargs: Any) -> np.ndarray:
    """All maps of ``config`` as float32 [num_classes, n_maps, 12 nside^2]
    (NESTED), generated first if needed (``kwargs`` go to :func:`generate_maps`)."""
    paths = generate_maps(config, root, **kwargs)
    return np.stack([np.load(p, allow_pickle=False) for p in paths])


def split_maps(n_maps: int, seed: int = 0,
               fractions: Sequence[float] = SPLIT_FRACTIONS) -> Dict[str, np.ndarray]:
    """Deterministic split of the map indices ``range(n_maps)`` into train /
    val / test (sorted index arrays; the same maps for every class).

    ``round(n_maps * fraction)`` maps go to val and to test, the rest to train.
    """
    n_maps = check_int('n_maps', n_maps, minimum=1)
    if (isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence)
            or len(fractions) != 3):
        raise ValueError(f"Expected 'split_fractions' to be three numbers (train, val, "
                         f"test) (got {fractions!r})")
    fr = [_check_real('split_fractions', f, 0.0) for f in fractions]
    if abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
        raise ValueError(f"Expected 'split_fractions' to sum to 1, with a positive "
                         f"train fraction (got {fractions!r})")
    n_val, n_test = round(n_maps * fr[1]), round(n_maps * fr[2])
    n_train = n_maps - n_val - n_test
    if n_train < 1:
        raise ValueError(f"Expected 'split_fractions' to leave at least one of the "
                         f"{n_maps} maps for training (got {fractions!r})")
    perm = np.random.default_rng([_SPLIT_TAG, check_int('seed', seed, 0)]).permutation(n_maps)
    return {'train': np.sort(perm[:n_train]),
            'val': np.sort(perm[n_train:n_train + n_val]),
            'test': np.sort(perm[n_train + n_val:])}


def _check_patch_order(patch_order: Any, nside: int) -> Optional[int]:
    if patch_order is None:
        return None
    if isinstance(patch_order, bool) or not isinstance(patch_order, numbers.Integral) \
            or not is_power_of_two(int(patch_order)) or nside % int(patch_order):
        raise ValueError(f"Expected 'patch_order' to be None (full sky) or a power of two "
                         f"that divides nside={nside} (got {patch_order!r})")
    return int(patch_order)


def _noise(noise_seed: int, label: int, map_index: int, patch: int, n: int,
           std: float) -> np.ndarray:
    rng = np.random.default_rng([_NOISE_TAG, noise_seed, label, map_index, patch])
    return rng.standard_normal(n, dtype=np.float32) * np.float32(std)


class CosmologyMaps(InMemoryDataset):
    r"""Weak-lensing convergence maps of two cosmologies, as full-sky maps or
    partial-sky patches (the DeepSphere cosmology task,
    `Perraudin et al. 2019 <https://arxiv.org/abs/1810.12186>`_).

    Maps are simulated on first use by :func:`generate_maps` into
    ``root/raw`` (cached, checksummed) and split by map into train / val /
    test (:func:`split_maps`), so the patches of one map are all in one split.
    Each sample is a :class:`~torch_geometric.data.Data` with

    * ``x`` [n, 1]: convergence plus white noise of std ``noise_std``,
    * ``y`` [1]: the class, the index of the model in ``config.cosmologies``,
    * ``pos`` [n, 3], ``sampling`` (and ``ipix`` [n] for patches): the pixels,
      as made by :func:`pyg_sphere.samplings.healpix` (NESTED),
    * ``map_index``, ``patch`` [1]: where the sample comes from.

    A patch of order :math:`o` is one of the :math:`12 o^2` NESTED base
    pixels of :math:`N_{side} = o`: the contiguous pixel range
    :math:`[p\,m, (p + 1)\,m)` with :math:`m = (N_{side} / o)^2`.

    The noise is added when a sample is read, seeded by ``(noise_seed, y,
    map_index, patch)``: fixed for a sample, independent of the split and of
    the order of reading. It is added after ``pre_transform`` (which sees the
    clean maps) and before ``transform``.

    Args:
        root (str, optional): root directory (``raw/``: generated maps,
            ``processed/``: splits). (default: :func:`default_root`)
        split (str, optional): one of :obj:`SPLITS`. (default: :obj:`'train'`)
        config (CosmologyConfig, optional): simulation parameters.
            (default: :obj:`CosmologyConfig()`)
        patch_order (int, optional): patch order :math:`o` (a power of two
            dividing ``nside``), or :obj:`None` for full-sky maps.
            (default: :obj:`DEFAULT_PATCH_ORDER`)
        noise_std (float, optional): std of the white noise.
            (default: :obj:`DEFAULT_NOISE_STD`)
        noise_seed (int, optional): seed of the noise. (default: :obj:`0`)
        split_fractions (tuple, optional): fractions of maps in train / val /
            test. (default: :obj:`SPLIT_FRACTIONS`)
        workers (int, optional): processes used to generate the maps.
            (default: :obj:`1`)
        transform, pre_transform, pre_filter (callable, optional): as in
            :class:`~torch_geometric.data.InMemoryDataset`.
        force_reload (bool, optional): re-process the split. Generation is
            redone only when the cache is invalid. (default: :obj:`False`)
        log (bool, optional): print progress. (default: :obj:`True`)

    Example:
        >>> train = CosmologyMaps(split='train', workers=2)  # doctest: +SKIP
        >>> train  # 2 classes x 76 maps x 12 patches  # doctest: +SKIP
        CosmologyMaps(1824)
        >>> X, y = train.tensors()  # [1824, 4096, 1], [1824]  # doctest: +SKIP
        >>> graph = train.patch_data(0)  # pos [4096, 3] of patch 0  # doctest: +SKIP
    """
    def __init__(self, root: Optional[str] = None, split: str = 'train',
                 config: Optional[CosmologyConfig] = None,
                 patch_order: Optional[int] = DEFAULT_PATCH_ORDER,
                 noise_std: float = DEFAULT_NOISE_STD, noise_seed: int = 0,
                 split_fractions: Sequence[float] = SPLIT_FRACTIONS, workers: int = 1,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = True) -> None:
        config = CosmologyConfig() if config is None else config
        if not isinstance(config, CosmologyConfig):
            raise ValueError(f"Expected 'config' to be a CosmologyConfig (got "
                             f"{type(config).__name__})")
        self.split = check_choice('split', split, SPLITS)
        self.config = config
        self.patch_order = _check_patch_order(patch_order, config.nside)
        self.noise_std = _check_real('noise_std', noise_std, 0.0)
        self.noise_seed = check_int('noise_seed', noise_seed, minimum=0)
        self.split_fractions = tuple(float(f) for f in split_fractions) \
            if isinstance(split_fractions, Sequence) else split_fractions
        self._split = split_maps(config.n_maps, config.seed, split_fractions)[self.split]
        self.workers = check_int('workers', workers, minimum=1)
        root = str(default_root()) if root is None else str(root)
        self._patches: Dict[int, Data] = {}

        # Validate (and if needed make) the raw maps before PyG looks at them:
        # PyG only checks that raw files exist, we also check their checksums.
        generate_maps(config, osp.join(osp.expanduser(root), 'raw'), workers=self.workers,
                      progress=log and 'PYTEST_CURRENT_TEST' not in os.environ)
        manifest = _cache.load_json(Path(osp.expanduser(root)) / 'raw' / _cache.MANIFEST)
        assert manifest is not None
        tag = {'key': manifest['key'],
               'maps': [manifest['files'][n]['sha256'] for n in map_file_names(config)],
               'fractions': self.split_fractions, 'patch_order': self.patch_order}
        self._tag = hashlib.sha256(json.dumps(tag, sort_keys=True).encode()).hexdigest()[:16]

        super().__init__(root, transform, pre_transform, pre_filter, log=log,
                         force_reload=force_reload)
        self.load(self.processed_paths[0])

    # -- geometry --------------------------------------------------------------

    @property
    def num_patches(self) -> int:
        """Patches per map: :math:`12 o^2`, or 1 for full-sky maps."""
        return 1 if self.patch_order is None else 12 * self.patch_order ** 2

    @property
    def patch_size(self) -> int:
        """Pixels per sample: :math:`12 N_{side}^2 / \\text{num\\_patches}`."""
        return 12 * self.config.nside ** 2 // self.num_patches

    def patch_data(self, patch: int = 0) -> Data:
        """The pixels of ``patch`` (``pos``, ``sampling``, ``ipix`` for a
        partial sky), from :func:`~pyg_sphere.samplings.healpix` (NESTED)."""
        patch = check_int('patch', patch, minimum=0)
        if patch >= self.num_patches:
            raise ValueError(f"Expected 'patch' < {self.num_patches} (got {patch})")
        if patch not in self._patches:
            if self.patch_order is None:
                self._patches[patch] = healpix(self.config.nside, nest=True)
            else:
                m = self.patch_size
                self._patches[patch] = healpix(self.config.nside, nest=True,
                                               indexes=np.arange(patch * m, (patch + 1) * m))
        return self._patches[patch]

    # -- PyG dataset protocol --------------------------------------------------

    @property
    def raw_file_names(self) -> List[str]:
        return [_cache.MANIFEST] + map_file_names(self.config)

    @property
    def processed_file_names(self) -> str:
        return f'{self.split}_{self._tag}.pt'

    def download(self) -> None:
        generate_maps(self.config, self.raw_dir, workers=self.workers)

    def process(self) -> None:
        m = self.patch_size
        full = self.pre_transform is not None or self.pre_filter is not None
        data_list = []
        for label in range(self.config.num_classes):
            maps = np.load(osp.join(self.raw_dir, _maps_name(label)), mmap_mode='r')
            for index in self._split.tolist():
                sky = torch.from_numpy(np.array(maps[index], dtype=np.float32))
                for patch in range(self.num_patches):
                    data = Data(x=sky[patch * m:(patch + 1) * m].view(m, 1).clone(),
                                y=torch.tensor([label]), map_index=torch.tensor([index]),
                                patch=torch.tensor([patch]))
                    if full:
                        data = self._with_pixels(data, patch)
                        if self.pre_filter is not None and not self.pre_filter(data):
                            continue
                        if self.pre_transform is not None:
                            data = self.pre_transform(data)
                    data_list.append(data)
        self.save(data_list, self.processed_paths[0])

    def _with_pixels(self, data: Data, patch: int) -> Data:
        pixels = self.patch_data(patch)
        data.pos = pixels.pos
        data.sampling = pixels.sampling
        if 'ipix' in pixels:
            data.ipix = pixels.ipix
        return data

    def get(self, idx: int) -> Data:
        data = super().get(idx)
        label, index, patch = int(data.y[0]), int(data.map_index[0]), int(data.patch[0])
        if 'pos' not in data:
            data = self._with_pixels(data, patch)
        if self.noise_std > 0:
            noise = _noise(self.noise_seed, label, index, patch, data.x.numel(), self.noise_std)
            data.x = data.x + torch.from_numpy(noise).view_as(data.x).to(data.x.dtype)
        return data

    # -- dense access ----------------------------------------------------------

    def _selected(self, key: str) -> torch.Tensor:
        values = self._data[key]
        if self._indices is not None:
            values = values[torch.as_tensor(self.indices(), dtype=torch.long)]
        return values

    @property
    def labels(self) -> torch.Tensor:
        """Class of each sample, long [N]."""
        return self._selected('y')

    @property
    def map_indices(self) -> torch.Tensor:
        """Map index (within its class) of each sample, long [N]."""
        return self._selected('map_index')

    @property
    def patches(self) -> torch.Tensor:
        """Patch index of each sample, long [N] (0 for full-sky maps)."""
        return self._selected('patch')

    def tensors(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """All samples as dense tensors ``(X [N, n, F], y [N])``, noise included
        (the same values as ``dataset[i].x``), ``transform`` not applied.

        Every sample of a split has the same number of pixels ``n``; for
        patches, sample ``i`` lies on ``patch_data(patches[i])``.
        """
        x, slices = self._data.x, self.slices['x']
        sizes = slices[1:] - slices[:-1]
        if sizes.numel() and bool((sizes != sizes[0]).any()):
            raise ValueError("tensors() needs samples of equal size; the pre_transform "
                             "made samples of different sizes")
        n = int(sizes[0]) if sizes.numel() else self.patch_size
        X = x.view(-1, n, x.size(-1) if x.dim() > 1 else 1)
        y, index, patch = self._data.y, self._data.map_index, self._data.patch
        if self._indices is not None:
            sel = torch.as_tensor(self.indices(), dtype=torch.long)
            X, y, index, patch = X[sel], y[sel], index[sel], patch[sel]
        if self.noise_std > 0:
            noise = np.stack([_noise(self.noise_seed, int(c), int(i), int(p), X[0].numel(),
                                     self.noise_std)
                              for c, i, p in zip(y.tolist(), index.tolist(), patch.tolist())])
            X = X + torch.from_numpy(noise).view_as(X).to(X.dtype)
        else:
            X = X.clone()
        return X, y.clone()
