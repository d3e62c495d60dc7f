import numpy as np
import pytest
import torch

from pyg_sphere.rotation import random_rotation
from pyg_sphere.samplings import healpix, icosahedral, points
from pyg_sphere.transforms import (MESH_CHANNELS, check_translate, normalize_mesh,
                                   project_mesh, random_pose)
from pyg_sphere.transforms._ray_cast import _face_caps


def cube():
    """[-1, 1]^3, 12 triangles, counter-clockwise seen from outside."""
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
             (1, 5, 7, 3)]
    f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    return v, f


def octahedron():
    """|x| + |y| + |z| = 1."""
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    f = np.array([(i, j, k) for i in (0, 1) for j in (2, 3) for k in (4, 5)])
    return v, f


def l_prism():
    """A non-convex prism: an L of legs 1 and thickness 0.3, depth 0.4."""
    p = np.array([(0, 0), (1, 0), (1, .3), (.3, .3), (.3, 1), (0, 1)], float)
    v = np.concatenate([np.c_[p, np.full(6, -.2)], np.c_[p, np.full(6, .2)]])
    tri = np.array([(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 5)])
    i = np.arange(6)
    j = (i + 1) % 6
    sides = np.r_[np.c_[i, j, j + 6], np.c_[i, j + 6, i + 6]]
    return v - v.mean(0), np.r_[tri[:, ::-1], tri + 6, sides]


def pixels(nside=8):
    return healpix(nside, dtype=torch.float64).pos


def oracle(v, f, dirs, radius=10.0):
    """Brute-force Moller-Trumbore: ray from radius * u towards -u, all faces."""
    a, e1, e2 = v[f[:, 0]], v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    out = np.zeros((len(dirs), 2))
    for r, u in enumerate(dirs):
        d, o = -u, radius * u
        p = np.cross(d, e2)
        det = (e1 * p).sum(1)
        with np.errstate(divide='ignore', invalid='ignore'):  # parallel faces
            tv = o - a
            bu = (tv * p).sum(1) / det
            q = np.cross(tv, e1)
            bv = (q * d).sum(1) / det
            t = (e2 * q).sum(1) / det
            hit = (np.abs(det) > 1e-14) & (bu >= 0) & (bv >= 0) & (bu + bv <= 1) & (t > 0)
        if hit.any():
            k = np.flatnonzero(hit)[np.argmin(t[hit])]
            n = np.cross(e1[k], e2[k])
            out[r] = radius - t[k], abs(n @ u) / np.linalg.norm(n)
    return out


def test_cube_closed_form_at_every_pixel():
    v, f = cube()
    u = pixels(8).numpy()
    x = project_mesh(v, f, pixels(8)).numpy()
    m = np.abs(u).max(1)
    # Scaled to max radius 1: the faces are at 1 / sqrt(3); the face hit is
    # the axis of the largest |u_i| (on ties both faces give the same values).
    assert np.allclose(x[:, 0], 1 / (np.sqrt(3) * m), atol=1e-12)
    assert np.allclose(x[:, 1], m, atol=1e-12)
    assert np.allclose(x[:, 2], np.sqrt(1 - m ** 2), atol=1e-7)
    assert np.allclose(x[:, 3:], x[:, :3], atol=1e-12)  # convex: hull == mesh
    assert x[:, 0].min() >= 3 ** -.5 - 1e-12 and x[:, 0].max() <= 1 + 1e-12


def test_cube_along_the_axes():
    v, f = cube()
    axes = torch.tensor([[1., 0, 0], [0, -1, 0], [0, 0, 1], [1, 1, 1]], dtype=torch.float64)
    axes = axes / axes.norm(dim=1, keepdim=True)
    x = project_mesh(v, f, axes)
    expected = [[3 ** -.5, 1, 0]] * 3 + [[1, 3 ** -.5, (2 / 3) ** .5]]  # corner at radius 1
    assert torch.allclose(x[:, :3], torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_octahedron_closed_form():
    v, f = octahedron()
    u = pixels(8).numpy()
    l1 = np.abs(u).sum(1)
    x = project_mesh(v, f, pixels(8), center='mean').numpy()
    assert np.allclose(x[:, 0], 1 / l1, atol=1e-12)
    assert np.allclose(x[:, 1], l1 / np.sqrt(3), atol=1e-12)
    assert np.allclose(x[:, 1] ** 2 + x[:, 2] ** 2, 1, atol=1e-12)


def test_sphere_mesh_gives_constant_radius_and_normal_incidence():
    ico = icosahedral(4)  # inscribed in the unit sphere, 5120 faces
    v, f = ico.pos.double().numpy(), ico.face.t().numpy()
    plane = np.einsum('ij,ij->i', np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]),
                      v[f[:, 0]])
    plane /= np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    x = project_mesh(v, f, pixels(16), center='mean').numpy()
    # Each hit lies between its face plane (distance >= min plane distance) and the sphere.
    assert x[:, 0].min() >= plane.min() - 1e-12 and x[:, 0].max() <= 1 + 1e-12
    assert plane.min() > 0.997
    assert x[:, 1].min() > 0.997 and x[:, 2].max() < 0.08
    assert np.allclose(x[:, 3:], x[:, :3], atol=1e-9)


