import os

import healpy as hp
import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from torch_geometric.utils import to_scipy_sparse_matrix, to_undirected

from pyg_sphere.graph import knn, sphere_knn_graph, symmetrize
from pyg_sphere.samplings import equiangular, healpix, points


def tree_distances(pos, k):
    """Independent oracle: sorted chordal distances of the k nearest (scipy)."""
    p = pos.double().numpy()
    d, _ = cKDTree(p).query(p, k + 1)
    return d[:, 1:]


@pytest.mark.parametrize('nside,k', [(32, 8), (32, 20), (32, 40), (32, 60), (64, 8),
                                     (64, 20), (64, 40)])
def test_healpix_fast_path_matches_tree(nside, k):
    data = healpix(nside, dtype=torch.float64)
    nbr, chord2 = knn(data.pos, k, data.sampling)
    assert nbr.shape == (data.num_nodes, k)
    np.testing.assert_allclose(chord2.sqrt().numpy(), tree_distances(data.pos, k), atol=1e-12)
    # the neighbour indices give the distances reported
    direct = (data.pos[nbr] - data.pos[:, None]).norm(dim=-1)
    torch.testing.assert_close(direct ** 2, chord2, atol=1e-12, rtol=0)
    assert not (nbr == torch.arange(data.num_nodes)[:, None]).any()


def test_float32_positions_give_accurate_distances():
    # float32 unit vectors are off the sphere by ~1e-7, which a naive 2 - 2 p.q
    # turns into a 10 % error of neighbour distances at high resolution
    nside = 256
    data32 = healpix(nside)
    data64 = healpix(nside, dtype=torch.float64)
    nbr, chord2 = knn(data32.pos, 8, data32.sampling)
    exact = ((data64.pos[nbr] - data64.pos[:, None]) ** 2).sum(-1)
    assert float(((chord2 - exact).abs() / exact).max()) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize('nside,k', [(128, 60), (256, 20)])
def test_healpix_fast_path_matches_tree_large(nside, k):
    data = healpix(nside, dtype=torch.float64)
    _, chord2 = knn(data.pos, k, data.sampling)
    np.testing.assert_allclose(chord2.sqrt().numpy(), tree_distances(data.pos, k), atol=1e-12)


def test_healpix_ring_non_power_of_two():
    data = healpix(48, nest=False, dtype=torch.float64)  # 27,648 px: fast path
    _, chord2 = knn(data.pos, 8, data.sampling)
    np.testing.assert_allclose(chord2.sqrt().numpy(), tree_distances(data.pos, 8), atol=1e-12)


@pytest.mark.parametrize('nest,nside,k', [(True, 64, 8), (False, 64, 8), (True, 64, 20),
                                          (False, 128, 40), (True, 128, 60)])
def test_healpix_partial_sky_matches_tree(nest, nside, k):
    rng = np.random.default_rng(0)
    disc = hp.query_disc(nside, [1.0, 0.3, 0.2], 1.2, nest=nest)
    holes = hp.query_disc(nside, [1.0, 0.3, 0.2], 0.2, nest=nest)
    ipix = rng.permutation(np.setdiff1d(disc, holes))
    data = healpix(nside, nest=nest, indexes=ipix, dtype=torch.float64)
    _, chord2 = knn(data.pos, k, data.sampling, data.ipix)
    np.testing.assert_allclose(chord2.sqrt().numpy(), tree_distances(data.pos, k), atol=1e-12)


def test_equal_distances_are_ordered_by_row():
    # HEALPix has exactly equidistant neighbours (mirror images across the
    # equator or a meridian); the table orders them by row, whatever the
    # order in which the search meets them
    data = healpix(64, dtype=torch.float64)
    nbr, chord2 = knn(data.pos, 20, data.sampling)
    assert bool((chord2.diff(dim=1) >= 0).all())
    tied = chord2.diff(dim=1) == 0
    assert int(tied.sum()) > 1000  # the case occurs
    # rows the face-grid search answered (not within 3 pixels of a face edge)
    x, y, _ = hp.pix2xyf(64, np.arange(data.num_nodes), nest=True)
    inner = torch.from_numpy((np.minimum(x, y) >= 3) & (np.maximum(x, y) < 61))
    step = nbr.diff(dim=1)
    assert bool((step[tied & inner[:, None]] > 0).all())


def test_knn_agrees_with_healpy_neighbours_in_equatorial_belt():
    # In the equatorial belt (|z| < 2/3) the 8 nearest pixel centres are
    # exactly healpy's 8 neighbours; in the polar caps they need not be.
    nside = 32
    data = healpix(nside, dtype=torch.float64)
    nbr, chord2 = knn(data.pos, 8, data.sampling)
    ref = hp.get_all_neighbours(nside, np.arange(data.num_nodes), nest=True).T
    pos = data.pos.numpy()
    # (the 4 equatorial base-pixel corners have only 7 neighbours)
    belt = (np.abs(pos[:, 2]) < 2 / 3) & (ref >= 0).all(axis=1)
    assert belt.sum() > 0.6 * data.num_nodes
    ref_d = np.sort(np.linalg.norm(pos[ref[belt]] - pos[belt, None], axis=-1), axis=1)
    np.testing.assert_allclose(chord2[belt].sqrt().numpy(), ref_d, atol=1e-12)
    same = [set(a) == set(b) for a, b in zip(nbr[belt].tolist(), ref[belt].tolist())]
    assert np.mean(same) > 0.999
    full = (ref >= 0).all(axis=1)
    same_all = [set(a) == set(b) for a, b in zip(nbr[full].tolist(), ref[full].tolist())]
    assert 0.7 < np.mean(same_all) < 1.0


def test_symmetrize_gives_one_value_per_undirected_edge():
    # the two directions of an edge computed apart may differ by rounding: the
    # output takes the lower row's, so that the graph is exactly symmetric
    torch.manual_seed(1)
    n, k = 60, 5
    nbr = torch.stack([torch.randperm(n - 1)[:k] for _ in range(n)])
    nbr = nbr + (nbr >= torch.arange(n)[:, None]).long()
    value = torch.rand(n, n)
    value = value + value.t()
    val = value[torch.arange(n)[:, None], nbr]
    noisy = val * (1 + 1e-6 * torch.rand(n, k))  # direction-dependent rounding
    given = noisy.clone()
    edge_index, out = symmetrize(nbr, noisy)
    assert torch.equal(noisy, given)  # the input is left as it was
    A = torch.sparse_coo_tensor(edge_index, out, (n, n)).coalesce()
    assert torch.equal(A.to_dense(), A.to_dense().t())
    row, col = edge_index
    lower = torch.minimum(row, col)
    upper = torch.maximum(row, col)
    expected = torch.full((n, n), float('nan'))
    expected[torch.arange(n)[:, None].expand(n, k), nbr] = noisy  # value of the row
    want = torch.where(torch.isnan(expected[lower, upper]), expected[upper, lower],
                       expected[lower, upper])
    assert torch.equal(out, want)


def test_symmetrize_equals_to_undirected():
    torch.manual_seed(0)
    n, k = 50, 4
    nbr = torch.stack([torch.randperm(n - 1)[:k] for _ in range(n)])
    nbr = nbr + (nbr >= torch.arange(n)[:, None]).long()  # no self loops
    value = torch.rand(n, n)
    value = value + value.t()
    val = value[torch.arange(n)[:, None], nbr]
    edge_index, out = symmetrize(nbr, val)
    edge_index32, out32 = symmetrize(nbr.int(), val)
    assert torch.equal(edge_index, edge_index32) and torch.equal(out, out32)
    assert edge_index32.dtype == torch.long
    directed = torch.stack([torch.arange(n).repeat_interleave(k), nbr.reshape(-1)])
    ref = to_undirected(directed, num_nodes=n)
    assert sorted(map(tuple, edge_index.t().tolist())) == sorted(map(tuple, ref.t().tolist()))
    assert bool((edge_index[0].diff() >= 0).all())
    torch.testing.assert_close(out, value[edge_index[0], edge_index[1]])
    # row i: its k neighbours in table order, then the added reverse edges by source
    for i in range(n):
        row = edge_index[1, edge_index[0] == i].tolist()
        assert row[:k] == nbr[i].tolist()
        assert row[k:] == sorted(j for j in range(n) if i in nbr[j].tolist()
                                 and j not in nbr[i].tolist())


def test_sphere_knn_graph_symmetric_connected_weights():
    data = healpix(8, dtype=torch.float64)
    edge_index, weight, t = sphere_knn_graph(data.pos, 8, sampling=data.sampling)
    A = to_scipy_sparse_matrix(edge_index, weight.double(), data.num_nodes).tocsr()
    assert abs(A - A.T).max() < 1e-7
    assert connected_components(A, directed=False)[0] == 1
    assert A.diagonal().max() == 0
    # weight = exp(-d^2 / 4t) with geodesic d
    cos = (data.pos[edge_index[0]].double() * data.pos[edge_index[1]].double()).sum(-1)
    d = torch.arccos(cos.clamp(-1, 1))
    torch.testing.assert_close(weight, torch.exp(-d ** 2 / (4 * t)), atol=1e-12, rtol=0)
    # every node has at least k neighbours
    assert int(torch.bincount(edge_index[0]).min()) >= 8


def test_chordal_distance_option():
    data = healpix(4, dtype=torch.float64)
    ei, w_geo, t = sphere_knn_graph(data.pos, 8, kernel_width=0.01, sampling=data.sampling)
    ei2, w_cho, _ = sphere_knn_graph(data.pos, 8, kernel_width=0.01, distance='chordal',
                                     sampling=data.sampling)
    assert torch.equal(ei, ei2)
    chord = (data.pos[ei[0]] - data.pos[ei[1]]).norm(dim=-1)
    torch.testing.assert_close(w_cho, torch.exp(-chord ** 2 / 0.04))
    assert bool((w_cho > w_geo).all())  # chord < arc


def test_coincident_pole_points_are_not_joined():
    data = equiangular(16, poles='north', dtype=torch.float64)  # 32 copies of the pole
    edge_index, _, _ = sphere_knn_graph(data.pos, 8, sampling=data.sampling)
    length = (data.pos[edge_index[0]] - data.pos[edge_index[1]]).norm(dim=-1)
    assert float(length.min()) > 1e-6
    A = to_scipy_sparse_matrix(edge_index, num_nodes=data.num_nodes)
    assert connected_components(A, directed=False)[0] == 1


def test_duplicate_stations():
    lon = torch.tensor([0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    lat = torch.tensor([0.1, 0.1, 0.2, -0.3, 0.0, 0.4, -0.2, 0.3])
    data = points(lon, lat, dtype=torch.float64)
    nbr, chord2 = knn(data.pos, 3)
    assert float(chord2.min()) > 0
    assert 1 not in nbr[0].tolist() and 0 not in nbr[1].tolist()


def test_bad_input():
    data = healpix(2)
    with pytest.raises(ValueError, match="'k'"):
        sphere_knn_graph(data.pos, 0)
    with pytest.raises(ValueError, match="'k'.*48"):
        sphere_knn_graph(data.pos, 48)
    with pytest.raises(ValueError, match="'distance'"):
        sphere_knn_graph(data.pos, 8, distance='cosine')
    with pytest.raises(ValueError, match="'kernel_width'"):
        sphere_knn_graph(data.pos, 8, kernel_width=-1.0)
    pos = data.pos.clone()
    pos[5, 1] = float('nan')
    with pytest.raises(ValueError, match="'pos'.*row 5"):
        sphere_knn_graph(pos, 8)
    with pytest.raises(ValueError, match="'pos'.*unit"):
        sphere_knn_graph(data.pos * 2, 8)
    with pytest.raises(ValueError, match="'pos'.*shape"):
        sphere_knn_graph(data.pos[:, :2], 8)


@pytest.mark.parametrize('make', [
    lambda: healpix(32),
    lambda: healpix(16, indexes=np.arange(0, 12 * 16 ** 2, 3)),  # partial sky: fallback rows
    lambda: equiangular(24),
    lambda: points(*np.random.default_rng(0).uniform([0, -1.5], [6.28, 1.5], (2000, 2)).T),
], ids=['healpix', 'healpix-partial', 'equiangular', 'points'])
def test_graph_weights_are_exactly_symmetric(make):
    data = make()
    edge_index, weight, _ = sphere_knn_graph(data.pos, 8, sampling=data.sampling,
                                             ipix=getattr(data, 'ipix', None))
    A = to_scipy_sparse_matrix(edge_index, weight, data.num_nodes).tocsr()
    assert (A != A.T).nnz == 0


def test_graph_build_keeps_the_torch_thread_count():
    # The first parallel numba kernel of a process starts numba's OpenMP pool, which
    # set the caller's OpenMP thread count (PyTorch's) to the pool size: a
    # `torch.set_num_threads(1)` before building a model silently became 2. Fresh
    # processes, so that the pool starts inside the build.
    import subprocess
    import sys
    code = ('import torch\n'
            'torch.set_num_threads(1)\n'
            'from pyg_sphere.samplings import healpix\n'
            'from pyg_sphere.graph import lambda_max, sphere_knn_graph\n'
            'd = healpix(16)\n'
            'ei, w, _ = sphere_knn_graph(d.pos, 8, sampling=d.sampling)\n'
            'after_knn = torch.get_num_threads()\n'
            'lambda_max(ei, w, d.num_nodes, method="lanczos")\n'
            'print(after_knn, torch.get_num_threads())\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, env={**os.environ, 'NUMBA_NUM_THREADS': '2'}).stdout
    assert out.split() == ['1', '1']
