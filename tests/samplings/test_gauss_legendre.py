import math

import numpy as np
import pytest
import torch
from scipy.special import eval_legendre, roots_legendre
from torch_geometric.data import Batch

from pyg_sphere.samplings import SphereSampling, gauss_legendre, pixel_area
from pyg_sphere.samplings.gauss_legendre import _row_lengths


def octahedral_lengths(nlat):
    half = [4 * i + 16 for i in range(1, nlat // 2 + 1)]
    return half + half[::-1]


def rows_of(pos):
    """Split float64 positions into rows of equal z, in order; check order."""
    z = pos[:, 2]
    breaks = np.flatnonzero(np.abs(np.diff(z)) > 1e-12) + 1
    return np.split(pos, breaks)


@pytest.mark.parametrize('nlat,nlon,reduced,n', [
    (4, None, False, 32), (3, 5, False, 15), (1, None, False, 2),
    (2, None, True, 40), (4, None, True, 88), (6, None, True, 4 * 9 + 36 * 3),
])
def test_counts(nlat, nlon, reduced, n):
    data = gauss_legendre(nlat, nlon, reduced=reduced)
    assert data.num_nodes == n
    assert data.pos.shape == (n, 3)


@pytest.mark.parametrize('nlat,nlon,reduced', [(5, None, False), (4, 3, False),
                                               (6, None, True), (8, None, True)])
def test_rows(nlat, nlon, reduced):
    pos = gauss_legendre(nlat, nlon, reduced=reduced, dtype=torch.float64).pos.numpy()
    rows = rows_of(pos)
    lengths = octahedral_lengths(nlat) if reduced else [nlon or 2 * nlat] * nlat
    assert [len(r) for r in rows] == lengths
    # latitudes: the roots of P_nlat, north to south
    z = np.array([r[0, 2] for r in rows])
    roots = np.sort(roots_legendre(nlat)[0])[::-1]
    assert np.allclose(z, roots, atol=1e-14, rtol=0)
    assert np.allclose(eval_legendre(nlat, z), 0, atol=1e-12)
    # longitudes 2 pi k / m from 0
    for r, m in zip(rows, lengths):
        lon = np.mod(np.arctan2(r[:, 1], r[:, 0]), 2 * math.pi)
        assert np.allclose(lon, [2 * math.pi * k / m for k in range(m)], atol=1e-12, rtol=0)


def test_row_lengths_helper():
    assert _row_lengths(3, 7, False).tolist() == [7, 7, 7]
    assert _row_lengths(6, None, True).tolist() == [20, 24, 28, 28, 24, 20]
    assert _row_lengths(2560, None, True).sum() == 4 * 1280**2 + 36 * 1280  # O1280


@pytest.mark.parametrize('reduced', [False, True])
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(reduced, dtype, tol):
    data = gauss_legendre(8, reduced=reduced, dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


@pytest.mark.parametrize('nlat,nlon,reduced', [(1, None, False), (5, 3, False),
                                               (16, None, False), (2, None, True),
                                               (16, None, True)])
def test_area_sums_to_4pi(nlat, nlon, reduced):
    area = pixel_area(gauss_legendre(nlat, nlon, reduced=reduced))
    assert area.dtype == torch.float64
    assert bool((area > 0).all())
    assert math.isclose(float(area.sum()), 4 * math.pi, rel_tol=1e-12)


@pytest.mark.parametrize('reduced', [False, True])
def test_quadrature_is_exact(reduced):
    # integrals over the sphere of low-degree polynomials
    data = gauss_legendre(6, reduced=reduced, dtype=torch.float64)
    w, (x, y, z) = pixel_area(data), data.pos.T
    four_pi = 4 * math.pi
    assert math.isclose(float((w * z**4).sum()), four_pi / 5, rel_tol=1e-12)
    assert math.isclose(float((w * x**2).sum()), four_pi / 3, rel_tol=1e-12)
    assert math.isclose(float((w * x**2 * y**2 * z**2).sum()), four_pi / 105, rel_tol=1e-12)
    assert abs(float((w * x * y * z**3).sum())) < 1e-14


@pytest.mark.parametrize('nlat,nlon,reduced', [(4, None, False), (4, 8, False),
                                               (4, None, True)])
def test_rebuild_round_trip(nlat, nlon, reduced):
    data = gauss_legendre(np.int64(nlat), nlon, reduced=reduced)
    params = {'nlat': nlat, 'nlon': None if reduced else (nlon or 2 * nlat),
              'reduced': reduced}
    assert data.sampling == SphereSampling('gauss_legendre', params)
    assert type(data.sampling['nlat']) is int
    again = data.sampling.rebuild()
    assert again.sampling == data.sampling
    assert torch.equal(again.pos, data.pos)


def test_batch():
    single = gauss_legendre(2, reduced=True)
    batch = Batch.from_data_list([single, single])
    assert batch.num_nodes == 80
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))
    assert batch.batch.tolist() == [0] * 40 + [1] * 40


@pytest.mark.parametrize('kwargs,match', [
    ({'nlat': 0}, r"'nlat' to be >= 1 \(got 0\)"),
    ({'nlat': 4.0}, r"'nlat' to be an integer"),
    ({'nlat': 4, 'nlon': 0}, r"'nlon' to be >= 1 \(got 0\)"),
    ({'nlat': 5, 'reduced': True}, r"'nlat' to be even when reduced=True \(got 5\)"),
    ({'nlat': 0, 'reduced': True}, r"'nlat' to be >= 2 \(got 0\)"),
    ({'nlat': 4, 'nlon': 8, 'reduced': True}, r"'nlon' to be None when reduced=True"),
    ({'nlat': 4, 'reduced': 1}, r"'reduced' to be a bool"),
    ({'nlat': 4, 'dtype': torch.int64}, r"'dtype'"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gauss_legendre(**kwargs)
