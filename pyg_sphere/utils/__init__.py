"""The ground floor: atomic writes, the array cache, the cache folder,
progress bars and worker pools, shared by every layer above."""
from .atomic import (atomic_save, atomic_write, atomic_write_bytes, atomic_write_text,
                     remove_stale_temporaries, save_json, save_npy, save_npz)
from .cache import ArrayCache, params_key, sha256_file
from .paths import CACHE_ENV, default_cache_dir
from .pool import run_jobs
from .progress import progress

__all__ = [
    'atomic_write',
    'atomic_write_bytes',
    'atomic_write_text',
    'atomic_save',
    'save_json',
    'save_npy',
    'save_npz',
    'remove_stale_temporaries',
    'ArrayCache',
    'params_key',
    'sha256_file',
    'CACHE_ENV',
    'default_cache_dir',
    'run_jobs',
    'progress',
]
