"""SphericalChebConv against torch_geometric.nn.ChebConv (the oracle), plus its own paths."""
import os

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import ChebConv
from torch_geometric.typing import WITH_TORCH_SPARSE
from torch_geometric.utils import to_undirected

from pyg_sphere.nn import SphericalChebConv
from pyg_sphere.nn.conv import _cheb_kernel as kernel
from pyg_sphere.nn.conv._cheb_kernel import NORMALIZATIONS, ChebFilter, build_scaled_laplacian
from pyg_sphere.nn.conv._cheb_recurrence import _tall_t_matmul

F_IN, F_OUT = 5, 4


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny inputs: one intra-op thread is faster and immune to busy CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Relative tolerance (max abs error / max abs value) per dtype.
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def random_graph(n, num_edges, seed, directed=False, dtype=torch.float32):
    """Random weighted graph; symmetric weights unless directed. May hold self loops."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, num_edges), generator=gen)
    weight = torch.rand(num_edges, generator=gen, dtype=torch.float64) + 0.1
    if not directed:
        edge_index, weight = to_undirected(edge_index, weight, num_nodes=n)
    return edge_index, weight.to(dtype)


def pair(K, normalization, dtype, seed=0, bias=True, **kwargs):
    """ChebConv and SphericalChebConv with the same weights and a non-zero bias."""
    torch.manual_seed(seed)
    ref = ChebConv(F_IN, F_OUT, K, normalization=normalization, bias=bias).to(dtype)
    if bias:
        with torch.no_grad():
            ref.bias.normal_()
    ours = SphericalChebConv(F_IN, F_OUT, K, normalization=normalization, bias=bias,
                             **kwargs).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def assert_rel_close(actual, expected, rtol):
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert err <= rtol * scale, f'max abs error {err:.3g} > {rtol:g} * {scale:.3g}'


def run_both(ref, ours, x, *args, **kwargs):
    """Outputs and gradients (x, weights, bias) of both layers for a fixed upstream grad."""
    results = []
    for conv in (ref, ours):
        conv.zero_grad()
        xx = x.detach().clone().requires_grad_()
        out = conv(xx, *args, **kwargs)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(0),
                               dtype=out.dtype).to(out.device)
        out.backward(upstream)
        grads = [xx.grad] + [lin.weight.grad for lin in conv.lins]
        if conv.bias is not None:
            grads.append(conv.bias.grad)
        results.append((out.detach(), grads))
    return results


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('normalization', NORMALIZATIONS)
@pytest.mark.parametrize('K', [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize('with_lambda_max', [False, True])
def test_matches_chebconv_single_graph(dtype, normalization, K, with_lambda_max):
    n = 20
    edge_index, weight = random_graph(n, 60, seed=K, dtype=dtype)
    ref, ours = pair(K, normalization, dtype, seed=K)
    x = torch.randn(n, F_IN, generator=torch.Generator().manual_seed(1), dtype=dtype)
    # A lambda_max that need not bound the spectrum (1.3 for 'sym' / 'rw'): the
    # rescaled Laplacian may leave [-1, 1], a harder case for the recurrences.
    kwargs = {'lambda_max': 1.3 if normalization else torch.tensor(9.0)} if with_lambda_max \
        else {}
    (out_ref, grads_ref), (out, grads) = run_both(ref, ours, x, edge_index, weight, **kwargs)
    assert_rel_close(out, out_ref, RTOL[dtype])
    for g, g_ref in zip(grads, grads_ref):
        assert_rel_close(g, g_ref, RTOL[dtype])


@pytest.fixture(params=['blocks', 'folded'])
def layout(request, monkeypatch):
    """Run on both kernel layouts: map-major blocks (CPUs) and the folded batch (GPUs)."""
    if request.param == 'folded':
        monkeypatch.setattr(kernel, 'fold_batch', lambda device: True)
    return request.param


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('normalization', NORMALIZATIONS)
def test_matches_chebconv_directed_graph(dtype, normalization, layout):
    # A directed graph: the operator is not symmetric, the backward pass must use
    # its explicit transpose.
    n = 15
    edge_index, weight = random_graph(n, 50, seed=3, directed=True, dtype=dtype)
    lap = build_scaled_laplacian(edge_index, n, weight, normalization)
    assert not lap.symmetric
    ref, ours = pair(4, normalization, dtype)
    x = torch.randn(2, n, F_IN, generator=torch.Generator().manual_seed(2), dtype=dtype)
    (out_ref, grads_ref), (out, grads) = run_both(ref, ours, x, edge_index, weight)
    assert_rel_close(out, out_ref, RTOL[dtype])
    for g, g_ref in zip(grads, grads_ref):
        assert_rel_close(g, g_ref, RTOL[dtype])


def two_graph_batch(dtype):
    graphs = []
    for seed, n in ((10, 7), (11, 9)):
        edge_index, weight = random_graph(n, 3 * n, seed=seed, dtype=dtype)
        x = torch.randn(n, F_IN, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        graphs.append(Data(x=x, edge_index=edge_index, edge_weight=weight, num_nodes=n))
    return graphs, Batch.from_data_list(graphs)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('normalization', NORMALIZATIONS)
@pytest.mark.parametrize('K', [1, 3, 6])
@pytest.mark.parametrize('with_lambda_max', [False, True])
def test_matches_chebconv_pyg_batch(dtype, normalization, K, with_lambda_max):
    graphs, batch = two_graph_batch(dtype)
    ref, ours = pair(K, normalization, dtype)
    lambda_max = torch.tensor([1.7, 2.4] if normalization else [7.0, 9.0], dtype=dtype)
    kwargs = {'batch': batch.batch}
    if with_lambda_max:
        kwargs['lambda_max'] = lambda_max
    (out_ref, grads_ref), (out, grads) = run_both(ref, ours, batch.x, batch.edge_index,
                                                  batch.edge_weight, **kwargs)
    assert_rel_close(out, out_ref, RTOL[dtype])
    for g, g_ref in zip(grads, grads_ref):
        assert_rel_close(g, g_ref, RTOL[dtype])
    if normalization is None and not with_lambda_max:
        return  # lambda_max = 2 max(L) is then taken over the whole batch, as in ChebConv
    # A batch of two equals the two graphs one at a time.
    with torch.no_grad():
        singles = [
            ours(g.x, g.edge_index, g.edge_weight,
                 lambda_max=lambda_max[i] if with_lambda_max else None)
            for i, g in enumerate(graphs)
        ]
    assert_rel_close(out, torch.cat(singles), RTOL[dtype])


@pytest.mark.parametrize('bias', [True, False])
def test_state_dict_round_trip(bias):
    n = 12
    edge_index, weight = random_graph(n, 30, seed=0)
    x = torch.randn(n, F_IN)
    torch.manual_seed(5)
    ref = ChebConv(F_IN, F_OUT, K=3, bias=bias)
    ours = SphericalChebConv(F_IN, F_OUT, K=3, bias=bias)
    assert list(ours.state_dict()) == list(ref.state_dict())
    # ChebConv -> ours.
    ours.load_state_dict(ref.state_dict())
    assert_rel_close(ours(x, edge_index, weight), ref(x, edge_index, weight), 1e-5)
    # ours -> ChebConv, after changing ours.
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p))
    ref2 = ChebConv(F_IN, F_OUT, K=3, bias=bias)
    ref2.load_state_dict(ours.state_dict())
    assert_rel_close(ref2(x, edge_index, weight), ours(x, edge_index, weight), 1e-5)


def test_same_initialization_as_chebconv():
    torch.manual_seed(3)
    ref = ChebConv(16, 32, K=3)
    torch.manual_seed(3)
    ours = SphericalChebConv(16, 32, K=3)
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    before = [p.clone() for p in ours.lins.parameters()]
    with torch.no_grad():
        ours.bias.fill_(1.0)
    ours.reset_parameters()
    assert all(not torch.equal(a, b) for a, b in zip(before, ours.lins.parameters()))
    assert ours.bias.abs().sum().item() == 0.0


def test_repr():
    assert repr(SphericalChebConv(16, 32, K=3)) == \
        'SphericalChebConv(16, 32, K=3, normalization=sym)'
    assert repr(SphericalChebConv(1, 2, K=1, normalization=None)) == \
        'SphericalChebConv(1, 2, K=1, normalization=None)'


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('out_channels', [F_OUT, 16, 40])  # Clenshaw, then features first
def test_dense_batch_equals_single_maps(dtype, out_channels, layout):
    n, B = 16, 3
    edge_index, weight = random_graph(n, 40, seed=4, dtype=dtype)
    torch.manual_seed(0)
    ref = ChebConv(F_IN, out_channels, 4).to(dtype)
    ours = SphericalChebConv(F_IN, out_channels, 4).to(dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, n, F_IN, generator=torch.Generator().manual_seed(4), dtype=dtype)
    (out_ref, grads_ref), (out, grads) = run_both(ref, ours, x, edge_index, weight)
    for g, g_ref in zip(grads, grads_ref):
        assert_rel_close(g, g_ref, RTOL[dtype])
    assert out.shape == (B, n, out_channels)
    with torch.no_grad():
        singles = torch.stack([ours(x[b], edge_index, weight) for b in range(B)])
    assert_rel_close(out, singles, RTOL[dtype])
    # ChebConv itself broadcasts over leading dimensions (node_dim=-2): same result.
    assert_rel_close(out, out_ref, RTOL[dtype])


def test_backward_keeps_upstream_gradient(layout):
    # The backward pass overwrites the incoming gradient once it is done with it
    # when the gradient is its own copy (made when not contiguous in the kernel's
    # layout); a gradient it did not copy belongs to the caller and must come back
    # untouched. 40 output channels: one map per block.
    n, B, O = 16, 3, 40
    edge_index, weight = random_graph(n, 40, seed=5)
    conv = SphericalChebConv(F_IN, O, K=4)
    x = torch.randn(B, n, F_IN, requires_grad=True)
    for upstream in (torch.randn(B, n, O), torch.randn(n, B, O).transpose(0, 1)):
        before = upstream.clone()
        conv(x, edge_index, weight).backward(upstream)
        assert torch.equal(upstream, before)


def test_cached_reuses_laplacian():
    n = 16
    edge_index, weight = random_graph(n, 40, seed=6)
    conv = SphericalChebConv(F_IN, F_OUT, K=3, cached=True)
    assert conv._cached_laplacian is None
    x = torch.randn(2, n, F_IN)
    out1 = conv(x, edge_index, weight)
    lap = conv._cached_laplacian
    assert lap is not None and lap.symmetric
    out2 = conv(x, edge_index, weight)
    assert conv._cached_laplacian is lap
    assert torch.equal(out1, out2)
    # The cache assumes the same graph: other edges are ignored.
    out3 = conv(x, edge_index[:, :4], weight[:4])
    assert conv._cached_laplacian is lap and torch.equal(out1, out3)
    # A new dtype rebuilds the cache (from float64, not from the float32 cast).
    ref = ChebConv(F_IN, F_OUT, K=3).double()
    ref.load_state_dict(conv.double().state_dict())
    out64 = conv(x.double(), edge_index, weight.double())
    assert conv._cached_laplacian is not lap
    assert conv._cached_laplacian.value.dtype == torch.float64
    assert_rel_close(out64, ref(x.double(), edge_index, weight.double()), 1e-10)
    conv.reset_parameters()
    assert conv._cached_laplacian is None
    # Not cached: the graph is read on every call.
    uncached = SphericalChebConv(F_IN, F_OUT, K=3)
    uncached.load_state_dict(conv.state_dict())
    uncached(x, edge_index, weight)
    assert uncached._cached_laplacian is None
    assert not torch.equal(uncached(x, edge_index[:, :4], weight[:4]),
                           uncached(x, edge_index, weight))


def test_symmetry_detection():
    n = 10
    edge_index, weight = random_graph(n, 30, seed=7, dtype=torch.float64)
    assert build_scaled_laplacian(edge_index, n, weight, 'sym').symmetric
    assert build_scaled_laplacian(edge_index, n, weight, None).symmetric
    assert not build_scaled_laplacian(edge_index, n, weight, 'rw').symmetric
    lap = build_scaled_laplacian(edge_index, n, weight, 'sym')
    dense = lap.to_sparse_csr().to_dense()
    assert torch.equal(dense, dense.t())
    # Eigenvalues of the rescaled normalized Laplacian lie in [-1, 1].
    eig = torch.linalg.eigvalsh(dense)
    assert eig.min().item() >= -1 - 1e-12 and eig.max().item() <= 1 + 1e-12


@pytest.mark.parametrize('K', [1, 2, 4])
@pytest.mark.parametrize('symmetric', [True, False])
@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('node_major', [True, False])
@pytest.mark.parametrize('out_channels', [2, 5])  # Clenshaw (O < F), features first (O > F)
def test_gradcheck_cheb_filter(K, symmetric, bias, node_major, out_channels):
    n, B = 7, 2
    edge_index, weight = random_graph(n, 16, seed=8, directed=not symmetric,
                                      dtype=torch.float64)
    lap = build_scaled_laplacian(edge_index, n, weight, 'sym' if symmetric else 'rw')
    assert lap.symmetric == symmetric
    transposed = (None, None, None) if symmetric else (lap.crow_t, lap.col_t, lap.value_t)
    gen = torch.Generator().manual_seed(9)
    shape = (n, B, 3) if node_major else (B, n, 3)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(K, out_channels, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(out_channels, generator=gen, dtype=torch.float64, requires_grad=True) if bias \
        else None
    inputs = (x, w, b) if bias else (x, w)

    def fn(x, w, b=None):
        return ChebFilter.apply(x, w, b, lap.crow, lap.col, lap.value, *transposed,
                                node_major)

    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize('rows', [100, 9279])  # one GEMM; two chunks + a remainder row
def test_tall_t_matmul(rows):
    gen = torch.Generator().manual_seed(14)
    a = torch.randn(rows, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(rows, 2, generator=gen, dtype=torch.float64)
    out = torch.empty(3, 2, dtype=torch.float64)
    _tall_t_matmul(a, b, out)
    assert_rel_close(out, a.t() @ b, 1e-12)


@pytest.mark.parametrize('backend', [
    'aot_eager',  # graph capture + AOTAutograd (forward and backward graphs), ~1 s
    pytest.param('inductor', marks=pytest.mark.slow),  # + C++ codegen, ~15 s with a cold cache
])
def test_torch_compile_fullgraph_cached_dense(backend):
    # The cached dense path compiles as one graph: the sparse work sits in opaque
    # torch.library custom ops, and any host sync (.item(), data-dependent branch)
    # would break the graph and fail fullgraph=True. The Laplacian is built by an
    # eager first call (building it coalesces, a data-dependent shape).
    n = 12
    edge_index, weight = random_graph(n, 30, seed=10)
    torch.manual_seed(0)
    conv = SphericalChebConv(F_IN, F_OUT, K=3, cached=True)
    x = torch.randn(2, n, F_IN)
    conv(x, edge_index, weight)
    compiled = torch.compile(conv, fullgraph=True, backend=backend)
    (out, grads), (out_c, grads_c) = run_both(conv, compiled, x, edge_index, weight)
    assert_rel_close(out_c, out, 1e-6)
    for g, g_c in zip(grads, grads_c):
        assert_rel_close(g_c, g, 1e-6)


def test_sparse_adjacency_inputs():
    # adj_t as in PyG: entry (i, j) weights the edge j -> i. A directed graph and
    # 'rw' normalization make the convention matter.
    n = 11
    edge_index, weight = random_graph(n, 30, seed=12, directed=True)
    torch.manual_seed(0)
    conv = SphericalChebConv(F_IN, F_OUT, K=3, normalization='rw')
    x = torch.randn(n, F_IN)
    expected = conv(x, edge_index, weight)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), weight, (n, n), check_invariants=True)
    assert_rel_close(conv(x, adj_t), expected, 1e-6)
    assert_rel_close(conv(x, adj_t.coalesce().to_sparse_csr()), expected, 1e-6)
    with pytest.raises(ValueError, match="'edge_weight' to be None"):
        conv(x, adj_t, weight)
    with pytest.raises(ValueError, match=r'shape \[n, n\] = \[12, 12\]'):
        conv(torch.randn(12, F_IN), adj_t)


# CI installs the optional torch-sparse (.ci/run sets PYG_SPHERE_REQUIRE_SPARSE=1), so
# the SparseTensor path is tested there, never silently skipped.
_SPARSE_MISSING = not WITH_TORCH_SPARSE and not os.environ.get('PYG_SPHERE_REQUIRE_SPARSE')


@pytest.mark.skipif(_SPARSE_MISSING, reason='torch_sparse is not installed')
@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_torch_sparse_adjacency_matches_chebconv(normalization):
    from torch_sparse import SparseTensor
    n = 11
    edge_index, weight = random_graph(n, 30, seed=12, directed=normalization == 'rw')
    torch.manual_seed(0)
    ours = SphericalChebConv(F_IN, F_OUT, K=3, normalization=normalization)
    ref = ChebConv(F_IN, F_OUT, K=3, normalization=normalization)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(n, F_IN)
    lam = None if normalization is None else 1.7
    # torch_sparse's convention: adj_t[i, j] holds the edge j -> i
    adj_t = SparseTensor(row=edge_index[1], col=edge_index[0], value=weight,
                         sparse_sizes=(n, n))
    expected = ref(x, edge_index, weight, lambda_max=lam)
    assert_rel_close(ours(x, adj_t, lambda_max=lam), expected, 1e-5)
    assert_rel_close(ours(x, edge_index, weight, lambda_max=lam), expected, 1e-5)
    # dense batch of maps on the same graph
    xb = torch.randn(3, n, F_IN)
    assert_rel_close(ours(xb, adj_t, lambda_max=lam),
                     torch.stack([ref(m, edge_index, weight, lambda_max=lam) for m in xb]), 1e-5)


def test_errors():
    n = 10
    edge_index, weight = random_graph(n, 20, seed=13)
    conv = SphericalChebConv(16, 4, K=2)
    with pytest.raises(ValueError, match=r'^Expected x to have in_channels=16 features in its '
                       r'last dimension \(got 8\)$'):
        conv(torch.randn(n, 8), edge_index)
    with pytest.raises(ValueError, match=r"'edge_index' to index the 5 nodes of x, i.e. to lie "
                       r"in \[0, 4\] \(got 9\)"):
        conv(torch.randn(5, 16), edge_index)
    with pytest.raises(ValueError, match='shape'):
        conv(torch.randn(2, 2, n, 16), edge_index)
    with pytest.raises(ValueError, match=r"'edge_weight' to have shape \[E\]"):
        conv(torch.randn(n, 16), edge_index, weight[:3])
    with pytest.raises(ValueError, match="'lambda_max' to be a scalar"):
        conv(torch.randn(n, 16), edge_index, lambda_max=torch.tensor([2.0, 2.0]))
    cached = SphericalChebConv(16, 4, K=2, cached=True)
    cached(torch.randn(n, 16), edge_index)
    with pytest.raises(ValueError, match=r'Expected x to have 10 nodes .* \(got 7\)'):
        cached(torch.randn(7, 16), edge_index)
    with pytest.raises(ValueError, match=r"Expected 'K' to be >= 1 \(got 0\)"):
        SphericalChebConv(16, 4, K=0)
    with pytest.raises(ValueError, match="'normalization'"):
        SphericalChebConv(16, 4, K=2, normalization='none')
    with pytest.raises(ValueError, match="'aggr'"):
        SphericalChebConv(16, 4, K=2, aggr='mean')
    SphericalChebConv(16, 4, K=2, aggr='add')  # ChebConv's default is accepted
