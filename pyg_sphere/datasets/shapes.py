r"""3D shape classification on the sphere, the data side of the SHREC'17 task
of `Cohen et al. (2018) <https://arxiv.org/abs/1801.10130>`_ and
`DeepSphere (Defferrard et al. 2020) <https://arxiv.org/abs/2012.15000>`_.

Each mesh is projected onto a spherical sampling with
:func:`~pyg_sphere.transforms.project_mesh` (6 channels,
:obj:`~pyg_sphere.transforms.MESH_CHANNELS`). Two sources of meshes:

* :class:`ProceduralShapes`: parametric solids with random proportions
  (:func:`generate_shape`), generated in seconds, no download;
* :class:`MeshFolder`: a directory of real meshes, one folder per class
  (ModelNet layout), read with ``trimesh`` (``pip install pyg-sphere[shapes]``).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from ._progress import progress as _progress
from .._validation import _got, check_choice, check_int, check_pos
from ..transforms.mesh_projection import (MESH_CENTERS, MESH_CHANNELS, MESH_ROTATIONS,
                                          _check_translate, _describe_sampling, project_mesh)
from . import _cache

#: Classes of :func:`generate_shape`; the label of a class is its position here.
SHAPE_CLASSES: Tuple[str, ...] = ('box', 'ellipsoid', 'cylinder', 'cone', 'torus', 'capsule',
                                  'pyramid', 'l_prism')
#: Dataset splits.
SHAPE_SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: Mesh file formats read by :func:`load_mesh` (file extensions, lower case).
MESH_FORMATS: Tuple[str, ...] = ('off', 'obj', 'stl', 'ply')
#: Default fractions of the meshes of a class in train / val / test
#: (:class:`MeshFolder` without train/test folders).
MESH_SPLIT_FRACTIONS: Tuple[float, float, float] = (0.7, 0.1, 0.2)

_FORMAT = 1  # bump when generation or projection changes the cached values
_SEGMENTS = 32  # vertices around the axis of the solids of revolution and the torus
_RINGS = 16  # latitude rings of the round solids, tube segments of the torus


# -- parametric solids ----------------------------------------------------------

def _revolve(r: Sequence[float], z: Sequence[float], segments: int = _SEGMENTS
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Closed surface of revolution about z of the profile ``(r[k], z[k])``,
    from the bottom pole (``r[0] = 0``) to the top pole (``r[-1] = 0``),
    faces counter-clockwise seen from outside."""
    r, z = np.asarray(r, dtype=np.float64), np.asarray(z, dtype=np.float64)
    assert r[0] == 0 and r[-1] == 0 and np.all(r[1:-1] > 0)
    phi = 2 * np.pi * np.arange(segments) / segments
    rings = np.stack([np.outer(r[1:-1], np.cos(phi)), np.outer(r[1:-1], np.sin(phi)),
                      np.repeat(z[1:-1, None], segments, axis=1)], axis=-1).reshape(-1, 3)
    bottom, top = len(rings), len(rings) + 1
    vertices = np.concatenate([rings, [[0, 0, z[0]], [0, 0, z[-1]]]])
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = [np.stack([np.full(segments, bottom), jn, j], axis=1)]
    for k in range(len(r) - 3):
        lo, hi = k * segments, (k + 1) * segments
        faces.append(np.stack([lo + j, lo + jn, hi + jn], axis=1))
        faces.append(np.stack([lo + j, hi + jn, hi + j], axis=1))
    last = (len(r) - 3) * segments
    faces.append(np.stack([np.full(segments, top), last + j, last + jn], axis=1))
    return vertices, np.concatenate(faces).astype(np.int64)


def _extrude(polygon: Sequence[Sequence[float]], triangles: Sequence[Sequence[int]],
             height: float) -> Tuple[np.ndarray, np.ndarray]:
    """Prism of a simple counter-clockwise polygon [m, 2] (triangulated by
    ``triangles``, counter-clockwise), from z = -height / 2 to height / 2."""
    p = np.asarray(polygon, dtype=np.float64)
    m = len(p)
    tri = np.asarray(triangles, dtype=np.int64)
    vertices = np.concatenate([np.c_[p, np.full(m, -height / 2)],
                               np.c_[p, np.full(m, height / 2)]])
    i = np.arange(m)
    i1 = (i + 1) % m
    sides = np.concatenate([np.stack([i, i1, m + i1], axis=1),
                            np.stack([i, m + i1, m + i], axis=1)])
    faces = np.concatenate([tri[:, ::-1], tri + m, sides])
    return vertices, faces


