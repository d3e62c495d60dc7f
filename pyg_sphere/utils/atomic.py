"""Atomic file writes: a reader never sees a half-written file.

Every writer fills a temporary file in the destination's folder, flushes and
``fsync``-s it, then moves it over the destination with :func:`os.replace`
(atomic on POSIX and Windows). If writing fails or is interrupted (an
exception, ``KeyboardInterrupt``), the temporary file is removed and the
destination keeps its previous content, or stays absent. A process killed
outright leaves only a temporary file, named ``.{name}.tmp-{pid}-{random}``,
which :func:`remove_stale_temporaries` deletes.

Files get the permissions the umask gives (as :func:`open` does), not the
``0600`` of :func:`tempfile.mkstemp`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Union

import numpy as np

PathLike = Union[str, 'os.PathLike[str]']

#: Marker in the names of temporary files (see :func:`remove_stale_temporaries`).
TMP_MARK = '.tmp-'


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any],
                 durable: bool = True) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a binary file object.

    The folder of ``path`` must exist. Returns ``path`` as a :class:`Path`.
    ``durable=False`` skips the ``fsync`` of the file and its folder: readers
    still never see a half-written file, but a machine crash soon after may
    leave the file empty or truncated. Only for files whose readers verify
    them (checksummed caches, rebuilt when they fail); ``fsync`` costs 8x the
    write itself for a 1.6 GB array on this machine's disk.
    """
    path = Path(path)
    tmp = path.with_name(f'.{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}')
    try:
        with open(tmp, 'xb') as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: PathLike, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data), durable)


def atomic_write_text(path: PathLike, text: str, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode('utf-8'), durable)


def atomic_save(obj: Any, path: PathLike) -> Path:
    """:func:`torch.save` ``obj`` to ``path`` atomically."""
    import torch
    return atomic_write(path, lambda f: torch.save(obj, f))


def save_json(path: PathLike, obj: Any, durable: bool = True) -> Path:
    """``obj`` as indented, key-sorted JSON, written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + '\n', durable)


def save_npy(path: PathLike, array: np.ndarray, durable: bool = True) -> Path:
    """One array as ``.npy`` (no pickles), written atomically."""
    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False), durable)


def save_npy_sha256(path: PathLike, array: np.ndarray, durable: bool = True) -> str:
    """:func:`save_npy` (a C-ordered copy of a non-contiguous array), returning
    the SHA-256 of the file as hex: the bytes are hashed from memory by a
    second thread while they are written (``hashlib`` and the write release
    the GIL), so the file is never read back."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise ValueError(f"Expected 'array' to hold no Python objects (got dtype "
                         f"{array.dtype}): .npy files here are written without pickles")
    if not array.flags.c_contiguous:
        array = np.array(array, order='C')  # (ascontiguousarray makes 0-d arrays 1-d)
    header = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(header, fields)
    except ValueError:  # a header beyond 64 KiB (huge structured dtypes)
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, fields)
    head = header.getvalue()
    body = array.reshape(-1).view(np.uint8) if array.size else np.empty(0, dtype=np.uint8)
    digest = hashlib.sha256(head)
    hasher = threading.Thread(target=digest.update, args=(body, ), daemon=True)

    def write(f: IO[bytes]) -> None:
        hasher.start()
        try:
            _write_npy(f, array, head, body)
        finally:
            hasher.join()
    atomic_write(path, write, durable)
    return digest.hexdigest()


def _write_npy(f: IO[bytes], array: np.ndarray, head: bytes, body: np.ndarray) -> None:
    """The bytes of ``array``'s ``.npy`` file: its header, then its data."""
    f.write(head)
    f.write(body)


def save_npz(path: PathLike, compress: bool = False, durable: bool = True,
             **arrays: np.ndarray) -> Path:
    """Several arrays as ``.npz`` (no pickles), written atomically."""
    def write(f: IO[bytes]) -> None:
        # np.savez needs a seekable file: build the archive in memory first.
        buffer = io.BytesIO()
        (np.savez_compressed if compress else np.savez)(buffer, **arrays)
        f.write(buffer.getbuffer())
    return atomic_write(path, write, durable)


def remove_stale_temporaries(folder: PathLike) -> int:
    """Delete the temporary files that interrupted writers left in ``folder``
    (call it while no other process writes there, e.g. under a cache lock).
    Returns how many were removed."""
    removed = 0
    for path in Path(folder).glob(f'.*{TMP_MARK}*'):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed
