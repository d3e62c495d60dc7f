import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import LaplacianLambdaMax
from torch_geometric.utils import get_laplacian, to_dense_adj

from scipy.sparse.linalg import eigsh

from pyg_sphere.graph import (DENSE_MAX_NODES, LAMBDA_MAX_METHODS, LANCZOS_MARGIN, lambda_max,
                              laplacian, sphere_knn_graph)
from pyg_sphere.samplings import cubed, equiangular, gauss_legendre, healpix, icosahedral, points


@pytest.fixture(scope='module')
def graph():
    data = icosahedral(2)
    edge_index, weight, _ = sphere_knn_graph(data.pos, 6)
    return edge_index, weight, data.num_nodes


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_laplacian_matches_pyg(graph, normalization):
    edge_index, weight, n = graph
    ei, w = get_laplacian(edge_index, weight.double(), normalization, num_nodes=n)
    ref = to_dense_adj(ei, edge_attr=w, max_num_nodes=n)[0].numpy()
    np.testing.assert_allclose(laplacian(edge_index, weight, n, normalization).toarray(), ref,
                               atol=1e-12)


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_lambda_max_matches_dense_eigensolver(graph, normalization):
    edge_index, weight, n = graph
    L = laplacian(edge_index, weight, n, normalization).toarray()
    ref = np.linalg.eigvals(L).real.max()
    assert lambda_max(edge_index, weight, n, normalization) == pytest.approx(ref, rel=1e-6)
    data = Data(edge_index=edge_index, edge_attr=weight, num_nodes=n)
    pyg = LaplacianLambdaMax(normalization)(data).lambda_max
    assert lambda_max(edge_index, weight, n, normalization) == pytest.approx(pyg, rel=1e-5)


def test_normalized_lambda_max_at_most_two():
    data = healpix(4)
    edge_index, weight, _ = sphere_knn_graph(data.pos, 8, sampling=data.sampling)
    lam = lambda_max(edge_index, weight, data.num_nodes, 'sym')
    assert 1.0 < lam <= 2.0


def test_directed_graph_uses_general_solver():
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    lam = lambda_max(edge_index, None, 4, None)
    L = laplacian(edge_index, None, 4, None).toarray()
    assert lam == pytest.approx(np.linalg.eigvals(L).real.max(), rel=1e-6)


def test_bad_normalization(graph):
    with pytest.raises(ValueError, match="'normalization'"):
        laplacian(*graph, normalization='combinatorial')


def test_lambda_max_is_the_same_in_two_processes():
    # ARPACK starts from a random vector unless given one; a different
    # lambda_max per process made seeded runs differ from the first step.
    import subprocess
    import sys
    code = ('from pyg_sphere.samplings import healpix\n'
            'from pyg_sphere.graph import lambda_max, sphere_knn_graph\n'
            'd = healpix(16)\n'
            'ei, w, _ = sphere_knn_graph(d.pos, 8)\n'
            'print(repr(lambda_max(ei, w, d.num_nodes)),\n'
            '      repr(lambda_max(ei, w, d.num_nodes, method="lanczos")))\n')
    out = [subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True).stdout for _ in range(2)]
    assert out[0] == out[1]
    assert all(float(v) > 1.0 for v in out[0].split())


def cycle_with_negative_edges():
    """A 6-cycle whose edges (0, 1) and (3, 4) weigh -3: four nodes of degree -2."""
    src = torch.arange(6)
    dst = (src + 1) % 6
    w = torch.ones(6, dtype=torch.float64)
    w[0] = w[3] = -3.0
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return edge_index, torch.cat([w, w]), 6


def pyg_dense(edge_index, weight, n, normalization):
    ei, w = get_laplacian(edge_index, weight, normalization, num_nodes=n)
    return to_dense_adj(ei, edge_attr=w, max_num_nodes=n)[0].numpy()


@pytest.mark.parametrize('normalization', [None, 'rw'])
def test_negative_degrees_match_pyg(normalization):
    edge_index, weight, n = cycle_with_negative_edges()
    ref = pyg_dense(edge_index, weight, n, normalization)
    np.testing.assert_allclose(laplacian(edge_index, weight, n, normalization).toarray(), ref,
                               atol=1e-12)
    top = np.linalg.eigvals(ref).real.max()  # 2.5 for 'rw', 3 for None
    for method in ('eigsh', 'lanczos'):
        assert lambda_max(edge_index, weight, n, normalization, method=method) == \
            pytest.approx(top, rel=1e-9)
    assert lambda_max(edge_index, weight, n, normalization, method='bound') >= top


def test_negative_degrees_refused_by_sym():
    edge_index, weight, n = cycle_with_negative_edges()
    for call in (lambda: laplacian(edge_index, weight, n, 'sym'),
                 lambda: lambda_max(edge_index, weight, n, 'sym'),
                 lambda: lambda_max(edge_index, weight, n, 'sym', method='bound')):
        with pytest.raises(ValueError, match="non-negative.*node 0 has degree -2"):
            call()


