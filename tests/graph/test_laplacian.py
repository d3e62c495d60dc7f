import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import LaplacianLambdaMax
from torch_geometric.utils import get_laplacian, to_dense_adj

from pyg_sphere.graph import lambda_max, laplacian, sphere_knn_graph
from pyg_sphere.samplings import healpix, icosahedral


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
            'd = healpix(8)\n'
            'ei, w, _ = sphere_knn_graph(d.pos, 8)\n'
            'print(repr(lambda_max(ei, w, d.num_nodes)))\n')
    out = [subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True).stdout for _ in range(2)]
    assert out[0] == out[1]
    assert float(out[0]) > 1.0
