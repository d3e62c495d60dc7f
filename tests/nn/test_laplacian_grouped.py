"""The compiled CPU assembly of the operator from edges grouped by source: the
very operator of the scipy assembly (bit for bit), the same errors, and the
general path for anything else."""
import importlib

import pytest
import torch

from pyg_sphere.nn.conv._laplacian import build_scaled_laplacian
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import SphereKNNGraph

cpu = importlib.import_module('pyg_sphere.nn.conv._laplacian_cpu')
laplacian = importlib.import_module('pyg_sphere.nn.conv._laplacian')
kernels = importlib.import_module('pyg_sphere.nn.conv._laplacian_kernels')


def _both(monkeypatch, *args, **kwargs):
    """(grouped assembly, scipy assembly) of one graph; asserts which ran."""
    calls = []
    real = cpu.grouped_csr

    def spy(*a, **k):
        out = real(*a, **k)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(laplacian, 'grouped_csr', spy)
    monkeypatch.setattr(cpu, 'GROUPED_MIN_EDGES', 0)
    got = build_scaled_laplacian(*args, **kwargs)
    assert calls == [True]
    monkeypatch.setattr(cpu, 'GROUPED_MIN_EDGES', 1 << 62)
    ref = build_scaled_laplacian(*args, **kwargs)
    return got, ref


def _assert_same(got, ref):
    assert got.symmetric == ref.symmetric and got.num_nodes == ref.num_nodes
    for a, b in zip(got[:6], ref[:6]):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # bit for bit
    if got.symmetric:
        assert got.crow_t is got.crow and got.value_t is got.value


@pytest.fixture(scope='module')
def knn_graph():
    data = SphereKNNGraph(k=8, cache=False)(healpix(16))
    assert bool((data.edge_index[0, 1:] >= data.edge_index[0, :-1]).all())
    return data.edge_index, data.edge_weight, data.num_nodes


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
@pytest.mark.parametrize('lambda_max', [None, 1.9])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('weight', [None, torch.float32, torch.float64, torch.float16])
def test_knn_graph_bit_identical(monkeypatch, knn_graph, normalization, lambda_max, dtype,
                                 weight):
    ei, w, n = knn_graph
    w = None if weight is None else w.to(weight)
    got, ref = _both(monkeypatch, ei, n, w, normalization, lambda_max, dtype=dtype)
    _assert_same(got, ref)
    assert got.symmetric == (normalization != 'rw')


def _awkward_graph(n=300, seed=0):
    """Grouped by source, with self loops, duplicated edges, isolated nodes and
    one node joined to most others (a row sorted by the merge sort)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n - 20, (6 * n, ), generator=g)  # nodes >= n - 20 isolated
    dst = torch.randint(0, n - 20, (6 * n, ), generator=g)
    hub = torch.arange(1, n - 20)
    src = torch.cat([src, src[:40], torch.arange(0, n - 20, 3), torch.zeros_like(hub), hub])
    dst = torch.cat([dst, dst[:40], torch.arange(0, n - 20, 3), hub, torch.zeros_like(hub)])
    w = torch.rand(src.numel(), generator=g, dtype=torch.float64) + 0.1
    w[6 * n:6 * n + 40] = w[:40]  # the duplicates: one weight, once more
    order = torch.sort(src, stable=True).indices
    return torch.stack([src, dst])[:, order], w[order], n


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_loops_duplicates_and_long_rows(monkeypatch, normalization, dtype):
    ei, w, n = _awkward_graph()
    assert int((ei[0] == 0).sum()) > kernels.INSERTION_MAX
    got, ref = _both(monkeypatch, ei, n, w, normalization, None, dtype=dtype)
    _assert_same(got, ref)
    off = ei[:, ei[0] != ei[1]]
    assert got.col.numel() == n + torch.unique(off, dim=1).size(1)
    dense = got.to_sparse_csr().to_dense()
    assert torch.equal(got.to_sparse_csr(transpose=True).to_dense(), dense.t())


def test_directed_graph_gets_its_transpose(monkeypatch, knn_graph):
    ei, w, n = knn_graph
    w = w.clone()
    w[11] *= 1.5  # one direction of one edge: not symmetric
    got, ref = _both(monkeypatch, ei, n, w, 'sym', 2.0, dtype=torch.float64)
    _assert_same(got, ref)
    assert not got.symmetric
    assert torch.equal(got.to_sparse_csr(transpose=True).to_dense(),
                       got.to_sparse_csr().to_dense().t())


def test_int32_indices_and_threads(monkeypatch, knn_graph):
    ei, w, n = knn_graph
    got, ref = _both(monkeypatch, ei.int(), n, w, 'sym', None, dtype=torch.float32)
    _assert_same(got, ref)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = _both(monkeypatch, ei, n, w, 'sym', None, dtype=torch.float32)
    finally:
        torch.set_num_threads(threads)
    _assert_same(one, got)


def test_other_orders_take_the_general_path(monkeypatch, knn_graph):
    ei, w, n = knn_graph
    calls = []
    real = cpu.grouped_csr
    monkeypatch.setattr(laplacian, 'grouped_csr',
                        lambda *a, **k: calls.append(real(*a, **k)) or calls[-1])
    monkeypatch.setattr(cpu, 'GROUPED_MIN_EDGES', 0)
    flipped = ei.flip(0)  # grouped by target
    got = build_scaled_laplacian(flipped, n, w, 'sym', None)
    only_loops = torch.arange(n).repeat(2, 1)  # D - A of no edge: lambda_max 0
    lone = build_scaled_laplacian(only_loops, n, None, None, None)
    assert calls == [None, None]
    monkeypatch.setattr(cpu, 'GROUPED_MIN_EDGES', 1 << 62)
    _assert_same(got, build_scaled_laplacian(flipped, n, w, 'sym', None))
    _assert_same(lone, build_scaled_laplacian(only_loops, n, None, None, None))


@pytest.mark.parametrize('path', ['grouped', 'scipy'])
def test_bad_edges_raise_as_the_scipy_path(monkeypatch, knn_graph, path):
    ei, w, n = knn_graph
    monkeypatch.setattr(cpu, 'GROUPED_MIN_EDGES', 0 if path == 'grouped' else 1 << 62)
    for bad, value in ((-1, -1), (n, n)):
        e = ei.clone()
        e[1, 5] = bad
        with pytest.raises(ValueError, match=rf"^Expected 'edge_index' to index the {n} nodes "
                           rf"of x, i.e. to lie in \[0, {n - 1}\] \(got {value}\)$"):
            build_scaled_laplacian(e, n, w, 'sym', None)
    w2 = w.clone()
    w2[[3, 9]] = float('nan')
    w2[17] = float('inf')
    with pytest.raises(ValueError, match=rf"^Expected 'edge_weight' to be finite \(got 3 NaN "
                       rf"or infinite value\(s\) among {ei.size(1)}\)$"):
        build_scaled_laplacian(ei, n, w2, 'sym', None)
