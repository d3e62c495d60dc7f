import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.samplings import CUBED_SPACINGS, SphereSampling, cubed, pixel_area

# (normal, u, v) of each face as documented in cubed()'s docstring
FACES = [
    ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    ((0, 1, 0), (-1, 0, 0), (0, 0, 1)),
    ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
    ((0, 0, 1), (0, 1, 0), (-1, 0, 0)),
    ((0, 0, -1), (0, 1, 0), (1, 0, 0)),
]


def centre_coords(num, spacing):
    if spacing == 'equiangular':
        return np.array([math.tan(-math.pi / 4 + (i + 0.5) * (math.pi / 2) / num)
                         for i in range(num)])
    return np.array([-1 + (i + 0.5) * 2 / num for i in range(num)])


def edge_coords(num, spacing):
    if spacing == 'equiangular':
        return np.array([math.tan(-math.pi / 4 + k * (math.pi / 2) / num)
                         for k in range(num + 1)])
    return np.array([-1 + k * 2 / num for k in range(num + 1)])


def spherical_triangle_area(a, b, c):
    # L'Huilier's theorem on the arc lengths
    x, y, z = (math.acos(min(1.0, float(np.dot(p, q)))) for p, q in ((b, c), (c, a), (a, b)))
    s = (x + y + z) / 2
    t = math.tan(s / 2) * math.tan((s - x) / 2) * math.tan((s - y) / 2) * math.tan((s - z) / 2)
    return 4 * math.atan(math.sqrt(max(t, 0.0)))


def test_spacings_constant():
    assert CUBED_SPACINGS == ('equiangular', 'equidistant')


@pytest.mark.parametrize('level', [0, 1, 2, 3])
def test_counts(level):
    data = cubed(level)
    assert data.num_nodes == 6 * 4**level
    assert data.pos.shape == (6 * 4**level, 3)


def test_level_0_is_the_face_centres():
    assert cubed(0, dtype=torch.float64).pos.tolist() == [list(map(float, f[0]))
                                                          for f in FACES]


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
@pytest.mark.parametrize('level', [1, 2])
def test_face_plane_coordinates_and_order(spacing, level):
    num = 2**level
    pos = cubed(level, spacing=spacing, dtype=torch.float64).pos.numpy()
    pos = pos.reshape(6, num, num, 3)  # face, row j (along v), column i (along u)
    c = centre_coords(num, spacing)
    for f, (normal, u, v) in enumerate(FACES):
        normal, u, v = (np.array(w, dtype=float) for w in (normal, u, v))
        plane = pos[f] / (pos[f] @ normal)[..., None]  # gnomonic projection onto the face
        assert np.allclose(plane @ normal, 1.0, atol=1e-14)
        assert np.allclose(plane @ u, c[None, :], atol=1e-14, rtol=0)
        assert np.allclose(plane @ v, c[:, None], atol=1e-14, rtol=0)


def test_face_frames_are_right_handed_and_continuous():
    for normal, u, v in FACES:
        assert np.cross(u, v).tolist() == list(normal)
    num = 4
    pos = cubed(2, dtype=torch.float64).pos.view(6, num, num, 3)
    step = float((pos[0, 0, 1] - pos[0, 0, 0]).norm())

    def close(a, b):  # rows of cells that touch across an edge
        return bool(((a - b).norm(dim=-1) < 1.5 * step).all())

    for f in range(4):  # equatorial faces run eastwards: last column -> next face
        assert close(pos[f, :, -1], pos[(f + 1) % 4, :, 0])
    assert close(pos[0, -1, :], pos[4, 0, :])   # +x top row -> +z first row
    assert close(pos[0, 0, :], pos[5, -1, :])   # +x bottom row -> -z last row
    assert not close(pos[0, -1, :], pos[4, -1, :])


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(spacing, dtype, tol):
    data = cubed(3, spacing=spacing, dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
@pytest.mark.parametrize('level', [0, 1, 3])
def test_area_sums_to_4pi(spacing, level):
    area = pixel_area(cubed(level, spacing=spacing))
    assert area.dtype == torch.float64
    assert area.shape == (6 * 4**level,)
    assert bool((area > 0).all())
    assert math.isclose(float(area.sum()), 4 * math.pi, rel_tol=1e-12)


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
def test_area_matches_spherical_quadrilaterals(spacing):
    # gnomonic cells are bounded by great circles: two spherical triangles each
    num = 4
    area = pixel_area(cubed(2, spacing=spacing)).numpy().reshape(6, num, num)
    e = edge_coords(num, spacing)
    for f, (normal, u, v) in enumerate(FACES):
        normal, u, v = (np.array(w, dtype=float) for w in (normal, u, v))

        def corner(i, j):
            p = normal + e[i] * u + e[j] * v
            return p / np.linalg.norm(p)

        for j in range(num):
            for i in range(num):
                a, b, c, d = corner(i, j), corner(i + 1, j), corner(i + 1, j + 1), corner(i, j + 1)
                expected = spherical_triangle_area(a, b, c) + spherical_triangle_area(a, c, d)
                assert math.isclose(area[f, j, i], expected, rel_tol=1e-9)


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
def test_2x2_blocks_are_the_coarse_cells(spacing):
    fine = pixel_area(cubed(3, spacing=spacing)).view(6, 4, 2, 4, 2).sum(dim=(2, 4))
    coarse = pixel_area(cubed(2, spacing=spacing)).view(6, 4, 4)
    assert torch.allclose(fine, coarse, rtol=1e-12, atol=0)
    # and the coarse centre lies inside the block: nearest to the block's mean
    pos = cubed(3, spacing=spacing, dtype=torch.float64).pos.view(6, 4, 2, 4, 2, 3)
    mean = pos.mean(dim=(2, 4)).reshape(-1, 3)
    coarse_pos = cubed(2, spacing=spacing, dtype=torch.float64).pos
    dist = torch.cdist(coarse_pos, mean, compute_mode='donot_use_mm_for_euclid_dist')
    assert dist.argmin(dim=1).tolist() == list(range(96))


def test_equiangular_is_more_uniform():
    areas = {s: pixel_area(cubed(3, spacing=s)) for s in CUBED_SPACINGS}
    ratio = {s: float(a.min() / a.max()) for s, a in areas.items()}
    assert ratio['equiangular'] > 0.75 > 0.3 > ratio['equidistant']


@pytest.mark.parametrize('spacing', CUBED_SPACINGS)
def test_rebuild_round_trip(spacing):
    data = cubed(np.int64(2), spacing=spacing)
    assert data.sampling == SphereSampling('cubed', {'subdivisions': 2, 'spacing': spacing})
    assert [type(v) for _, v in data.sampling.params] == [str, int]
    again = data.sampling.rebuild()
    assert again.sampling == data.sampling
    assert torch.equal(again.pos, data.pos)


def test_batch():
    single = cubed(1)
    batch = Batch.from_data_list([single, single])
    assert batch.num_nodes == 48
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))
    assert batch.batch.tolist() == [0] * 24 + [1] * 24


@pytest.mark.parametrize('kwargs,match', [
    ({'subdivisions': -1}, r"'subdivisions' to be >= 0 \(got -1\)"),
    ({'subdivisions': 13}, r"'subdivisions' to be <= 12 \(got 13\)"),
    ({'subdivisions': 2.0}, r"'subdivisions' to be an integer"),
    ({'subdivisions': 1, 'spacing': 'gnomonic'},
     r"'spacing' to be one of \('equiangular', 'equidistant'\) \(got 'gnomonic'\)"),
    ({'subdivisions': 1, 'dtype': torch.int64}, r"'dtype'"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cubed(**kwargs)
