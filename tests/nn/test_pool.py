import warnings

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn.pool import avg_pool_x, max_pool_x

from pyg_sphere.nn.pool import (POOL_PATHS, POOL_REDUCES, UNPOOL_MODES, SpherePool,
                                SphereUnpool, sphere_pool_batch)
from pyg_sphere.samplings import cubed, equiangular, healpix, icosahedral
from pyg_sphere.samplings.coarsen import coarsen


def _partial():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return coarsen(healpix(4, indexes=list(range(10, 90)) + [130, 131, 150]))


CASES = {
    'healpix_nest': lambda: coarsen(healpix(4)),
    'healpix_nest_16': lambda: coarsen(healpix(4), factor=4),
    'healpix_ring': lambda: coarsen(healpix(4, nest=False)),
    'healpix_partial': _partial,
    'icosahedral': lambda: coarsen(icosahedral(2)),
    'equiangular_cc': lambda: coarsen(equiangular(5, poles='both')),
    'cubed': lambda: coarsen(cubed(2)),
}


def _paths(cluster, num_clusters):
    out = []
    for path in POOL_PATHS[1:]:
        try:
            SpherePool(cluster, num_clusters, path=path)
        except ValueError:
            continue
        out.append(path)
    return out


def _naive_pool(x, cluster, num_clusters, reduce):
    """Loop reference on x [B, n, F]: values and the lowest-index argmax."""
    B, n, F = x.shape
    out = torch.zeros(B, num_clusters, F, dtype=x.dtype)
    arg = torch.zeros(B, num_clusters, F, dtype=torch.long)
    members = [[i for i in range(n) if int(cluster[i]) == c] for c in range(num_clusters)]
    for c, m in enumerate(members):
        block = x[:, m]  # [B, |m|, F]
        if reduce == 'mean':
            out[:, c] = block.mean(dim=1)
        else:
            best = block.max(dim=1).values
            out[:, c] = best
            first = (block == best.unsqueeze(1)).int().argmax(dim=1)  # first hit
            arg[:, c] = torch.tensor(m)[first]
    return out, arg


def _ties(B, n, F, seed):
    # small integers: many ties, so the argmax choice is tested too
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (B, n, F), generator=g).double()


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('reduce', ['max', 'mean'])
def test_pool_matches_naive_loop_on_every_path(case, reduce):
    coarse, cluster = CASES[case]()
    C = coarse.num_nodes
    x = _ties(2, cluster.numel(), 3, seed=0)
    ref, ref_arg = _naive_pool(x, cluster, C, reduce)
    paths = _paths(cluster, C)
    assert ('reshape' in paths) == case.startswith('healpix_nest')
    for path in paths:
        pool = SpherePool(cluster, C, reduce=reduce, return_indices=reduce == 'max', path=path)
        out = pool(x)
        if reduce == 'max':
            out, arg = out
            assert arg.tolist() == ref_arg.tolist(), path
            assert torch.equal(x.gather(1, arg), out)
        assert torch.allclose(out, ref, atol=1e-12), path


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('reduce', ['max', 'mean'])
def test_paths_agree_on_values_and_gradients(case, reduce):
    coarse, cluster = CASES[case]()
    C = coarse.num_nodes
    x = _ties(3, cluster.numel(), 4, seed=1).requires_grad_()
    g = torch.Generator().manual_seed(2)
    seed = torch.randn(3, C, 4, generator=g, dtype=torch.float64)
    results = []
    for path in _paths(cluster, C):
        out = SpherePool(cluster, C, reduce=reduce, path=path)(x)
        grad, = torch.autograd.grad((out * seed).sum(), x)
        results.append((path, out, grad))
    assert len(results) >= 2
    for path, out, grad in results[1:]:
        assert torch.allclose(out, results[0][1], atol=1e-12), path
        assert torch.allclose(grad, results[0][2], atol=1e-12), path
    if reduce == 'max':  # the gradient goes to exactly one fine node per (cluster, channel)
        assert int((results[0][2] != 0).sum()) == 3 * C * 4