def test_isolated_nodes_have_one_on_the_diagonal():
    # get_laplacian gives every node 1 on the diagonal of a normalized Laplacian
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    weight = torch.tensor([1.0, 1.0, 2.0, 2.0], dtype=torch.float64)
    for normalization in ('sym', 'rw'):
        ref = pyg_dense(edge_index, weight, 5, normalization)
        L = laplacian(edge_index, weight, 5, normalization).toarray()
        np.testing.assert_allclose(L, ref, atol=1e-12)
        assert L[3, 3] == L[4, 4] == 1.0


@pytest.mark.parametrize('normalization', ['sym', 'rw'])
def test_edgeless_graph_matches_pyg(normalization):
    data = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=5)
    pyg = LaplacianLambdaMax(normalization)(data.clone()).lambda_max  # ARPACK: 1 +- 1e-7
    for method in LAMBDA_MAX_METHODS:
        ours = lambda_max(data.edge_index, None, 5, normalization, method=method)
        assert ours == 1.0 and ours == pytest.approx(pyg, rel=1e-6)


def test_edgeless_combinatorial_laplacian_is_zero():
    # (PyG's transform raises ARPACK's "starting vector is zero" here)
    empty = torch.empty(2, 0, dtype=torch.long)
    for method in LAMBDA_MAX_METHODS:
        assert lambda_max(empty, None, 5, None, method=method) == 0.0


def _battery():
    rng = torch.Generator().manual_seed(0)
    lon = torch.rand(3000, generator=rng) * 2 * np.pi
    lat = torch.asin(torch.rand(3000, generator=rng) * 2 - 1)
    return {
        'healpix16_k8': (healpix(16), 8),
        'healpix32_k20': (healpix(32), 20),
        'healpix64_ring_k8': (healpix(64, nest=False), 8),
        'icosahedral4_k8': (icosahedral(4), 8),
        'equiangular32_k8': (equiangular(32), 8),
        'gauss_legendre24_k20': (gauss_legendre(24), 20),
        'cubed4_k8': (cubed(4), 8),
        'points3000_k8': (points(lon, lat), 8),
    }


@pytest.fixture(scope='module')
def battery():
    out = {}
    for name, (data, k) in _battery().items():
        ei, w, _ = sphere_knn_graph(data.pos, k, sampling=data.sampling)
        out[name] = (ei, w, data.num_nodes)
    return out


@pytest.mark.parametrize('name', list(_battery()))
@pytest.mark.parametrize('normalization', [None, 'sym'])
def test_lanczos_estimate_is_a_tight_upper_bound(battery, name, normalization):
    edge_index, weight, n = battery[name]
    assert n > DENSE_MAX_NODES  # the Lanczos path, not the dense one
    L = laplacian(edge_index, weight, n, normalization)
    if n <= 4096:
        true = np.linalg.eigvalsh(L.toarray())[-1]
    else:
        true = eigsh(L, k=1, which='LA', tol=1e-10, ncv=64, v0=np.ones(n) + np.arange(n) / n,
                     return_eigenvectors=False)[0]
    est = lambda_max(edge_index, weight, n, normalization, method='lanczos')
    # never below: the rescaled spectrum 2 L / est - I stays inside [-1, 1]
    assert true <= est <= true * (1 + LANCZOS_MARGIN)
    # the Ritz value itself is a lower bound
    assert est / (1 + LANCZOS_MARGIN) <= true * (1 + 1e-12)
    # and the exact method agrees with ARPACK
    assert lambda_max(edge_index, weight, n, normalization) == pytest.approx(true, rel=1e-6)


def test_lanczos_ignores_edge_order_and_checks_symmetry(battery):
    edge_index, weight, n = battery['healpix16_k8']
    est = lambda_max(edge_index, weight, n, method='lanczos')
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    shuffled = lambda_max(edge_index[:, perm], weight[perm], n, method='lanczos')
    assert shuffled == pytest.approx(est, rel=1e-12)
    # a directed graph (one direction of each edge) goes to the general solver
    keep = edge_index[0] < edge_index[1]
    directed = lambda_max(edge_index[:, keep], weight[keep], n, None, method='lanczos')
    exact = lambda_max(edge_index[:, keep], weight[keep], n, None)
    assert directed == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_bound_is_an_upper_bound(graph, normalization):
    edge_index, weight, n = graph
    top = np.linalg.eigvals(laplacian(edge_index, weight, n, normalization).toarray()).real.max()
    bound = lambda_max(edge_index, weight, n, normalization, method='bound')
    assert bound >= top
    if normalization is not None:
        assert bound == 2.0  # ChebConv's assumption
    else:
        deg = torch.zeros(n, dtype=torch.float64).index_add_(0, edge_index[0], weight.double())
        assert bound == pytest.approx(2 * float(deg.max()))


def test_bad_method(graph):
    with pytest.raises(ValueError, match="'method'"):
        lambda_max(*graph, method='power')
