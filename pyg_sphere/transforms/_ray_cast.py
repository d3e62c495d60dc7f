"""Ray casting from the centre of a mesh: the first face hit along each
pixel direction (Moller-Trumbore tests on candidate faces found with a k-d
tree of face caps), and the radius and normal angle there."""
from __future__ import annotations

import itertools
from typing import Any, Tuple

import numpy as np

# Relative tolerances: barycentric coordinates (closes cracks between faces
# hit exactly on an edge), parallel rays, and the angular margin of the caps.
_BARY_TOL = 1e-9
_PARALLEL_TOL = 1e-12
_CAP_MARGIN = 1e-6
# Faces whose bounding cap, seen from the centre, is wider than ~87 degrees
# are tested against every ray (they pass near the centre).
_WIDE_COS = 0.05


def _face_caps(v: np.ndarray, f: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Bounding caps of the faces seen from the centre.

    The central projection of a triangle with vertex directions
    :math:`\hat a, \hat b, \hat c` lies in the cap of centre
    :math:`m = (\hat a + \hat b + \hat c) / \lVert\cdot\rVert` that
    holds the three directions (positive combinations of vectors in a cap of
    angular radius < 90 degrees stay in it). A line through the centre cuts
    the triangle only if it crosses this cap or its antipode.

    Returns ``(centres [F, 3], chord radii [F], wide [F] bool)``; wide faces
    (nearly through the centre) must be tested against every ray.
    """
    dirs = []
    wide = np.zeros(f.shape[0], dtype=bool)
    for k in range(3):
        x = v[f[:, k]]
        nx = np.linalg.norm(x, axis=1)
        wide |= nx < 1e-9
        dirs.append(x / np.maximum(nx, 1e-300)[:, None])
    m = dirs[0] + dirs[1] + dirs[2]
    mn = np.linalg.norm(m, axis=1)
    wide |= mn < 1e-9
    m = m / np.maximum(mn, 1e-300)[:, None]
    cos_r = np.minimum.reduce([np.einsum('ij,ij->i', d, m) for d in dirs])
    wide |= ~(cos_r >= _WIDE_COS)
    angle = np.arccos(np.clip(cos_r, -1.0, 1.0)) + _CAP_MARGIN
    return m, 2.0 * np.sin(0.5 * angle) + 1e-12, wide


def _first_hits(dirs: np.ndarray, v: np.ndarray, f: np.ndarray, chunk_size: int,
                tree: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Radius ``s`` of the first hit along each direction (the ray comes
    from outside) and the face hit (-1: miss)."""
    n = dirs.shape[0]
    best = np.full(n, -np.inf)
    best_face = np.full(n, -1, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    # Per face: unit normals of the planes (centre, edge) and of the face, [F, 4, 3].
    planes = np.stack([np.cross(a, b), np.cross(b, c), np.cross(c, a), normal], axis=1)
    planes[:, :3] /= np.maximum(np.linalg.norm(planes[:, :3], axis=2, keepdims=True), 1e-300)
    offset = np.einsum('ij,ij->i', normal, a)  # the face plane is <normal, x> = offset

    def test(ray: np.ndarray, face: np.ndarray) -> None:
        # The line {s u} cuts the triangle iff u lies on the same side of the
        # three planes (centre, edge): the Moller-Trumbore barycentric test for
        # a ray through the centre. Then s = offset / <normal, u>.
        proj = np.einsum('pkj,pj->pk', planes[face], dirs[ray])
        s0, s1, s2, nu = proj.T
        ok = ((np.minimum(np.minimum(s0, s1), s2) >= -_BARY_TOL)
              | (np.maximum(np.maximum(s0, s1), s2) <= _BARY_TOL))
        ok &= np.abs(nu) > _PARALLEL_TOL
        ray, face = ray[ok], face[ok]
        if ray.size == 0:
            return
        s = offset[face] / nu[ok]
        order = np.lexsort((s, ray))
        ray, face, s = ray[order], face[order], s[order]
        last = np.append(ray[1:] != ray[:-1], True)
        ray, face, s = ray[last], face[last], s[last]
        better = s > best[ray]
        best[ray[better]] = s[better]
        best_face[ray[better]] = face[better]

    centres, chords, wide = _face_caps(v, f)
    narrow = np.flatnonzero(~wide)
    # Candidate pairs of the narrow faces, a block of faces at a time.
    step = max(1, chunk_size // 64)
    for start in range(0, narrow.size, step):
        block = narrow[start:start + step]
        hits = tree.query_ball_point(np.concatenate([centres[block], -centres[block]]),
                                     np.concatenate([chords[block], chords[block]]),
                                     return_sorted=False)
        counts = np.fromiter(map(len, hits), dtype=np.int64, count=len(hits))
        rays = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64,
                           count=int(counts.sum()))
        faces = np.repeat(np.concatenate([block, block]), counts)
        for lo in range(0, rays.size, chunk_size):
            test(rays[lo:lo + chunk_size], faces[lo:lo + chunk_size])
    # Wide faces against every ray.
    wide = np.flatnonzero(wide)
    per = max(1, min(wide.size, chunk_size // max(n, 1)))
    for start in range(0, wide.size, per):
        block = wide[start:start + per]
        rows = max(1, chunk_size // block.size)
        for r0 in range(0, n, rows):
            r = np.arange(r0, min(n, r0 + rows))
            test(np.repeat(r, block.size), np.tile(block, r.size))
    return best, best_face


def _channels(dirs: np.ndarray, v: np.ndarray, f: np.ndarray, chunk_size: int,
              tree: Any) -> np.ndarray:
    s, face = _first_hits(dirs, v, f, chunk_size, tree)
    out = np.zeros((dirs.shape[0], 3))
    hit = face >= 0
    fh = f[face[hit]]
    normal = np.cross(v[fh[:, 1]] - v[fh[:, 0]], v[fh[:, 2]] - v[fh[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    u = dirs[hit]
    out[hit, 0] = s[hit]
    out[hit, 1] = np.abs(np.einsum('ij,ij->i', normal, u))
    out[hit, 2] = np.linalg.norm(np.cross(normal, u), axis=1)
    return out
