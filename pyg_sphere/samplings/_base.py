"""What every sampling returns: a PyG ``Data`` with ``pos`` and a descriptor."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from torch_geometric.data import Data

# name -> function that rebuilds the sampling from its parameters
_REGISTRY: Dict[str, Callable[..., Data]] = {}
# name -> function(data) -> float64 tensor [n] of pixel areas (steradians)
_AREAS: Dict[str, Callable[[Data], torch.Tensor]] = {}


def register(name: str) -> Callable[[Callable[..., Data]], Callable[..., Data]]:
    def wrap(fn: Callable[..., Data]) -> Callable[..., Data]:
        _REGISTRY[name] = fn
        return fn
    return wrap


def register_area(name: str) -> Callable:
    def wrap(fn: Callable[[Data], torch.Tensor]) -> Callable[[Data], torch.Tensor]:
        _AREAS[name] = fn
        return fn
    return wrap


def sampling_positions(sampling: Any, name: str = 'sampling') -> torch.Tensor:
    """The unit vectors [n, 3] of ``sampling``: a ``Data`` with ``pos`` (e.g.
    made by :mod:`pyg_sphere.samplings`) or the tensor itself, checked to be
    finite unit vectors (ValueError naming ``name`` otherwise)."""
    from .._validation import _got, check_pos
    if isinstance(sampling, Data):
        pos = getattr(sampling, 'pos', None)
        if not isinstance(pos, torch.Tensor):
            raise ValueError(f"Expected '{name}' to have a 'pos' attribute [n, 3] (a sampling "
                             f"from pyg_sphere.samplings) (got a Data without pos)")
        return check_pos(pos, f'{name}.pos')
    if isinstance(sampling, torch.Tensor):
        return check_pos(sampling, name)
    raise ValueError(f"Expected '{name}' to be a Data with 'pos' [n, 3] (a sampling from "
                     f"pyg_sphere.samplings) or a tensor [n, 3] of unit vectors (got "
                     f"{_got(sampling)})")


def sampling_key(data: Data) -> str:
    """A short, stable text naming the pixels of ``data``, for cache keys.

    Built-in samplings are named by their descriptor (``data.sampling``),
    plus a digest of ``data.ipix`` for a partial sky; anything else by a
    digest of the bytes of ``data.pos``.
    """
    import hashlib

    def digest(t: torch.Tensor) -> str:
        raw = t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
        return hashlib.blake2b(raw.tobytes(), digest_size=8).hexdigest()

    desc = getattr(data, 'sampling', None)
    if isinstance(desc, SphereSampling) and desc.name != 'points':
        ipix = getattr(data, 'ipix', None)
        return repr(desc) if ipix is None else f'{desc!r}[ipix={digest(ipix.long())}]'
    pos = sampling_positions(data, 'data')
    return f'points(n={pos.size(0)}, digest={digest(pos)!r})'


def pixel_area(data: Data) -> torch.Tensor:
    r"""Pixel areas (quadrature weights) in steradians, float64 tensor [n].

    For a full-sky sampling they sum to :math:`4\pi`. Defined for every
    built-in sampling: exact cell areas for HEALPix, equiangular and cubed
    grids, Gauss-Legendre quadrature weights, and spherical Voronoi cell areas
    for icosahedral grids and arbitrary points.
    """
    sampling = getattr(data, 'sampling', None)
    if not isinstance(sampling, SphereSampling):
        raise ValueError(f"Expected 'data.sampling' to be a SphereSampling made by "
                         f"pyg_sphere.samplings (got {type(sampling).__name__})")
    if sampling.name not in _AREAS:
        raise ValueError(f"Pixel areas are not defined for sampling '{sampling.name}'")
    return _AREAS[sampling.name](data)


@dataclasses.dataclass(frozen=True)
class SphereSampling:
    r"""Immutable description of a sampling, stored as ``data.sampling``.

    It holds the sampling's name and the parameters that rebuild it, e.g.
    ``SphereSampling('healpix', {'nside': 64, 'nest': True})``. It is hashable
    and compares by value, so it can key caches. Use :meth:`rebuild` to get
    the full sampling back (for a partial sky the pixel subset is kept in
    ``data.ipix``, not here).
    """
    name: str
    params: tuple  # sorted (key, value) pairs of plain Python values

    def __init__(self, name: str, params: Optional[Dict[str, Any]] = None):
        object.__setattr__(self, 'name', name)
        object.__setattr__(self, 'params', tuple(sorted((params or {}).items())))

    def __getitem__(self, key: str) -> Any:
        for k, v in self.params:
            if k == key:
                return v
        raise KeyError(f"Sampling '{self.name}' has no parameter '{key}' "
                       f"(has {[k for k, _ in self.params]})")

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    @property
    def kwargs(self) -> Dict[str, Any]:
        return dict(self.params)

    def rebuild(self, **overrides: Any) -> Data:
        """Build the (full) sampling again, optionally with changed parameters."""
        if self.name not in _REGISTRY:
            raise ValueError(f"Sampling '{self.name}' cannot be rebuilt from its "
                             f"parameters alone")
        kwargs = self.kwargs
        kwargs.update(overrides)
        return _REGISTRY[self.name](**kwargs)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.params)
        return f'{self.name}({args})'


# Datasets save ``Data`` objects holding a sampling descriptor; allow-listing it
# lets them load with ``torch.load(weights_only=True)`` (PyG's first try).
if hasattr(torch.serialization, 'add_safe_globals'):
    torch.serialization.add_safe_globals([SphereSampling])


#: Rows normalised per pass of :func:`make_data` (its temporaries stay in cache).
_CHUNK_ROWS = 1 << 16


def make_data(xyz: Any, sampling: SphereSampling, dtype: Optional[torch.dtype],
              **extra: Any) -> Data:
    """Wrap unit vectors into a ``Data`` object: ``xyz`` is an [n, 3] array or
    the tuple of its three columns (as ``healpy.pix2vec`` returns them).

    Each row is divided by its norm in float64 and rounded once to ``dtype``,
    in chunks: at 10^7 points full-size temporaries cost more than the
    arithmetic."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"Expected 'dtype' to be a floating point dtype (got {dtype})")
    if isinstance(xyz, tuple):
        cols = [np.asarray(c, dtype=np.float64).reshape(-1) for c in xyz]
    else:
        xyz = np.asarray(xyz, dtype=np.float64)
        cols = [xyz[:, 0], xyz[:, 1], xyz[:, 2]]
    n = cols[0].shape[0]
    pos = torch.empty(n, 3, dtype=dtype)
    for a in range(0, n, _CHUNK_ROWS):
        part = [c[a:a + _CHUNK_ROWS] for c in cols]
        norm = part[0] * part[0]  # ((x^2 + y^2) + z^2): np.linalg.norm's order
        norm += part[1] * part[1]
        norm += part[2] * part[2]
        np.sqrt(norm, out=norm)
        for d in range(3):
            pos[a:a + _CHUNK_ROWS, d] = torch.from_numpy(part[d] / norm)
    data = Data(pos=pos)
    data.num_nodes = n
    data.sampling = sampling
    for key, value in extra.items():
        data[key] = value
    return data


def lonlat_to_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Longitude / latitude in radians to unit vectors [n, 3] (float64)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)


def xyz_to_lonlat(pos: Any) -> tuple:
    """Unit vectors [n, 3] to (lon, lat) in radians, lon in [0, 2 pi)."""
    if isinstance(pos, torch.Tensor):
        pos = pos.detach().cpu().double().numpy()
    pos = np.asarray(pos, dtype=np.float64)
    lon = np.mod(np.arctan2(pos[:, 1], pos[:, 0]), 2 * np.pi)
    lat = np.arcsin(np.clip(pos[:, 2] / np.linalg.norm(pos, axis=1), -1.0, 1.0))
    return lon, lat
