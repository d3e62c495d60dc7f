"""Fused batch norm + ReLU + max pooling, and the kernel threads, against the unfused modules."""
import pytest
import torch

from pyg_sphere.nn import SphericalChebBlock, SphericalChebConv, SpherePool, kernel_threads
from pyg_sphere.nn.blocks import _fused
from pyg_sphere.nn.blocks._fused import (BatchNormReLUMaxPool, batch_stats, can_fuse,
                                         fused_bn_relu_max_pool)
from pyg_sphere.nn.models import DeepSphere
from pyg_sphere.samplings import healpix

from .test_cheb_conv import random_graph


def unfused(x, norm, pool):
    """The oracle: PyTorch's BatchNorm1d and ReLU, then our (tested) pooling."""
    B, n, F = x.shape
    return pool(torch.relu(norm(x.reshape(B * n, F))).view(B, n, F))


def pair(F, gamma, momentum=0.1):
    norms = [torch.nn.BatchNorm1d(F, momentum=momentum).double() for _ in range(2)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.copy_(gamma)
            # channel 0 (tied slots where gamma is 0) passes the ReLU
            norm.bias.copy_(torch.linspace(0.4, -0.3, F))
            norm.running_mean.copy_(torch.linspace(-1, 1, F))
            norm.running_var.copy_(torch.linspace(0.5, 2, F))
    return norms


@pytest.fixture(params=['kernels', 'torch'])
def path(request, monkeypatch):
    """Both implementations on CPU: the compiled kernels and the PyTorch ops (GPU path)."""
    monkeypatch.setattr(_fused, 'USE_KERNELS', request.param == 'kernels')
    return request.param


GAMMAS = {
    'positive': lambda F: torch.linspace(0.5, 1.5, F),
    'mixed_signs': lambda F: torch.linspace(-1.0, 1.0, F),  # the minimum wins where gamma < 0
    'zero': lambda F: torch.cat([torch.zeros(1), torch.ones(F - 1)]),  # all slots tie
}


@pytest.mark.parametrize('gamma', sorted(GAMMAS))
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('threads', [1, 3])
def test_matches_batchnorm_relu_pool(gamma, training, momentum, threads, path):
    B, C, g, F = 5, 12, 4, 6
    n = C * g
    ours, ref = pair(F, GAMMAS[gamma](F), momentum)
    pool = SpherePool(torch.arange(n) // g, C)
    x = torch.randn(B, n, F, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x * 2 + 3  # a mean away from zero
    upstream = torch.randn(B, C, F, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    results = []
    for norm, fn in ((ours, lambda x: fused_bn_relu_max_pool(x, ours, g)),
                     (ref, lambda x: unfused(x, ref, pool))):
        norm.train(training)
        xx = x.clone().requires_grad_()
        with kernel_threads(threads):
            for _ in range(2):  # twice: running statistics and num_batches_tracked
                norm.zero_grad()
                y = fn(xx)
            y.backward(upstream)
        if norm is ours:
            assert y.grad_fn.kernels == (path == 'kernels')
        results.append((y, xx.grad, norm.weight.grad, norm.bias.grad, norm.running_mean,
                        norm.running_var, norm.num_batches_tracked))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('training', [True, False])
def test_gradcheck(training, path):
    # In training mode the statistics depend on x: they are recomputed (as
    # constants) on every call, and the backward pass accounts for them.
    B, C, g, F = 2, 3, 4, 3
    x = torch.randn(B, C * g, F, generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                    requires_grad=True)
    gamma = torch.tensor([0.7, -1.2, 1.1], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64, requires_grad=True)
    fixed = (torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64),
             torch.tensor([1.5, 0.7, 1.1], dtype=torch.float64))

    def fn(x, gamma, beta):
        stats = batch_stats(x.detach()) if training else fixed
        return BatchNormReLUMaxPool.apply(x, gamma, beta, *stats, 1e-5, g, training, True)

    assert torch.autograd.gradcheck(fn, (x, gamma, beta))


def test_batch_stats_stay_accurate_for_large_means(path):
    # A channel whose mean is 1e4 times its spread: the chunked two-pass
    # statistics keep the variance to float32 rounding (a sum of squares would
    # lose every digit).
    x = torch.randn(8, 3072, 4, generator=torch.Generator().manual_seed(3)) * 0.01 + 100.0
    mean, var = batch_stats(x)
    var64, mean64 = torch.var_mean(x.double(), (0, 1), correction=0)
    assert ((mean.double() - mean64).abs() / mean64.abs()).max() < 1e-6
    assert ((var.double() - var64).abs() / var64).max() < 1e-3


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_kernels_equal_torch_ops(dtype, monkeypatch):
    # Same values from both implementations in float32 and float64 (sums in float64
    # in the kernels, in the input's dtype in PyTorch: equal to rounding), for several
    # chunks of maps, ties included (gamma = 0 for one channel).
    B, C, g, F = 6, 4096, 4, 5
    x = torch.randn(B, C * g, F, generator=torch.Generator().manual_seed(7), dtype=dtype)
    upstream = torch.randn(B, C, F, generator=torch.Generator().manual_seed(8), dtype=dtype)
    assert _fused._chunks(x.shape)[1] > 1
    runs = []
    for use in (True, False):
        monkeypatch.setattr(_fused, 'USE_KERNELS', use)
        norm = pair(F, GAMMAS['zero'](F))[0].to(dtype)
        xx = x.clone().requires_grad_()
        y = fused_bn_relu_max_pool(xx, norm, g)
        y.backward(upstream)
        assert y.grad_fn.kernels == use
        runs.append((y, xx.grad, norm.weight.grad, norm.bias.grad, norm.running_var))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize('training', [True, False])
def test_one_large_map_is_split_into_pieces(training, monkeypatch):
    # One map of 2^21 elements: the kernels' pooling and full-size gradient run on
    # row pieces (kernel threads), with the values of the PyTorch path.
    B, C, g, F = 1, 2**15, 4, 16
    x = torch.randn(B, C * g, F, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    upstream = torch.randn(B, C, F, generator=torch.Generator().manual_seed(11),
                           dtype=torch.float64)
    assert _fused._one_large_chunk(x)
    runs = []
    for use in (True, False):
        monkeypatch.setattr(_fused, 'USE_KERNELS', use)
        norm = pair(F, GAMMAS['zero'](F))[0].train(training)
        xx = x.clone().requires_grad_()
        with kernel_threads(2):
            y = fused_bn_relu_max_pool(xx, norm, g)
            y.backward(upstream)
        runs.append((y, xx.grad, norm.weight.grad, norm.bias.grad))
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_nan_propagates_as_in_the_unfused_modules(path):
    B, C, g, F = 2, 6, 4, 3
    x = torch.randn(B, C * g, F, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x[0, 5, 1] = float('nan')  # cluster 1, slot 1 of map 0
    ours, ref = pair(F, GAMMAS['mixed_signs'](F))
    for norm in (ours, ref):
        norm.eval()
    y = fused_bn_relu_max_pool(x, ours, g)
    expected = unfused(x, ref, SpherePool(torch.arange(C * g) // g, C))
    assert torch.isnan(y[0, 1, 1]) and torch.isnan(y).sum() == 1
    torch.testing.assert_close(y, expected, equal_nan=True)


def test_torch_ops_where_the_kernels_do_not_apply():
    # Clusters beyond int8 slots, a non-contiguous input and half precision take the
    # PyTorch path, with the same results.
    F = 3
    norm = pair(F, GAMMAS['positive'](F))[0]
    for x, g in ((torch.randn(2, 256, F, dtype=torch.float64), 128),
                 (torch.randn(2, F, 64, dtype=torch.float64).transpose(1, 2), 4)):
        xx = x.clone().requires_grad_()
        y = fused_bn_relu_max_pool(xx, norm, g)
        assert not y.grad_fn.kernels
        expected = unfused(x, norm, SpherePool(torch.arange(x.shape[1]) // g, x.shape[1] // g))
        torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    assert _fused._kernels(torch.randn(2, 8, F, dtype=torch.bfloat16)) is None


def test_block_uses_the_fused_path_only_when_it_applies():
    cluster = torch.arange(192) // 4
    pool = SpherePool(cluster, 48)
    block = SphericalChebBlock(3, 4, K=2, pool=pool)
    assert can_fuse(block.norm, block.act, block.pool) == 4
    assert can_fuse(block.norm, torch.nn.GELU(), block.pool) is None
    assert can_fuse(block.norm, block.act, SpherePool(cluster, 48, reduce='mean')) is None
    assert can_fuse(block.norm, block.act, SpherePool(cluster, 48, return_indices=True)) is None
    assert can_fuse(block.norm, block.act, SpherePool(cluster, 48, path='scatter')) is None
    assert can_fuse(torch.nn.BatchNorm1d(4, affine=False), block.act, pool) is None


@pytest.mark.parametrize('threads', [2, 3])
def test_kernel_threads_change_nothing(threads):
    # Blocks of maps, not threads, set the order of every sum: outputs, gradients and
    # running statistics of a training step are bit-identical on any number of threads.
    torch.manual_seed(0)
    model = DeepSphere(healpix(8), 3, channels=(8, 16), out_channels=4, K=4)
    x = torch.randn(7, 768, 3, generator=torch.Generator().manual_seed(4))
    runs = []
    for t in (1, threads):
        model.load_state_dict(runs[0][0] if runs else model.state_dict())
        state = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        model.zero_grad()
        with kernel_threads(t):
            out = model(x)
            out.square().sum().backward()
        runs.append((state, out.detach(), [p.grad.clone() for p in model.parameters()],
                     {k: v.clone() for k, v in model.state_dict().items()}))
    (_, out1, grads1, after1), (_, out2, grads2, after2) = runs
    assert torch.equal(out1, out2)
    assert all(torch.equal(a, b) for a, b in zip(grads1, grads2))
    assert all(torch.equal(after1[k], after2[k]) for k in after1)


@pytest.mark.parametrize('threads', [1, 2])
def test_conv_threads_match_chebconv(threads):
    from torch_geometric.nn import ChebConv
    n, B = 40, 5
    edge_index, weight = random_graph(n, 120, seed=5, dtype=torch.float64)
    torch.manual_seed(0)
    ref = ChebConv(3, 7, 4).double()
    ours = SphericalChebConv(3, 7, 4).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, n, 3, dtype=torch.float64)
    with kernel_threads(threads):
        torch.testing.assert_close(ours(x, edge_index, weight), ref(x, edge_index, weight),
                                   rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"Expected 'threads' to be >= 1 \(got 0\)"):
        with kernel_threads(0):
            pass


def test_run_blocks_visits_every_block_once_and_reraises():
    from pyg_sphere.nn._threads import run_blocks
    seen = []

    def fn(i, p):
        assert torch.get_num_threads() == 1 and not torch.is_grad_enabled()
        seen.append((i, p))

    with kernel_threads(3):
        run_blocks(fn, 10)
    assert sorted(i for i, _ in seen) == list(range(10))
    assert {p for _, p in seen} <= {0, 1, 2}

    def fail(i, p):
        if i == 7:
            raise KeyError('block 7')

    with kernel_threads(2), pytest.raises(KeyError, match='block 7'):
        run_blocks(fail, 10)
    threads = torch.get_num_threads()
    run_blocks(lambda i, p: None, 3)
    assert torch.get_num_threads() == threads  # the caller's setting is given back
