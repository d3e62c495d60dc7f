"""SphericalChebConv at the edges: empty graphs, half precision, bad values, builds."""
import math

import pytest
import torch
from torch_geometric.nn import ChebConv

from pyg_sphere.nn import SphericalChebConv
from pyg_sphere.nn.conv._laplacian import (build_scaled_laplacian, trace_scaled_laplacian)

from .test_cheb_conv import F_IN, F_OUT, assert_rel_close, pair, random_graph, run_both


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('K', [1, 3])
@pytest.mark.parametrize('shape', [(0, F_IN), (2, 0, F_IN), (0, 6, F_IN)])
def test_empty_inputs_match_chebconv(K, shape):
    # No node (or no map): ChebConv returns an empty output and zero weight /
    # bias gradients; so must we (this raised ZeroDivisionError).
    n = shape[-2]
    edge_index = torch.empty(2, 0, dtype=torch.long)
    ref, ours = pair(K, 'sym', torch.float64)
    x = torch.randn(shape, dtype=torch.float64)
    flat = x.reshape(-1, F_IN) if x.dim() == 3 else x
    (out_ref, grads_ref), (out, grads) = run_both(ref, ours, flat if n == 0 else x,
                                                  edge_index, lambda_max=2.0)
    assert out.shape == out_ref.shape == flat.shape[:-1] + (F_OUT, ) or out.numel() == 0
    for g, g_ref in zip(grads, grads_ref):
        assert torch.equal(g, g_ref)
    # the dense batch form too
    ours.zero_grad()
    xx = x.clone().requires_grad_()
    y = ours(xx, edge_index, lambda_max=2.0)
    assert list(y.shape) == list(shape[:-1]) + [F_OUT]
    y.sum().backward()
    assert xx.grad.shape == x.shape
    assert all(torch.equal(lin.weight.grad, torch.zeros_like(lin.weight)) for lin in ours.lins)


# Half precision: the sparse products run in float32 and the output and the
# gradients are rounded once to the input's dtype, so each differs from the
# exact result on the same (rounded) inputs by at most half an ulp of its own
# magnitude: 2**-9 |y| for bfloat16 (8 significant bits), 2**-11 |y| for float16
# (11 bits), plus float32 rounding (~1e-7 |y|). Tolerance: twice the half ulp,
# relative to max |y|.
HALF_RTOL = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-10}


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('normalization', ['sym', 'rw'])
def test_half_precision_matches_float64_chebconv(dtype, normalization):
    n = 24
    edge_index, weight = random_graph(n, 70, seed=21, directed=normalization == 'rw')
    ref, ours = pair(4, normalization, dtype, seed=21, cached=True)
    ref64 = ChebConv(F_IN, F_OUT, 4, normalization=normalization).double()
    ref64.load_state_dict({k: v.double() for k, v in ours.state_dict().items()})
    x = torch.randn(n, F_IN, generator=torch.Generator().manual_seed(22)).to(dtype)
    w = weight.to(dtype)
    upstream = torch.randn(n, F_OUT, generator=torch.Generator().manual_seed(23)).to(dtype)
    out_half, _ = outputs_and_grads(ref, x, edge_index, w, upstream)
    out, grads = outputs_and_grads(ours, x, edge_index, w, upstream)
    out64, grads64 = outputs_and_grads(ref64, x.double(), edge_index, w.double(),
                                       upstream.double())
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert_rel_close(out.double(), out64, HALF_RTOL[dtype])
    for g, g64 in zip(grads, grads64):
        assert_rel_close(g.double(), g64, HALF_RTOL[dtype])
    # ChebConv in the same dtype rounds at every step of its recurrence: less accurate
    err = (out.double() - out64).abs().max()
    assert err <= (out_half.double() - out64).abs().max()
    # the cache holds the float32 operator the products use
    assert ours._cached_laplacian.value.dtype == torch.float32


def outputs_and_grads(conv, x, edge_index, weight, upstream):
    conv.zero_grad()
    x = x.clone().requires_grad_()
    out = conv(x, edge_index, weight)
    out.backward(upstream)
    return out.detach(), [x.grad] + [lin.weight.grad for lin in conv.lins] + [conv.bias.grad]


@pytest.mark.parametrize('lambda_max', [0.0, -1.0, math.nan, math.inf, -math.inf,
                                        torch.tensor(0.0), torch.tensor(math.nan),
                                        torch.tensor(-2.0, dtype=torch.float64)])
def test_bad_lambda_max_raises(lambda_max):
    n = 8
    edge_index, weight = random_graph(n, 20, seed=23)
    for cached in (False, True):
        conv = SphericalChebConv(F_IN, F_OUT, K=3, cached=cached)
        with pytest.raises(ValueError, match=r"^Expected 'lambda_max' to be finite and > 0, "
                           r"the largest eigenvalue of the Laplacian \(got [-a-z0-9.\[\]]+\)$"):
            conv(torch.randn(n, F_IN), edge_index, weight, lambda_max=lambda_max)
    with pytest.raises(ValueError, match="'lambda_max' to be None, a positive number"):
        SphericalChebConv(F_IN, F_OUT, K=3)(torch.randn(n, F_IN), edge_index, lambda_max=True)


