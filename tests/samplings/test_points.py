import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.samplings import SphereSampling, pixel_area, points


def random_lonlat(n, seed=0):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-math.pi, math.pi, n)
    lat = np.arcsin(rng.uniform(-1, 1, n))
    return lon, lat


def test_positions():
    lon, lat = random_lonlat(20)
    data = points(lon, lat, dtype=torch.float64)
    assert data.num_nodes == 20
    expected = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                         np.sin(lat)], axis=1)
    assert np.allclose(data.pos.numpy(), expected, atol=1e-15, rtol=0)
    assert data.sampling == SphereSampling('points', {'n': 20})
    assert type(data.sampling['n']) is int


def test_known_points_and_degrees():
    data = points([0, 90, 180, -90, 0, 360], [0, 0, 0, 0, 90, -90], degrees=True,
                  dtype=torch.float64)
    expected = [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    assert np.allclose(data.pos.numpy(), expected, atol=1e-15, rtol=0)
    lon, lat = random_lonlat(10)
    rad = points(lon, lat, dtype=torch.float64).pos
    deg = points(np.rad2deg(lon), np.rad2deg(lat), degrees=True, dtype=torch.float64).pos
    assert torch.allclose(rad, deg, atol=1e-15, rtol=0)


def test_accepts_tensors_and_lists():
    lon, lat = random_lonlat(5)
    ref = points(lon, lat, dtype=torch.float64).pos
    assert torch.equal(points(torch.from_numpy(lon), torch.from_numpy(lat),
                              dtype=torch.float64).pos, ref)
    assert torch.equal(points(list(lon), list(lat), dtype=torch.float64).pos, ref)
    assert points([1], [0]).num_nodes == 1  # ints, one point


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(dtype, tol):
    data = points(*random_lonlat(30), dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


def test_area_closed_forms():
    # octahedron: 6 equal cells; tetrahedron-like: 4 points of a regular tetrahedron
    octa = points([0, 90, 180, 270, 0, 0], [0, 0, 0, 0, 90, -90], degrees=True)
    area = pixel_area(octa)
    assert area.dtype == torch.float64
    assert np.allclose(area.numpy(), 4 * math.pi / 6, rtol=1e-12, atol=0)
    lat = math.asin(-1 / 3)
    tetra = points([0, 0, 2 * math.pi / 3, 4 * math.pi / 3], [math.pi / 2, lat, lat, lat])
    assert np.allclose(pixel_area(tetra).numpy(), math.pi, rtol=1e-6, atol=0)  # float32 pos


def test_area_random_points_sum_to_4pi():
    for dtype in (torch.float32, torch.float64):
        area = pixel_area(points(*random_lonlat(200, seed=1), dtype=dtype))
        assert area.shape == (200,)
        assert bool((area > 0).all())
        assert math.isclose(float(area.sum()), 4 * math.pi, rel_tol=1e-10)


def test_area_duplicates_raise():
    lon = [0.0, 1.0, 2.0, 1.0, 3.0, 0.5]
    lat = [0.0, 0.5, -0.5, 0.5, 1.0, -1.0]
    with pytest.raises(ValueError, match=r"duplicate points: points 1 and 3 coincide"):
        pixel_area(points(lon, lat))
    # the same place written two ways
    with pytest.raises(ValueError, match=r"points 0 and 4 coincide"):
        pixel_area(points([0, 90, 180, 45, 360], [0, 0, 0, 60, 0], degrees=True))


def test_area_degenerate_raise():
    with pytest.raises(ValueError, match=r"at least 4 points.*got 3"):
        pixel_area(points([0, 1, 2], [0, 0.5, -0.5]))
    with pytest.raises(ValueError, match=r"one plane"):  # the equator
        pixel_area(points([0, 1, 2, 3, 4], [0, 0, 0, 0, 0]))


def test_rebuild_raises():
    data = points([0, 1], [0, 1])
    with pytest.raises(ValueError, match=r"'points' cannot be rebuilt"):
        data.sampling.rebuild()


def test_batch():
    single = points(*random_lonlat(4))
    batch = Batch.from_data_list([single, single])
    assert batch.num_nodes == 8
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))
    assert batch.batch.tolist() == [0] * 4 + [1] * 4


@pytest.mark.parametrize('lon,lat,kwargs,match', [
    ([0, 1, 2], [0, 0.5, float('nan')], {}, r"'lat' to be finite, but lat\[2\] is nan"),
    ([0, float('inf')], [0, 0.5], {}, r"'lon' to be finite, but lon\[1\] is inf"),
    (torch.tensor([0.0, float('nan')]), [0, 0], {}, r"'lon'.*lon\[1\]"),
    ([0, 1], [0, 45], {}, r"'lat' in \[-1.5708, 1.5708\] radians, but lat\[1\] is 45"
                          r".*pass degrees=True"),
    ([0, 1], [0, 100], {'degrees': True}, r"'lat' in \[-90, 90\] degrees, but lat\[1\]"),
    ([0, 1], [0, 2.0], {}, r"'lat'"),
    ([0, 200], [0, 0], {}, r"'lon' in \[-6.28319, 6.28319\] radians.*pass degrees=True"),
    ([0, -400], [0, 0], {'degrees': True}, r"'lon' in \[-360, 360\] degrees"),
    ([0, 1], [0], {}, r"'lon' and 'lat' to have the same shape"),
    ([], [], {}, r"at least one point"),
    ([[0, 1]], [[0, 1]], {}, r"'lon' to be a 1-D array"),
    ([True], [0], {}, r"'lon' to hold real numbers"),
    (['a'], [0], {}, r"'lon' to hold real numbers"),
    ([0], [0], {'degrees': 1}, r"'degrees' to be a bool"),
    ([0], [0], {'dtype': torch.int64}, r"'dtype'"),
])
def test_bad_input(lon, lat, kwargs, match):
    with pytest.raises(ValueError, match=match):
        points(lon, lat, **kwargs)


def test_no_degrees_hint_for_huge_values():
    with pytest.raises(ValueError, match=r"'lat'") as info:
        points([0], [1000.0])
    assert 'degrees=True' not in str(info.value)
