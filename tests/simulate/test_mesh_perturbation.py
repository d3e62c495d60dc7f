"""Mesh perturbations (pyg_sphere.simulate.mesh_perturbation): refinement that
keeps the surface, orientation-keeping deformations, normal noise of the
stated size, cuts of at most the stated area."""
import numpy as np
import pytest

from pyg_sphere.simulate import SHAPE_CLASSES, generate_shape, perturb_mesh, subdivide_mesh


def volume(v, f):
    return np.einsum('ij,ij->i', v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6


def areas(v, f):
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


def is_closed(f):
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    return len(directed) == len(edges) and all((b, a) in directed for a, b in directed)


def max_edge(v, f):
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1).max()


@pytest.mark.parametrize('name', ['box', 'pyramid', 'l_prism', 'mug'])
def test_subdivision_keeps_the_surface(name):
    v, f = generate_shape(name, 1)
    v2, f2 = subdivide_mesh(v, f, 0.1)
    assert max_edge(v2, f2) <= 0.1 and len(f2) > len(f)
    assert is_closed(f2)
    # midpoints lie on the old triangles: same area and signed volume
    assert np.isclose(areas(v2, f2).sum(), areas(v, f).sum(), rtol=1e-12)
    assert np.isclose(volume(v2, f2), volume(v, f), rtol=1e-12)
    assert np.array_equal(v2[:len(v)], v)
    # the face budget stops the refinement before it is exceeded
    v3, f3 = subdivide_mesh(v, f, 0.01, max_faces=200)
    assert len(f3) <= max(200, len(f)) and is_closed(f3)


def test_nothing_asked_nothing_done():
    v, f = generate_shape('torus', 0)
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    v2, f2 = perturb_mesh(v, f, rng)
    assert np.array_equal(v2, v) and np.array_equal(f2, f)
    assert rng.bit_generator.state == state  # the pose drawn next is the old one


@pytest.mark.parametrize('name', SHAPE_CLASSES)
def test_full_deformation_keeps_meshes_closed_and_outward(name):
    for seed in range(2):
        v, f = generate_shape(name, seed)
        v2, f2 = perturb_mesh(v, f, np.random.default_rng(seed), deform=1.0)
        assert is_closed(f2) and volume(v2, f2) > 0
        # every refined triangle keeps its orientation: compare with the refined mesh
        center = 0.5 * (v.min(0) + v.max(0))
        radius = np.linalg.norm(v - center, axis=1).max()
        v1, f1 = subdivide_mesh(v, f, 0.15 * radius)
        assert np.array_equal(f1, f2)
        n1 = np.cross(v1[f1[:, 1]] - v1[f1[:, 0]], v1[f1[:, 2]] - v1[f1[:, 0]])
        n2 = np.cross(v2[f2[:, 1]] - v2[f2[:, 0]], v2[f2[:, 2]] - v2[f2[:, 0]])
        big = areas(v1, f1) > 1e-6 * radius ** 2
        assert (np.einsum('ij,ij->i', n1, n2)[big] > 0).mean() > 0.99
        assert not np.allclose(v1, v2)


def test_noise_moves_vertices_along_normals_by_sigma():
    v, f = generate_shape('ellipsoid', 3)
    center = 0.5 * (v.min(0) + v.max(0))
    radius = np.linalg.norm(v - center, axis=1).max()
    v1, f1 = subdivide_mesh(v, f, 0.15 * radius)
    v2, f2 = perturb_mesh(v, f, np.random.default_rng(0), noise=0.02)
    d = v2 - v1
    # normals of the refined mesh, recomputed here (area-weighted face normals)
    n = np.zeros_like(v1)
    fn = np.cross(v1[f1[:, 1]] - v1[f1[:, 0]], v1[f1[:, 2]] - v1[f1[:, 0]])
    for k in range(3):
        np.add.at(n, f1[:, k], fn)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    along = np.einsum('ij,ij->i', d, n)
    assert np.allclose(d, along[:, None] * n, atol=1e-12)
    assert np.abs(along).max() <= 3 * 0.02 * radius + 1e-12
    assert 0.85 < along.std() / (0.02 * radius) < 1.15  # ~1000 vertices


def test_partial_cuts_at_most_the_fraction_and_opens_the_mesh():
    v, f = generate_shape('capsule', 2)
    total = areas(v, f).sum()
    removed = []
    for seed in range(20):
        v2, f2 = perturb_mesh(v, f, np.random.default_rng(seed), partial=0.4)
        assert np.array_equal(v2, v)
        frac = 1 - areas(v2, f2).sum() / total
        assert 0 <= frac <= 0.4 + 1e-12
        removed.append(frac)
        if frac > 0.05:
            assert not is_closed(f2)
    assert 0.1 < np.mean(removed) < 0.3  # U(0, 0.4) of the area, in whole faces


@pytest.mark.parametrize('kwargs, match', [
    (dict(deform=1.5), "'deform' to be >= 0 and <= 1.0"),
    (dict(noise=-0.1), "'noise' to be >= 0"),
    (dict(noise=0.2), "'noise' to be >= 0 and <= 0.1"),
    (dict(partial=1.0), "'partial' to be >= 0 and < 1.0"),
    (dict(deform='a lot'), "'deform' to be a finite number"),
    (dict(noise=float('nan')), "'noise' to be a finite number"),
])
def test_perturbation_errors(kwargs, match):
    v, f = generate_shape('box', 0)
    with pytest.raises(ValueError, match=match):
        perturb_mesh(v, f, np.random.default_rng(0), **kwargs)


def test_rng_must_be_a_generator():
    v, f = generate_shape('box', 0)
    with pytest.raises(ValueError, match="'rng' to be a numpy Generator"):
        perturb_mesh(v, f, 0, deform=0.5)
