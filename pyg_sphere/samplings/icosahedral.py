"""Icosahedral (geodesic) sampling: a recursively subdivided icosahedron."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int
from ._base import SphereSampling, make_data, register, register_area

#: Largest accepted ``subdivisions`` (10 * 4**12 + 2 = 167,772,162 vertices).
MAX_SUBDIVISIONS = 12


def _base_icosahedron() -> Tuple[np.ndarray, np.ndarray]:
    """The 12 unit vertices (0, +-1, +-phi) and cyclic permutations, and the
    20 faces, each counter-clockwise seen from outside (outward normal)."""
    phi = (1 + 5 ** 0.5) / 2
    base = []
    for s1 in (-1.0, 1.0):
        for s2 in (-phi, phi):
            base.append((0.0, s1, s2))
    base = np.array(base)
    # cyclic permutations (x, y, z) -> (y, z, x) -> (z, x, y)
    vertices = np.concatenate([base, base[:, [2, 0, 1]], base[:, [1, 2, 0]]])
    # Faces are the triples of mutually adjacent vertices (edge length 2).
    dist = np.linalg.norm(vertices[:, None] - vertices[None, :], axis=-1)
    adjacent = np.abs(dist - 2.0) < 1e-9
    faces = []
    for i in range(12):
        for j in range(i + 1, 12):
            if not adjacent[i, j]:
                continue
            for k in range(j + 1, 12):
                if adjacent[i, k] and adjacent[j, k]:
                    a, b, c = vertices[i], vertices[j], vertices[k]
                    outward = np.dot(np.cross(b - a, c - a), a + b + c) > 0
                    faces.append((i, j, k) if outward else (i, k, j))
    faces = np.array(faces, dtype=np.int64)
    assert faces.shape == (20, 3)
    vertices = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    return vertices, faces


def _subdivide(vertices: np.ndarray, faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Split each face into 4 at its edge midpoints (projected onto the
    sphere); the new vertices are appended after the old ones."""
    n = vertices.shape[0]
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    # edges ab, bc, ca of every face, as (low, high) vertex pairs
    first = np.concatenate([a, b, c])
    second = np.concatenate([b, c, a])
    lo = np.minimum(first, second)
    hi = np.maximum(first, second)
    key = lo * n + hi
    unique_key, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    mid = vertices[unique_key // n] + vertices[unique_key % n]
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    m = inverse + n
    nf = faces.shape[0]
    ab, bc, ca = m[:nf], m[nf:2 * nf], m[2 * nf:]
    new_faces = np.stack([
        np.stack([a, ab, ca], axis=1),
        np.stack([ab, b, bc], axis=1),
        np.stack([ca, bc, c], axis=1),
        np.stack([ab, bc, ca], axis=1),
    ], axis=1).reshape(-1, 3)
    return np.concatenate([vertices, mid]), new_faces


def _icosphere(subdivisions: int) -> Tuple[np.ndarray, np.ndarray]:
    """Vertices [10 * 4**l + 2, 3] (float64) and faces [20 * 4**l, 3] (int64)."""
    vertices, faces = _base_icosahedron()
    for _ in range(subdivisions):
        vertices, faces = _subdivide(vertices, faces)
    return vertices, faces


def _check_subdivisions(subdivisions: Any) -> int:
    subdivisions = check_int('subdivisions', subdivisions, minimum=0)
    if subdivisions > MAX_SUBDIVISIONS:
        raise ValueError(f"Expected 'subdivisions' to be <= {MAX_SUBDIVISIONS} "
                         f"(got {subdivisions})")
    return subdivisions


@register('icosahedral')
def icosahedral(subdivisions: int, dtype: Optional[torch.dtype] = None) -> Data:
    r"""Icosahedral (geodesic) sampling: the vertices of an icosahedron whose
    faces are recursively subdivided, :math:`n = 10 \cdot 4^l + 2` vertices and
    :math:`20 \cdot 4^l` faces at level :math:`l` = ``subdivisions``, as in
    `Baumgardner & Frederickson (1985) <https://doi.org/10.1137/0722066>`_
    and `Jiang et al. (2019) <https://arxiv.org/abs/1901.02039>`_.

    Level 0 is the icosahedron with vertices :math:`(0, \pm 1, \pm\varphi)`
    and their cyclic permutations, :math:`\varphi = (1 + \sqrt 5) / 2`,
    normalised. Each subdivision splits every triangle :math:`(a, b, c)` into
    four, :math:`(a, m_{ab}, m_{ca})`, :math:`(m_{ab}, b, m_{bc})`,
    :math:`(m_{ca}, m_{bc}, c)` and :math:`(m_{ab}, m_{bc}, m_{ca})`, at the
    edge midpoints projected onto the sphere

    .. math::
        m_{ab} = \frac{a + b}{\lVert a + b \rVert}.

    The ordering is hierarchical: the new vertices of a level are appended
    after those of the previous level (sorted by their edge's vertex pair), so
    the first :math:`10 \cdot 4^{l-1} + 2` vertices of level :math:`l` are
    exactly the vertices of level :math:`l - 1` and coarsening keeps them.

    The pixel areas (:func:`pixel_area`) are the exact areas of the spherical
    Voronoi cells of the vertices (the dual cells of the mesh), which sum to
    :math:`4\pi`.

    Args:
        subdivisions (int): subdivision level :math:`l`,
            ``0 <= subdivisions <= 12``.
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors),
        ``face`` [3, 20 * 4**l] (long, vertex indices of each triangle,
        counter-clockwise seen from outside; PyG's mesh convention, offset by
        :class:`~torch_geometric.data.Batch`), ``num_nodes`` and ``sampling``
        (a :class:`SphereSampling` with ``subdivisions``).

    Example:
        >>> data = icosahedral(2)
        >>> data.num_nodes, data.face.shape
        (162, torch.Size([3, 320]))
    """
    subdivisions = _check_subdivisions(subdivisions)
    vertices, faces = _icosphere(subdivisions)
    face = torch.from_numpy(np.ascontiguousarray(faces.T))
    sampling = SphereSampling('icosahedral', {'subdivisions': subdivisions})
    return make_data(vertices, sampling, dtype, face=face)


def _triangle_area(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Signed area of the spherical triangles (a, b, c) of unit vectors [m, 3]
    (Van Oosterom & Strackee 1983), positive when counter-clockwise."""
    det = np.einsum('ij,ij->i', a, np.cross(b, c))
    den = 1 + np.einsum('ij,ij->i', a, b) + np.einsum('ij,ij->i', b, c) + \
        np.einsum('ij,ij->i', c, a)
    return 2 * np.arctan2(det, den)


def _dual_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Areas of the spherical Voronoi cells of the vertices of a spherical
    Delaunay triangulation: each face (a, b, c) with circumcentre o gives
    vertex a the quadrilateral (a, m_ab, o, m_ca), and so on."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    o = np.cross(b - a, c - a)
    o /= np.linalg.norm(o, axis=1, keepdims=True)
    mab, mbc, mca = a + b, b + c, c + a
    for m in (mab, mbc, mca):
        m /= np.linalg.norm(m, axis=1, keepdims=True)
    area = np.zeros(vertices.shape[0])
    for v, m_next, m_prev, idx in ((a, mab, mca, faces[:, 0]),
                                   (b, mbc, mab, faces[:, 1]),
                                   (c, mca, mbc, faces[:, 2])):
        part = _triangle_area(v, m_next, o) + _triangle_area(v, o, m_prev)
        area += np.bincount(idx, weights=part, minlength=vertices.shape[0])
    return area


@register_area('icosahedral')
def _icosahedral_area(data: Data) -> torch.Tensor:
    vertices, faces = _icosphere(data.sampling['subdivisions'])
    return torch.from_numpy(_dual_areas(vertices, faces))
