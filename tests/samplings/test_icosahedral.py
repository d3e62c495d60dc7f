import math
from itertools import product

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull, SphericalVoronoi
from torch_geometric.data import Batch

from pyg_sphere.samplings import SphereSampling, icosahedral, pixel_area
from pyg_sphere.samplings.icosahedral import _dual_areas


def edges_of(face):
    e = torch.cat([face[[0, 1]], face[[1, 2]], face[[2, 0]]], dim=1)
    return torch.sort(e, dim=0).values


@pytest.mark.parametrize('level', [0, 1, 2, 3])
def test_counts(level):
    data = icosahedral(level)
    assert data.num_nodes == 10 * 4**level + 2
    assert data.pos.shape == (10 * 4**level + 2, 3)
    assert data.face.shape == (3, 20 * 4**level)
    assert data.face.dtype == torch.long


def test_level_0_is_the_icosahedron():
    phi = (1 + math.sqrt(5)) / 2
    expected = []
    for s1, s2 in product((-1, 1), (-phi, phi)):
        expected += [(0, s1, s2), (s1, s2, 0), (s2, 0, s1)]
    expected = np.array(expected) / math.sqrt(1 + phi**2)
    pos = icosahedral(0, dtype=torch.float64).pos.numpy()
    assert np.allclose(np.sort(pos.view('f8,f8,f8'), axis=0).view('f8').reshape(-1, 3),
                       np.sort(expected.view('f8,f8,f8'), axis=0).view('f8').reshape(-1, 3),
                       atol=1e-15, rtol=0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('level', [1, 2, 3])
def test_hierarchy(level, dtype):
    coarse = icosahedral(level - 1, dtype=dtype).pos
    fine = icosahedral(level, dtype=dtype).pos
    assert torch.equal(fine[:coarse.size(0)], coarse)


def test_new_vertices_are_edge_midpoints():
    coarse = icosahedral(1, dtype=torch.float64)
    fine = icosahedral(2, dtype=torch.float64).pos
    e = edges_of(coarse.face).unique(dim=1)
    mid = coarse.pos[e[0]] + coarse.pos[e[1]]
    mid = mid / mid.norm(dim=1, keepdim=True)
    new = fine[coarse.num_nodes:]
    assert new.size(0) == e.size(1)
    # each new vertex is the midpoint of exactly one coarse edge
    dist = torch.cdist(new, mid, compute_mode='donot_use_mm_for_euclid_dist')
    assert bool((dist.min(dim=1).values < 1e-14).all())
    assert dist.argmin(dim=1).unique().numel() == e.size(1)


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(dtype, tol):
    data = icosahedral(3, dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


@pytest.mark.parametrize('level', [0, 1, 3])
def test_faces_form_a_closed_outward_mesh(level):
    data = icosahedral(level, dtype=torch.float64)
    face, pos = data.face, data.pos
    n, f = data.num_nodes, face.size(1)
    assert int(face.min()) == 0 and int(face.max()) == n - 1
    # the 3 vertices of each face are distinct
    assert bool(((face[0] != face[1]) & (face[1] != face[2]) & (face[2] != face[0])).all())
    # every edge is shared by exactly two faces, and Euler's formula holds
    _, counts = edges_of(face).unique(dim=1, return_counts=True)
    assert counts.tolist() == [2] * counts.numel()
    assert n - counts.numel() + f == 2
    # counter-clockwise seen from outside
    a, b, c = pos[face[0]], pos[face[1]], pos[face[2]]
    assert bool((torch.linalg.det(torch.stack([a, b, c], dim=1)) > 0).all())
    # every vertex is in a face; 12 vertices have 5 faces, the others 6
    degree = torch.bincount(face.reshape(-1), minlength=n)
    assert sorted(degree.tolist()) == [5] * 12 + [6] * (n - 12)


@pytest.mark.parametrize('level,ratio', [(0, 1 + 1e-12), (1, 1.14), (3, 1.2)])
def test_edge_lengths_fairly_uniform(level, ratio):
    data = icosahedral(level, dtype=torch.float64)
    e = edges_of(data.face)
    length = (data.pos[e[0]] - data.pos[e[1]]).norm(dim=1)
    assert float(length.max() / length.min()) < ratio


@pytest.mark.parametrize('level', [0, 1, 3])
def test_area(level):
    data = icosahedral(level)
    area = pixel_area(data)
    assert area.dtype == torch.float64
    assert area.shape == (data.num_nodes,)
    assert math.isclose(float(area.sum()), 4 * math.pi, rel_tol=1e-12)
    pos = icosahedral(level, dtype=torch.float64).pos.numpy()
    oracle = SphericalVoronoi(pos).calculate_areas()
    assert np.allclose(area.numpy(), oracle, rtol=1e-10, atol=0)
    if level == 0:
        assert np.allclose(area.numpy(), 4 * math.pi / 12, rtol=1e-13, atol=0)


def test_dual_areas_of_an_irregular_triangulation():
    # the dual-cell formula is exact for any spherical Delaunay triangulation,
    # also with obtuse faces (signed pieces): random points, their convex hull
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(40, 3))
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    faces = ConvexHull(pos).simplices
    a, b, c = pos[faces[:, 0]], pos[faces[:, 1]], pos[faces[:, 2]]
    inward = np.einsum('ij,ij->i', np.cross(b - a, c - a), a) < 0
    faces[inward] = faces[inward][:, ::-1]
    oracle = SphericalVoronoi(pos).calculate_areas()
    assert np.allclose(_dual_areas(pos, faces), oracle, rtol=1e-9, atol=0)


def test_rebuild_round_trip():
    data = icosahedral(np.int64(2))
    assert data.sampling == SphereSampling('icosahedral', {'subdivisions': 2})
    assert type(data.sampling['subdivisions']) is int
    again = data.sampling.rebuild()
    assert again.sampling == data.sampling
    assert torch.equal(again.pos, data.pos)
    assert torch.equal(again.face, data.face)


def test_batch_offsets_faces():
    single = icosahedral(1)
    batch = Batch.from_data_list([single, single])
    n, f = single.num_nodes, single.face.size(1)
    assert batch.num_nodes == 2 * n
    assert batch.face.shape == (3, 2 * f)
    assert torch.equal(batch.face[:, :f], single.face)
    assert torch.equal(batch.face[:, f:], single.face + n)
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))


@pytest.mark.parametrize('value,match', [
    (-1, r"'subdivisions' to be >= 0 \(got -1\)"),
    (13, r"'subdivisions' to be <= 12 \(got 13\)"),
    (1.0, r"'subdivisions' to be an integer"),
    ('2', r"'subdivisions' to be an integer"),
])
def test_bad_input(value, match):
    with pytest.raises(ValueError, match=match):
        icosahedral(value)


def test_bad_dtype():
    with pytest.raises(ValueError, match="'dtype'"):
        icosahedral(0, dtype=torch.long)
