"""A small on-disk cache: atomic writes, checksums, a manifest and a lock.

Every file is written to a temporary name in the same directory, flushed,
``fsync``-ed and moved into place with :func:`os.replace`, so a reader never
sees a half-written file. The manifest (JSON) lists each finished file with
its SHA-256 checksum and size; a file that is missing from the manifest, has
another size or another checksum is not trusted. The generator holds an
exclusive lock on the cache directory while it works, so two processes (e.g.
the ranks of a distributed job) never write the same cache at once.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, IO, Iterator, Optional

import numpy as np

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MANIFEST = 'manifest.json'
LOCK = '.lock'
_TMP_MARK = '.tmp-'
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> Dict[str, Any]:
    """The manifest entry of a finished file: checksum and size in bytes."""
    return {'sha256': sha256_file(path), 'bytes': path.stat().st_size}


def entry_is_valid(path: Path, entry: Any, verify: bool = True) -> bool:
    """Whether ``path`` exists and matches its manifest ``entry``.

    With ``verify=False`` only the size is compared (no checksum).
    """
    if not isinstance(entry, dict) or not path.is_file():
        return False
    try:
        if path.stat().st_size != entry.get('bytes'):
            return False
        return not verify or sha256_file(path) == entry.get('sha256')
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the
    same directory, which is ``fsync``-ed and renamed over ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left as
    it was (absent or with its previous content).
    """
    path = Path(path)
    tmp = path.with_name(f'.{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}')
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    # np.savez wants a seekable file; write to memory first (the files are small).
    def write(f: IO[bytes]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        f.write(buffer.getvalue())
    atomic_write(path, write)


def save_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True) + '\n'
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def load_json(path: Path) -> Optional[Dict[str, Any]]:
    """The JSON object in ``path``, or :obj:`None` if it is missing or unreadable."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def remove_stale_temporaries(root: Path) -> None:
    """Delete temporary files left by an interrupted writer (call under the lock)."""
    for path in root.glob(f'.*{_TMP_MARK}*'):
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache directory ``root`` (blocking).

    Uses ``fcntl.flock`` where available; the lock is released when the
    process dies, so a crash never leaves a stale lock behind.
    """
    root.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / LOCK, 'a+b') as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
