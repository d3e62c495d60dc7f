"""The whole block fused on CPU (conv + batch norm + ReLU + max pooling) against the
conv module followed by PyTorch's BatchNorm1d, ReLU and our pooling."""
import copy

import pytest
import torch

from pyg_sphere.nn import SphericalChebBlock, SpherePool, kernel_threads
from pyg_sphere.nn.blocks._fused_block import ChebBatchNormReLUMaxPool, applies
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import SpherePyramid

from .test_fused import unfused


def make_block(F, O, K, dtype, bias=True, normalization='sym'):
    data = SpherePyramid(levels=1)(healpix(8))
    pool = SpherePool(data.cluster_1, data.num_nodes_1)
    torch.manual_seed(0)
    block = SphericalChebBlock(F, O, K, pool=pool, bias=bias,
                               normalization=normalization).to(dtype)
    with torch.no_grad():
        block.norm.weight.copy_(torch.linspace(-1.0, 1.5, O))
        block.norm.weight[0] = 0.0  # every slot ties: the lowest wins
        block.norm.bias.copy_(torch.linspace(0.4, -0.3, O))
        block.norm.running_mean.copy_(torch.linspace(-0.2, 0.3, O))
        block.norm.running_var.copy_(torch.linspace(0.5, 2.0, O))
    return block, data


def reference(block, x, data):
    out = block.conv(x, data.edge_index, data.edge_weight)
    return unfused(out, block.norm, block.pool)


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('shape', [(5, 3, 4, 3), (3, 6, 16, 2), (2, 4, 1, 4)],
                         ids=['widen', 'narrow', 'K1'])
@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('bias', [True, False])
def test_matches_the_unfused_modules(training, shape, threads, bias):
    B, F, O, K = shape[0], shape[1], shape[2], shape[3]
    ours, data = make_block(F, O, K, torch.float64, bias)
    ref = copy.deepcopy(ours)
    x = torch.randn(B, data.num_nodes, F, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64) + 0.5
    upstream = torch.randn(B, data.num_nodes_1, O, generator=torch.Generator().manual_seed(2),
                           dtype=torch.float64)
    results = []
    for block, fn in ((ours, lambda x: ours(x, data.edge_index, data.edge_weight)),
                      (ref, lambda x: reference(ref, x, data))):
        block.train(training)
        xx = x.clone().requires_grad_()
        with kernel_threads(threads):
            for _ in range(2):  # twice: running statistics
                block.zero_grad()
                y = fn(xx)
            y.backward(upstream)
        if block is ours:
            assert type(y.grad_fn).__name__ == 'ChebBatchNormReLUMaxPoolBackward'
        grads = [p.grad for p in block.parameters()]
        results.append([y, xx.grad] + grads + [block.norm.running_mean, block.norm.running_var,
                                              block.norm.num_batches_tracked])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_float32_matches_and_parameters_only():
    # float32, the first block of a model (x needs no gradient), against the float64
    # oracle: the conv bias gets no gradient in exact arithmetic (batch norm removes
    # the mean), so it is compared at the scale of the largest gradient.
    ours, data = make_block(3, 8, 4, torch.float32)
    ref = copy.deepcopy(ours).double()
    x = torch.randn(6, data.num_nodes, 3, generator=torch.Generator().manual_seed(3))
    y = ours(x, data.edge_index, data.edge_weight)
    assert type(y.grad_fn).__name__ == 'ChebBatchNormReLUMaxPoolBackward'
    y.square().sum().backward()
    reference(ref, x.double(), data).square().sum().backward()
    scale = max(p.grad.abs().max() for p in ref.parameters())
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize('normalization', ['sym', 'rw', None])
def test_parameters_only_in_float64(normalization):
    # Weights only (the first layer) of a widening block: its own recurrence on the
    # input channels with L~ itself, for symmetric and asymmetric ('rw') operators.
    ours, data = make_block(2, 6, 4, torch.float64, normalization=normalization)
    ref = copy.deepcopy(ours)
    x = torch.randn(3, data.num_nodes, 2, generator=torch.Generator().manual_seed(4),
                    dtype=torch.float64)
    ours(x, data.edge_index, data.edge_weight).square().sum().backward()
    reference(ref, x, data).square().sum().backward()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)


def test_eval_without_grad_writes_no_full_size_output():
    ours, data = make_block(3, 8, 3, torch.float64)
    ours.eval()
    x = torch.randn(4, data.num_nodes, 3, dtype=torch.float64)
    with torch.no_grad():
        y = ours(x, data.edge_index, data.edge_weight)
        torch.testing.assert_close(y, reference(ours, x, data), rtol=1e-12, atol=1e-12)


def test_unfused_where_it_does_not_apply():
    ours, data = make_block(3, 8, 3, torch.float64)
    x = torch.randn(1, data.num_nodes, 3, dtype=torch.float64, requires_grad=True)
    y = ours(x, data.edge_index, data.edge_weight)  # a single map
    assert type(y.grad_fn).__name__ == 'BatchNormReLUMaxPoolBackward'
    lap = ours.conv.operands(x, data.edge_index, data.edge_weight)[0]
    assert not applies(x.float(), lap, 4)  # dtype of the Laplacian
    assert not applies(x.expand(2, -1, -1).transpose(1, 2), lap, 4)
    # a hook on the conv sees its output: the conv runs as a module
    seen = []
    ours.conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x2 = torch.randn(2, data.num_nodes, 3, dtype=torch.float64)
    ours(x2, data.edge_index, data.edge_weight)
    assert seen == [torch.Size([2, data.num_nodes, 8])]


def test_gradcheck():
    block, data = make_block(2, 3, 3, torch.float64)
    lap, weight = block.conv.operands(torch.zeros(2, data.num_nodes, 2, dtype=torch.float64),
                                      data.edge_index, data.edge_weight)
    x = torch.randn(2, data.num_nodes, 2, dtype=torch.float64, requires_grad=True)
    weight = weight.detach().requires_grad_()
    bias = block.conv.bias.detach().requires_grad_()
    # no tied slots (gamma = 0): the maximum is differentiable
    gamma = torch.tensor([0.7, -1.2, 1.1], dtype=torch.float64, requires_grad=True)
    beta = block.norm.bias.detach().clone().requires_grad_()
    norm = block.norm
    norm.momentum = 0.0  # gradcheck calls many times: keep the running statistics

    def fn(x, weight, bias, gamma, beta):
        return ChebBatchNormReLUMaxPool.apply(x, weight, bias, gamma, beta, lap, norm, 4, True)

    for training in (True, False):
        norm.train(training)
        assert torch.autograd.gradcheck(fn, (x, weight, bias, gamma, beta))