def test_against_brute_force_moller_trumbore():
    v, f = l_prism()
    u = pixels(4).numpy()
    for translation in (None, [0.3, -0.2, 0.1]):
        x = project_mesh(v, f, pixels(4), center='mean', translation=translation).numpy()
        w, g = normalize_mesh(v, f, 'mean')
        if translation is not None:
            w = w + np.array(translation)
        ref = oracle(w, g, u)
        assert np.allclose(x[:, :2], ref, atol=1e-9)
        # the mean vertex lies in the notch of the L: some lines miss it
        assert 0 < (ref[:, 1] == 0).sum() < len(u) / 2 or translation is not None
        assert ((x[:, 1] == 0) == (ref[:, 1] == 0)).all()
    # non-convex: the hull differs somewhere, never inside the mesh
    x = project_mesh(v, f, pixels(4)).numpy()
    assert (x[:, 3] > x[:, 0] + 0.05).sum() > 5
    assert (x[:, 3] >= x[:, 0] - 1e-12).all()


def test_wide_faces_and_chunks_give_the_same_result():
    v, f = l_prism()
    # Shift so that the centre lies next to faces: their caps are wide.
    shift = np.array([0.02, 0.02, 0.0]) - normalize_mesh(v, f)[0].min(0) * [1, 0, 0]
    w = normalize_mesh(v, f)[0] + shift
    assert _face_caps(w, normalize_mesh(v, f)[1])[2].any()
    ref = project_mesh(v, f, pixels(4), translation=shift)
    for chunk in (1, 7, 1000):
        assert torch.equal(project_mesh(v, f, pixels(4), translation=shift, chunk_size=chunk),
                           ref)
    assert np.allclose(ref[:, :2].numpy(), oracle(w, normalize_mesh(v, f)[1], pixels(4).numpy()),
                       atol=1e-9)