def test_healpix_fast_path_is_detected_once():
    coarse, cluster = coarsen(healpix(4))
    assert SpherePool(cluster, coarse.num_nodes).path == 'reshape'
    assert SpherePool(cluster, coarse.num_nodes).group == 4
    coarse, cluster = coarsen(healpix(4), factor=4)
    assert SpherePool(cluster).group == 16
    coarse, cluster = coarsen(healpix(4, nest=False))
    assert SpherePool(cluster).path == 'gather'
    many = torch.arange(1000) % 10  # 10 clusters of 100: no reshape, table 10 x 100
    assert SpherePool(many).path == 'gather'
    lopsided = torch.cat([torch.zeros(500, dtype=torch.long), torch.arange(1, 501)])
    assert SpherePool(lopsided).path == 'scatter'


def test_keep_takes_coarse_icosahedral_vertices():
    coarse, cluster = coarsen(icosahedral(2))
    pool = SpherePool(cluster, coarse.num_nodes, reduce='keep')
    x = torch.randn(2, 162, 3)
    assert pool.keep_prefix
    assert torch.equal(pool(x), x[:, :42])
    # elsewhere: the lowest-index member of each cluster
    coarse, cluster = coarsen(cubed(1))
    x = torch.randn(2, 24, 3)
    first = [min(i for i in range(24) if cluster[i] == c) for c in range(6)]
    assert torch.equal(SpherePool(cluster, reduce='keep')(x), x[:, first])


