import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.samplings import EQUIANGULAR_POLES, SphereSampling, equiangular, pixel_area


def expected_colatitudes(nlat, poles):
    if poles == 'none':
        return np.array([math.pi * (2 * j + 1) / (2 * nlat) for j in range(nlat)])
    if poles == 'north':
        return np.array([math.pi * j / nlat for j in range(nlat)])
    return np.array([math.pi * j / (nlat - 1) for j in range(nlat)])


def test_poles_constant():
    assert EQUIANGULAR_POLES == ('none', 'north', 'both')


@pytest.mark.parametrize('poles,nlat,nlon,n', [
    ('none', 4, None, 32), ('north', 4, None, 32), ('both', 4, None, 24),
    ('none', 3, 5, 15), ('both', 2, 3, 6), ('none', 1, None, 2), ('north', 1, 4, 4),
])
def test_counts(poles, nlat, nlon, n):
    data = equiangular(nlat, nlon, poles=poles)
    assert data.num_nodes == n
    assert data.pos.shape == (n, 3)
    default = 2 * (nlat - 1) if poles == 'both' else 2 * nlat
    assert data.sampling['nlon'] == (default if nlon is None else nlon)


@pytest.mark.parametrize('poles', EQUIANGULAR_POLES)
@pytest.mark.parametrize('nlat,nlon', [(4, None), (5, 7)])
def test_latitudes_and_longitudes(poles, nlat, nlon):
    data = equiangular(nlat, nlon, poles=poles, dtype=torch.float64)
    nlon = data.sampling['nlon']
    pos = data.pos.numpy().reshape(nlat, nlon, 3)  # row-major, north to south
    theta = expected_colatitudes(nlat, poles)
    assert np.allclose(pos[..., 2], np.cos(theta)[:, None], atol=1e-14, rtol=0)
    rho = np.hypot(pos[..., 0], pos[..., 1])
    assert np.allclose(rho, np.abs(np.sin(theta))[:, None], atol=1e-14, rtol=0)
    inner = rho[:, 0] > 1e-9
    lon = np.mod(np.arctan2(pos[inner, :, 1], pos[inner, :, 0]), 2 * math.pi)
    lon[lon > 2 * math.pi - 1e-9] = 0.0
    expected = np.array([2 * math.pi * k / nlon for k in range(nlon)])
    assert np.allclose(lon, expected[None, :], atol=1e-12, rtol=0)


def test_pole_rows_are_coincident_points():
    north = equiangular(3, poles='north', dtype=torch.float64).pos
    assert north[:6].tolist() == [[0.0, 0.0, 1.0]] * 6
    assert float(north[6:, 2].abs().max()) < 1
    both = equiangular(3, poles='both', dtype=torch.float64).pos
    assert both[:4].tolist() == [[0.0, 0.0, 1.0]] * 4
    assert both[-4:].tolist() == [[0.0, 0.0, -1.0]] * 4
    none = equiangular(3, dtype=torch.float64).pos
    assert float(none[:, 2].abs().max()) < 1 - 1e-3


@pytest.mark.parametrize('poles', EQUIANGULAR_POLES)
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(poles, dtype, tol):
    data = equiangular(6, poles=poles, dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


@pytest.mark.parametrize('poles', EQUIANGULAR_POLES)
@pytest.mark.parametrize('nlat,nlon', [(2, 3), (7, None), (16, 5)])
def test_area_sums_to_4pi(poles, nlat, nlon):
    area = pixel_area(equiangular(nlat, nlon, poles=poles))
    assert area.dtype == torch.float64
    assert bool((area > 0).all())
    assert math.isclose(float(area.sum()), 4 * math.pi, rel_tol=1e-12)


def test_area_closed_forms():
    # SOFT, 2 rows: each row is a hemisphere
    area = pixel_area(equiangular(2, 3))
    assert torch.allclose(area, torch.full((6,), 2 * math.pi / 3, dtype=torch.float64),
                          rtol=1e-14)
    # Driscoll-Healy, 2 rows at colatitudes 0, pi/2: boundary at pi/4
    area = pixel_area(equiangular(2, 4, poles='north'))
    cap = 2 * math.pi * (1 - math.cos(math.pi / 4)) / 4
    assert np.allclose(area.numpy(), [cap] * 4 + [math.pi - cap] * 4, rtol=1e-14, atol=0)
    # Clenshaw-Curtis, 3 rows at 0, pi/2, pi: boundaries at pi/4, 3 pi/4
    area = pixel_area(equiangular(3, 2, poles='both'))
    cap = 2 * math.pi * (1 - math.cos(math.pi / 4)) / 2
    band = 2 * math.pi * 2 * math.cos(math.pi / 4) / 2
    assert np.allclose(area.numpy(), [cap] * 2 + [band] * 2 + [cap] * 2, rtol=1e-14, atol=0)


def test_areas_of_2x2_blocks_are_the_coarse_cells():
    # SOFT cell boundaries of 2 nlat rows contain those of nlat rows
    fine = pixel_area(equiangular(8, 6)).view(4, 2, 3, 2).sum(dim=(1, 3))
    coarse = pixel_area(equiangular(4, 3)).view(4, 3)
    assert torch.allclose(fine, coarse, rtol=1e-13, atol=0)


@pytest.mark.parametrize('poles', EQUIANGULAR_POLES)
def test_rebuild_round_trip(poles):
    data = equiangular(np.int64(4), nlon=np.int32(6), poles=poles)
    assert data.sampling == SphereSampling('equiangular',
                                           {'nlat': 4, 'nlon': 6, 'poles': poles})
    assert [type(v) for _, v in data.sampling.params] == [int, int, str]
    again = data.sampling.rebuild()
    assert again.sampling == data.sampling
    assert torch.equal(again.pos, data.pos)
    assert equiangular(4, poles=poles).sampling.rebuild().num_nodes == \
        equiangular(4, poles=poles).num_nodes


def test_batch():
    single = equiangular(2, 3)
    batch = Batch.from_data_list([single, single])
    assert batch.num_nodes == 12
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))
    assert batch.batch.tolist() == [0] * 6 + [1] * 6


@pytest.mark.parametrize('kwargs,match', [
    ({'nlat': 0}, r"'nlat' to be >= 1 \(got 0\)"),
    ({'nlat': 1, 'poles': 'both'}, r"'nlat' to be >= 2 \(got 1\)"),
    ({'nlat': 2.5}, r"'nlat' to be an integer"),
    ({'nlat': True}, r"'nlat' to be an integer"),
    ({'nlat': 4, 'nlon': 0}, r"'nlon' to be >= 1 \(got 0\)"),
    ({'nlat': 4, 'nlon': 8.0}, r"'nlon' to be an integer"),
    ({'nlat': 4, 'poles': 'south'}, r"'poles' to be one of \('none', 'north', 'both'\)"),
    ({'nlat': 4, 'dtype': torch.int32}, r"'dtype'"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        equiangular(**kwargs)
