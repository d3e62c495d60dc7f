"""The symmetry check of the operator's CPU assembly (no transpose above a size)."""
import importlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pyg_sphere.nn.conv._laplacian import build_scaled_laplacian
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import SphereKNNGraph

cpu = importlib.import_module('pyg_sphere.nn.conv._laplacian_cpu')


def _random_symmetric(n, density, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=density, random_state=rng, dtype=dtype, format='csr')
    a = (a + a.T).tocsr()
    a.sum_duplicates()
    return a


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_is_symmetric_matches_the_transpose(dtype):
    a = _random_symmetric(300, 0.03, 0, dtype)
    assert cpu.is_symmetric(a)
    b = a.copy()  # one value off by one ulp
    k = b.nnz // 2
    b.data[k] = np.nextafter(b.data[k], np.inf)
    assert not cpu.is_symmetric(b)
    c = a.tolil()  # one entry without its mirror
    i, j = 5, 250
    c[i, j] = 1.0
    c[j, i] = 0.0
    c = c.tocsr()
    c.eliminate_zeros()
    c.sort_indices()
    assert (c != c.T).nnz > 0 and not cpu.is_symmetric(c)
    d = sp.csr_matrix((300, 300), dtype=dtype)  # empty rows only
    assert cpu.is_symmetric(d)


@pytest.mark.parametrize('sym', [True, False])
def test_kernel_path_gives_the_transpose_path_operator(monkeypatch, sym):
    data = SphereKNNGraph(k=8, cache=False)(healpix(16))
    ei, w = data.edge_index, data.edge_weight
    if not sym:  # a directed edge: the operator is not symmetric
        w = w.clone()
        w[7] = w[7] * 1.5
    ref = build_scaled_laplacian(ei, data.num_nodes, w, 'sym', 1.9, dtype=torch.float32)
    monkeypatch.setattr(cpu, 'SYMMETRY_KERNEL_NNZ', 0)
    got = build_scaled_laplacian(ei, data.num_nodes, w, 'sym', 1.9, dtype=torch.float32)
    assert got.symmetric == ref.symmetric == sym
    for a, b in zip(got[:6], ref[:6]):
        assert a.dtype == b.dtype and torch.equal(a, b)
