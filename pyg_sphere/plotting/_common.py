"""What every plot shares: the lazy Matplotlib import, input checks and
atomic saving of figures."""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._validation import _got

from ..utils import atomic_write

_SQRT2 = math.sqrt(2.0)
_UNSEEN = -1.6375e30  # healpy.UNSEEN: no value

def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.colors  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.image  # noqa: F401
    except ImportError as error:
        raise ImportError("pyg_sphere.plotting needs matplotlib: "
                          "pip install pyg-sphere[plot]") from error
    return matplotlib


def _positions(data: Any) -> np.ndarray:
    """``data.pos`` as float64 unit vectors [n, 3] (numpy)."""
    pos = getattr(data, 'pos', None)
    if pos is None:
        raise ValueError(f"Expected 'data' to be a sampling with 'pos' [n, 3] (unit vectors), "
                         f"as made by pyg_sphere.samplings (got {type(data).__name__} "
                         f"without 'pos')")
    if isinstance(pos, torch.Tensor):
        pos = pos.detach().cpu().double().numpy()
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] == 0:
        raise ValueError(f"Expected 'data.pos' to have shape [n, 3] with n >= 1 "
                         f"(got {tuple(pos.shape)})")
    if not np.isfinite(pos).all():
        raise ValueError("Expected 'data.pos' to be finite (got non-finite positions)")
    norm = np.linalg.norm(pos, axis=1, keepdims=True)
    if (norm == 0).any():
        raise ValueError("Expected 'data.pos' to hold unit vectors (got a zero vector)")
    return pos / norm


def _values(values: Any, n: int, name: str = 'values') -> np.ndarray:
    """Per-pixel values as a float64 numpy array [n] (NaN = no value)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        values = values.double() if not values.is_complex() else values
        values = values.numpy()
    try:
        arr = np.asarray(values)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"Expected '{name}' to be a 1-D array of numbers "
                         f"(got {_got(values)})") from error
    if arr.ndim != 1:
        raise ValueError(f"Expected '{name}' to be 1-D, one value per pixel "
                         f"(got shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"Expected '{name}' to hold real numbers (got dtype {arr.dtype})")
    if arr.shape[0] != n:
        raise ValueError(f"Expected '{name}' to have {n} entries, one per pixel "
                         f"(got {arr.shape[0]})")
    arr = arr.astype(np.float64)
    arr[np.isclose(arr, _UNSEEN, rtol=1e-6, atol=0)] = np.nan  # also UNSEEN cast to float32
    if np.isinf(arr).any():
        bad = int(np.flatnonzero(np.isinf(arr))[0])
        raise ValueError(f"Expected '{name}' to be finite or NaN (no value), but "
                         f"{name}[{bad}] is {arr[bad]}")
    return arr


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral):
        raise ValueError(f"Expected 'resolution' to be an integer image width in pixels "
                         f"(got {_got(resolution)})")
    if not 16 <= int(resolution) <= 10000:
        raise ValueError(f"Expected 'resolution' in [16, 10000] pixels (got {int(resolution)})")
    return int(resolution)


def _classes(values: np.ndarray, labels: Optional[Sequence[str]]) -> List[str]:
    """Check that ``values`` are class indices; return the class names."""
    finite = values[np.isfinite(values)]
    if finite.size and not np.array_equal(finite, np.round(finite)):
        bad = finite[finite != np.round(finite)][0]
        raise ValueError(f"Expected 'values' to hold integer class indices when "
                         f"categorical=True (got {bad:g})")
    if labels is None:
        count = int(finite.max()) + 1 if finite.size else 1
        names = [str(i) for i in range(max(count, 1))]
    else:
        if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) == 0:
            raise ValueError(f"Expected 'labels' to be a non-empty sequence of class names "
                             f"(got {_got(labels)})")
        names = [str(label) for label in labels]
    if finite.size and (finite.min() < 0 or finite.max() >= len(names)):
        bad = finite.min() if finite.min() < 0 else finite.max()
        raise ValueError(f"Expected 'values' to hold class indices in [0, {len(names) - 1}] "
                         f"for {len(names)} classes (got {int(bad)})")
    return names


def _check_path(path: Any) -> Tuple[Path, str]:
    """Return ``(path, format)``; the format comes from the file suffix."""
    mpl = _matplotlib()
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a file path (got {_got(path)})")
    path = Path(path)
    supported = mpl.figure.Figure().canvas.get_supported_filetypes()
    fmt = path.suffix[1:].lower()
    if fmt not in supported:
        raise ValueError(f"Expected 'path' to end in one of "
                         f"{tuple('.' + s for s in sorted(supported))} (got {path.name!r})")
    return path, fmt


def _save(fig: Any, path: Path, fmt: str, dpi: int) -> Path:
    """Save ``fig`` to ``path`` atomically (:func:`pyg_sphere.utils.atomic_write`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))
