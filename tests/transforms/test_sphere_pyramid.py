import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import get_laplacian, to_dense_adj

from pyg_sphere.data import DROPPED, SphereData
from pyg_sphere.graph import sphere_knn_graph
from pyg_sphere.nn.pool import SpherePool
from pyg_sphere.samplings import healpix, icosahedral, points
from pyg_sphere.samplings.coarsen import coarsen
from pyg_sphere.transforms.sphere_pyramid import SpherePyramid


@pytest.fixture(autouse=True)
def _empty_cache():
    SpherePyramid.clear_cache()
    yield
    SpherePyramid.clear_cache()


def _dense_lambda_max(edge_index, edge_weight, n):
    """Largest eigenvalue of I - D^-1/2 W D^-1/2 through PyG and a dense solver."""
    ei, ew = get_laplacian(edge_index, edge_weight.double(), 'sym', num_nodes=n)
    L = to_dense_adj(ei, edge_attr=ew, max_num_nodes=n)[0].numpy()
    return float(scipy.linalg.eigvalsh(L).max())


def test_healpix_pyramid_levels():
    data = SpherePyramid(levels=2, k=8)(healpix(4))
    assert isinstance(data, SphereData)
    assert (data.num_nodes, data.num_nodes_1, data.num_nodes_2) == (192, 48, 12)
    assert data.cluster_1.tolist() == (torch.arange(192) // 4).tolist()
    assert data.cluster_2.tolist() == (torch.arange(48) // 4).tolist()
    assert data.sampling_1 == healpix(2).sampling and data.sampling_2 == healpix(1).sampling
    assert torch.equal(data.pos_1, healpix(2).pos)
    for lvl, sfx, n in ((0, '', 192), (1, '_1', 48), (2, '_2', 12)):
        ei, ew = data['edge_index' + sfx], data['edge_weight' + sfx]
        ref_ei, ref_ew, _ = sphere_knn_graph(healpix(4 // 2 ** lvl).pos, 8,
                                             sampling=healpix(4 // 2 ** lvl).sampling)
        assert torch.equal(ei, ref_ei) and torch.allclose(ew, ref_ew)
        assert int(ei.max()) == n - 1
        lam = data['lambda_max' + sfx]
        assert 0 < lam <= 2
        assert lam == pytest.approx(_dense_lambda_max(ei, ew, n), rel=1e-5)


def test_coarse_k_is_capped_by_the_level_size():
    data = SpherePyramid(levels=1, k=20)(healpix(2))  # 48 -> 12 pixels, k_1 = 11
    assert data.num_nodes_1 == 12
    assert data.edge_index_1.size(1) == 12 * 11  # the complete graph
    data = SpherePyramid(levels=2, k=8)(healpix(4))  # 192 -> 48 -> 12 pixels
    assert data.num_nodes_2 == 12 and 'edge_index_3' not in data
    with pytest.raises(ValueError, match="'factor' to divide nside = 1"):
        SpherePyramid(levels=3)(healpix(4))  # nside 1 cannot be halved


def _two_pyramids():
    t = SpherePyramid(levels=2, k=6)
    return t(healpix(4)), t(icosahedral(2))


def test_batch_of_two_pyramids_equals_two_singles():
    a, b = _two_pyramids()
    batch = Batch.from_data_list([a, b])
    for lvl in (1, 2):
        ei, cl = f'edge_index_{lvl}', f'cluster_{lvl}'
        na, nb = a[f'num_nodes_{lvl}'], b[f'num_nodes_{lvl}']
        assert batch[f'num_nodes_{lvl}'].tolist() == [na, nb]
        assert torch.equal(batch[ei], torch.cat([a[ei], b[ei] + na], dim=1))
        assert torch.equal(batch[cl], torch.cat([a[cl], b[cl] + na]))
    assert torch.equal(batch.edge_index, torch.cat([a.edge_index, b.edge_index + 192], 1))
    assert batch.lambda_max_1.tolist() == pytest.approx([a.lambda_max_1, b.lambda_max_1])
    for i, single in enumerate((a, b)):
        back = batch.get_example(i)
        assert torch.equal(back.cluster_2, single.cluster_2)
        assert torch.equal(back.edge_index_1, single.edge_index_1)


def test_batched_cluster_pools_graph_by_graph():
    a, b = _two_pyramids()
    batch = Batch.from_data_list([a, b])
    x = torch.randn(batch.num_nodes, 3, generator=torch.Generator().manual_seed(0))
    pool = SpherePool(batch.cluster_1, int(batch.num_nodes_1.sum()), reduce='max')
    out = pool(x)
    ref = torch.cat([SpherePool(a.cluster_1, a.num_nodes_1)(x[:192]),
                     SpherePool(b.cluster_1, b.num_nodes_1)(x[192:])])
    assert torch.equal(out, ref)


def test_partial_sky_dropped_nodes_stay_negative_in_a_batch():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d1 = SpherePyramid(levels=1, k=4)(healpix(4, indexes=list(range(0, 30))))
        d2 = SpherePyramid(levels=1, k=4)(healpix(4, indexes=list(range(40, 66))))
    assert d1.num_dropped_1 == 2 and d2.num_dropped_1 == 2
    assert d1.ipix_1.tolist() == list(range(7)) and d2.ipix_1.tolist() == list(range(10, 16))
    assert d1.cluster_1[-2:].tolist() == [DROPPED, DROPPED]
    batch = Batch.from_data_list([d1, d2])
    assert int((batch.cluster_1 < 0).sum()) == 4
    kept = batch.cluster_1[batch.cluster_1 >= 0]
    assert kept.tolist() == d1.cluster_1[:28].tolist() + (d2.cluster_1[:24] + 7).tolist()
    x = torch.randn(56, 2)
    out = SpherePool(batch.cluster_1, 13, reduce='mean')(x)
    ref = torch.cat([SpherePool(d1.cluster_1, 7, reduce='mean')(x[:30]),
                     SpherePool(d2.cluster_1, 6, reduce='mean')(x[30:])])
    assert torch.allclose(out, ref)


def test_cache_hit_and_returned_tensors_are_independent(monkeypatch):
    import pyg_sphere.transforms.sphere_pyramid as module
    calls = []
    real = module.sphere_knn_graph
    monkeypatch.setattr(module, 'sphere_knn_graph',
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    t = SpherePyramid(levels=2)
    first = t(healpix(4))
    built = len(calls)
    assert built == 3 and SpherePyramid.cache_size() == 1
    reference = {key: value.clone() for key, value in first if isinstance(value, torch.Tensor)}
    # a user corrupts the returned tensors in place
    first.edge_index_1.zero_()
    first.cluster_2.fill_(7)
    first.edge_weight.mul_(0)
    second = SpherePyramid(levels=2)(healpix(4))
    assert len(calls) == built  # served from the cache
    for key, value in reference.items():
        assert torch.equal(second[key], value), key
    # other arguments are another pyramid
    SpherePyramid(levels=2, k=6)(healpix(4))
    assert len(calls) == 2 * built and SpherePyramid.cache_size() == 2


def test_cache_never_mixes_up_point_sets():
    rng = np.random.default_rng(0)
    p1 = points(rng.uniform(0, 6, 300), rng.uniform(-1.5, 1.5, 300))
    p2 = points(rng.uniform(0, 6, 300), rng.uniform(-1.5, 1.5, 300))
    assert p1.sampling == p2.sampling  # the descriptor only holds n
    t = SpherePyramid(levels=1, k=5)
    d1, d2 = t(p1), t(p2)
    SpherePyramid.clear_cache()
    fresh = t(p2)
    for key in ('edge_index', 'edge_index_1', 'cluster_1', 'pos_1'):
        assert torch.equal(d2[key], fresh[key])
    assert not torch.equal(d1.pos_1, d2.pos_1) or d1.pos_1.shape != d2.pos_1.shape


def test_same_descriptor_other_points_is_rebuilt():
    t = SpherePyramid(levels=1, k=6)
    t(healpix(4))
    moved = healpix(4)
    moved.pos = moved.pos[:, [1, 2, 0]]  # a rotation, same descriptor
    got = t(moved)
    SpherePyramid.clear_cache()
    fresh = t(moved)
    assert torch.equal(got.edge_index, fresh.edge_index)
    assert torch.equal(got.edge_weight, fresh.edge_weight)


def test_kernel_width_per_level():
    t = SpherePyramid(levels=1, k=6, kernel_width=0.01)
    data = t(icosahedral(2))
    coarse, _ = coarsen(icosahedral(2))
    _, ew, _ = sphere_knn_graph(coarse.pos, 6, kernel_width=0.04, sampling=coarse.sampling)
    assert torch.allclose(data.edge_weight_1, ew)
    data = SpherePyramid(levels=1, k=6, kernel_width=[0.01, 0.5])(icosahedral(2))
    _, ew, _ = sphere_knn_graph(coarse.pos, 6, kernel_width=0.5, sampling=coarse.sampling)
    assert torch.allclose(data.edge_weight_1, ew)
    with pytest.raises(ValueError, match="levels \\+ 1 = 2 values"):
        SpherePyramid(levels=1, kernel_width=[0.1])


def test_input_is_not_modified_and_attributes_are_kept():
    data = healpix(2)
    data.y = torch.tensor([3])
    pos = data.pos.clone()
    out = SpherePyramid(levels=1)(data)
    assert 'edge_index' not in data and 'cluster_1' not in data
    assert torch.equal(data.pos, pos)
    assert torch.equal(out.y, data.y) and out.sampling == data.sampling
    # a second pyramid replaces the first, with no stale level left over
    again = SpherePyramid(levels=0)(out)
    assert 'cluster_1' not in again and 'edge_index_1' not in again
    assert 'edge_index' in again


def test_points_without_descriptor():
    rng = np.random.default_rng(1)
    p = points(rng.uniform(0, 6, 200), rng.uniform(-1.5, 1.5, 200))
    data = SpherePyramid(levels=2, k=5)(Data(pos=p.pos))
    assert int(torch.bincount(data.cluster_1).min()) >= 1
    assert data.cluster_1.numel() == 200 and data.cluster_2.numel() == data.num_nodes_1


def test_repr_and_errors():
    assert repr(SpherePyramid(2)) == (
        'SpherePyramid(levels=2, k=8, factor=2, kernel_width=None, normalization=sym, '
        'distance=geodesic, coarse_pos=True, lambda_max_method=lanczos)')
    # (the cache folder does not change the result: not in the repr)
    assert repr(SpherePyramid(1, k=4, factor=4, kernel_width=0.5, normalization=None,
                              distance='chordal', coarse_pos=False, lambda_max_method='eigsh',
                              cache=False)) == (
        'SpherePyramid(levels=1, k=4, factor=4, kernel_width=0.5, normalization=None, '
        'distance=chordal, coarse_pos=False, lambda_max_method=eigsh)')
    with pytest.raises(ValueError, match="'lambda_max_method' to be one of"):
        SpherePyramid(1, lambda_max_method='power')
    with pytest.raises(ValueError, match="'cache' to be True, False or a folder"):
        SpherePyramid(1, cache=3)
    with pytest.raises(ValueError, match="'normalization' to be one of"):
        SpherePyramid(1, normalization='lap')
    with pytest.raises(ValueError, match="'levels' to be >= 0"):
        SpherePyramid(-1)
    with pytest.raises(ValueError, match="'data.pos'"):
        SpherePyramid(1)(Data(x=torch.randn(3, 2)))
    assert 'pos_1' not in SpherePyramid(1, coarse_pos=False)(healpix(2))
