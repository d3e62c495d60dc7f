"""A folder of cached arrays, each entry keyed by the parameters that made it.

This is the one cache mechanism of pyg_sphere (simulated datasets, graphs):

* **Key.** An entry is named by the caller (``'maps_c0'``, ``'graph'``) and
  keyed by a JSON-able dict of every parameter that changes its content
  (including a format number and the versions of the packages that made
  it). Its files are ``{name}-{key}.npy`` (one array) or ``.npz`` (several)
  and ``{name}-{key}.json``, the manifest: the parameters, the SHA-256 and
  size of the data file, and free-form ``info``. Entries with other
  parameters live side by side: nothing is overwritten by another setting.
* **Trust.** An entry is used only if its manifest holds the same
  parameters and the data file has the recorded size and checksum, loads,
  and passes the caller's ``check`` (e.g. the expected shapes). Anything
  else (missing, truncated, edited, garbage, wrong shape) is rebuilt.
* **Atomicity.** Data files and manifests are written atomically
  (:mod:`pyg_sphere.utils.atomic`), the manifest last, so a manifest never
  describes a half-written file; an interrupted writer leaves at most a
  temporary file, removed the next time the folder is locked. They are not
  ``fsync``-ed (the trust rule above makes that safe: after a machine crash
  an entry whose data did not reach the disk fails its checksum and is
  rebuilt), which makes gigabyte entries several times faster to write.
* **Lock.** :meth:`ArrayCache.lock` holds an exclusive ``flock`` on
  ``root/.lock`` (released by the OS if the process dies), so two processes
  (e.g. the ranks of a distributed job) never build the same entry at once.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .atomic import remove_stale_temporaries, save_json, save_npy_sha256, save_npz

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

Arrays = Union[np.ndarray, Dict[str, np.ndarray]]

LOCK = '.lock'
_CHUNK = 1 << 20
#: Errors that mean "this file is not a valid array file" (truncated, garbage).
_LOAD_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def params_key(params: Dict[str, Any], length: int = 16) -> str:
    """A stable hex digest of JSON-able ``params`` (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, separators=(',', ':'), default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:length]


