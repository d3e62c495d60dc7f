r"""Random perturbations of a triangle mesh, which make the procedural solids
look less like their parametric ideal: a smooth deformation, surface noise
and a missing part (:func:`perturb_mesh`), on a mesh first refined so that
they act on every face (:func:`subdivide_mesh`)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Tuple

import numpy as np

from .._validation import _got

#: Longest edge after :func:`subdivide_mesh` in :func:`perturb_mesh`, in units
#: of the mesh's radius (distance of the farthest vertex from the centre of
#: its bounding box).
MAX_EDGE = 0.15
#: Largest number of faces :func:`subdivide_mesh` makes in :func:`perturb_mesh`.
MAX_FACES = 20000


def _fraction(name: str, value: Any, upper: float, closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)):
        raise ValueError(f"Expected '{name}' to be a finite number (got {_got(value)})")
    value = float(value)
    if value < 0 or value > upper or (not closed and value == upper):
        bound = f"<= {upper}" if closed else f"< {upper}"
        raise ValueError(f"Expected '{name}' to be >= 0 and {bound} (got {value})")
    return value


def check_perturbation(deform: Any, noise: Any, partial: Any) -> Tuple[float, float, float]:
    """``(deform, noise, partial)`` as floats, checked to be in
    :math:`[0, 1]`, :math:`[0, 0.1]` and :math:`[0, 1)` (ValueError naming
    the argument otherwise)."""
    return (_fraction('deform', deform, 1.0, True), _fraction('noise', noise, 0.1, True),
            _fraction('partial', partial, 1.0, False))


def _frame(v: np.ndarray) -> Tuple[np.ndarray, float]:
    center = 0.5 * (v.min(0) + v.max(0))
    return center, float(np.linalg.norm(v - center, axis=1).max())


def subdivide_mesh(vertices: np.ndarray, faces: np.ndarray, max_edge: float,
                   max_faces: int = MAX_FACES) -> Tuple[np.ndarray, np.ndarray]:
    """Split every edge longer than ``max_edge`` (absolute length) at its
    midpoint, and each triangle into 2, 3 or 4 accordingly, until no edge is
    longer or the next pass would exceed ``max_faces`` faces. Edges are split
    once for both their triangles, so a closed mesh stays closed and the
    orientation of every triangle is kept; the surface does not move."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    while True:
        edges = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1)  # [F, 3, 2]
        key = np.sort(edges, axis=-1).reshape(-1, 2)
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        length = np.linalg.norm(v[unique[:, 0]] - v[unique[:, 1]], axis=1)
        long = length > max_edge
        n_long = int(long.sum())
        if n_long == 0:
            return v, f
        split = long[inverse].reshape(-1, 3)
        count = split.sum(1)
        if len(f) + int(count.sum()) > max_faces:
            return v, f
        mid_id = np.full(len(unique), -1, dtype=np.int64)
        mid_id[long] = len(v) + np.arange(n_long)
        v = np.concatenate([v, 0.5 * (v[unique[long, 0]] + v[unique[long, 1]])])
        mids = mid_id[inverse].reshape(-1, 3)  # midpoint of edge (k, k + 1), or -1
        # roll each face so that its split edges come first (one split: edge 0;
        # two splits: edges 0 and 1; the faces keep their orientation)
        roll = np.zeros(len(f), dtype=np.int64)
        roll[count == 1] = np.argmax(split[count == 1], axis=1)
        two = count == 2
        roll[two] = (np.argmin(split[two], axis=1) + 1) % 3
        idx = (np.arange(3)[None, :] + roll[:, None]) % 3
        a, m = np.take_along_axis(f, idx, 1), np.take_along_axis(mids, idx, 1)
        v0, v1, v2, m0, m1, m2 = a[:, 0], a[:, 1], a[:, 2], m[:, 0], m[:, 1], m[:, 2]
        out = [a[count == 0]]
        c = count == 1
        out += [np.stack([v0[c], m0[c], v2[c]], 1), np.stack([m0[c], v1[c], v2[c]], 1)]
        c = two
        out += [np.stack([m0[c], v1[c], m1[c]], 1), np.stack([v0[c], m0[c], m1[c]], 1),
                np.stack([v0[c], m1[c], v2[c]], 1)]
        c = count == 3
        out += [np.stack([v0[c], m0[c], m2[c]], 1), np.stack([m0[c], v1[c], m1[c]], 1),
                np.stack([m2[c], m1[c], v2[c]], 1), np.stack([m0[c], m1[c], m2[c]], 1)]
        f = np.concatenate(out)