def test_bad_per_graph_lambda_max_raises():
    n = 8
    edge_index, weight = random_graph(n, 20, seed=24)
    batch = torch.tensor([0] * 4 + [1] * 4)
    conv = SphericalChebConv(F_IN, F_OUT, K=3)
    with pytest.raises(ValueError, match=r"finite and > 0, .*\(got \[2\.0, nan\]\)"):
        conv(torch.randn(n, F_IN), edge_index, weight, batch,
             lambda_max=torch.tensor([2.0, math.nan]))


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_edge_weights_raise(bad):
    n = 8
    edge_index, weight = random_graph(n, 20, seed=25)
    weight = weight.clone()
    weight[[1, 3]] = bad
    for cached in (False, True):
        conv = SphericalChebConv(F_IN, F_OUT, K=3, cached=cached)
        with pytest.raises(ValueError, match=r"^Expected 'edge_weight' to be finite \(got 2 "
                           r"NaN or infinite value\(s\) among \d+\)$"):
            conv(torch.randn(n, F_IN), edge_index, weight)
        if cached:
            with pytest.raises(ValueError, match="'edge_weight' to be finite"):
                conv.cache_laplacian(edge_index, n, weight)


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
@pytest.mark.parametrize('lambda_max', [None, 1.7])
def test_build_leaves_its_inputs_unchanged(normalization, lambda_max):
    # float64 weights (no cast, so no copy made by .to) and self loops, which the
    # build zeroes: the caller's tensors must come back as they were
    n = 9
    edge_index, weight = random_graph(n, 30, seed=30, dtype=torch.float64)
    edge_index = torch.cat([edge_index, torch.tensor([[2, 5], [2, 5]])], 1)
    weight = torch.cat([weight, torch.tensor([0.3, 0.8], dtype=torch.float64)])
    before = edge_index.clone(), weight.clone()
    for dtype in (torch.float32, torch.float64):
        build_scaled_laplacian(edge_index, n, weight, normalization, lambda_max, dtype=dtype)
        trace_scaled_laplacian(edge_index, n, weight, normalization, lambda_max, dtype=dtype)
    assert torch.equal(edge_index, before[0]) and torch.equal(weight, before[1])


def test_cache_laplacian_fills_the_cache():
    n = 10
    edge_index, weight = random_graph(n, 30, seed=26)
    torch.manual_seed(0)
    conv = SphericalChebConv(F_IN, F_OUT, K=3, cached=True)
    conv.cache_laplacian(edge_index, n, weight)
    lap = conv._cached_laplacian
    assert lap is not None and lap.value.dtype == torch.get_default_dtype()
    x = torch.randn(2, n, F_IN)
    ref = ChebConv(F_IN, F_OUT, K=3)
    ref.load_state_dict(conv.state_dict())
    # the cache is used: another graph passed to the call is ignored
    out = conv(x, edge_index[:, :3], weight[:3])
    assert conv._cached_laplacian is lap
    assert_rel_close(out, ref(x, edge_index, weight), 1e-5)
    with pytest.raises(ValueError, match=r"^Expected cached=True to cache the Laplacian"):
        SphericalChebConv(F_IN, F_OUT, K=3).cache_laplacian(edge_index, n, weight)


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
@pytest.mark.parametrize('assembly', ['scipy', 'scipy_chunks', 'sort', 'grouped'])
def test_builds_agree_with_duplicates_and_self_loops(normalization, assembly, monkeypatch):
    # Duplicated edges (summed), self loops (dropped by get_laplacian), a directed
    # graph: the eager build (scipy assembly on CPU, in chunks of edges, compiled
    # passes over edges grouped by source, or torch.sort elsewhere) and the
    # traceable build give one operator, ChebConv's.
    from pyg_sphere.nn.conv import _laplacian, _laplacian_cpu
    if assembly == 'sort':
        monkeypatch.setattr(_laplacian, 'SCIPY_DEVICES', ())
    if assembly == 'scipy_chunks':
        monkeypatch.setattr(_laplacian_cpu, 'CHUNK_EDGES', 7)
    if assembly == 'grouped':
        monkeypatch.setattr(_laplacian_cpu, 'GROUPED_MIN_EDGES', 0)
    n = 12
    edge_index, weight = random_graph(n, 40, seed=27, directed=True, dtype=torch.float64)
    edge_index = torch.cat([edge_index, edge_index[:, :5], torch.tensor([[3, 7], [3, 7]])], 1)
    weight = torch.cat([weight, weight[:5], torch.tensor([0.5, 2.0], dtype=torch.float64)])
    if assembly == 'grouped':
        order = torch.sort(edge_index[0], stable=True).indices
        edge_index, weight = edge_index[:, order], weight[order]
        spy = _spy(monkeypatch, _laplacian, 'grouped_csr')
    ref = ChebConv(F_IN, F_OUT, K=4, normalization=normalization).double()
    with torch.no_grad():
        ref.bias.normal_()
    x = torch.randn(n, F_IN, dtype=torch.float64)
    expected = ref(x, edge_index, weight)
    eager = build_scaled_laplacian(edge_index, n, weight, normalization)
    traced = trace_scaled_laplacian(edge_index, n, weight, normalization)
    off_diagonal = edge_index[:, edge_index[0] != edge_index[1]]
    assert eager.col.numel() == n + torch.unique(off_diagonal, dim=1).size(1)
    assert traced.col.numel() == edge_index.size(1) + n
    for lap in (eager, traced):
        assert lap.crow.dtype == lap.col.dtype == torch.int32
        # the transpose is the transpose (up to the order duplicates are summed in)
        dense = lap.to_sparse_csr().to_dense()
        assert_rel_close(lap.to_sparse_csr(transpose=True).to_dense(), dense.t(), 1e-15)
        conv = SphericalChebConv(F_IN, F_OUT, K=4, normalization=normalization,
                                 cached=True).double()
        conv.load_state_dict(ref.state_dict())
        conv._cached_laplacian = lap
        assert_rel_close(conv(x, edge_index, weight), expected, 1e-10)
    if assembly == 'grouped':
        assert spy == [True]  # the compiled passes built the eager operator


