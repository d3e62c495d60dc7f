import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.nn import ChebConv

from pyg_sphere.graph import laplacian
from pyg_sphere.metrics import EquivarianceResult, equivariance_error
from pyg_sphere.samplings import equiangular, healpix, icosahedral
from pyg_sphere.transforms import SphereKNNGraph


@pytest.fixture(scope='module')
def hp16():
    return {k: SphereKNNGraph(k=k)(healpix(16, dtype=torch.float64)) for k in (8, 20, 40)}


def test_identity_operator_is_equivariant_up_to_the_floor(hp16):
    data = hp16[8]
    res = equivariance_error(data, sp.identity(data.num_nodes), degrees=[2, 8, 16],
                             n_signals=2, n_rotations=2)
    assert isinstance(res, EquivarianceResult) and res.backend == 'rings_iter'
    # the identity's error is the one-way error of the sampled rotation: of the
    # order of the measured round-trip floor, and tiny at these degrees
    assert (res.error < 10 * res.floor).all()
    assert (res.error < 1e-6).all() and (res.floor < 1e-6).all()


def test_exact_sampling_has_negligible_floor():
    data = SphereKNNGraph(k=8)(equiangular(16, dtype=torch.float64))
    res = equivariance_error(data, sp.identity(data.num_nodes), degrees=[3, 10],
                             n_signals=2, n_rotations=2)
    assert res.backend == 'rings'
    assert (res.floor < 1e-24).all() and (res.error < 1e-24).all()


def test_random_permutation_is_not_equivariant(hp16):
    data = hp16[8]
    perm = np.random.default_rng(0).permutation(data.num_nodes)
    P = sp.csr_matrix((np.ones(data.num_nodes), (np.arange(data.num_nodes), perm)))
    res = equivariance_error(data, P, degrees=[4, 12], n_signals=2, n_rotations=2)
    # two independent maps of equal norm: E ~ 2
    assert (res.error > 1.0).all()


def test_error_falls_with_neighbours(hp16):
    errors = {k: equivariance_error(d, degrees=[8, 16, 24], n_signals=2, n_rotations=2,
                                    floor=False).error for k, d in hp16.items()}
    assert (errors[8] > errors[20]).all() and (errors[20] > errors[40]).all()
    assert (errors[40] < 1e-3).all() and (errors[8] > 1e-3).all()


def test_operator_forms_agree(hp16):
    data = hp16[20]
    L = laplacian(data.edge_index, data.edge_weight, data.num_nodes, None)
    kwargs = dict(degrees=[5, 11], n_signals=2, n_rotations=2, floor=False)
    ref = equivariance_error(data, 'laplacian', **kwargs).error
    coo = L.tocoo()
    torch_sparse = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape)
    for op in (L, L.toarray(), torch_sparse, lambda x: torch_sparse @ x):
        np.testing.assert_allclose(equivariance_error(data, op, **kwargs).error, ref, rtol=1e-9)


def test_conv_layer_as_operator():
    data = SphereKNNGraph(k=20)(healpix(8, dtype=torch.float64))
    torch.manual_seed(0)
    conv = ChebConv(2, 3, K=3).double()

    def op(x):
        if x.dim() == 3:
            return torch.stack([conv(xi, data.edge_index, data.edge_weight) for xi in x])
        return conv(x, data.edge_index, data.edge_weight)
    kwargs = dict(degrees=[4, 10], n_signals=2, n_rotations=2, in_channels=2, floor=False)
    res = equivariance_error(data, op, **kwargs)
    assert (res.error < 0.05).all()
    # the same layer on a scrambled graph is far from equivariant
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(0))
    scrambled = perm[data.edge_index]
    bad = equivariance_error(
        data, lambda x: conv(x, scrambled, data.edge_weight), **kwargs)
    assert (bad.error > 10 * res.error).all()
    batched = equivariance_error(data, op, batched=True, **kwargs)
    np.testing.assert_allclose(batched.error, res.error, rtol=1e-9)


def test_spectrum_and_seed():
    data = SphereKNNGraph(k=8)(icosahedral(3, dtype=torch.float64))
    spec = 1.0 / (1 + np.arange(8)) ** 2
    a = equivariance_error(data, spectrum=spec, n_signals=2, n_rotations=2, seed=3)
    b = equivariance_error(data, spectrum=spec, n_signals=2, n_rotations=2, seed=3)
    assert a.degrees.tolist() == [-1] and a.backend == 'lstsq'
    assert a.error[0] == b.error[0] and 0 < a.error[0] < 0.5
    assert a.as_dict()['degrees'] == [-1]


def test_bad_inputs(hp16):
    data = hp16[8]
    with pytest.raises(ValueError, match=r"'degrees' <= lmax = 3 \* nside - 1 = 47"):
        equivariance_error(data, degrees=[48])
    with pytest.raises(ValueError, match="'degrees'"):
        equivariance_error(data, degrees=[-1])
    with pytest.raises(ValueError, match="'operator'.*n = 3072"):
        equivariance_error(data, sp.identity(100), degrees=[2])
    with pytest.raises(ValueError, match="'operator'"):
        equivariance_error(data, 'gradient', degrees=[2])
    with pytest.raises(ValueError, match="'lmax'"):
        equivariance_error(data, degrees=[2], lmax=48)
    with pytest.raises(ValueError, match="map"):
        equivariance_error(data, lambda x: x[:10], degrees=[2])
    with pytest.raises(ValueError, match="edge_index"):
        equivariance_error(healpix(4), degrees=[2])
    with pytest.raises(ValueError, match="'spectrum'"):
        equivariance_error(data, degrees=[2], spectrum=[1.0])
