"""The on-disk cache of graphs and pyramids (:class:`pyg_sphere.utils.ArrayCache`).

An entry is a set of ``.npy`` arrays plus a small JSON ``meta`` array (the
scalars: kernel widths, ``lambda_max``, sampling descriptors, and the list
of arrays), all keyed by the same parameters: everything that changes the
graph (the sampling descriptor, a digest of ``pos`` and ``ipix``, ``k``, the
kernel width, the distance, the normalization and ``lambda_max`` method, the
levels and coarsening factor), :obj:`GRAPH_FORMAT` and the library version.
Edge lists grouped by source (``edge_index[0]`` non-decreasing, as every
graph of :mod:`pyg_sphere.graph` is) are stored in CSR form, int64 row
pointers and int32 columns (:func:`pack_edges`): a third of the bytes of the
``[2, E]`` int64 array, which writing the cache at nside 1024 waited for.
Each array file is checksummed (SHA-256) by its manifest; ``meta`` is written
last and removed before a rebuild, so it marks a complete entry. A missing,
truncated, edited or stale file makes the whole entry rebuild.

Loaded arrays are copy-on-write memory maps of the cache files (edge lists
are expanded from their CSR form into new tensors): a warm load reads the
files once (the checksums), and writing to a returned tensor changes only the
process's private copy of that page.
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
GRAPH_FORMAT = 3
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


#: Suffixes of the two arrays of a packed edge list (:func:`pack_edges`).
PTR, COL = '.ptr', '.col'
_INT32 = np.iinfo(np.int32)


def pack_edges(edge_index: torch.Tensor) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """The CSR form ``(ptr int64 [rows + 1], col int32 [E])`` of an int64
    ``[2, E]`` edge list grouped by source (rows ``0 .. edge_index[0, -1]``),
    or :obj:`None` when it is not one (unsorted, negative rows, columns
    beyond int32, empty): :func:`unpack_edges` gives back the very array."""
    from . import _kernels
    if (edge_index.dtype != torch.int64 or edge_index.dim() != 2 or edge_index.size(0) != 2
            or edge_index.size(1) == 0):
        return None
    t = edge_index.detach().cpu()
    row, col = t[0].contiguous(), t[1]
    if int(row[0]) < 0 or int(col.min()) < _INT32.min or int(col.max()) > _INT32.max:
        return None
    with _kernels.parallel():
        if not _kernels.is_non_decreasing(row.numpy()):
            return None
        ptr = torch.empty(int(row[-1]) + 2, dtype=torch.int64)
        _kernels.row_starts(row.numpy(), ptr.numpy())
    return ptr, col.to(torch.int32)


#: Edges from which packed edge lists are expanded by a compiled parallel
#: loop; below, by numpy (loading the compiled kernels would cost more).
UNPACK_KERNEL_EDGES = 1 << 23

#: ATen's parallel CSR -> COO index conversion (what ``Tensor.to_sparse_coo()``
#: runs), where this torch has it: no numba to load, and 0.6 s instead of 1.0 s for
#: the 100 M edges of nside 1024; else numpy or the compiled loop above.
_CSR_TO_COO = getattr(torch, '_convert_indices_from_csr_to_coo', None)


def unpack_edges(ptr: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """The ``[2, E]`` int64 edge list of :func:`pack_edges`' output."""
    counts = np.diff(ptr.numpy()) if ptr.dim() == 1 and ptr.numel() >= 2 else None
    if (counts is None or int(ptr[0]) != 0 or int(ptr[-1]) != col.numel()
            or not bool((counts >= 0).all())):
        raise ValueError(f"Expected row pointers from 0 to the {col.numel()} columns of a "
                         f"packed edge list (got {ptr.numel()} pointers)")
    if _CSR_TO_COO is not None:
        return _CSR_TO_COO(ptr, col, out_int32=False)
    out = torch.empty(2, col.numel(), dtype=torch.int64)
    if col.numel() < UNPACK_KERNEL_EDGES:
        out[0] = torch.from_numpy(np.repeat(np.arange(counts.size, dtype=np.int64), counts))
        out[1] = col
        return out
    from . import _kernels
    with _kernels.parallel():
        _kernels.expand_rows(ptr.numpy(), col.numpy(), out.numpy())
    return out


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
        """Fresh copy-on-write maps of the arrays (empty arrays are not files),
        packed edge lists expanded. Raises ``OSError`` / ``ValueError`` if a
        file went missing or shrank."""
        out = {}
        for key, (path, dtype, shape) in self.files.items():
            if path is None:
                out[key] = torch.from_numpy(np.empty(shape, dtype=dtype))
            else:
                out[key] = torch.from_numpy(np.load(path, mmap_mode='c', allow_pickle=False))
        for key in self.meta.get('packed', []):
            out[key] = unpack_edges(out.pop(key + PTR), out.pop(key + COL))
        return out


def _load_locked(cache: ArrayCache, name: str, params: Dict[str, Any]) -> Optional[Entry]:
    raw = cache.load(_meta_name(name), params, check=lambda a: a.dtype == np.uint8)
    if raw is None:
        return None
    try:
        meta = json.loads(raw.tobytes().decode('utf-8'))
        specs = {key: (str(dtype), [int(v) for v in shape])
                 for key, (dtype, shape) in meta['arrays'].items()}
        packed = [str(key) for key in meta.get('packed', [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(key + PTR in specs and key + COL in specs for key in packed):
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

    def add(self, key: str, tensor: torch.Tensor, edges: bool = False) -> None:
        """Queue ``tensor`` as the array ``key``; ``edges``: an edge list,
        stored packed (:func:`pack_edges`) when it is grouped by source."""
        if self.failed is not None:
            return
        tensor = tensor.detach().cpu().contiguous()
        job = self._store_edges if edges else self._store
        self._pending.append(self._pool.submit(job, key, tensor))

    def _store(self, key: str, tensor: torch.Tensor) -> list:
        array = tensor.numpy()
        spec = (str(array.dtype), list(array.shape))
        if not array.size:
            return [(key, None, spec)]
        return [(key, self.cache.store(f'{self.name}.{key}', self.params, array), spec)]

    def _store_edges(self, key: str, tensor: torch.Tensor) -> list:
        packed = pack_edges(tensor)  # in this thread: the caller builds on
        if packed is None:
            return self._store(key, tensor)
        return self._store(key + PTR, packed[0]) + self._store(key + COL, packed[1])

    def finish(self, meta: Dict[str, Any]) -> Optional[Entry]:
        """Wait for the arrays, write ``meta`` and return the entry
        (:obj:`None`, with a warning, if the folder cannot be written)."""
        for future in self._pending:
            try:
                for key, path, spec in future.result():
                    self._files[key] = (path, *spec)
            except OSError as err:
                self.failed = err
        self._pending = []
        if self.failed is None:
            packed = sorted(key[:-len(PTR)] for key in self._files if key.endswith(PTR)
                            and key[:-len(PTR)] + COL in self._files)
            meta = dict(meta, packed=packed,
                        arrays={key: [dtype, shape]
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
          tensors: Dict[str, torch.Tensor], meta: Dict[str, Any],
          edges: Tuple[str, ...] = ()) -> Optional[Entry]:
    """Write an entry (arrays first, ``meta`` last) and return it;
    :obj:`None` with a warning if the folder cannot be written. The
    tensors named in ``edges`` are edge lists (see :meth:`Writer.add`)."""
    with Writer(cache, name, params) as writer:
        for key, tensor in tensors.items():
            writer.add(key, tensor, edges=key in edges)
        return writer.finish(meta)
