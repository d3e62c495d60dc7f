"""Building blocks of the parametric solids: closed, outward-oriented
triangle meshes (surfaces of revolution, sweeps, prisms) and their rigid
placement and union. Every function returns ``(vertices [V, 3] float64,
faces [F, 3] int64)`` with faces counter-clockwise seen from outside."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

Mesh = Tuple[np.ndarray, np.ndarray]

SEGMENTS = 32  # vertices around the axis of the solids of revolution and the torus
RINGS = 16  # latitude rings of the round solids, tube segments of the torus


def revolve(r: Sequence[float], z: Sequence[float], segments: int = SEGMENTS) -> Mesh:
    """Closed surface of revolution about z of the profile ``(r[k], z[k])``,
    from the bottom pole (``r[0] = 0``) to the top pole (``r[-1] = 0``),
    traversed counter-clockwise in the (r, z) half-plane (the solid on the
    left), faces counter-clockwise seen from outside."""
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


def sweep(r: Sequence[float], z: Sequence[float], segments: int = SEGMENTS) -> Mesh:
    """Closed genus-1 surface: the closed profile polygon ``(r[k], z[k])``
    (``r > 0``, counter-clockwise in the (r, z) half-plane, not repeating its
    first point) swept about z. A circle gives a torus, a rectangle a washer."""
    r, z = np.asarray(r, dtype=np.float64), np.asarray(z, dtype=np.float64)
    assert np.all(r > 0) and len(r) >= 3
    m = len(r)
    theta = 2 * np.pi * np.arange(segments) / segments
    vertices = np.stack([np.outer(np.cos(theta), r), np.outer(np.sin(theta), r),
                         np.broadcast_to(z, (segments, m))], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(segments), np.arange(m), indexing='ij')
    i1, j1 = (i + 1) % segments, (j + 1) % m
    idx = lambda a, b: (a * m + b).ravel()  # noqa: E731
    faces = np.concatenate([np.stack([idx(i, j), idx(i1, j), idx(i1, j1)], axis=1),
                            np.stack([idx(i, j), idx(i1, j1), idx(i, j1)], axis=1)])
    return vertices, faces


def _cross2(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def ear_clip(polygon: np.ndarray) -> np.ndarray:
    """Triangles [m - 2, 3] (counter-clockwise) of a simple counter-clockwise
    polygon [m, 2], by ear clipping."""
    left = list(range(len(polygon)))
    triangles = []
    while len(left) > 3:
        for k in range(len(left)):
            a, b, c = left[k - 1], left[k], left[(k + 1) % len(left)]
            pa, pb, pc = polygon[a], polygon[b], polygon[c]
            if _cross2(pa, pb, pc) <= 1e-12:
                continue  # reflex or flat corner
            inside = any(_cross2(pa, pb, polygon[q]) >= 0 and _cross2(pb, pc, polygon[q]) >= 0
                         and _cross2(pc, pa, polygon[q]) >= 0
                         for q in left if q not in (a, b, c))
            if not inside:
                triangles.append((a, b, c))
                left.pop(k)
                break
        else:  # pragma: no cover - a simple CCW polygon always has an ear
            raise AssertionError('not a simple counter-clockwise polygon')
    triangles.append(tuple(left))
    return np.asarray(triangles, dtype=np.int64)


def extrude(polygon: Sequence[Sequence[float]], height: float,
            triangles: Optional[Sequence[Sequence[int]]] = None) -> Mesh:
    """Prism of a simple counter-clockwise polygon [m, 2] (triangulated by
    ``triangles``, counter-clockwise, else by ear clipping), from
    z = -height / 2 to height / 2."""
    p = np.asarray(polygon, dtype=np.float64)
    m = len(p)
    tri = ear_clip(p) if triangles is None else np.asarray(triangles, dtype=np.int64)
    vertices = np.concatenate([np.c_[p, np.full(m, -height / 2)],
                               np.c_[p, np.full(m, height / 2)]])
    i = np.arange(m)
    i1 = (i + 1) % m
    sides = np.concatenate([np.stack([i, i1, m + i1], axis=1),
                            np.stack([i, m + i1, m + i], axis=1)])
    faces = np.concatenate([tri[:, ::-1], tri + m, sides])
    return vertices, faces


def arc(radius: float, z0: float, start: float, stop: float, steps: int) -> Tuple:
    """Profile points of a circular arc of centre (0, z0), polar angle from
    the -z axis going from ``start`` to ``stop`` (radians)."""
    t = np.linspace(start, stop, steps + 1)
    return radius * np.sin(t), z0 - radius * np.cos(t)


def box(center: Sequence[float], half: Sequence[float]) -> Mesh:
    """Axis-aligned box of half sides ``half`` centred at ``center``."""
    a, b, c = half
    v, f = extrude([(-a, -b), (a, -b), (a, b), (-a, b)], 2 * c, [(0, 1, 2), (0, 2, 3)])
    return v + np.asarray(center, dtype=np.float64), f


def rod(radius: float, z0: float, z1: float, segments: int = 12) -> Mesh:
    """Cylinder of ``radius`` along z from ``z0`` to ``z1`` with flat caps."""
    return revolve([0, radius, radius, 0], [z0, z0, z1, z1], segments)


def sphere(radius: float, center: Sequence[float], rings: int = RINGS // 2,
           segments: int = SEGMENTS // 2) -> Mesh:
    """Polyhedral sphere of ``radius`` centred at ``center``."""
    r, z = arc(radius, 0.0, 0.0, np.pi, rings)
    r[0] = r[-1] = 0.0
    v, f = revolve(r, z, segments)
    return v + np.asarray(center, dtype=np.float64), f


def rotation_to(axis: str) -> np.ndarray:
    """Proper rotation taking z to the axis ``'x'`` or ``'y'`` (det +1)."""
    if axis == 'x':
        return np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    assert axis == 'y'
    return np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def place(mesh: Mesh, rotation: Optional[np.ndarray] = None,
          shift: Sequence[float] = (0.0, 0.0, 0.0)) -> Mesh:
    """``R v + shift``; a proper rotation keeps the orientation."""
    v, f = mesh
    if rotation is not None:
        v = v @ np.asarray(rotation).T
    return v + np.asarray(shift, dtype=np.float64), f


def merge(*meshes: Mesh) -> Mesh:
    """Union of closed meshes as one mesh (vertices not shared: each part
    stays closed; parts may overlap, the ray cast keeps the outer hit)."""
    vertices, faces, offset = [], [], 0
    for v, f in meshes:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces).astype(np.int64)