def _arc(radius: float, z0: float, start: float, stop: float, steps: int) -> Tuple:
    """Profile points of a circular arc of centre (0, z0), polar angle from
    the -z axis going from ``start`` to ``stop`` (radians)."""
    t = np.linspace(start, stop, steps + 1)
    return radius * np.sin(t), z0 - radius * np.cos(t)


def _box(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b, c = rng.uniform(0.3, 1.0, size=3)
    return _extrude([(-a, -b), (a, -b), (a, b), (-a, b)], [(0, 1, 2), (0, 2, 3)], 2 * c)


def _ellipsoid(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b, c = rng.uniform(0.3, 1.0, size=3)
    r, z = _arc(1.0, 0.0, 0.0, np.pi, _RINGS)
    r[0] = r[-1] = 0.0
    v, f = _revolve(r, z)
    return v * np.array([a, b, c]), f


def _cylinder(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, half = rng.uniform(0.3, 0.8), rng.uniform(0.3, 1.0)
    side = np.linspace(-half, half, 5)
    r = np.r_[0, radius / 2, np.full(5, radius), radius / 2, 0]
    return _revolve(r, np.r_[-half, -half, side, half, half])


def _cone(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, height = rng.uniform(0.3, 0.8), rng.uniform(0.6, 2.0)
    t = np.linspace(0.0, 1.0, 5)  # from the base rim to the apex
    r = np.r_[0, radius / 2, radius * (1 - t)]
    return _revolve(r, np.r_[-height / 3, -height / 3, height * (t - 1 / 3)])


def _capsule(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, half = rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.0)
    steps = _RINGS // 2
    rb, zb = _arc(radius, -half, 0.0, np.pi / 2, steps)
    rt, zt = _arc(radius, half, np.pi / 2, np.pi, steps)
    r = np.concatenate([rb, np.full(3, radius), rt])
    z = np.concatenate([zb, [-half / 2, 0.0, half / 2], zt])
    r[0] = r[-1] = 0.0
    return _revolve(r, z)


def _torus(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    major = rng.uniform(0.5, 1.0)
    minor = major * rng.uniform(0.15, 0.5)
    theta = 2 * np.pi * np.arange(_SEGMENTS) / _SEGMENTS
    psi = 2 * np.pi * np.arange(_RINGS) / _RINGS
    t, p = np.meshgrid(theta, psi, indexing='ij')
    ring = major + minor * np.cos(p)
    vertices = np.stack([ring * np.cos(t), ring * np.sin(t), minor * np.sin(p)],
                        axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(_SEGMENTS), np.arange(_RINGS), indexing='ij')
    i1, j1 = (i + 1) % _SEGMENTS, (j + 1) % _RINGS
    idx = lambda a, b: (a * _RINGS + b).ravel()  # noqa: E731
    faces = np.concatenate([np.stack([idx(i, j), idx(i1, j), idx(i1, j1)], axis=1),
                            np.stack([idx(i, j), idx(i1, j1), idx(i, j1)], axis=1)])
    return vertices, faces


def _pyramid(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b = rng.uniform(0.3, 1.0, size=2)
    height = rng.uniform(0.5, 2.0)
    z0 = -height / 3
    vertices = np.array([(-a, -b, z0), (a, -b, z0), (a, b, z0), (-a, b, z0),
                         (0.0, 0.0, z0 + height)])
    faces = np.array([(0, 2, 1), (0, 3, 2), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)])
    return vertices, faces


def _l_prism(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    w, h = rng.uniform(0.6, 1.2, size=2)
    t = min(w, h) * rng.uniform(0.2, 0.45)
    depth = rng.uniform(0.2, 0.8)
    polygon = [(0, 0), (w, 0), (w, t), (t, t), (t, h), (0, h)]
    v, f = _extrude(polygon, [(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 5)], depth)
    return v - np.array([w / 3, h / 3, 0.0]), f


_GENERATORS: Dict[str, Callable[[np.random.Generator], Tuple[np.ndarray, np.ndarray]]] = {
    'box': _box, 'ellipsoid': _ellipsoid, 'cylinder': _cylinder, 'cone': _cone,
    'torus': _torus, 'capsule': _capsule, 'pyramid': _pyramid, 'l_prism': _l_prism,
}
assert tuple(_GENERATORS) == SHAPE_CLASSES


def _as_rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"Expected 'rng' to be a numpy Generator, an int or None (got {_got(rng)})")


def generate_shape(cls_name: str, rng: Any = None) -> Tuple[np.ndarray, np.ndarray]:
    r"""A closed triangle mesh of class ``cls_name`` with random proportions.

    Classes (:obj:`SHAPE_CLASSES`), axis-aligned (z up), lengths uniform in
    the ranges below:

    * ``'box'``: half sides in :math:`[0.3, 1]`, 12 triangles;
    * ``'ellipsoid'``: semi-axes in :math:`[0.3, 1]`;
    * ``'cylinder'``: radius in :math:`[0.3, 0.8]`, half height in
      :math:`[0.3, 1]`, flat caps;
    * ``'cone'``: base radius in :math:`[0.3, 0.8]`, height in :math:`[0.6, 2]`;
    * ``'torus'``: major radius :math:`R \in [0.5, 1]`, tube radius
      :math:`r \in [0.15, 0.5] R`;
    * ``'capsule'``: a cylinder of radius :math:`[0.2, 0.5]` and half length
      :math:`[0.3, 1]` closed by hemispheres;
    * ``'pyramid'``: rectangular base of half sides in :math:`[0.3, 1]`,
      height in :math:`[0.5, 2]`, 6 triangles;
    * ``'l_prism'``: an L-shaped polygon (legs :math:`[0.6, 1.2]`, thickness
      :math:`[0.2, 0.45]` of the shorter leg) extruded by :math:`[0.2, 0.8]`
      (non-convex: differs from its hull).

    Round solids have 32 vertices around their axis and 16 rings. Every mesh
    is closed (each edge in two triangles, in opposite directions) and its
    triangles are counter-clockwise seen from outside (positive volume).

    Args:
        cls_name (str): one of :obj:`SHAPE_CLASSES`.
        rng (numpy.random.Generator or int, optional): source of randomness
            or seed. (default: :obj:`None`, fresh entropy)

    Returns:
        ``(vertices [V, 3] float64, faces [F, 3] int64)``.

    Example:
        >>> v, f = generate_shape('box', 0)
        >>> v.shape, f.shape
        ((8, 3), (12, 3))
    """
    cls_name = check_choice('cls_name', cls_name, SHAPE_CLASSES)
    return _GENERATORS[cls_name](_as_rng(rng))


# -- mesh files -----------------------------------------------------------------

def _import_trimesh() -> Any:
    try:
        import trimesh
    except ImportError as err:
        raise ImportError("Reading mesh files needs the 'trimesh' package: "
                          "pip install pyg-sphere[shapes] (or pip install trimesh)") from err
    return trimesh


def load_mesh(path: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from an OFF, OBJ, STL or PLY file with
    `trimesh <https://trimesh.org>`_ (``pip install pyg-sphere[shapes]``).

    Polygons are triangulated, the vertices are kept as in the file (no
    merging, no repair); files holding several objects are concatenated.

    Args:
        path (str or os.PathLike): the file; its extension (one of
            :obj:`MESH_FORMATS`, any case) gives the format.

    Returns:
        ``(vertices [V, 3] float64, faces [F, 3] int64)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown extension, unreadable file, or no triangles.
        ImportError: trimesh is not installed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a str or os.PathLike (got {_got(path)})")
    path = Path(path)
    ext = path.suffix.lower().lstrip('.')
    if ext not in MESH_FORMATS:
        raise ValueError(f"Expected 'path' to have one of the extensions {MESH_FORMATS} "
                         f"(got '{path.name}')")
    if not path.is_file():
        raise FileNotFoundError(f"Expected 'path' to be an existing mesh file (got '{path}')")
    trimesh = _import_trimesh()
    try:
        mesh = trimesh.load(str(path), file_type=ext, force='mesh', process=False)
        vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    except Exception as err:  # trimesh raises many kinds of errors on bad files
        raise ValueError(f"Could not read a triangle mesh from '{path}': "
                         f"{type(err).__name__}: {err}") from err
    if faces.shape[0] == 0 or vertices.shape[0] < 3:
        raise ValueError(f"Expected '{path}' to hold a non-empty triangle mesh (got "
                         f"{vertices.shape[0]} vertices and {faces.shape[0]} triangles)")
    if not np.isfinite(vertices).all():
        raise ValueError(f"Expected the vertices of '{path}' to be finite (got NaN or inf)")
    return vertices, faces


# -- shared dataset machinery -----------------------------------------------------

def _check_sampling(sampling: Any) -> Data:
    if not isinstance(sampling, Data) or not isinstance(getattr(sampling, 'pos', None),
                                                       torch.Tensor):
        raise ValueError(f"Expected 'sampling' to be a Data with 'pos' (a sampling from "
                         f"pyg_sphere.samplings) (got {_got(sampling)})")
    check_pos(sampling.pos, 'sampling.pos')
    return sampling


def _pose(rng: np.random.Generator, rotate: str, translate: float
          ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Random rotation (``rotate``) and translation (uniform direction, length
    uniform in [0, translate]) drawn from ``rng``."""
    from ..rotation import random_rotation
    rotation = translation = None
    if rotate != 'none':
        rotation = random_rotation(1, seed=rng, axis='z' if rotate == 'z' else None)[0]
    if translate > 0:
        direction = rng.standard_normal(3)
        translation = direction / np.linalg.norm(direction) * rng.uniform() * translate
    return rotation, translation


def _digest(params: Dict[str, Any]) -> str:
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(root: Optional[Any], name: str, params: Dict[str, Any], force_reload: bool,
            build: Callable[[], Tuple[np.ndarray, np.ndarray]]
            ) -> Tuple[np.ndarray, np.ndarray]:
    """``build()`` -> (X, y), cached in ``root`` as ``{name}_{key}.npz`` beside
    ``{name}_{key}.json`` (the parameters), ``key`` a digest of ``params``.
    Files are written atomically (temporary file + ``os.replace``)."""
    if root is None:
        return build()
    root = Path(os.path.expanduser(str(root)))
    key = _digest(params)
    path = root / f'{name}_{key}.npz'
    if not force_reload and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return f['X'], f['y']
        except (OSError, ValueError, KeyError):
            pass  # unreadable: rebuild
    X, y = build()
    root.mkdir(parents=True, exist_ok=True)
    _cache.save_npz(path, X=X, y=y)
    _cache.save_json(root / f'{name}_{key}.json', params)
    return X, y


class _DenseSphereDataset(InMemoryDataset):
    """Samples ``Data(x [n, 6], y [1], pos [n, 3])`` stored as one dense block."""

    def _set_tensors(self, X: np.ndarray, y: np.ndarray, sampling: Data) -> None:
        X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        y = torch.from_numpy(np.asarray(y, dtype=np.int64))
        num, n = X.size(0), X.size(1)
        self._pos = sampling.pos
        self.data = Data(x=X.view(num * n, X.size(2)), y=y)
        self.slices = {'x': torch.arange(num + 1) * n, 'y': torch.arange(num + 1)}
        self._n = n

    def get(self, idx: int) -> Data:
        data = super().get(idx)
        data.pos = self._pos
        return data

    def tensors(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """All samples as dense tensors ``(X [N, n, 6] float32, y [N] long)``,
        ``transform`` not applied; channels in the order of
        :obj:`~pyg_sphere.transforms.MESH_CHANNELS`, pixels in the order of
        ``sampling.pos``."""
        X = self._data.x.view(-1, self._n, self._data.x.size(-1))
        y = self._data.y
        if self._indices is not None:
            sel = torch.as_tensor(list(self.indices()), dtype=torch.long)
            X, y = X[sel], y[sel]
        return X, y


# -- procedural shapes ----------------------------------------------------------

class ProceduralShapes(_DenseSphereDataset):
    r"""Parametric solids of random proportions projected onto a sphere: a
    small, download-free stand-in for the SHREC'17 task of
    `Cohen et al. (2018) <https://arxiv.org/abs/1801.10130>`_.

    Sample :math:`j` of class :math:`c` in a split is :func:`generate_shape`
    with a generator seeded by ``(seed, split, c, j)`` (``c`` the position in
    :obj:`SHAPE_CLASSES`, so a sample does not depend on ``classes`` or on
    the other samples), posed by the same generator (``rotate``, then a
    translation in a uniform direction of length uniform in
    :math:`[0, \text{translate}]`) and projected with
    :func:`~pyg_sphere.transforms.project_mesh`. Samples are sorted by
    class: labels ``0 .. len(classes) - 1`` in the order of ``classes``.

    Each sample is a :class:`~torch_geometric.data.Data` with ``x`` [n, 6]
    (float32, :obj:`~pyg_sphere.transforms.MESH_CHANNELS`), ``y`` [1] and
    ``pos`` [n, 3] (the pixels of ``sampling``).

    Args:
        sampling (Data): the pixels, e.g. ``healpix(16)``.
        split (str, optional): one of :obj:`SHAPE_SPLITS`. (default: ``'train'``)
        n_per_class (int, optional): samples per class. (default: :obj:`40`)
        seed (int, optional): master seed, >= 0. (default: :obj:`0`)
        rotate (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift, in units of the
            normalized radius. (default: :obj:`0.0`)
        center (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_CENTERS`. (default: ``'bbox'``)
        classes (sequence of str, optional): a subset of :obj:`SHAPE_CLASSES`.
            (default: all)
        root (str, optional): directory caching the projected tensors (one
            ``.npz`` per parameter set, with a ``.json`` of the parameters).
            (default: :obj:`None`, no cache)
        transform (callable, optional): applied to each sample on access.
        force_reload (bool, optional): regenerate even if cached.
            (default: :obj:`False`)
        log (bool, optional): show a progress bar. (default: :obj:`False`)

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> ds = ProceduralShapes(healpix(4), n_per_class=2, classes=('box', 'torus'))
        >>> ds
        ProceduralShapes(4)
        >>> X, y = ds.tensors()
        >>> X.shape, y.tolist()
        (torch.Size([4, 192, 6]), [0, 0, 1, 1])
    """
    def __init__(self, sampling: Data, split: str = 'train', n_per_class: int = 40,
                 seed: int = 0, rotate: str = 'none', translate: float = 0.0,
                 center: str = 'bbox', classes: Sequence[str] = SHAPE_CLASSES,
                 root: Optional[str] = None, transform: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = False) -> None:
        self.sampling = _check_sampling(sampling)
        self.split = check_choice('split', split, SHAPE_SPLITS)
        self.n_per_class = check_int('n_per_class', n_per_class, minimum=1)
        self.seed = check_int('seed', seed, minimum=0)
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = _check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
            raise ValueError(f"Expected 'classes' to be a non-empty sequence of names from "
                             f"{SHAPE_CLASSES} (got {classes!r})")
        for name in classes:
            check_choice('classes', name, SHAPE_CLASSES)
        if len(set(classes)) != len(classes):
            raise ValueError(f"Expected 'classes' to have no duplicates (got {tuple(classes)})")
        self.classes = tuple(classes)
        super().__init__(None, transform)
        params = {'format': _FORMAT, 'sampling': _describe_sampling(self.sampling),
                  'split': self.split, 'n_per_class': self.n_per_class, 'seed': self.seed,
                  'rotate': self.rotate, 'translate': self.translate, 'center': self.center,
                  'classes': list(self.classes)}
        X, y = _cached(root, f'shapes_{self.split}', params, force_reload,
                       lambda: self._generate(log))
        self._set_tensors(X, y, self.sampling)

    def mesh(self, label: int, index: int) -> Tuple[np.ndarray, np.ndarray, Any, Any]:
        """``(vertices, faces, rotation, translation)`` of sample ``index`` of
        class ``classes[label]`` (before normalization and pose)."""
        label = check_int('label', label, minimum=0)
        index = check_int('index', index, minimum=0)
        if label >= len(self.classes) or index >= self.n_per_class:
            raise ValueError(f"Expected 'label' < {len(self.classes)} and 'index' < "
                             f"{self.n_per_class} (got {label}, {index})")
        name = self.classes[label]
        rng = np.random.default_rng([self.seed, SHAPE_SPLITS.index(self.split),
                                     SHAPE_CLASSES.index(name), index])
        vertices, faces = generate_shape(name, rng)
        rotation, translation = _pose(rng, self.rotate, self.translate)
        return vertices, faces, rotation, translation

    def _generate(self, log: bool) -> Tuple[np.ndarray, np.ndarray]:
        n = self.sampling.pos.size(0)
        num = len(self.classes) * self.n_per_class
        X = np.empty((num, n, len(MESH_CHANNELS)), dtype=np.float32)
        y = np.repeat(np.arange(len(self.classes)), self.n_per_class)
        bar = _progress(num, f'ProceduralShapes {self.split}', log)
        for i in range(num):
            vertices, faces, rotation, translation = self.mesh(int(y[i]), i % self.n_per_class)
            X[i] = project_mesh(vertices, faces, self.sampling.pos, center=self.center,
                                rotation=rotation, translation=translation).float().numpy()
            bar.update()
        bar.close()
        return X, y


# -- mesh folders -----------------------------------------------------------------

def _check_fractions(fractions: Any) -> Tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        values = ()
    if (len(values) != 3 or not all(math.isfinite(f) and f >= 0 for f in values)
            or abs(sum(values) - 1) > 1e-6):
        raise ValueError(f"Expected 'split_fractions' to be 3 numbers >= 0 summing to 1 "
                         f"(got {fractions!r})")
    return values


def _split_files(files: List[Path], fractions: Sequence[float], seed: int,
                 cls: str) -> Dict[str, List[Path]]:
    """Seeded split of the sorted ``files`` of a class by ``fractions``
    (rounded cumulative counts, so the parts add up)."""
    rng = np.random.default_rng([seed, zlib.crc32(cls.encode())])
    perm = rng.permutation(len(files))
    cuts = np.round(np.cumsum(fractions) * len(files)).astype(int)
    parts = np.split(perm, cuts[:-1])
    return {s: sorted(files[i] for i in p) for s, p in zip(SHAPE_SPLITS, parts)}


class MeshFolder(_DenseSphereDataset):
    r"""A directory of mesh files, one folder per class, projected onto a
    sphere with :func:`~pyg_sphere.transforms.project_mesh` (the SHREC'17 /
    ModelNet setting of `Cohen et al. (2018)
    <https://arxiv.org/abs/1801.10130>`_).

    Layouts (decided per class folder):

    * ModelNet: ``root/<class>/train/*.off`` and ``root/<class>/test/*.off``.
      ``test`` is the test folder; the train folder is split into train and
      val in the ratio ``split_fractions[0] : split_fractions[1]``.
    * Plain: ``root/<class>/*.off``, split into train / val / test by
      ``split_fractions`` (seeded by ``seed`` and the class name).

    Classes are the sub-folders of ``root`` holding mesh files (extensions
    :obj:`MESH_FORMATS`), sorted by name; labels are their positions. The
    files of a split are sorted by class, then by path. Each mesh is read
    with :func:`load_mesh` (needs ``trimesh``), posed with a generator seeded
    by ``(seed, split, path)`` and projected. Samples are as in
    :class:`ProceduralShapes`; ``classes`` holds the class names and
    ``files`` the paths, in the order of the samples.

    Args:
        root (str): the directory of class folders.
        sampling (Data): the pixels, e.g. ``healpix(32)``.
        split (str, optional): one of :obj:`SHAPE_SPLITS`. (default: ``'train'``)
        rotate (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift. (default: :obj:`0.0`)
        center (str, optional): one of
            :obj:`~pyg_sphere.transforms.MESH_CENTERS`. (default: ``'bbox'``)
        seed (int, optional): seed of the split and the poses. (default: :obj:`0`)
        split_fractions (tuple, optional): train / val / test fractions.
            (default: :obj:`MESH_SPLIT_FRACTIONS`)
        cache_dir (str, optional): directory caching the projected tensors,
            keyed by the parameters and the files' paths, sizes and
            modification times. (default: :obj:`None`, no cache)
        transform (callable, optional): applied to each sample on access.
        force_reload (bool, optional): re-project even if cached.
            (default: :obj:`False`)
        log (bool, optional): show a progress bar. (default: :obj:`False`)
    """
    def __init__(self, root: str, sampling: Data, split: str = 'train', rotate: str = 'none',
                 translate: float = 0.0, center: str = 'bbox', seed: int = 0,
                 split_fractions: Sequence[float] = MESH_SPLIT_FRACTIONS,
                 cache_dir: Optional[str] = None, transform: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = False) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"Expected 'root' to be a str or os.PathLike (got {_got(root)})")
        self.folder = Path(os.path.expanduser(str(root)))
        if not self.folder.is_dir():
            raise ValueError(f"Expected 'root' to be an existing directory (got '{root}')")
        self.sampling = _check_sampling(sampling)
        self.split = check_choice('split', split, SHAPE_SPLITS)
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = _check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        self.seed = check_int('seed', seed, minimum=0)
        self.split_fractions = _check_fractions(split_fractions)
        self.classes, self.files, labels = self._scan()
        super().__init__(None, transform)
        stats = [(str(p.relative_to(self.folder)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in self.files]
        params = {'format': _FORMAT, 'sampling': _describe_sampling(self.sampling),
                  'folder': str(self.folder.resolve()), 'split': self.split,
                  'rotate': self.rotate, 'translate': self.translate, 'center': self.center,
                  'seed': self.seed, 'split_fractions': list(self.split_fractions),
                  'classes': list(self.classes), 'files': stats}
        X, y = _cached(cache_dir, f'meshes_{self.split}', params, force_reload,
                       lambda: self._project(labels, log))
        self._set_tensors(X, y, self.sampling)

    def _mesh_files(self, folder: Path) -> List[Path]:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower().lstrip('.') in MESH_FORMATS)

    def _scan(self) -> Tuple[Tuple[str, ...], List[Path], List[int]]:
        folders = sorted(p for p in self.folder.iterdir() if p.is_dir())
        classes, per_class = [], []
        for folder in folders:
            subdirs = [folder / s for s in ('train', 'test') if (folder / s).is_dir()]
            if subdirs:
                train = self._mesh_files(folder / 'train') if (folder / 'train').is_dir() else []
                test = self._mesh_files(folder / 'test') if (folder / 'test').is_dir() else []
                if not train and not test:
                    continue
                f_train, f_val = self.split_fractions[:2]
                total = f_train + f_val
                parts = _split_files(train, (f_train / total, f_val / total, 0.0)
                                     if total > 0 else (1.0, 0.0, 0.0), self.seed, folder.name)
                parts['test'] = test
            else:
                files = self._mesh_files(folder)
                if not files:
                    continue
                parts = _split_files(files, self.split_fractions, self.seed, folder.name)
            classes.append(folder.name)
            per_class.append(parts[self.split])
        if not classes:
            raise ValueError(f"Expected 'root' to hold class folders with mesh files "
                             f"({', '.join('*.' + e for e in MESH_FORMATS)}) directly or in "
                             f"train/ and test/ sub-folders (got none in '{self.folder}')")
        files = [p for part in per_class for p in part]
        if not files:
            raise ValueError(f"Expected split '{self.split}' of '{self.folder}' to hold at "
                             f"least one mesh file (got none; split_fractions="
                             f"{self.split_fractions})")
        labels = [c for c, part in enumerate(per_class) for _ in part]
        return tuple(classes), files, labels

    def _project(self, labels: List[int], log: bool) -> Tuple[np.ndarray, np.ndarray]:
        n = self.sampling.pos.size(0)
        X = np.empty((len(self.files), n, len(MESH_CHANNELS)), dtype=np.float32)
        bar = _progress(len(self.files), f'MeshFolder {self.split}', log)
        split_id = SHAPE_SPLITS.index(self.split)
        for i, path in enumerate(self.files):
            vertices, faces = load_mesh(path)
            rel = str(path.relative_to(self.folder)).replace(os.sep, '/')
            rng = np.random.default_rng([self.seed, split_id, zlib.crc32(rel.encode())])
            rotation, translation = _pose(rng, self.rotate, self.translate)
            try:
                x = project_mesh(vertices, faces, self.sampling.pos, center=self.center,
                                 rotation=rotation, translation=translation)
            except ValueError as err:
                raise ValueError(f"Could not project the mesh '{path}': {err}") from err
            X[i] = x.float().numpy()
            bar.update()
        bar.close()
        return X, np.asarray(labels, dtype=np.int64)