def _spy(monkeypatch, module, name):
    """Record whether each call of ``module.name`` returned a result."""
    calls, real = [], getattr(module, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize('backend', [
    'aot_eager',
    pytest.param('inductor', marks=pytest.mark.slow),
])
@pytest.mark.parametrize('cached', [True, False])
@pytest.mark.parametrize('normalization', ['sym', 'rw'])
def test_torch_compile_cold_equals_eager(backend, cached, normalization):
    # A fresh layer (nothing cached) compiles as one graph: the Laplacian is then
    # built inside the graph without a host sync (the eager build coalesces, a
    # data-dependent size, which failed with "Could not guard on data-dependent
    # expression"). Outputs and gradients equal the eager layer's.
    torch._dynamo.reset()
    n = 14
    edge_index, weight = random_graph(n, 40, seed=28, directed=normalization == 'rw')
    torch.manual_seed(0)
    conv = SphericalChebConv(F_IN, F_OUT, K=4, normalization=normalization, cached=cached)
    x = torch.randn(3, n, F_IN)
    compiled = torch.compile(conv, fullgraph=True, backend=backend)
    (out_c, grads_c), (out, grads) = run_both(compiled, conv, x, edge_index, weight)
    assert_rel_close(out_c, out, 1e-6)
    for g_c, g in zip(grads_c, grads):
        assert_rel_close(g_c, g, 1e-6)
    # a PyG batch of graphs with one lambda_max per graph, in the node layout
    conv.reset_parameters()
    torch._dynamo.reset()
    batch = torch.arange(2).repeat_interleave(n // 2)
    lam = torch.tensor([1.7, 2.0])
    compiled = torch.compile(conv, fullgraph=True, backend=backend)
    (out_c, _), (out, _) = run_both(compiled, conv, x[0], edge_index, weight, batch,
                                    lambda_max=lam)
    assert_rel_close(out_c, out, 1e-6)


@pytest.mark.parametrize('K', [1, 2, 3, 5])
@pytest.mark.parametrize('normalization', ['sym', 'rw'])
@pytest.mark.parametrize('out_channels', [3, 9])
def test_weight_gradients_without_input_gradient(K, normalization, out_channels):
    # A first layer (x needs no gradient) takes its own backward path: the weight
    # gradients of every K against ChebConv's.
    n, B = 30, 4
    edge_index, weight = random_graph(n, 90, seed=29, directed=normalization == 'rw',
                                      dtype=torch.float64)
    torch.manual_seed(0)
    ref = ChebConv(F_IN, out_channels, K, normalization=normalization).double()
    ours = SphericalChebConv(F_IN, out_channels, K, normalization=normalization).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, n, F_IN, dtype=torch.float64)
    upstream = torch.randn(B, n, out_channels, dtype=torch.float64)
    grads = []
    for conv in (ref, ours):
        conv.zero_grad()
        conv(x, edge_index, weight).backward(upstream)
        grads.append([lin.weight.grad for lin in conv.lins] + [conv.bias.grad])
    for g, g_ref in zip(grads[1], grads[0]):
        assert_rel_close(g, g_ref, 1e-10)
