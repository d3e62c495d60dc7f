import healpy as hp
import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import Compose, ToUndirected
from torch_geometric.utils import is_undirected, to_scipy_sparse_matrix

from pyg_sphere.graph import healpix_kernel_width
from pyg_sphere.samplings import (cubed, equiangular, gauss_legendre, healpix, icosahedral,
                                  points)
from pyg_sphere.transforms import SphereKNNGraph, SphereLaplacianLambdaMax

SAMPLINGS = {
    'healpix': lambda: healpix(4),
    'healpix_ring': lambda: healpix(3, nest=False),
    'healpix_partial': lambda: healpix(8, indexes=hp.query_disc(8, [1.0, 0.0, 0.5], 1.0,
                                                                nest=True)),
    'equiangular_soft': lambda: equiangular(12),
    'equiangular_dh': lambda: equiangular(12, poles='north'),
    'equiangular_cc': lambda: equiangular(13, poles='both'),
    'icosahedral': lambda: icosahedral(2),
    'cubed': lambda: cubed(2),
    'cubed_equidistant': lambda: cubed(2, spacing='equidistant'),
    'gauss_legendre': lambda: gauss_legendre(10),
    'octahedral': lambda: gauss_legendre(10, reduced=True),
    'points': lambda: points(torch.linspace(0, 6, 200), torch.sin(torch.linspace(0, 40, 200))),
}


@pytest.mark.parametrize('name', SAMPLINGS)
def test_every_sampling_gets_symmetric_connected_graph(name):
    data = SphereKNNGraph(k=8)(SAMPLINGS[name]())
    n = data.num_nodes
    assert data.edge_index.dtype == torch.long and data.edge_index.size(0) == 2
    assert data.edge_weight.shape == (data.edge_index.size(1),)
    assert data.edge_weight.dtype == data.pos.dtype
    assert is_undirected(data.edge_index, data.edge_weight, num_nodes=n)
    A = to_scipy_sparse_matrix(data.edge_index, num_nodes=n)
    assert connected_components(A, directed=False)[0] == 1
    assert bool((data.edge_weight > 0).all()) and bool((data.edge_weight <= 1).all())
    assert torch.bincount(data.edge_index[0], minlength=n).min() >= 8
    assert data.kernel_width > 0


def test_repr_names_every_output_affecting_argument():
    assert repr(SphereKNNGraph()) == "SphereKNNGraph(k=8, kernel_width=None, distance='geodesic')"
    assert repr(SphereKNNGraph(20, 0.001, 'chordal')) == \
        "SphereKNNGraph(k=20, kernel_width=0.001, distance='chordal')"
    assert repr(SphereLaplacianLambdaMax()) == \
        'SphereLaplacianLambdaMax(normalization=sym, margin=1.0, method=eigsh)'
    assert repr(SphereLaplacianLambdaMax(None, 1.02, 'lanczos')) == \
        'SphereLaplacianLambdaMax(normalization=None, margin=1.02, method=lanczos)'
    # the cache folder does not change the graph: not in the repr
    assert repr(SphereKNNGraph(cache=False)) == repr(SphereKNNGraph())


def test_default_width_is_published_for_healpix():
    data = SphereKNNGraph(k=20)(healpix(32))
    assert data.kernel_width == pytest.approx(healpix_kernel_width(32, 20))


def test_input_is_not_modified():
    data = healpix(2)
    pos = data.pos.clone()
    out = SphereKNNGraph()(data)
    assert 'edge_index' not in data and out.edge_index is not None
    assert torch.equal(data.pos, pos)


def directed_knn(data, k):
    """The k heaviest edges of each node (= its k nearest), as sets of node ids."""
    order = torch.argsort(data.edge_weight, descending=True, stable=True)
    out = [[] for _ in range(data.num_nodes)]
    for r, c in zip(data.edge_index[0][order].tolist(), data.edge_index[1][order].tolist()):
        if len(out[r]) < k:
            out[r].append(c)
    return out


def test_partial_sky_equals_restricted_full_graph():
    nside, k, t = 16, 8, 1e-3
    full = SphereKNNGraph(k, kernel_width=t)(healpix(nside, dtype=torch.float64))
    ipix = np.sort(hp.query_disc(nside, [0.3, 1.0, 0.4], 0.9, nest=True))
    part = SphereKNNGraph(k, kernel_width=t)(healpix(nside, indexes=ipix, dtype=torch.float64))
    inside = np.zeros(full.num_nodes, dtype=bool)
    inside[ipix] = True
    # nodes none of whose k nearest was cut away by the footprint
    knn_full = directed_knn(full, k)
    intact = {int(p) for p in ipix if all(inside[c] for c in knn_full[p])}
    assert 0.5 * len(ipix) < len(intact) < len(ipix)

    def restricted(edge_index, weight, ids):
        return {(ids[r], ids[c]): w for r, c, w in zip(edge_index[0].tolist(),
                                                       edge_index[1].tolist(), weight.tolist())
                if ids[r] in intact and ids[c] in intact}

    ref = restricted(full.edge_index, full.edge_weight, list(range(full.num_nodes)))
    got = restricted(part.edge_index, part.edge_weight, ipix.tolist())
    assert got.keys() == ref.keys()
    np.testing.assert_allclose([got[e] for e in ref], list(ref.values()), rtol=1e-12)
    # and every edge of the partial graph joins two pixels of the footprint
    assert part.edge_index.max() < len(ipix)


def test_compose_dataloader_and_batch():
    transform = Compose([SphereKNNGraph(k=8), SphereLaplacianLambdaMax()])
    maps = []
    for i in range(4):
        data = healpix(4)
        data.x = torch.randn(data.num_nodes, 2, generator=torch.Generator().manual_seed(i))
        maps.append(transform(data))
    batch = next(iter(DataLoader(maps, batch_size=4)))
    assert batch.num_graphs == 4
    assert batch.lambda_max.shape == (4,)
    assert batch.edge_index.max() == 4 * 192 - 1
    assert batch.kernel_width.shape == (4,)
    assert torch.equal(Batch.from_data_list(maps[:1]).edge_index, maps[0].edge_index)
    # composes with PyG's own transforms
    out = Compose([SphereKNNGraph(k=4), ToUndirected()])(healpix(2))
    assert is_undirected(out.edge_index)



def test_bad_input():
    with pytest.raises(ValueError, match="'k'.*0"):
        SphereKNNGraph(k=0)
    with pytest.raises(ValueError, match="'distance'"):
        SphereKNNGraph(distance='manhattan')
    with pytest.raises(ValueError, match="'kernel_width'"):
        SphereKNNGraph(kernel_width=0)
    with pytest.raises(ValueError, match="'data.pos'"):
        from torch_geometric.data import Data
        SphereKNNGraph()(Data(num_nodes=3))
    data = healpix(2)
    data.pos = data.pos.clone()
    data.pos[3] = float('nan')
    with pytest.raises(ValueError, match="'pos'.*row 3"):
        SphereKNNGraph()(data)
    with pytest.raises(ValueError, match="'normalization'"):
        SphereLaplacianLambdaMax('combinatorial')
    with pytest.raises(ValueError, match="'data.edge_index'"):
        SphereLaplacianLambdaMax()(healpix(1))