@pytest.mark.parametrize('case', ['healpix_nest', 'icosahedral', 'healpix_partial'])
def test_unpool_repeat_and_max_indices(case):
    coarse, cluster = CASES[case]()
    C, n = coarse.num_nodes, cluster.numel()
    x = torch.randn(2, n, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kept = cluster >= 0

    mean = SpherePool(cluster, C, reduce='mean')(x)
    up = SphereUnpool(cluster, C, mode='repeat')(mean)
    assert up.shape == x.shape
    for i in range(n):
        if kept[i]:
            assert torch.equal(up[:, i], mean[:, cluster[i]])
        else:
            assert torch.equal(up[:, i], torch.zeros(2, 3, dtype=torch.float64))

    y, idx = SpherePool(cluster, C, return_indices=True)(x)
    up = SphereUnpool(cluster, C, mode='max_indices')(y, idx)
    assert up.shape == x.shape
    is_max = torch.zeros_like(x, dtype=torch.bool).scatter(1, idx, True)
    assert torch.equal(up[is_max], x[is_max])  # the maxima are restored
    assert bool((up[~is_max] == 0).all())  # zeros elsewhere
    assert int(is_max.sum()) == 2 * C * 3


def test_unpool_paths_agree():
    coarse, cluster = coarsen(healpix(4))
    y = torch.randn(2, 48, 3)
    fast = SphereUnpool(cluster, 48, path='reshape')
    slow = SphereUnpool(cluster, 48, path='index')
    assert fast.path == 'reshape'
    assert torch.equal(fast(y), slow(y))
    assert torch.equal(fast(y.reshape(96, 3)), slow(y).reshape(384, 3))


def test_dense_batch_equals_per_sample_and_flat_layout():
    coarse, cluster = coarsen(icosahedral(2))
    C = coarse.num_nodes
    x = torch.randn(3, 162, 5)
    pool = SpherePool(cluster, C, return_indices=True)
    out, idx = pool(x)
    for b in range(3):
        ob, ib = pool(x[b:b + 1])
        assert torch.equal(out[b], ob[0]) and torch.equal(idx[b], ib[0])
    # PyG layout [B * n, F]: graphs one after the other, indices into B * n
    flat, flat_idx = pool(x.reshape(3 * 162, 5))
    assert torch.equal(flat, out.reshape(3 * C, 5))
    assert torch.equal(flat_idx.view(3, C, 5), idx + torch.arange(3).view(3, 1, 1) * 162)
    unpool = SphereUnpool(cluster, C, mode='max_indices')
    assert torch.equal(unpool(flat, flat_idx), unpool(out, idx).reshape(3 * 162, 5))


@pytest.mark.parametrize('case', ['healpix_nest', 'icosahedral'])
def test_pyg_batch_of_two_equals_two_singles_and_pyg_pooling(case):
    coarse, cluster = CASES[case]()
    C, n = coarse.num_nodes, cluster.numel()
    g = torch.Generator().manual_seed(4)
    maps = [Data(x=torch.randn(n, 4, generator=g), num_nodes=n) for _ in range(2)]
    batch = Batch.from_data_list(maps)
    cl, coarse_batch = sphere_pool_batch(cluster, batch.batch, C)
    assert coarse_batch.tolist() == [0] * C + [1] * C
    assert cl.tolist() == cluster.tolist() + (cluster + C).tolist()
    for reduce, pyg in (('max', max_pool_x), ('mean', avg_pool_x)):
        pool = SpherePool(cluster, C, reduce=reduce)
        out, out_batch = pool(batch.x, batch.batch)
        singles = torch.cat([pool(m.x) for m in maps])
        assert torch.allclose(out, singles, atol=1e-6)
        assert torch.equal(out_batch, coarse_batch)
        ref, ref_batch = pyg(cl, batch.x, batch.batch)  # PyG as the oracle
        assert torch.allclose(out, ref, atol=1e-6)
        assert torch.equal(ref_batch, out_batch)
        # the batched cluster map works in SpherePool too
        assert torch.allclose(SpherePool(cl, 2 * C, reduce=reduce)(batch.x), out, atol=1e-6)


@pytest.mark.parametrize('case', ['healpix_nest', 'icosahedral'])
@pytest.mark.parametrize('path', ['reshape', 'gather', 'scatter'])
def test_coarse_batch_follows_max_pool_x_for_any_batch_vector(case, path):
    # The coarse batch vector is what max_pool_x gives on the positional cluster
    # map (map b's nodes pool into clusters b * C + cluster): the graph id of each
    # cluster's last member. With one id per map that is the map's id; with a
    # batch vector that is not (e.g. a graph boundary inside a map), the same
    # entries as PyG, not the first member's (it gave [0, 0, 0] for PyG's [0, 0, 1]).
    coarse, cluster = CASES[case]()
    if path == 'reshape' and case != 'healpix_nest':
        pytest.skip('the reshape path needs contiguous clusters')
    C, n, B = coarse.num_nodes, cluster.numel(), 3
    positional = cluster.repeat(B) + torch.arange(B).repeat_interleave(n) * C
    x = torch.randn(B * n, 2, generator=torch.Generator().manual_seed(5))
    pool = SpherePool(cluster, C, path=path)
    batches = [torch.arange(B).repeat_interleave(n),  # one id per map
               torch.cat([torch.zeros(B * n - 2, dtype=torch.long), torch.ones(2).long()]),
               torch.cat([torch.zeros(n + 3, dtype=torch.long),
                          torch.ones(B * n - n - 3).long()]),
               torch.randint(0, 4, (B * n, ), generator=torch.Generator().manual_seed(6))
               .sort().values]
    for batch in batches:
        out, out_batch = pool(x, batch)
        ref, ref_batch = max_pool_x(positional, x, batch)
        assert torch.equal(out, ref)
        assert out_batch.tolist() == ref_batch.tolist()


def test_sphere_pool_batch_keeps_dropped_negative():
    cluster = torch.tensor([0, 0, -1, 1])
    cl, b = sphere_pool_batch(cluster, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    assert cl.tolist() == [0, 0, -1, 1, 2, 2, -1, 3]
    assert b.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"'batch' of shape \[B \* 4\]"):
        sphere_pool_batch(cluster, torch.zeros(6, dtype=torch.long))


def test_wrong_number_of_pixels_raises():
    coarse, cluster = coarsen(healpix(2))
    pool = SpherePool(cluster, coarse.num_nodes)
    with pytest.raises(ValueError, match=r'\[B, 48, F\].*\(2, 47, 3\)'):
        pool(torch.randn(2, 47, 3))
    with pytest.raises(ValueError, match=r'\[B \* 48, F\].*\(50, 3\)'):
        pool(torch.randn(50, 3))
    with pytest.raises(ValueError, match=r'\[B, n, F\] or \[B \* n, F\]'):
        pool(torch.randn(48))
    unpool = SphereUnpool(cluster, coarse.num_nodes)
    with pytest.raises(ValueError, match=r'\[B, 12, F\]'):
        unpool(torch.randn(2, 13, 3))


def test_argument_errors():
    cluster = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="'reduce' to be one of"):
        SpherePool(cluster, reduce='sum')
    with pytest.raises(ValueError, match="reduce='max' with return_indices"):
        SpherePool(cluster, reduce='mean', return_indices=True)
    with pytest.raises(ValueError, match='contiguous'):
        SpherePool(torch.tensor([0, 1, 0, 1]), path='reshape')
    with pytest.raises(ValueError, match='cluster 1 of 3 is empty'):
        SpherePool(torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match=r"values in \[0, 0\] for num_clusters=1"):
        SpherePool(cluster, num_clusters=1)
    with pytest.raises(ValueError, match='1-D LongTensor'):
        SpherePool(cluster.view(2, 2))
    with pytest.raises(ValueError, match='integers'):
        SpherePool(cluster.float())
    with pytest.raises(ValueError, match="'mode' to be one of"):
        SphereUnpool(cluster, mode='nearest')
    unpool = SphereUnpool(cluster, mode='max_indices')
    with pytest.raises(ValueError, match="Expected 'indices'"):
        unpool(torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="'indices' of the shape"):
        unpool(torch.randn(1, 2, 3), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no 'indices'"):
        SphereUnpool(cluster)(torch.randn(1, 2, 3), torch.zeros(1, 2, 3, dtype=torch.long))


def test_constants_repr_and_buffers():
    assert POOL_REDUCES == ('max', 'mean', 'keep')
    assert UNPOOL_MODES == ('repeat', 'max_indices')
    coarse, cluster = coarsen(healpix(4))
    pool = SpherePool(cluster, 48, reduce='mean')
    assert repr(pool) == 'SpherePool(192 -> 48, reduce=mean, path=reshape)'
    assert repr(SphereUnpool(cluster, 48)) == 'SphereUnpool(48 -> 192, mode=repeat, path=reshape)'
    assert pool.state_dict() == {}  # geometry is rebuilt, not saved
    assert list(pool.parameters()) == []
    pool = pool.double()
    assert pool(torch.randn(1, 192, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize('path', ['reshape', 'gather', 'scatter'])
def test_compile_fullgraph_matches_eager(path):
    coarse, cluster = coarsen(healpix(4))
    pool = SpherePool(cluster, 48, return_indices=True, path=path)
    x = torch.randn(2, 192, 3)
    compiled = torch.compile(pool, fullgraph=True, backend='aot_eager')
    out, idx = compiled(x)
    ref, ref_idx = pool(x)
    assert torch.equal(out, ref) and torch.equal(idx, ref_idx)
    unpool = torch.compile(SphereUnpool(cluster, 48), fullgraph=True, backend='aot_eager')
    assert torch.equal(unpool(out), SphereUnpool(cluster, 48)(ref))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('case,path', [('healpix_nest', 'reshape'), ('icosahedral', 'gather'),
                                       ('healpix_partial', 'scatter')])
def test_cuda_matches_cpu_without_host_sync(case, path):
    coarse, cluster = CASES[case]()
    C, n = coarse.num_nodes, cluster.numel()
    x = torch.randn(2, n, 3, generator=torch.Generator().manual_seed(5))
    pool = SpherePool(cluster, C, return_indices=True, path=path)
    unpool = SphereUnpool(cluster, C, mode='max_indices')
    ref, ref_idx = pool(x)
    pool_cuda, unpool_cuda = pool.cuda(), unpool.cuda()
    xc = x.cuda().requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')  # any host sync raises
    try:
        out, idx = pool_cuda(xc)
        up = unpool_cuda(out, idx)
        up.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.equal(out.cpu(), ref) and torch.equal(idx.cpu(), ref_idx)
    assert torch.equal(up.cpu(), SphereUnpool(cluster, C, mode='max_indices')(ref, ref_idx))
