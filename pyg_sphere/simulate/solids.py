r"""Parametric solids with random proportions: closed, outward-oriented
triangle meshes (:func:`generate_shape`), the procedural stand-in for the
SHREC'17 meshes of the shapes task."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Dict, Sequence, Tuple

import numpy as np

from .._validation import _got, check_choice

#: Classes of :func:`generate_shape`; the label of a class is its position here.
SHAPE_CLASSES: Tuple[str, ...] = ('box', 'ellipsoid', 'cylinder', 'cone', 'torus', 'capsule',
                                  'pyramid', 'l_prism')

_SEGMENTS = 32  # vertices around the axis of the solids of revolution and the torus
_RINGS = 16  # latitude rings of the round solids, tube segments of the torus


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