def _canonical(params: Dict[str, Any]) -> Any:
    """``params`` as JSON would give them back (tuples as lists, ...)."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(path, 'r', encoding='utf-8') as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


class ArrayCache:
    r"""A folder of cached numpy arrays (see the module docstring).

    Args:
        root (str or os.PathLike): the folder (created on first write).

    Example:
        >>> cache = ArrayCache('/tmp/my_cache')  # doctest: +SKIP
        >>> x = cache.get_or_build('squares', {'n': 4},
        ...                        lambda: np.arange(4) ** 2)  # doctest: +SKIP
    """
    def __init__(self, root: Union[str, os.PathLike]) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"Expected 'root' to be a folder path (got {root!r})")
        self.root = Path(os.path.expanduser(os.fspath(root)))
        self._locked = 0

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({str(self.root)!r})'

    # -- names -----------------------------------------------------------------

    def paths(self, name: str, params: Dict[str, Any], single: bool = True
              ) -> Tuple[Path, Path]:
        """``(data file, manifest)`` of entry ``name`` with ``params``;
        ``single``: one array (``.npy``) rather than several (``.npz``)."""
        if not isinstance(name, str) or not name or '/' in name or os.sep in name:
            raise ValueError(f"Expected 'name' to be a non-empty file-name stem (got {name!r})")
        stem = f'{name}-{params_key(params)}'
        return (self.root / (stem + ('.npy' if single else '.npz')),
                self.root / (stem + '.json'))

    # -- locking ---------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator['ArrayCache']:
        """Hold the folder's exclusive lock (blocking), after removing the
        temporary files of interrupted writers. Re-entrant within a process
        only through nesting the ``with`` of one :class:`ArrayCache`."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._locked:
            self._locked += 1
            try:
                yield self
            finally:
                self._locked -= 1
            return
        with open(self.root / LOCK, 'a+b') as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            self._locked = 1
            try:
                remove_stale_temporaries(self.root)
                yield self
            finally:
                self._locked = 0
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------

    def load(self, name: str, params: Dict[str, Any], single: bool = True,
             verify: bool = True, check: Optional[Callable[[Arrays], Any]] = None,
             mmap: bool = False) -> Optional[Arrays]:
        """The arrays of a valid entry, or :obj:`None` (missing, stale,
        corrupted, unreadable, or refused by ``check``).

        Args:
            verify (bool): compare the SHA-256 (else only the size).
            check (callable, optional): called with the arrays; an entry for
                which it returns :obj:`False` or raises ``ValueError`` is
                treated as invalid.
            mmap (bool): memory-map a single ``.npy`` array (read-only).
        """
        data_path, manifest_path = self.paths(name, params, single)
        manifest = _read_json(manifest_path)
        if manifest is None or manifest.get('params') != _canonical(params):
            return None
        try:
            if data_path.stat().st_size != manifest.get('bytes'):
                return None
            if verify and sha256_file(data_path) != manifest.get('sha256'):
                return None
            if single:
                arrays: Arrays = np.load(data_path, allow_pickle=False,
                                         mmap_mode='r' if mmap else None)
            else:
                with np.load(data_path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
        except _LOAD_ERRORS:
            return None
        if check is not None:
            try:
                if check(arrays) is False:
                    return None
            except ValueError:
                return None
        return arrays

    def info(self, name: str, params: Dict[str, Any], single: bool = True
             ) -> Optional[Dict[str, Any]]:
        """The manifest of an entry (no validation), or :obj:`None`."""
        return _read_json(self.paths(name, params, single)[1])

    # -- writing ---------------------------------------------------------------

    def store(self, name: str, params: Dict[str, Any], arrays: Arrays,
              info: Optional[Dict[str, Any]] = None) -> Path:
        """Write an entry (data file, then manifest, both atomically) and
        return the data file's path. Call it under :meth:`lock`."""
        single = isinstance(arrays, np.ndarray)
        if not single:
            if not (isinstance(arrays, dict) and arrays and all(
                    isinstance(k, str) and isinstance(v, (np.ndarray, np.generic))
                    for k, v in arrays.items())):
                raise ValueError(f"Expected 'arrays' to be a numpy array or a non-empty dict "
                                 f"of numpy arrays / scalars (got {type(arrays).__name__})")
            arrays = {k: np.asarray(v) for k, v in arrays.items()}
        data_path, manifest_path = self.paths(name, params, single)
        self.root.mkdir(parents=True, exist_ok=True)
        # not fsync-ed: every reader checks size and checksum, so a crash can
        # lose an entry (rebuilt) but never serve a wrong one
        if single:  # hashed while written
            digest = save_npy_sha256(data_path, arrays, durable=False)
        else:
            save_npz(data_path, durable=False, **arrays)
            digest = sha256_file(data_path)
        save_json(manifest_path, {'name': name, 'params': _canonical(params),
                                  'file': data_path.name, 'bytes': data_path.stat().st_size,
                                  'sha256': digest, 'info': info or {}},
                  durable=False)
        return data_path

    def get_or_build(self, name: str, params: Dict[str, Any], build: Callable[[], Arrays],
                     verify: bool = True, check: Optional[Callable[[Arrays], Any]] = None,
                     force: bool = False, info: Optional[Dict[str, Any]] = None) -> Arrays:
        """The entry's arrays, built by ``build()`` and stored if no valid
        entry exists (or ``force``). Holds the lock throughout."""
        with self.lock():
            if not force:
                for single in (True, False):
                    if self.paths(name, params, single)[1].exists():
                        found = self.load(name, params, single, verify, check)
                        if found is not None:
                            return found
            arrays = build()
            if check is not None and check(arrays) is False:
                raise ValueError(f"the arrays built for cache entry '{name}' fail their own "
                                 f"check")
            self.store(name, params, arrays, info)
            return arrays
