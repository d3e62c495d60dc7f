r"""Spherical projection of a triangle mesh by ray casting, the input of the
SHREC'17 3D shape task of `Cohen et al. (2018)
<https://arxiv.org/abs/1801.10130>`_ and `DeepSphere (Defferrard et al.
2020) <https://arxiv.org/abs/2012.15000>`_."""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np
import torch

from .._validation import _got, check_choice, check_int, check_pos
from ._ray_cast import _channels

#: Output channels of :func:`project_mesh`, in order: for the mesh, then for
#: its convex hull, the radius of the first hit along the pixel direction and
#: the cosine and sine of the angle between the ray and the surface normal.
MESH_CHANNELS = ('radius', 'cos', 'sin', 'hull_radius', 'hull_cos', 'hull_sin')
#: Where the mesh is centred before projection: bounding-box centre or mean vertex.
MESH_CENTERS = ('bbox', 'mean')
#: Random rotations of :class:`SphereMeshProjection`: none, about z, or all of SO(3).
MESH_ROTATIONS = ('none', 'z', 'so3')

#: Default number of (ray, face) pairs tested at once (1M pairs, ~200 MB peak).
DEFAULT_CHUNK_SIZE = 1 << 20

def _as_vertices(vertices: Any) -> np.ndarray:
    if isinstance(vertices, torch.Tensor):
        vertices = vertices.detach().cpu().double().numpy()
    try:
        v = np.asarray(vertices, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Expected 'vertices' to be a float array of shape [V, 3] "
                         f"(got {_got(vertices)})") from None
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 3:
        raise ValueError(f"Expected 'vertices' to have shape [V, 3] with V >= 3 "
                         f"(got {tuple(v.shape)})")
    if not np.isfinite(v).all():
        raise ValueError("Expected 'vertices' to be finite (got NaN or inf)")
    return v


def _as_faces(faces: Any, num_vertices: int) -> np.ndarray:
    if isinstance(faces, torch.Tensor):
        faces = faces.detach().cpu().numpy()
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1:
        raise ValueError(f"Expected 'faces' to have shape [F, 3] with F >= 1 "
                         f"(got {tuple(f.shape)})")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"Expected 'faces' to hold integer vertex indices (got {f.dtype})")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= num_vertices:
        raise ValueError(f"Expected 'faces' to index vertices in [0, {num_vertices}) "
                         f"(got indices in [{int(f.min())}, {int(f.max())}])")
    return f


def _as_translation(translation: Any) -> Optional[np.ndarray]:
    if translation is None:
        return None
    if isinstance(translation, torch.Tensor):
        translation = translation.detach().cpu().double().numpy()
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ValueError(f"Expected 'translation' to be a finite vector of shape [3] "
                         f"(got {_got(translation)})")
    return t


def normalize_mesh(vertices: Any, faces: Any, center: str = 'bbox'
                   ) -> Tuple[np.ndarray, np.ndarray]:
    r"""Centre a mesh and scale it into the unit ball.

    Keeps the vertices used by a face and the faces of non-zero area, moves
    the centre :math:`c` (``'bbox'``: the centre of the axis-aligned bounding
    box, ``'mean'``: the mean vertex) to the origin and divides by the largest
    vertex radius:

    .. math::
        v_i' = \frac{v_i - c}{\max_j \lVert v_j - c \rVert}.

    The bounding-box centre depends on the orientation of the mesh, the mean
    vertex does not (it commutes with rotations).

    Args:
        vertices (array-like): vertex positions [V, 3].
        faces (array-like): vertex indices [F, 3] of the triangles.
        center (str, optional): one of :obj:`MESH_CENTERS`. (default: ``'bbox'``)

    Returns:
        ``(vertices [V', 3] float64, faces [F', 3] int64)`` with
        :math:`\max_i \lVert v_i' \rVert = 1`.
    """
    v = _as_vertices(vertices)
    f = _as_faces(faces, v.shape[0])
    center = check_choice('center', center, MESH_CENTERS)
    used, f = np.unique(f, return_inverse=True)
    f = f.reshape(-1, 3)
    v = v[used]
    c = 0.5 * (v.min(0) + v.max(0)) if center == 'bbox' else v.mean(0)
    v = v - c
    scale = float(np.linalg.norm(v, axis=1).max())
    area2 = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    keep = area2 > 1e-12 * scale ** 2
    if scale == 0 or not keep.any():
        raise ValueError("Expected 'faces' to contain at least one triangle of non-zero area "
                         "(got only degenerate triangles)")
    return v / scale, f[keep]


