"""SphericalChebBlock against an oracle built from PyG's ChebConv, BatchNorm1d and max_pool_x."""
import pytest
import torch
from torch_geometric.nn import ChebConv
from torch_geometric.nn.pool import avg_pool_x, max_pool_x

from pyg_sphere.nn.blocks import ACTIVATIONS, SphericalChebBlock
from pyg_sphere.nn.pool import SpherePool, sphere_pool_batch
from pyg_sphere.samplings import healpix, icosahedral
from pyg_sphere.transforms import SpherePyramid

F_IN, F_OUT, K = 3, 5, 3


def pyramid(sampling, levels=1):
    return SpherePyramid(levels=levels)(sampling)


def randomize_(module, seed):
    """Random parameters and batch-norm running statistics (eval mode is then not identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype))
            elif name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
    return module


def oracle(block, data, x, batch, reduce):
    """conv -> BatchNorm1d -> ReLU -> PyG pooling on the PyG batch x [B * n, F]."""
    conv = ChebConv(F_IN, F_OUT, K, normalization='sym').double()
    conv.load_state_dict(block.conv.state_dict())
    norm = torch.nn.BatchNorm1d(F_OUT).double()
    norm.load_state_dict(block.norm.state_dict())
    norm.train(block.training)
    B = x.size(0) // data.num_nodes
    edge_index = torch.cat([data.edge_index + b * data.num_nodes for b in range(B)], 1)
    edge_weight = data.edge_weight.repeat(B)
    h = torch.relu(norm(conv(x, edge_index, edge_weight, batch)))
    cluster, _ = sphere_pool_batch(data.cluster_1, batch, data.num_nodes_1)
    fn = max_pool_x if reduce == 'max' else avg_pool_x
    return fn(cluster, h, batch)[0]


@pytest.mark.parametrize('sampling,reduce', [
    (lambda: healpix(2, dtype=torch.float64), 'max'),  # reshape pooling path
    (lambda: icosahedral(1, dtype=torch.float64), 'max'),  # gather path
    (lambda: healpix(2, dtype=torch.float64), 'mean'),
])
@pytest.mark.parametrize('training', [True, False])
def test_block_matches_pyg_oracle_dense_and_pyg_layouts(sampling, reduce, training):
    data = pyramid(sampling())
    n, B = data.num_nodes, 3
    torch.manual_seed(0)
    block = SphericalChebBlock(F_IN, F_OUT, K, pool=dict(
        cluster=data.cluster_1, num_clusters=data.num_nodes_1, reduce=reduce)).double()
    randomize_(block, seed=1).train(training)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(B, n, F_IN, generator=gen, dtype=torch.float64)
    batch = torch.arange(B).repeat_interleave(n)

    ref = oracle(block, data, x.reshape(B * n, F_IN), batch, reduce)
    dense = block(x, data.edge_index, data.edge_weight)
    assert dense.shape == (B, data.num_nodes_1, F_OUT)
    torch.testing.assert_close(dense.reshape(-1, F_OUT), ref, rtol=1e-10, atol=1e-10)

    # PyG layout: block-diagonal graph of the batch, batch vector given.
    edge_index = torch.cat([data.edge_index + b * n for b in range(B)], 1)
    block2 = SphericalChebBlock(F_IN, F_OUT, K, pool=dict(
        cluster=data.cluster_1, num_clusters=data.num_nodes_1, reduce=reduce)).double()
    block2.load_state_dict(block.state_dict())
    block2.train(training)
    flat, coarse_batch = block2(x.reshape(B * n, F_IN), edge_index, data.edge_weight.repeat(B),
                                batch)
    torch.testing.assert_close(flat, ref, rtol=1e-10, atol=1e-10)
    assert coarse_batch.tolist() == torch.arange(B).repeat_interleave(data.num_nodes_1).tolist()


def test_batch_norm_over_channels_in_both_layouts():
    # Train mode, no activation: every channel has mean 0 and (biased) variance 1
    # over the B * n pixels, whatever the layout; the two layouts agree exactly.
    data = pyramid(healpix(2, dtype=torch.float64))
    n, B = data.num_nodes, 4
    torch.manual_seed(0)
    block = SphericalChebBlock(F_IN, F_OUT, K, activation=None).double()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(B, n, F_IN, generator=gen, dtype=torch.float64) * 3 + 1
    dense = block(x, data.edge_index, data.edge_weight)
    rows = dense.reshape(-1, F_OUT)
    torch.testing.assert_close(rows.mean(0), torch.zeros(F_OUT, dtype=torch.float64),
                               atol=1e-10, rtol=0)
    torch.testing.assert_close(rows.var(0, unbiased=False),
                               torch.ones(F_OUT, dtype=torch.float64), atol=1e-4, rtol=0)
    # per-map statistics are not normalized: the batch norm is over all maps
    assert dense.mean(1).abs().max() > 1e-3

    block.eval()  # running statistics now hold the batch's statistics (momentum 0.1)
    edge_index = torch.cat([data.edge_index + b * n for b in range(B)], 1)
    flat = block(x.reshape(B * n, F_IN), edge_index, data.edge_weight.repeat(B))
    torch.testing.assert_close(block(x, data.edge_index, data.edge_weight).reshape(-1, F_OUT),
                               flat, rtol=1e-12, atol=1e-12)


def test_pool_forms_and_return_indices():
    data = pyramid(healpix(2))
    torch.manual_seed(0)
    a = SphericalChebBlock(F_IN, F_OUT, K, pool=SpherePool(data.cluster_1, data.num_nodes_1,
                                                           return_indices=True))
    b = SphericalChebBlock(F_IN, F_OUT, K, pool=dict(cluster=data.cluster_1,
                                                     num_clusters=data.num_nodes_1))
    b.load_state_dict(a.state_dict())
    nopool = SphericalChebBlock(F_IN, F_OUT, K)
    nopool.load_state_dict(a.state_dict())
    x = torch.randn(2, data.num_nodes, F_IN)
    out, idx = a(x, data.edge_index, data.edge_weight)
    torch.testing.assert_close(b(x, data.edge_index, data.edge_weight), out)
    full = nopool(x, data.edge_index, data.edge_weight)
    # the indices point at the maxima of the unpooled maps
    assert idx.min() >= 0 and idx.max() < data.num_nodes
    torch.testing.assert_close(full.gather(1, idx), out)
    ref, ref_idx = SpherePool(data.cluster_1, data.num_nodes_1, return_indices=True)(full)
    assert idx.tolist() == ref_idx.tolist()


@pytest.mark.parametrize('activation', ACTIVATIONS)
def test_activations(activation):
    data = pyramid(healpix(1), levels=0)
    block = SphericalChebBlock(F_IN, F_OUT, K, batch_norm=False, activation=activation)
    plain = SphericalChebBlock(F_IN, F_OUT, K, batch_norm=False, activation=None)
    plain.load_state_dict(block.state_dict())
    x = torch.randn(2, 12, F_IN)
    pre = plain(x, data.edge_index, data.edge_weight)
    fn = {None: lambda t: t, 'relu': torch.relu, 'leaky_relu': torch.nn.functional.leaky_relu,
          'elu': torch.nn.functional.elu, 'gelu': torch.nn.functional.gelu,
          'silu': torch.nn.functional.silu, 'tanh': torch.tanh,
          'sigmoid': torch.sigmoid}[activation]
    torch.testing.assert_close(block(x, data.edge_index, data.edge_weight), fn(pre))


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="'activation'"):
        SphericalChebBlock(F_IN, F_OUT, K, activation='relu6')
    with pytest.raises(ValueError, match="'pool'"):
        SphericalChebBlock(F_IN, F_OUT, K, pool='max')
    with pytest.raises(ValueError, match="'batch_norm'"):
        SphericalChebBlock(F_IN, F_OUT, K, batch_norm=1)
    with pytest.raises(ValueError, match="'K'"):
        SphericalChebBlock(F_IN, F_OUT, 0)
    block = SphericalChebBlock(F_IN, F_OUT, K)
    data = pyramid(healpix(1), levels=0)
    with pytest.raises(ValueError, match='in_channels=3'):
        block(torch.randn(2, 12, F_IN + 1), data.edge_index)


def test_repr_and_state_dict_keys():
    data = pyramid(healpix(2))
    block = SphericalChebBlock(F_IN, F_OUT, K, pool=dict(cluster=data.cluster_1))
    assert repr(block) == ('SphericalChebBlock(3, 5, K=3, normalization=sym, batch_norm=True, '
                           'activation=ReLU, pool=SpherePool(48 -> 12, reduce=max, '
                           'path=reshape))')
    # learnable parameters and batch-norm statistics only; the pool's cluster map is
    # a non-persistent buffer
    assert sorted(block.state_dict()) == [
        'conv.bias', 'conv.lins.0.weight', 'conv.lins.1.weight', 'conv.lins.2.weight',
        'norm.bias', 'norm.num_batches_tracked', 'norm.running_mean', 'norm.running_var',
        'norm.weight']
