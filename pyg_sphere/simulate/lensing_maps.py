r"""Simulated convergence maps of every class of a :class:`CosmologyConfig`,
generated on first use (in parallel) into an :class:`~pyg_sphere.utils.ArrayCache`.

Two kinds of cache entries per class :math:`c`:

* ``spectra_c{c}`` (``.npz``): the CAMB shell spectra and everything derived
  from them (:func:`~pyg_sphere.simulate.lensing.compute_spectra`), keyed by
  the physics of that class only, so that more maps, another seed or another
  smoothing reuse them (they are the slow part);
* ``maps_c{c}`` (``.npy``, float32 ``[n_maps, 12 nside^2]``, NESTED), keyed by
  the same plus ``n_maps``, ``seed`` and the smoothing.

Both keys hold a format number and the GLASS and CAMB versions; each entry's
manifest records the parameters, per-map seeds, package versions, timings
and the file's SHA-256.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .._validation import check_int
from ..utils import ArrayCache, default_cache_dir, progress as _progress
from ..utils.pool import check_not_bootstrapping, run_jobs
from . import lensing
from .cosmology_config import CosmologyConfig

_FORMAT = 2
# Packages whose version enters the cache key (they decide the maps' values).
_KEYED_PACKAGES = ('glass', 'camb')
# Parameters that the maps depend on but the CAMB spectra do not.
_MAP_ONLY = ('n_maps', 'seed', 'smoothing_arcmin')
_SPECTRA_FOR_MAPS = ('gls', 'gls_present', 'lensing_weights')


def _keys(config: CosmologyConfig, label: int) -> Dict[str, Dict[str, Any]]:
    """The cache parameters of the spectra and of the maps of class ``label``."""
    versions = lensing.package_versions()
    keyed = {name: versions.get(name) for name in _KEYED_PACKAGES}
    params = config.to_dict()
    physics = {k: v for k, v in params.items() if k not in _MAP_ONLY and k != 'cosmologies'}
    spectra = {'format': _FORMAT, 'physics': physics,
               'cosmology': params['cosmologies'][label], 'versions': keyed}
    maps = dict(spectra, label=label, **{k: params[k] for k in _MAP_ONLY})
    return {'spectra': spectra, 'maps': maps}


def _spectra_job(args: tuple) -> tuple:
    config, label, pixwin = args
    start = time.perf_counter()
    spectra = lensing.compute_spectra(config, label, pixwin)
    return label, spectra, time.perf_counter() - start


def _map_job(args: tuple) -> tuple:
    label, index, seed, spectra, config = args
    out = lensing.simulate_map(spectra, config.nside, config.lmax, config.ncorr,
                               config.smoothing_arcmin, seed)
    return label, index, out


def _check_config(config: Optional[CosmologyConfig]) -> CosmologyConfig:
    config = CosmologyConfig() if config is None else config
    if not isinstance(config, CosmologyConfig):
        raise ValueError(f"Expected 'config' to be a CosmologyConfig (got "
                         f"{type(config).__name__})")
    return config


def generate_maps(config: Optional[CosmologyConfig] = None,
                  root: Optional[Union[str, os.PathLike]] = None, workers: int = 1,
                  progress: bool = False, verify: bool = True) -> List[Path]:
    r"""Simulate (or find in the cache) the convergence maps of ``config``.

    The cache in ``root`` is reused entry by entry: a missing, corrupted or
    stale entry is regenerated, the valid ones are kept. Entries are written
    atomically under the cache's lock, so an interrupted run leaves a
    consistent cache that the next run completes, and two processes never
    generate the same maps at once.

    Args:
        config (CosmologyConfig, optional): what to simulate.
            (default: :obj:`CosmologyConfig()`)
        root (str or PathLike, optional): cache folder.
            (default: ``default_cache_dir('cosmology') / 'raw'``)
        workers (int, optional): processes ('spawn') for the CAMB spectra
            (one per class) and the maps. (default: :obj:`1`, in process)
        progress (bool, optional): show tqdm progress bars. (default: :obj:`False`)
        verify (bool, optional): check the SHA-256 of cached files (else only
            their sizes). (default: :obj:`True`)

    Returns:
        The paths of the map files (``.npy``), in class order.
    """
    config = _check_config(config)
    workers = check_int('workers', workers, minimum=1)
    check_not_bootstrapping('generate_maps()')
    cache = ArrayCache(default_cache_dir('cosmology') / 'raw' if root is None else root)
    labels = range(config.num_classes)
    keys = {c: _keys(config, c) for c in labels}
    npix = 12 * config.nside ** 2
    shape = (config.n_maps, npix)

    def maps_ok(a: np.ndarray) -> bool:
        return a.shape == shape and a.dtype == np.float32

    with cache.lock():
        todo_maps = [c for c in labels
                     if cache.load(f'maps_c{c}', keys[c]['maps'], verify=verify,
                                   check=maps_ok, mmap=True) is None]
        spectra: Dict[int, Dict[str, np.ndarray]] = {}
        for c in todo_maps:
            found = cache.load(f'spectra_c{c}', keys[c]['spectra'], single=False,
                               verify=verify)
            if found is not None:
                spectra[c] = found
        todo_spectra = [c for c in todo_maps if c not in spectra]
        if todo_spectra:
            pixwin = (lensing.pixel_window(config.nside, config.lmax)
                      if config.pixel_window else None)
            bar = _progress(len(todo_spectra), 'CAMB spectra', progress)
            jobs = [(config, c, pixwin) for c in todo_spectra]
            for label, spec, seconds in run_jobs(jobs, _spectra_job, workers):
                cache.store(f'spectra_c{label}', keys[label]['spectra'], spec,
                            info={'seconds': round(seconds, 3),
                                  'versions': lensing.package_versions()})
                spectra[label] = spec
                bar.update()
            bar.close()
        if todo_maps:
            maps = {c: np.empty(shape, dtype=np.float32) for c in todo_maps}
            left = {c: config.n_maps for c in todo_maps}
            seeds = {c: [lensing.map_seed(config.seed, c, i) for i in range(config.n_maps)]
                     for c in todo_maps}
            light = {c: {k: spectra[c][k] for k in _SPECTRA_FOR_MAPS} for c in todo_maps}
            jobs = [(c, i, seeds[c][i], light[c], config)
                    for c in todo_maps for i in range(config.n_maps)]
            bar = _progress(len(jobs), 'convergence maps', progress)
            start = time.perf_counter()
            for label, index, out in run_jobs(jobs, _map_job, workers):
                maps[label][index] = out
                left[label] -= 1
                bar.update()
                if left[label] == 0:
                    seconds = (time.perf_counter() - start) / len(jobs)
                    cache.store(f'maps_c{label}', keys[label]['maps'], maps.pop(label),
                                info={'config': config.to_dict(),
                                      'versions': lensing.package_versions(),
                                      'seeds': {'scheme': 'numpy.random.SeedSequence([seed, '
                                                          'label, index]) -> 64 bits',
                                                'maps': seeds[label]},
                                      'seconds_per_map': round(seconds, 4),
                                      'workers': workers})
            bar.close()
    return [cache.paths(f'maps_c{c}', keys[c]['maps'])[0] for c in labels]


def map_checksums(config: CosmologyConfig, root: Union[str, os.PathLike]) -> List[str]:
    """The SHA-256 of each class's map file in the cache ``root`` (from the
    manifests written by :func:`generate_maps`)."""
    cache = ArrayCache(root)
    out = []
    for c in range(config.num_classes):
        info = cache.info(f'maps_c{c}', _keys(config, c)['maps'])
        out.append(None if info is None else info.get('sha256'))
    return out


def load_maps(config: Optional[CosmologyConfig] = None,
              root: Optional[Union[str, os.PathLike]] = None, **kwargs: Any) -> np.ndarray:
    """All maps of ``config`` as float32 [num_classes, n_maps, 12 nside^2]
    (NESTED), generated first if needed (``kwargs`` go to :func:`generate_maps`)."""
    paths = generate_maps(config, root, **kwargs)
    return np.stack([np.load(p, allow_pickle=False) for p in paths])


def cached_spectra(config: CosmologyConfig, root: Union[str, os.PathLike]
                   ) -> List[Optional[Dict[str, np.ndarray]]]:
    """The stage-1 spectra of each class of ``config`` from the cache ``root``
    (:obj:`None` for a class whose entry is missing): what
    :func:`~pyg_sphere.simulate.degeneracy.convergence_spectrum` and the
    solver's errors are read from."""
    cache = ArrayCache(root)
    return [cache.load(f'spectra_c{c}', _keys(config, c)['spectra'], single=False)
            for c in range(config.num_classes)]