def convex_hull(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangles [H, 3] of the convex hull of ``vertices`` [V, 3] (scipy's
    Qhull). Flat meshes have no hull solid: their own ``faces`` are returned."""
    from scipy.spatial import ConvexHull, QhullError
    if vertices.shape[0] < 4:
        return faces
    try:
        return ConvexHull(vertices).simplices.astype(np.int64)
    except QhullError:  # all vertices on one plane (or line)
        return faces


def project_mesh(vertices: Any, faces: Any, pos: torch.Tensor, center: str = 'bbox',
                 rotation: Any = None, translation: Any = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    r"""Project a triangle mesh onto the pixels of a sampling by ray casting,
    as in the SHREC'17 experiments of `Cohen et al. (2018)
    <https://arxiv.org/abs/1801.10130>`_ and `DeepSphere
    <https://arxiv.org/abs/2012.15000>`_.

    The mesh is centred and scaled into the unit ball (:func:`normalize_mesh`),
    rotated about the centre, then translated:
    :math:`v \mapsto R v + t`. For each pixel direction :math:`u` (a row of
    ``pos``) a ray is cast from a point :math:`R_0 u` outside the mesh
    (any :math:`R_0` larger than its bounding radius) towards the centre, and
    the first hit :math:`h = s\, u` is kept: the largest :math:`s` at which
    the line :math:`\{s u\}` cuts a triangle. The ray-triangle test is the
    barycentric (Moller-Trumbore) test written for rays through the centre:
    the line cuts triangle :math:`(a, b, c)` iff the triple products
    :math:`\langle u, a \times b\rangle`, :math:`\langle u, b \times
    c\rangle`, :math:`\langle u, c \times a\rangle` share a sign, and then
    :math:`s = \langle n, a\rangle / \langle n, u\rangle`. It is vectorised
    over (ray, face) pairs in chunks; the candidate triangles of each ray are
    found with a k-d tree on the pixel directions (a triangle seen from the
    centre lies in a small cap), so the cost grows like the number of pairs
    that nearly meet, not like rays x faces. Per pixel, for the mesh and
    then for its convex hull (:obj:`MESH_CHANNELS`; a flat mesh is its own
    hull):

    .. math::
        s = \langle h, u \rangle, \qquad
        \cos\theta = \lvert \langle n, u \rangle \rvert, \qquad
        \sin\theta = \lVert n \times u \rVert,

    with :math:`n` the unit normal of the triangle hit. :math:`s` is the
    signed radius of the hit along :math:`u` (in units of the normalized
    mesh: :math:`s \le 1 + \lVert t \rVert`; negative when the first hit is
    past the centre); it is independent of :math:`R_0` and is
    :math:`1 - d` for the distance :math:`d` from the unit-sphere point
    :math:`u` used by Cohen et al. The angle does not depend on the
    orientation (winding) of the triangles. Rays that miss give
    :math:`(0, 0, 0)`, as in the reference code (there the distance is 1,
    i.e. :math:`s = 0`).

    Rotating the mesh rotates the projection: with ``center='mean'``, or
    with ``rotation`` given here, the projection of :math:`R v` at pixel
    :math:`p` equals that of :math:`v` at :math:`R^\top p` (up to rounding).

    Args:
        vertices (array-like or torch.Tensor): vertex positions [V, 3].
        faces (array-like or torch.Tensor): vertex indices [F, 3] (int).
        pos (torch.Tensor): pixel directions [n, 3] (unit vectors), e.g.
            ``healpix(32).pos``.
        center (str, optional): one of :obj:`MESH_CENTERS`. (default: ``'bbox'``)
        rotation (array-like, optional): rotation matrix [3, 3] applied after
            normalization. (default: :obj:`None`)
        translation (array-like, optional): shift [3] applied after the
            rotation, in units of the normalized radius. (default: :obj:`None`)
        chunk_size (int, optional): (ray, face) pairs tested at once; bounds
            the memory (~200 bytes a pair). (default: :obj:`DEFAULT_CHUNK_SIZE`)

    Returns:
        torch.Tensor: [n, 6] features in the order of :obj:`MESH_CHANNELS`,
        with the dtype and device of ``pos``.

    Example:
        >>> from pyg_sphere.samplings import healpix, icosahedral
        >>> sphere = icosahedral(3)
        >>> x = project_mesh(sphere.pos, sphere.face.t(), healpix(8).pos)
        >>> x.shape
        torch.Size([768, 6])
    """
    from ..rotation import check_rotation
    pos = check_pos(pos)
    chunk_size = check_int('chunk_size', chunk_size, minimum=1)
    rot = None if rotation is None else check_rotation(rotation)
    shift = _as_translation(translation)
    v, f = normalize_mesh(vertices, faces, center)
    hull = convex_hull(v, f)
    if rot is not None:
        v = v @ rot.T
    if shift is not None:
        v = v + shift
    dirs = pos.detach().cpu().double().numpy()
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    out = np.zeros((dirs.shape[0], len(MESH_CHANNELS)))
    if dirs.shape[0]:
        from scipy.spatial import cKDTree
        tree = cKDTree(dirs)
        out[:, :3] = _channels(dirs, v, f, chunk_size, tree)
        out[:, 3:] = _channels(dirs, v, hull, chunk_size, tree)
    return torch.from_numpy(out).to(dtype=pos.dtype, device=pos.device)


def check_translate(translate: Any) -> float:
    """A finite shift length >= 0 (ValueError naming 'translate' otherwise)."""
    if isinstance(translate, bool) or not isinstance(translate, numbers.Real):
        raise ValueError(f"Expected 'translate' to be a number >= 0 (got {_got(translate)})")
    translate = float(translate)
    if not math.isfinite(translate) or translate < 0:
        raise ValueError(f"Expected 'translate' to be a finite number >= 0 (got {translate})")
    return translate


def random_pose(rng: np.random.Generator, rotate: str, translate: float
                ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """A random pose of a mesh drawn from ``rng``: ``(rotation [3, 3] or None,
    translation [3] or None)``, float64. ``rotate`` is one of
    :obj:`MESH_ROTATIONS` (a Haar-uniform rotation for ``'so3'``, a uniform
    angle about z for ``'z'``); the translation has a uniform direction and a
    length uniform in ``[0, translate]``."""
    from ..rotation import random_rotation
    rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
    rotation = translation = None
    if rotate != 'none':
        rotation = random_rotation(1, seed=rng, axis='z' if rotate == 'z' else None)[0]
    if translate > 0:
        direction = rng.standard_normal(3)
        translation = direction / np.linalg.norm(direction) * rng.uniform() * translate
    return rotation, translation
