"""Where pyg_sphere keeps what it generates: one cache folder, one sub-folder
per kind of data (``cosmology/``, ``shapes/``, ``climate/``, ``graphs/``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

#: Environment variable that moves the whole cache.
CACHE_ENV = 'PYG_SPHERE_CACHE'


def default_cache_dir(kind: Optional[str] = None) -> Path:
    """``$PYG_SPHERE_CACHE``, else ``$XDG_CACHE_HOME/pyg_sphere``, else
    ``~/.cache/pyg_sphere``; with ``kind``, its sub-folder ``kind``."""
    base = os.environ.get(CACHE_ENV)
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join('~', '.cache')
        root = Path(xdg).expanduser() / 'pyg_sphere'
    return root if kind is None else root / kind
