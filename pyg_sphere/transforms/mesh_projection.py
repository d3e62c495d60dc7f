r"""Spherical projection of a triangle mesh by ray casting, the input of the
SHREC'17 3D shape task of `Cohen et al. (2018)
<https://arxiv.org/abs/1801.10130>`_ and `DeepSphere (Defferrard et al.
2020) <https://arxiv.org/abs/2012.15000>`_."""
from __future__ import annotations

import copy
import hashlib
import itertools
import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validation import _got, check_choice, check_int, check_pos

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

# Relative tolerances: barycentric coordinates (closes cracks between faces
# hit exactly on an edge), parallel rays, and the angular margin of the caps.
_BARY_TOL = 1e-9
_PARALLEL_TOL = 1e-12
_CAP_MARGIN = 1e-6
# Faces whose bounding cap, seen from the centre, is wider than ~87 degrees
# are tested against every ray (they pass near the centre).
_WIDE_COS = 0.05


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


def _describe_sampling(sampling: Data) -> str:
    desc = getattr(sampling, 'sampling', None)
    name = getattr(desc, 'name', None)
    if name not in (None, 'points') and getattr(sampling, 'ipix', None) is None:
        return repr(desc)
    raw = sampling.pos.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
    digest = hashlib.blake2b(raw.tobytes(), digest_size=8).hexdigest()
    return f'points(n={sampling.pos.size(0)}, digest={digest!r})'


@functional_transform('sphere_mesh_projection')
class SphereMeshProjection(BaseTransform):
    r"""Projects a triangle mesh onto a spherical sampling (functional name:
    :obj:`sphere_mesh_projection`): the 6-channel SHREC'17 input of
    `Cohen et al. (2018) <https://arxiv.org/abs/1801.10130>`_ and
    `DeepSphere <https://arxiv.org/abs/2012.15000>`_, computed by
    :func:`project_mesh`.

    The input is a mesh as PyG stores it (e.g. :class:`~torch_geometric.
    datasets.ModelNet`): ``pos`` [V, 3] vertices and ``face`` [3, F]. The
    output is (a shallow copy of) ``sampling`` with ``x`` [n, 6]
    (:obj:`MESH_CHANNELS`, dtype of ``sampling.pos``) and the input's ``y``.

    Augmentation, drawn from ``generator`` at each call, after
    normalization: a rotation (``'z'``: about the z axis by a uniform angle,
    ``'so3'``: uniform on SO(3) from a normalized Gaussian quaternion), then
    a translation in a uniform random direction by a length uniform in
    :math:`[0, \text{translate}]` (in units of the normalized radius).

    Args:
        sampling (Data): the pixels, with ``pos`` [n, 3] unit vectors (any
            sampling of :mod:`pyg_sphere.samplings`).
        rotate (str, optional): one of :obj:`MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift, >= 0. (default: :obj:`0.0`)
        center (str, optional): one of :obj:`MESH_CENTERS`. (default: ``'bbox'``)
        generator (torch.Generator, optional): source of randomness.
            (default: :obj:`None`, the global torch RNG)

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> from pyg_sphere.samplings import healpix, icosahedral
        >>> mesh = icosahedral(2)  # a sphere: pos [162, 3], face [3, 320]
        >>> transform = SphereMeshProjection(healpix(4), rotate='so3',
        ...                                  generator=torch.Generator().manual_seed(0))
        >>> transform(Data(pos=mesh.pos, face=mesh.face, y=torch.tensor([3]))).x.shape
        torch.Size([192, 6])
    """
    def __init__(self, sampling: Data, rotate: str = 'none', translate: float = 0.0,
                 center: str = 'bbox', generator: Optional[torch.Generator] = None) -> None:
        if not isinstance(sampling, Data) or getattr(sampling, 'pos', None) is None:
            raise ValueError(f"Expected 'sampling' to be a Data with 'pos' (a sampling from "
                             f"pyg_sphere.samplings) (got {_got(sampling)})")
        check_pos(sampling.pos, 'sampling.pos')
        self.sampling = sampling
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = _check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"Expected 'generator' to be a torch.Generator or None "
                             f"(got {_got(generator)})")
        self.generator = generator
        self._sampling_repr = _describe_sampling(sampling)

    def sample_pose(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Draw ``(rotation [3, 3] or None, translation [3] or None)`` as
        :meth:`forward` does (float64)."""
        from ..rotation import quaternion_to_matrix, z_rotation
        rotation = translation = None
        if self.rotate == 'z':
            angle = float(torch.rand((), generator=self.generator, dtype=torch.float64))
            rotation = z_rotation(2 * math.pi * angle)[0]
        elif self.rotate == 'so3':
            q = torch.randn(4, generator=self.generator, dtype=torch.float64).numpy()
            rotation = quaternion_to_matrix(q)
        if self.translate > 0:
            direction = torch.randn(3, generator=self.generator, dtype=torch.float64).numpy()
            length = float(torch.rand((), generator=self.generator, dtype=torch.float64))
            translation = direction / np.linalg.norm(direction) * length * self.translate
        return rotation, translation

    def forward(self, data: Data) -> Data:
        vertices, face = getattr(data, 'pos', None), getattr(data, 'face', None)
        if not isinstance(vertices, torch.Tensor) or not isinstance(face, torch.Tensor):
            raise ValueError("Expected 'data' to be a mesh with 'pos' [V, 3] and 'face' "
                             f"[3, F] (got pos={_got(vertices)}, face={_got(face)})")
        if face.dim() != 2 or face.size(0) != 3:
            raise ValueError(f"Expected 'data.face' to have shape [3, F] "
                             f"(got {tuple(face.shape)})")
        rotation, translation = self.sample_pose()
        out = copy.copy(self.sampling)
        out.x = project_mesh(vertices, face.t(), self.sampling.pos, center=self.center,
                             rotation=rotation, translation=translation)
        if getattr(data, 'y', None) is not None:
            out.y = data.y
        return out

    def __repr__(self) -> str:
        gen = (None if self.generator is None
               else f'Generator(seed={self.generator.initial_seed()})')
        return (f'{self.__class__.__name__}(sampling={self._sampling_repr}, '
                f'rotate={self.rotate!r}, translate={self.translate}, '
                f'center={self.center!r}, generator={gen})')


def _check_translate(translate: Any) -> float:
    if isinstance(translate, bool) or not isinstance(translate, numbers.Real):
        raise ValueError(f"Expected 'translate' to be a number >= 0 (got {_got(translate)})")
    translate = float(translate)
    if not math.isfinite(translate) or translate < 0:
        raise ValueError(f"Expected 'translate' to be a finite number >= 0 (got {translate})")
    return translate
