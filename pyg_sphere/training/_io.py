"""Atomic file writes: a run directory never holds a half-written file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    """Write through a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file."""
    _atomic_write(path, lambda f: torch.save(obj, f), 'wb')


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file that never exists half-written."""
    _atomic_write(path, lambda f: f.write(text), 'w')


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file that never exists half-written."""
    _atomic_write(path, lambda f: f.write(data), 'wb')