def _deform(u: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Taper, twist and bend along z, then a smooth random displacement, of
    points ``u`` in the unit ball; the Jacobian stays positive for
    ``amount`` <= 1 (so triangles keep their orientation)."""
    taper, twist = rng.uniform(-0.3, 0.3) * amount, rng.uniform(-0.6, 0.6) * amount
    bend = rng.uniform(-0.25, 0.25, size=2) * amount
    x, y, z = u[:, 0] * (1 + taper * u[:, 2]), u[:, 1] * (1 + taper * u[:, 2]), u[:, 2]
    c, s = np.cos(twist * z), np.sin(twist * z)
    x, y = c * x - s * y + bend[0] * z * z, s * x + c * y + bend[1] * z * z
    out = np.stack([x, y, z], axis=1)
    for _ in range(3):  # |grad| <= 3 * 0.04 * 3 < 1
        k = rng.standard_normal(3)
        k *= 3.0 / np.linalg.norm(k)
        a = rng.standard_normal(3)
        a *= 0.04 * amount / np.linalg.norm(a)
        out = out + np.sin(out @ k + rng.uniform(0, 2 * np.pi))[:, None] * a
    return out


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Unit vertex normals: sums of the area-weighted normals of the faces
    around each vertex (zero for unused vertices)."""
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], n)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)


def perturb_mesh(vertices: Any, faces: Any, rng: np.random.Generator, deform: float = 0.0,
                 noise: float = 0.0, partial: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    r"""A randomly deformed, noisy and possibly incomplete copy of a mesh.

    In the frame of the mesh (centre :math:`c` of its bounding box, radius
    :math:`R` of its farthest vertex, :math:`u = (v - c) / R`):

    1. with ``deform`` or ``noise`` > 0, edges are split until none is longer
       than :obj:`MAX_EDGE` :math:`R` (:func:`subdivide_mesh`, at most
       :obj:`MAX_FACES` faces);
    2. ``deform`` :math:`= d`: a taper :math:`(x, y) \mapsto (1 + \tau z)(x, y)`,
       a twist by :math:`\gamma z` about z and a bend :math:`(x, y) \mathrel{+}=
       (\beta_x, \beta_y) z^2`, with :math:`\tau \sim U(\pm 0.3 d)`,
       :math:`\gamma \sim U(\pm 0.6 d)`, :math:`\beta \sim U(\pm 0.25 d)`,
       then three random plane waves :math:`u \mathrel{+}= a \sin(k \cdot u +
       \phi)` with :math:`|k| = 3`, :math:`|a| = 0.04 d`. The map has a
       positive Jacobian for :math:`d \le 1`: triangles keep their
       orientation, a closed mesh stays closed;
    3. ``noise`` :math:`= \sigma`: every vertex moves along its normal
       (:func:`vertex_normals`) by :math:`\sigma R\, \epsilon`,
       :math:`\epsilon \sim N(0, 1)` clipped to :math:`\pm 3`;
    4. ``partial`` :math:`= p`: a fraction :math:`U(0, p)` of the surface
       area is cut away on one side of a plane of uniform random normal (the
       faces whose centroids lie farthest along it): an open mesh, as a scan
       with a missing part.

    With all three at 0 the mesh is returned as it is, and ``rng`` is not
    used (each step draws from ``rng`` only when it is on).

    Args:
        vertices (array-like): [V, 3]. faces (array-like): [F, 3] int.
        rng (numpy.random.Generator): source of randomness.
        deform (float, optional): in :math:`[0, 1]`. (default: :obj:`0.0`)
        noise (float, optional): in :math:`[0, 0.1]`. (default: :obj:`0.0`)
        partial (float, optional): in :math:`[0, 1)`. (default: :obj:`0.0`)

    Returns:
        ``(vertices [V', 3] float64, faces [F', 3] int64)``.
    """
    deform, noise, partial = check_perturbation(deform, noise, partial)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"Expected 'rng' to be a numpy Generator (got {_got(rng)})")
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if deform == 0 and noise == 0 and partial == 0:
        return v, f
    center, radius = _frame(v)
    if deform > 0 or noise > 0:
        v, f = subdivide_mesh(v, f, MAX_EDGE * radius)
    if deform > 0:
        v = center + radius * _deform((v - center) / radius, rng, deform)
    if noise > 0:
        eps = np.clip(rng.standard_normal(len(v)), -3, 3)
        v = v + vertex_normals(v, f) * (noise * radius * eps)[:, None]
    if partial > 0:
        cut = rng.uniform(0, partial)
        normal = rng.standard_normal(3)
        normal /= np.linalg.norm(normal)
        centroid = v[f].mean(1)
        area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]),
                                    axis=1)
        order = np.argsort(centroid @ normal)[::-1]  # farthest along the normal first
        removed = np.cumsum(area[order]) <= cut * area.sum()
        f = np.delete(f, order[removed], axis=0)
    return v, f
