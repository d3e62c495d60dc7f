"""DeepSphere and SphericalUNet: samplings, layouts, batching, invariance, compile, errors."""
import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.nn import ChebConv, global_mean_pool
from torch_geometric.nn.pool import max_pool_x

from pyg_sphere.graph import lambda_max
from pyg_sphere.nn.models import (HEADS, LAMBDA_MAX_MARGIN, POOLS, READOUTS, DeepSphere,
                                  SphericalUNet)
from pyg_sphere.samplings import (cubed, equiangular, gauss_legendre, healpix, icosahedral,
                                  points)
from pyg_sphere.transforms import SpherePyramid

SAMPLINGS = {
    'healpix': lambda: healpix(4),  # 192 -> 48 -> 12
    'healpix_partial': lambda: healpix(4, indexes=torch.arange(64)),  # 4 base pixels
    'equiangular': lambda: equiangular(8, 16),  # 128 -> 32 -> 8
    'icosahedral': lambda: icosahedral(2),  # 162 -> 42 -> 12
    'cubed': lambda: cubed(2),  # 96 -> 24 -> 6
    'gauss_legendre': lambda: gauss_legendre(8, 16),  # 128 -> 32 -> 8
    'points': lambda: points(*_random_lonlat(300, seed=0)),
}


def _random_lonlat(n, seed):
    gen = np.random.default_rng(seed)
    return gen.uniform(0, 2 * np.pi, n), np.arcsin(gen.uniform(-1, 1, n))


