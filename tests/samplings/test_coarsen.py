import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from pyg_sphere.samplings import (cubed, equiangular, gauss_legendre, healpix, icosahedral,
                                  points, xyz_to_lonlat)
from pyg_sphere.samplings.coarsen import COARSEN_SAMPLINGS, coarsen
from pyg_sphere.samplings.gauss_legendre import _row_lengths


def _parent_oracle(fine, nside_c, nest):
    """The coarse HEALPix pixel that contains each fine pixel centre (healpy)."""
    xyz = fine.pos.double().numpy()
    return hp.vec2pix(nside_c, xyz[:, 0], xyz[:, 1], xyz[:, 2], nest=nest).tolist()


@pytest.mark.parametrize('factor', [2, 4])
def test_healpix_nested_parent_is_child_div_4m(factor):
    fine = healpix(8)
    coarse, cluster = coarsen(fine, factor)
    assert coarse.sampling == healpix(8 // factor).sampling
    assert cluster.tolist() == (torch.arange(768) // factor ** 2).tolist()
    assert cluster.tolist() == _parent_oracle(fine, 8 // factor, nest=True)
    assert torch.equal(coarse.pos, healpix(8 // factor).pos)
    assert not hasattr(coarse, 'ipix') or coarse.ipix is None


def test_healpix_ring_goes_through_nested():
    fine = healpix(4, nest=False)
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == healpix(2, nest=False).sampling
    assert cluster.tolist() == _parent_oracle(fine, 2, nest=False)
    assert torch.bincount(cluster).tolist() == [4] * 48


def test_healpix_partial_sky_drops_incomplete_parents():
    # parents 7 and 1 complete, parent 5 has 3 of its 4 children; scrambled order
    ipix = [29, 5, 20, 28, 21, 4, 31, 22, 30, 6, 7]
    fine = healpix(2, indexes=ipix)
    with pytest.warns(UserWarning, match='3 of the 11 pixels'):
        coarse, cluster = coarsen(fine)
    assert coarse.ipix.tolist() == [1, 7]
    assert coarse.num_dropped == 3
    assert coarse.sampling == healpix(1).sampling
    expected = [1 if p // 4 == 7 else 0 if p // 4 == 1 else -1 for p in ipix]
    assert cluster.tolist() == expected
    assert torch.equal(coarse.pos, healpix(1, indexes=[1, 7]).pos)


def test_healpix_partial_sky_complete_reports_zero_dropped():
    fine = healpix(4, indexes=torch.arange(32, 64))
    coarse, cluster = coarsen(fine)
    assert coarse.num_dropped == 0
    assert coarse.ipix.tolist() == list(range(8, 16))
    assert cluster.tolist() == (torch.arange(32) // 4).tolist()


def test_healpix_partial_sky_ring():
    full = healpix(4, nest=False)
    ipix = np.arange(0, 100)
    with pytest.warns(UserWarning, match='dropped'):
        coarse, cluster = coarsen(healpix(4, nest=False, indexes=ipix))
    parent = np.array(_parent_oracle(full, 2, nest=False))[ipix]
    kept = cluster >= 0
    assert coarse.ipix[cluster[kept]].tolist() == parent[kept.numpy()].tolist()
    # a parent is kept iff all 4 of its children are in the footprint
    counts = np.bincount(parent, minlength=48)
    assert sorted(coarse.ipix.tolist()) == np.flatnonzero(counts == 4).tolist()


def test_healpix_partial_sky_without_complete_parent_raises():
    with pytest.raises(ValueError, match='none of the parents'):
        coarsen(healpix(4, indexes=[0, 1, 2, 5]))


def test_healpix_errors():
    with pytest.raises(ValueError, match="'factor' to divide nside = 2"):
        coarsen(healpix(2), factor=4)
    with pytest.raises(ValueError, match="'factor' to divide nside = 4"):
        coarsen(healpix(4), factor=3)
    with pytest.raises(ValueError, match='RING.*power of two'):
        coarsen(healpix(6, nest=False), factor=2)
    with pytest.raises(ValueError, match="'factor' to be >= 2"):
        coarsen(healpix(4), factor=1)


@pytest.mark.parametrize('level,factor', [(2, 2), (3, 2), (2, 4)])
def test_icosahedral_keeps_coarse_vertices_and_nearest(level, factor):
    fine = icosahedral(level)
    coarse, cluster = coarsen(fine, factor)
    lc = level - (factor.bit_length() - 1)
    nc = 10 * 4 ** lc + 2
    assert coarse.sampling == icosahedral(lc).sampling
    assert torch.equal(coarse.pos, icosahedral(lc).pos)
    assert torch.equal(coarse.pos, fine.pos[:nc])
    assert cluster[:nc].tolist() == list(range(nc))
    # brute force: nearest coarse vertex, ties to the lowest index
    pos = icosahedral(level, dtype=torch.float64).pos
    angle = torch.acos((pos @ pos[:nc].T).clamp(-1, 1))
    best = angle.min(dim=1, keepdim=True).values
    near = angle <= best + 1e-9
    lowest = torch.where(near, torch.arange(nc), nc).min(dim=1).values
    assert cluster.tolist() == lowest.tolist()
    assert (torch.bincount(cluster, minlength=nc) >= 1).all()


def test_icosahedral_edge_midpoints_tie_to_lower_index():
    fine = icosahedral(1)
    coarse, cluster = coarsen(fine)
    # vertex 12 + r is the midpoint of the r-th edge (sorted by vertex pair)
    pos = icosahedral(0).pos.double()
    dist = torch.cdist(pos, pos)
    edges = [(a, b) for a in range(12) for b in range(a + 1, 12) if dist[a, b] < 1.2]
    assert len(edges) == 30
    assert cluster[12:].tolist() == [a for a, _ in edges]


def test_icosahedral_factor_too_large():
    with pytest.raises(ValueError, match="'factor' to be at most 2"):
        coarsen(icosahedral(1), factor=4)


def _grid_expected(nlat, nlon, factor):
    nlon_c = nlon // factor
    return [(r // factor) * nlon_c + k // factor for r in range(nlat) for k in range(nlon)]


@pytest.mark.parametrize('poles', ['none', 'north'])
def test_equiangular_2x2_blocks(poles):
    fine = equiangular(4, 6, poles=poles)
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == equiangular(2, 3, poles=poles).sampling
    assert cluster.tolist() == _grid_expected(4, 6, 2)
    grid_f = fine.pos.double().view(4, 6, 3)
    grid_c = coarse.pos.double().view(2, 3, 3)
    if poles == 'north':  # Driscoll-Healy: the coarse rows are the fine rows 2j
        assert torch.allclose(grid_c, grid_f[::2, ::2], atol=1e-7)
    else:  # SOFT: each coarse row at the mean colatitude of its block
        theta_f = torch.acos(grid_f[:, 0, 2].clamp(-1, 1))
        theta_c = torch.acos(grid_c[:, 0, 2].clamp(-1, 1))
        assert torch.allclose(theta_c, theta_f.view(2, 2).mean(1), atol=1e-6)


def test_equiangular_factor_4():
    coarse, cluster = coarsen(equiangular(8), factor=4)
    assert coarse.sampling == equiangular(2, 4).sampling
    assert cluster.tolist() == _grid_expected(8, 16, 4)


def test_equiangular_clenshaw_curtis_keeps_both_poles():
    fine = equiangular(5, poles='both')  # 5 x 8, rows at 0, 45, ..., 180 degrees
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == equiangular(3, 4, poles='both').sampling
    assert torch.allclose(coarse.pos.double().view(3, 4, 3),
                          fine.pos.double().view(5, 8, 3)[::2, ::2], atol=1e-7)
    # rows (0, 1) -> 0, (2, 3) -> 1, the south pole row 4 alone -> 2
    assert cluster.tolist() == [(r // 2) * 4 + k // 2 for r in range(5) for k in range(8)]
    assert torch.bincount(cluster).tolist() == [4] * 8 + [2] * 4


def test_equiangular_errors():
    with pytest.raises(ValueError, match="'nlat' to be divisible by 'factor' = 2.*nlat=3"):
        coarsen(equiangular(3))
    with pytest.raises(ValueError, match="'nlon' to be divisible by 'factor' = 2.*nlon=7"):
        coarsen(equiangular(4, 7))
    with pytest.raises(ValueError, match="'nlat' - 1 to be divisible.*nlat=4"):
        coarsen(equiangular(4, poles='both'))


def test_gauss_legendre_regular_2x2_blocks():
    fine = gauss_legendre(4, 6)
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == gauss_legendre(2, 3).sampling
    assert cluster.tolist() == _grid_expected(4, 6, 2)
    with pytest.raises(ValueError, match="'nlat' to be divisible"):
        coarsen(gauss_legendre(3))


def test_gauss_legendre_reduced_longitude_cells():
    fine = gauss_legendre(8, reduced=True)
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == gauss_legendre(4, reduced=True).sampling
    counts = torch.bincount(cluster, minlength=coarse.num_nodes)
    assert int(counts.min()) >= 2 and int(counts.sum()) == fine.num_nodes
    # rows pair up, and each fine point lies in its coarse cell's longitude range
    len_f, len_c = _row_lengths(8, None, True), _row_lengths(4, None, True)
    row_f = np.repeat(np.arange(8), len_f)
    row_c = np.repeat(np.arange(4), len_c)
    assert row_c[cluster.numpy()].tolist() == (row_f // 2).tolist()
    lon_f, _ = xyz_to_lonlat(gauss_legendre(8, reduced=True, dtype=torch.float64).pos)
    lon_c, _ = xyz_to_lonlat(gauss_legendre(4, reduced=True, dtype=torch.float64).pos)
    step = 2 * np.pi / len_c[row_c[cluster.numpy()]]
    offset = np.mod(lon_f - lon_c[cluster.numpy()] + 1e-9, 2 * np.pi)
    assert np.all(offset < step + 1e-9)
    with pytest.raises(ValueError, match="divisible by 2 \\* 'factor' = 4"):
        coarsen(gauss_legendre(6, reduced=True))


@pytest.mark.parametrize('spacing', ['equiangular', 'equidistant'])
def test_cubed_2x2_blocks_per_face(spacing):
    fine = cubed(2, spacing=spacing)
    coarse, cluster = coarsen(fine)
    assert coarse.sampling == cubed(1, spacing=spacing).sampling
    expected = [f * 4 + (j // 2) * 2 + i // 2 for f in range(6) for j in range(4)
                for i in range(4)]
    assert cluster.tolist() == expected
    coarse, cluster = coarsen(cubed(2, spacing=spacing), factor=4)
    assert coarse.sampling == cubed(0, spacing=spacing).sampling
    assert cluster.tolist() == [f for f in range(6) for _ in range(16)]
    with pytest.raises(ValueError, match="'factor' to be a power of two"):
        coarsen(fine, factor=3)


def _random_points(n, seed):
    rng = np.random.default_rng(seed)
    return points(rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n)),
                  dtype=torch.float64)


@pytest.mark.parametrize('factor', [2, 3])
def test_points_clusters_by_healpix_cell(factor):
    fine = _random_points(3000, seed=0)
    coarse, cluster = coarsen(fine, factor)
    assert coarse.sampling.name == 'points' and coarse.sampling['n'] == coarse.num_nodes
    counts = torch.bincount(cluster, minlength=coarse.num_nodes)
    assert int(counts.min()) >= 1
    mean = fine.num_nodes / coarse.num_nodes
    assert factor ** 2 / 2 <= mean <= factor ** 2 * 2
    # members share a NESTED cell at cluster_nside; coarse pos = normalised mean
    xyz = fine.pos.numpy()
    cells = hp.vec2pix(coarse.cluster_nside, xyz[:, 0], xyz[:, 1], xyz[:, 2], nest=True)
    assert all(np.unique(cells[cluster.numpy() == c]).size == 1 for c in range(0, 50))
    mean_pos = torch.zeros(coarse.num_nodes, 3, dtype=torch.float64)
    mean_pos.index_add_(0, cluster, fine.pos)
    assert torch.allclose(coarse.pos, mean_pos / mean_pos.norm(dim=1, keepdim=True))
    assert coarse.pos.dtype == torch.float64


def test_unknown_sampling_is_coarsened_like_points():
    fine = _random_points(500, seed=1)
    data = Data(pos=fine.pos)
    c1, cl1 = coarsen(data)
    c2, cl2 = coarsen(fine)
    assert torch.equal(cl1, cl2) and torch.equal(c1.pos, c2.pos)


def test_subset_of_grid_is_rejected():
    data = equiangular(4)
    bad = Data(pos=data.pos[:10], sampling=data.sampling)
    with pytest.raises(ValueError, match='32 pixels'):
        coarsen(bad)


def test_coarse_keeps_dtype_and_has_no_graph():
    for fine in (healpix(2, dtype=torch.float64), cubed(1, dtype=torch.float64)):
        coarse, _ = coarsen(fine)
        assert coarse.pos.dtype == torch.float64
        assert 'edge_index' not in coarse


def test_every_sampling_has_a_coarsening():
    assert set(COARSEN_SAMPLINGS) == {'healpix', 'icosahedral', 'equiangular',
                                      'gauss_legendre', 'cubed', 'points'}
