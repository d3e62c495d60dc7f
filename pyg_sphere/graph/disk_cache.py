"""The on-disk cache of graphs and pyramids (:class:`pyg_sphere.utils.ArrayCache`).

An entry is a set of ``.npy`` arrays plus a small JSON ``meta`` array (the
scalars: kernel widths, ``lambda_max``, sampling descriptors, and the list
of arrays), all keyed by the same parameters: everything that changes the
graph (the sampling descriptor, a digest of ``pos`` and ``ipix``, ``k``, the
kernel width, the distance, the normalization and ``lambda_max`` method, the
levels and coarsening factor), :obj:`GRAPH_FORMAT` and the library version.
Each array file is checksummed (SHA-256) by its manifest; ``meta`` is written
last and removed before a rebuild, so it marks a complete entry. A missing,
truncated, edited or stale file makes the whole entry rebuild.

Loaded arrays are copy-on-write memory maps of the cache files: a warm load
reads the files once (the checksums) and allocates nothing, and writing to a
returned tensor changes only the process's private copy of that page.
Cache files are replaced atomically, never modified in place (do not edit
them while a process uses them).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..utils import ArrayCache, default_cache_dir

#: Version of the layout of cached graphs; bump it when an entry's content
#: or meaning changes.
GRAPH_FORMAT = 2
#: Graphs with fewer nodes are not cached on disk (faster to build than to
#: hash and read back).
CACHE_MIN_NODES = 1 << 16

CacheArg = Union[bool, str, 'os.PathLike[str]', None]


def resolve_cache(cache: CacheArg) -> Optional[ArrayCache]:
    """The cache folder of a ``cache`` argument: :obj:`True` for
    ``default_cache_dir('graphs')`` (``$PYG_SPHERE_CACHE/graphs``),
    :obj:`False` for none, or a folder path."""
    if cache is True:
        return ArrayCache(default_cache_dir('graphs'))
    if cache is False or cache is None:
        return None
    if isinstance(cache, (str, os.PathLike)) and os.fspath(cache):
        return ArrayCache(cache)
    raise ValueError(f"Expected 'cache' to be True, False or a folder path (got {cache!r})")


def check_cache(cache: Any) -> CacheArg:
    """Validate a ``cache`` argument (keeps it as given, for ``repr``-free storage)."""
    resolve_cache(cache)
    return cache


def digest(tensor: Optional[torch.Tensor]) -> Optional[str]:
    """SHA-256 of a tensor's dtype, shape and bytes (:obj:`None` for :obj:`None`)."""
    if tensor is None:
        return None
    t = tensor.detach().cpu().contiguous()
    h = hashlib.sha256(f'{t.dtype}{tuple(t.shape)}'.encode())
    h.update(t.view(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def sampling_json(sampling: Any) -> Any:
    """A sampling descriptor as JSON (``[name, params]``), or :obj:`None`."""
    from ..samplings._base import SphereSampling
    if not isinstance(sampling, SphereSampling):
        return None
    return [sampling.name, dict(sampling.params)]


def sampling_from_json(value: Any) -> Any:
    from ..samplings._base import SphereSampling
    return None if value is None else SphereSampling(value[0], value[1])


def entry_params(kind: str, **fields: Any) -> Dict[str, Any]:
    """The key of an entry: ``fields`` plus the format and library version."""
    import pyg_sphere
    return dict(fields, kind=kind, format=GRAPH_FORMAT, version=pyg_sphere.__version__)


def _meta_name(name: str) -> str:
    return f'{name}.meta'


def _check_array(dtype: str, shape: list):
    def check(array: np.ndarray) -> bool:
        return str(array.dtype) == dtype and list(array.shape) == list(shape)
    return check


class Entry:
    """A verified cache entry: its meta data and array files."""

    def __init__(self, files: Dict[str, Tuple[Optional[Path], str, list]],
                 meta: Dict[str, Any]) -> None:
        self.files = files
        self.meta = meta

    def open(self) -> Dict[str, torch.Tensor]:
        """Fresh copy-on-write maps of the arrays (empty arrays are not files).
        Raises ``OSError`` / ``ValueError`` if a file went missing or shrank."""
        out = {}
        for key, (path, dtype, shape) in self.files.items():
            if path is None:
                out[key] = torch.from_numpy(np.empty(shape, dtype=dtype))
            else:
                out[key] = torch.from_numpy(np.load(path, mmap_mode='c', allow_pickle=False))
        return out


def _load_locked(cache: ArrayCache, name: str, params: Dict[str, Any]) -> Optional[Entry]:
    raw = cache.load(_meta_name(name), params, check=lambda a: a.dtype == np.uint8)
    if raw is None:
        return None
    try:
        meta = json.loads(raw.tobytes().decode('utf-8'))
        specs = {key: (str(dtype), [int(v) for v in shape])
                 for key, (dtype, shape) in meta['arrays'].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    files: Dict[str, Tuple[Optional[Path], str, list]] = {
        key: (None, dtype, shape) for key, (dtype, shape) in specs.items()}
    stored = sorted((key for key, (_, shape) in specs.items() if int(np.prod(shape))),
                    key=lambda key: -int(np.prod(specs[key][1])))

    def verify(key: str) -> bool:
        dtype, shape = specs[key]
        array = cache.load(f'{name}.{key}', params, mmap=True, check=_check_array(dtype, shape))
        return array is not None

    # the checksums dominate a warm load: two files at a time (hashlib
    # releases the GIL), largest first
    with ThreadPoolExecutor(max_workers=2) as pool:
        valid = list(pool.map(verify, stored))
    if not all(valid):
        return None
    for key in stored:
        files[key] = (cache.paths(f'{name}.{key}', params)[0], *specs[key])
    return Entry(files, meta)


def load(cache: ArrayCache, name: str, params: Dict[str, Any]) -> Optional[Entry]:
    """The entry ``name`` with ``params`` if it is complete and every file
    has its recorded size and checksum, else :obj:`None`."""
    try:
        with cache.lock():
            return _load_locked(cache, name, params)
    except OSError:  # e.g. an unreadable folder: build without the cache
        return None


def _discard(cache: ArrayCache, name: str, params: Dict[str, Any]) -> None:
    for path in cache.paths(_meta_name(name), params):
        with contextlib.suppress(OSError):
            Path(path).unlink()


class Writer:
    """Writes the arrays of one entry from a background thread while the
    caller computes the next ones (cache files are written at a few hundred
    MB/s: at nside 1024 that is seconds), then ``meta``.

    Use as a context manager holding the folder's lock; :meth:`add` each
    array as soon as it is final (it must not change until :meth:`finish`),
    then :meth:`finish` with the meta data. If the block raises, pending
    arrays are dropped and no ``meta`` is written: the entry stays invalid.
    """

    def __init__(self, cache: ArrayCache, name: str, params: Dict[str, Any]) -> None:
        self.cache, self.name, self.params = cache, name, params
        self._pending: list = []
        self._files: Dict[str, Tuple[Optional[Path], str, list]] = {}
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock: Optional[contextlib.AbstractContextManager] = None
        self.failed: Optional[BaseException] = None

    def __enter__(self) -> 'Writer':
        try:
            self._lock = self.cache.lock()
            self._lock.__enter__()
            _discard(self.cache, self.name, self.params)
        except OSError as err:
            self._lock, self.failed = None, err
        self._pool = ThreadPoolExecutor(max_workers=1)
        return self

    def add(self, key: str, tensor: torch.Tensor) -> None:
        array = tensor.detach().cpu().contiguous().numpy()
        spec = (str(array.dtype), list(array.shape))
        if self.failed is not None:
            return
        if not array.size:
            self._files[key] = (None, *spec)
            return
        future = self._pool.submit(self.cache.store, f'{self.name}.{key}', self.params, array)
        self._pending.append((key, spec, future))

    def finish(self, meta: Dict[str, Any]) -> Optional[Entry]:
        """Wait for the arrays, write ``meta`` and return the entry
        (:obj:`None`, with a warning, if the folder cannot be written)."""
        for key, spec, future in self._pending:
            try:
                self._files[key] = (future.result(), *spec)
            except OSError as err:
                self.failed = err
        self._pending = []
        if self.failed is None:
            meta = dict(meta, arrays={key: [dtype, shape]
                                      for key, (_, dtype, shape) in self._files.items()})
            text = json.dumps(meta, sort_keys=True).encode('utf-8')
            try:
                self.cache.store(_meta_name(self.name), self.params,
                                 np.frombuffer(text, dtype=np.uint8).copy())
                return Entry(dict(self._files), json.loads(text))
            except OSError as err:
                self.failed = err
        warnings.warn(f"pyg_sphere: could not write the graph cache in '{self.cache.root}' "
                      f"({self.failed}); pass cache=False to skip it, or set "
                      f"$PYG_SPHERE_CACHE", RuntimeWarning, stacklevel=3)
        return None

    def __exit__(self, *exc: Any) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._lock is not None:
            self._lock.__exit__(*exc)


def store(cache: ArrayCache, name: str, params: Dict[str, Any],
          tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> Optional[Entry]:
    """Write an entry (arrays first, ``meta`` last) and return it;
    :obj:`None` with a warning if the folder cannot be written."""
    with Writer(cache, name, params) as writer:
        for key, tensor in tensors.items():
            writer.add(key, tensor)
        return writer.finish(meta)