def test_translation_hits_behind_the_centre_and_misses():
    v, f = octahedron()
    axes = torch.tensor([[1., 0, 0], [-1, 0, 0], [0, 1, 0]], dtype=torch.float64)
    x = project_mesh(v, f, axes, center='mean', translation=[2.0, 0, 0])
    # Vertices now at x = 1 .. 3: +x sees the far tip (s = 3), -x the near tip
    # behind the centre (s = -1), +y misses.
    c = 3 ** -.5
    expected = torch.tensor([[3, c, (1 - c * c) ** .5], [-1, c, (1 - c * c) ** .5], [0, 0, 0]],
                            dtype=torch.float64)
    assert torch.allclose(x[:, :3], expected, atol=1e-12)
    assert not torch.allclose(x, project_mesh(v, f, axes, center='mean'))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_rotating_the_mesh_rotates_the_projection(seed):
    v, f = l_prism()
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(300, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    lon, lat = np.arctan2(dirs[:, 1], dirs[:, 0]), np.arcsin(dirs[:, 2])
    pos = points(lon, lat, dtype=torch.float64).pos
    R = random_rotation(1, seed=seed)[0]
    back = pos @ torch.from_numpy(R)  # row p -> R^T p
    expected = project_mesh(v, f, back, center='mean')
    # the mean vertex commutes with rotations, the bounding box does not
    rotated = project_mesh(v @ R.T, f, pos, center='mean')
    assert (rotated - expected).abs().max() < 1e-9
    assert (project_mesh(v, f, pos, rotation=R) - project_mesh(v, f, back)).abs().max() < 1e-9
    assert (project_mesh(v @ R.T, f, pos) - expected).abs().max() > 1e-3
    assert (project_mesh(v, f, pos, center='mean') - expected).abs().max() > 0.1


def test_normalize_mesh():
    v, f = cube()
    w, g = normalize_mesh(v * [1, 2, 3] + 5, f)
    assert np.allclose(np.linalg.norm(w, axis=1).max(), 1)
    assert np.allclose(w.min(0), -w.max(0))
    # unused vertices and zero-area faces are dropped
    extra = np.r_[v, [[9, 9, 9]]]
    w, g = normalize_mesh(extra, np.r_[f, [[0, 0, 1]]], 'mean')
    assert w.shape == (8, 3) and g.shape == (12, 3)
    assert np.allclose(w.mean(0), 0)


def test_dtype_device_and_channels():
    v, f = cube()
    pos32 = healpix(2).pos
    x = project_mesh(torch.from_numpy(v).float(), torch.from_numpy(f), pos32)
    assert x.shape == (48, 6) and x.dtype == torch.float32
    assert len(MESH_CHANNELS) == 6 and MESH_CHANNELS[3] == 'hull_radius'


@pytest.mark.parametrize('kwargs,match', [
    (dict(vertices=np.zeros((2, 3))), "'vertices' to have shape"),
    (dict(vertices=np.full((8, 3), np.nan)), "'vertices' to be finite"),
    (dict(vertices='abc'), "'vertices'"),
    (dict(faces=np.zeros((4, 4), int)), "'faces' to have shape"),
    (dict(faces=np.zeros((0, 3), int)), "'faces' to have shape"),
    (dict(faces=np.zeros((2, 3))), "integer vertex indices"),
    (dict(faces=np.array([[0, 1, 8]])), r"index vertices in \[0, 8\)"),
    (dict(faces=np.array([[0, 0, 1]])), 'non-zero area'),
    (dict(pos=torch.ones(4, 3)), 'unit vectors'),
    (dict(pos=torch.ones(4, 2)), r"'pos' to have shape \[n, 3\]"),
    (dict(center='box'), "'center' to be one of"),
    (dict(rotation=np.ones((3, 3))), 'rotation matrix'),
    (dict(rotation=np.eye(2)), "'rotation' to be a 3 x 3"),
    (dict(translation=[1, 2]), "'translation'"),
    (dict(translation=[np.inf, 0, 0]), "'translation'"),
    (dict(chunk_size=0), "'chunk_size' to be >= 1"),
])
def test_project_mesh_errors(kwargs, match):
    v, f = cube()
    args = dict(vertices=v, faces=f, pos=healpix(1).pos)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        project_mesh(**args)


def test_flat_mesh_is_its_own_hull():
    # a unit square at z = 0.5 (after normalization: centred, so the plane holds the centre)
    v = np.array([[0, 0, 0.5], [1, 0, 0.5], [1, 1, 0.5], [0, 1, 0.5]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    pos = torch.tensor([[0, 0, 1.], [1, 0, 0]], dtype=torch.float64)
    x = project_mesh(v, f, pos, translation=[0, 0, 0.25])
    assert torch.allclose(x[:, :3], x[:, 3:])
    # +z sees the square at height 0.25 head-on, +x lies in its plane: a miss
    assert torch.allclose(x, torch.tensor([[.25, 1, 0] * 2, [0] * 6], dtype=torch.float64))
    x = project_mesh(v[:3], f[:1], pos, translation=[0, 0, 0.25])  # 3 vertices: no Qhull
    assert torch.allclose(x[0], torch.tensor([.25, 1, 0] * 2, dtype=torch.float64))


def test_random_pose_is_seeded_and_uniform():
    assert random_pose(np.random.default_rng(0), 'none', 0.0) == (None, None)
    R1, t1 = random_pose(np.random.default_rng(5), 'so3', 0.3)
    R2, t2 = random_pose(np.random.default_rng(5), 'so3', 0.3)
    assert np.array_equal(R1, R2) and np.array_equal(t1, t2)
    rng = np.random.default_rng(1)
    poses = [random_pose(rng, 'so3', 1.0) for _ in range(2000)]
    R = np.stack([p[0] for p in poses])
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    # Haar: E[R] = 0, E[tr(R)^2] = 1 (std of an entry's mean: 0.013)
    assert np.abs(R.mean(0)).max() < 0.06
    trace = np.trace(R, axis1=1, axis2=2)
    assert abs(trace.mean()) < 0.1 and abs((trace ** 2).mean() - 1) < 0.15
    shift = np.stack([p[1] for p in poses])
    length = np.linalg.norm(shift, axis=1)
    assert length.max() <= 1.0 and abs(length.mean() - 0.5) < 0.03
    # directions: uniform on the sphere, so each coordinate of the unit vector
    # is uniform on [-1, 1] (Archimedes): mean 0, variance 1/3
    unit = shift / length[:, None]
    assert np.abs(unit.mean(0)).max() < 0.06 and np.abs((unit ** 2).mean(0) - 1 / 3).max() < 0.03
    # about z: the angle is uniform, the z axis is kept
    z = np.stack([random_pose(rng, 'z', 0.0)[0] for _ in range(2000)])
    assert np.allclose(z[:, 2], [0, 0, 1]) and np.allclose(z[:, :, 2], [0, 0, 1])
    angle = np.arctan2(z[:, 1, 0], z[:, 0, 0])
    counts = np.histogram(angle, bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 180 and counts.max() < 320  # 250 expected, std 15
    with pytest.raises(ValueError, match="'rotate' to be one of"):
        random_pose(rng, 'x', 0.0)


def test_check_translate():
    assert check_translate(0) == 0.0 and check_translate(0.25) == 0.25
    for bad, match in ((-0.1, 'finite number >= 0'), (float('inf'), 'finite number >= 0'),
                       ('0.1', "'translate' to be a number"), (True, "'translate'")):
        with pytest.raises(ValueError, match=match):
            check_translate(bad)