def randomize_(module, seed):
    """Random parameters and batch-norm running statistics, so that eval mode is not
    the identity on the batch norms."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
        for name, b in module.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype) * 0.1)
            elif name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
    return module


def small_deepsphere(data, **kwargs):
    torch.manual_seed(0)
    args = dict(in_channels=2, channels=(4, 6), out_channels=3, K=3)
    args.update(kwargs)
    return DeepSphere(data, **args)


def small_unet(data, **kwargs):
    torch.manual_seed(0)
    args = dict(in_channels=2, channels=(4, 6, 8), out_channels=3, K=3, levels=2)
    args.update(kwargs)
    return SphericalUNet(data, **args)


def maps(B, n, F, seed, dtype=torch.float32):
    return torch.randn(B, n, F, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize('name', sorted(SAMPLINGS))
def test_forward_on_every_sampling(name):
    data = SAMPLINGS[name]()
    n = data.num_nodes
    model = small_deepsphere(data)
    assert model.graph.num_nodes[0] == n and len(model.graph.num_nodes) == 3
    out = model(maps(2, n, 2, seed=1))
    assert out.shape == (2, 3) and bool(torch.isfinite(out).all())
    unet = small_unet(data)
    seg = unet(maps(2, n, 2, seed=1))
    assert seg.shape == (2, n, 3) and bool(torch.isfinite(seg).all())
    # a backward pass reaches every parameter
    (out.square().sum() + seg.square().sum()).backward()
    for m in (model, unet):
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in m.parameters())


def sphere_batch(pyramid, x):
    """A PyG Batch of SphereData maps (x [B, n, F]), each carrying the pyramid."""
    items = []
    for b in range(x.size(0)):
        d = pyramid.clone()
        d.x = x[b]
        items.append(d)
    return Batch.from_data_list(items)


@pytest.mark.parametrize('training', [True, False])
def test_dense_equals_pyg_batch(training):
    pyramid = SpherePyramid(levels=2)(icosahedral(2))
    x = maps(3, pyramid.num_nodes, 2, seed=2)
    batch = sphere_batch(pyramid, x)
    for model in (small_deepsphere(pyramid), small_unet(pyramid)):
        randomize_(model, seed=3).train(training)
        dense = model(x)
        flat = model(batch.x, batch.batch)
        whole = model(batch)
        torch.testing.assert_close(flat.reshape(dense.shape), dense, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(whole, flat, rtol=0, atol=0)
        if isinstance(model, SphericalUNet):
            assert flat.shape == (3 * pyramid.num_nodes, 3)


def test_deepsphere_matches_pyg_chebconv_on_the_batch_graph():
    # Independent oracle: torch_geometric's ChebConv on the batched per-level graphs of
    # a Batch of SphereData (edge_index_l, offset by Batch), BatchNorm1d, ReLU,
    # max_pool_x on the batched cluster maps, global_mean_pool, Linear. float64.
    pyramid = SpherePyramid(levels=2)(healpix(4, dtype=torch.float64))
    model = randomize_(small_deepsphere(pyramid).double(), seed=4).eval()
    x = maps(2, pyramid.num_nodes, 2, seed=5, dtype=torch.float64)
    batch = sphere_batch(pyramid, x)
    h, b = batch.x, batch.batch
    for lvl, block in enumerate(model.blocks):
        sfx = '' if lvl == 0 else f'_{lvl}'
        conv = ChebConv(block.in_channels, block.out_channels, 3).double()
        conv.load_state_dict(block.conv.state_dict())
        # (Batch collates the float lambda_max in the default dtype: take the float)
        lam = torch.full((2, ), float(pyramid[f'lambda_max{sfx}']) * LAMBDA_MAX_MARGIN,
                         dtype=torch.float64)
        h = conv(h, batch[f'edge_index{sfx}'], batch[f'edge_weight{sfx}'], b, lambda_max=lam)
        h = torch.relu(block.norm(h))
        h, b = max_pool_x(batch[f'cluster_{lvl + 1}'], h, b)
    expected = model.lin(global_mean_pool(h, b))
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


def test_unet_matches_pyg_reference_on_the_batch_graph():
    # Independent wiring check, PyG layout and PyG ops: ChebConv on the batched graph
    # of each level, max_pool_x on the batched cluster maps, unpooling by indexing with
    # them, skip connections by torch.cat; only the weights come from the model.
    pyramid = SpherePyramid(levels=2)(icosahedral(2, dtype=torch.float64))
    model = randomize_(small_unet(pyramid).double(), seed=30).eval()
    x = maps(2, pyramid.num_nodes, 2, seed=31, dtype=torch.float64)
    batch = sphere_batch(pyramid, x)

    def conv(module, h, lvl):
        sfx = '' if lvl == 0 else f'_{lvl}'
        ref = ChebConv(module.in_channels, module.out_channels, 3).double()
        ref.load_state_dict(module.state_dict())
        lam = torch.full((2, ), float(pyramid[f'lambda_max{sfx}']) * LAMBDA_MAX_MARGIN,
                         dtype=torch.float64)
        return ref(h, batch[f'edge_index{sfx}'], batch[f'edge_weight{sfx}'],
                   batch[f'batch{sfx}'] if lvl else batch.batch, lambda_max=lam)

    def block(module, h, lvl):
        return torch.relu(module.norm(conv(module.conv, h, lvl)))

    # channels (4, 6, 8), levels 2: level 0: 2 -> 4; level 1: 4 -> 6; level 2: 6 -> 8
    b0 = batch.batch
    e0 = block(model.encoder[0][0], batch.x, 0)
    batch.batch_1 = torch.arange(2).repeat_interleave(pyramid.num_nodes_1)
    batch.batch_2 = torch.arange(2).repeat_interleave(pyramid.num_nodes_2)
    h, _ = max_pool_x(batch.cluster_1, e0, b0)
    e1 = block(model.encoder[1][0], h, 1)
    h, _ = max_pool_x(batch.cluster_2, e1, batch.batch_1)
    h = conv(model.encoder[2][0], h, 2)  # bottleneck: no batch norm, no activation
    h = block(model.up[0], h[batch.cluster_2], 1)  # 8 -> 4
    h = block(model.merge[0], torch.cat([h, e1], -1), 1)  # 4 + 6 -> 4
    h = block(model.up[1], h[batch.cluster_1], 0)  # 4 -> 2
    h = block(model.merge[1], torch.cat([h, e0], -1), 0)  # 2 + 4 -> 2
    expected = conv(model.out_conv, h, 0)
    torch.testing.assert_close(model(batch), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('which', ['deepsphere', 'unet'])
def test_batch_of_two_equals_two_singles(which):
    data = healpix(4)
    model = (small_deepsphere if which == 'deepsphere' else small_unet)(data)
    randomize_(model, seed=6).eval()
    x = maps(2, data.num_nodes, 2, seed=7)
    both = model(x)
    singles = torch.cat([model(x[:1]), model(x[1:])])
    torch.testing.assert_close(both, singles, rtol=1e-5, atol=1e-6)
    # and the maps do interact through the batch norm in training mode
    model.train()
    assert not torch.allclose(model(x)[:1], model(x[:1]), atol=1e-4)


@pytest.mark.parametrize('readout', READOUTS)
def test_readout_permutation_invariance(readout):
    model = small_deepsphere(healpix(4), readout=readout)
    randomize_(model, seed=8)
    h = maps(2, model.graph.num_nodes[-1], 6, seed=9)
    perm = torch.randperm(h.size(1), generator=torch.Generator().manual_seed(10))
    same = torch.allclose(model.readout(h[:, perm]), model.readout(h), rtol=1e-6, atol=1e-6)
    assert same == (readout != 'dense')


def rotation_permutation(nside):
    """Pixel permutation of a 90 degree rotation about z, HEALPix NESTED: pixel i goes to p[i]."""
    theta, phi = hp.pix2ang(nside, np.arange(12 * nside ** 2), nest=True)
    p = hp.ang2pix(nside, theta, phi + np.pi / 2, nest=True)
    assert np.array_equal(np.sort(p), np.arange(p.size))  # a bijection
    return torch.from_numpy(p)


def symmetric_pyramid(nside, levels):
    """A HEALPix NESTED pyramid whose graphs are exactly invariant under the 90 degree
    rotation about z, and that rotation's pixel permutation at every level.

    The kNN graph itself is not invariant: pixels at equal distances (ties at the
    k-th neighbour) are split by rounding and index order, e.g. 16 of the 1,560
    edges of nside 4, k = 8 differ. The union of the graph's four rotations,
    W_sym = max_j P^j W P^-j, is exactly invariant (P W_sym P^T is a permutation of
    the same four terms).
    """
    data = SpherePyramid(levels=levels)(healpix(nside, dtype=torch.float64))
    perms = []
    for lvl in range(levels + 1):
        sfx = '' if lvl == 0 else f'_{lvl}'
        n = data.num_nodes if lvl == 0 else data[f'num_nodes{sfx}']
        p = rotation_permutation(nside >> lvl)
        perms.append(p)
        W = torch.zeros(n, n, dtype=torch.float64)
        W[data[f'edge_index{sfx}'][1], data[f'edge_index{sfx}'][0]] = data[f'edge_weight{sfx}']
        sym, rot = W.clone(), W
        for _ in range(3):
            nxt = torch.zeros_like(rot)
            nxt[p.view(-1, 1), p.view(1, -1)] = rot
            rot = nxt
            sym = torch.maximum(sym, rot)
        assert torch.equal(sym[p.view(-1, 1), p.view(1, -1)], sym)  # exact automorphism
        dst, src = sym.nonzero(as_tuple=True)
        data[f'edge_index{sfx}'] = torch.stack([src, dst])
        data[f'edge_weight{sfx}'] = sym[dst, src]
        data[f'lambda_max{sfx}'] = lambda_max(data[f'edge_index{sfx}'],
                                              data[f'edge_weight{sfx}'], n, 'sym')
        if lvl > 0:  # pooling commutes with the rotation: children map to children
            cl = data[f'cluster{sfx}']
            assert torch.equal(p[cl], cl[perms[lvl - 1]])
    return data, perms


def test_fcn_invariant_under_a_grid_symmetry():
    # Rotating a HEALPix map by 90 degrees about z permutes its pixels (NESTED) and,
    # with invariant graphs, is an automorphism of every level: the FCN (global
    # mean) is then exactly invariant up to rounding. float64, eval mode with random
    # batch-norm statistics.
    data, perms = symmetric_pyramid(nside=4, levels=2)
    p = perms[0]
    x = maps(2, data.num_nodes, 2, seed=11, dtype=torch.float64)
    rotated = torch.empty_like(x)
    rotated[:, p] = x  # (R f)(p[i]) = f(i)
    for head in HEADS:
        model = randomize_(small_deepsphere(data, head=head).double(), seed=12).eval()
        out, out_rot = model(x), model(rotated)
        torch.testing.assert_close(out_rot, out, rtol=1e-10, atol=1e-10)
        assert (out - model(x.flip(1))).abs().max() > 1e-3  # not invariant to any permutation
    # the "CNN" variant (flatten + dense) is not invariant
    cnn = randomize_(small_deepsphere(data, readout='dense').double(), seed=12).eval()
    assert (cnn(rotated) - cnn(x)).abs().max() > 1e-3
    # the U-Net is equivariant: rotating the input rotates the segmentation
    unet = randomize_(small_unet(data).double(), seed=13).eval()
    seg = unet(x)
    seg_rot = unet(rotated)
    torch.testing.assert_close(seg_rot[:, p], seg, rtol=1e-10, atol=1e-10)


def test_errors_name_the_argument():
    data = healpix(4)
    model = small_deepsphere(data)
    with pytest.raises(ValueError, match=r"'x'.*n = 192 pixels"):
        model(torch.randn(2, 191, 2))
    with pytest.raises(ValueError, match=r"'x'.*whole maps of the n = 192"):
        model(torch.randn(300, 2))
    with pytest.raises(ValueError, match=r"'x'.*in_channels=2"):
        model(torch.randn(2, 192, 3))
    with pytest.raises(ValueError, match=r"'x'.*in_channels=2"):
        small_unet(data)(torch.randn(192, 5))
    with pytest.raises(ValueError, match="'batch'"):
        model(torch.randn(384, 2), torch.zeros(10, dtype=torch.long))
    # healpix nside 4 cannot be pooled 3 times by 2: nside 1 is not divisible by 2
    with pytest.raises(ValueError, match=r"'factor'.*nside = 1"):
        small_deepsphere(data, channels=(4, 4, 4))
    with pytest.raises(ValueError, match=r"'factor'.*nside = 4"):
        small_deepsphere(data, factor=8)
    with pytest.raises(ValueError, match="'order'"):
        DeepSphere.cosmology(nside=64, order=3)
    with pytest.raises(ValueError, match="'data'"):
        small_deepsphere(Batch.from_data_list([data, data]))
    with pytest.raises(ValueError, match="'data'.*at least 3"):
        small_deepsphere(SpherePyramid(levels=2)(data), channels=(4, 4, 4))
    with pytest.raises(ValueError, match="'head'"):
        small_deepsphere(data, head='conv', readout='dense')
    with pytest.raises(ValueError, match="'pool'"):
        small_deepsphere(data, pool='min')
    with pytest.raises(ValueError, match="'channels'"):
        small_deepsphere(data, channels=(4, 0))
    with pytest.raises(ValueError, match="'levels'"):
        small_unet(data, levels=3)
    with pytest.raises(ValueError, match="'channels'.*'unpool'"):
        small_unet(data, unpool='max_indices')  # channels[-1] != channels[-2]
    with pytest.raises(ValueError, match="'pool'.*'max'"):
        small_unet(data, unpool='max_indices', pool='keep', channels=(4, 6, 6))


@pytest.mark.parametrize('which', ['deepsphere', 'unet'])
def test_state_dict_round_trip(which):
    data = icosahedral(2)
    make = small_deepsphere if which == 'deepsphere' else small_unet
    model = randomize_(make(data), seed=16).eval()
    state = model.state_dict()
    # learnable parameters and batch-norm statistics only: no graph geometry
    assert not [k for k in state if k.startswith('graph.') or 'cluster' in k or 'edge' in k]
    assert len(state) == len(list(model.parameters())) + 3 * sum(
        isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    fresh = make(data).eval()
    x = maps(2, data.num_nodes, 2, seed=17)
    assert not torch.allclose(fresh(x), model(x))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    # the geometry was rebuilt identically
    for (name, a), (_, b) in zip(model.graph.named_buffers(), fresh.graph.named_buffers()):
        assert torch.equal(a, b), name


def cheb_count(fin, fout, K, batch_norm=True, bias=True):
    """Parameters of a Chebyshev conv (K weight matrices, bias) and its batch norm."""
    return K * fin * fout + (fout if bias else 0) + (2 * fout if batch_norm else 0)


def test_shrec17_preset_parameter_count():
    # Defferrard et al. 2020, appendix: [GC16+BN+ReLU]nside32 + Pool + ... +
    # [GC256+BN+ReLU]nside2 + Pool + GAP + FCN (55 classes), K = 4: "190 k".
    widths = [6, 16, 32, 64, 128, 256]
    expected = sum(cheb_count(a, b, 4) for a, b in zip(widths[:-1], widths[1:]))
    expected += 256 * 55 + 55
    model = DeepSphere.shrec17()
    assert model.num_parameters() == expected == 190087
    assert model.graph.num_nodes == [12288, 3072, 768, 192, 48, 12]
    assert repr(model) == ('DeepSphere(6, 55, channels=[16, 32, 64, 128, 256], K=4, pool=max, '
                           'readout=mean, head=linear, sampling=healpix(nest=True, nside=32))')
    model.eval()
    out = model(maps(2, 12288, 6, seed=18))
    assert out.shape == (2, 55)
    # the equiangular variant of the paper: same layers, another sampling
    assert DeepSphere.shrec17(data=equiangular(64, 64)).num_parameters() == 190087


def test_cosmology_preset():
    # Perraudin et al. 2019 FCN: GC16, 32, 64, 64, 64 (+BN+ReLU+Pool), GC2, GAP; K = 5.
    widths = [1, 16, 32, 64, 64, 64]
    expected = sum(cheb_count(a, b, 5) for a, b in zip(widths[:-1], widths[1:]))
    expected += cheb_count(64, 2, 5, batch_norm=False)
    model = DeepSphere.cosmology(nside=128, order=2)  # patch of 64 x 64 = 4096 pixels
    assert model.num_parameters() == expected == 55202
    assert model.graph.num_nodes == [4096, 1024, 256, 64, 16, 4]
    assert model.eval()(maps(3, 4096, 1, seed=19)).shape == (3, 2)


def test_climate_preset():
    # Defferrard et al. 2020, climate U-Net: encoder 16 -> 32 -> 64 (level 5), 128,
    # 256, 512, 512 (+BN+ReLU), 512 (bottleneck, plain conv); decoder: unpool + block
    # + concat + block at levels 1..4, unpool + block 64 -> 32 at level 5, GC3. K = 4.
    enc = [(16, 32), (32, 64), (64, 128), (128, 256), (256, 512), (512, 512)]
    dec = [(512, 512), (1024, 512), (512, 256), (768, 256), (256, 128), (384, 128),
           (128, 64), (192, 64), (64, 32)]
    expected = sum(cheb_count(a, b, 4) for a, b in enc + dec)
    expected += cheb_count(512, 512, 4, batch_norm=False) + cheb_count(32, 3, 4, False)
    model = SphericalUNet.climate()
    assert model.num_parameters() == expected == 7681027
    assert model.graph.num_nodes == [10242, 2562, 642, 162, 42, 12]
    # a forward pass of the full preset is cheap enough for one map
    assert model.eval()(maps(1, 10242, 16, seed=20)).shape == (1, 10242, 3)


@pytest.mark.parametrize('pool,unpool', [('max', 'max_indices'), ('mean', 'repeat'),
                                         ('keep', 'repeat')])
def test_unet_pool_unpool_variants(pool, unpool):
    data = icosahedral(2)
    model = small_unet(data, pool=pool, unpool=unpool, channels=(4, 6, 6))
    x = maps(2, data.num_nodes, 2, seed=21)
    assert model(x).shape == (2, data.num_nodes, 3)
    ref = small_unet(data, pool=pool, unpool=unpool, channels=(4, 6, 6), finest_skip=False)
    # no skip at full resolution: one block fewer, a_0 + b_0 -> a_0 with a_0 = 2 (the
    # input of the only level-0 conv) and b_0 = 4 (its output)
    assert model.num_parameters() - ref.num_parameters() == cheb_count(2 + 4, 2, 3)


@pytest.mark.parametrize('pool', POOLS)
@pytest.mark.parametrize('readout', READOUTS)
def test_deepsphere_pool_and_readout_variants(pool, readout):
    data = icosahedral(2)
    model = small_deepsphere(data, pool=pool, readout=readout)
    last = model.graph.num_nodes[-1]
    assert last == (162 if pool is None else 12)
    assert model.lin.in_features == 6 * (last if readout == 'dense' else 1)
    assert model(maps(2, data.num_nodes, 2, seed=23)).shape == (2, 3)


def test_pool_none_is_a_single_resolution():
    # The paper's global regression on irregular points: GC50, GC100, GC100, GAP, FC.
    data = points(*_random_lonlat(100, seed=1))
    model = DeepSphere(data, 3, (50, 100, 100), 1, K=4, pool=None)
    assert model.graph.num_nodes == [100]
    assert model(maps(2, 100, 3, seed=22)).shape == (2, 1)
    assert POOLS[-1] is None


def test_repr():
    assert repr(small_unet(icosahedral(2))) == (
        'SphericalUNet(2, 3, channels=[4, 6, 8], K=3, levels=2, pool=max, unpool=repeat, '
        'sampling=icosahedral(subdivisions=2))')
