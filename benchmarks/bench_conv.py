"""Benchmark: SphericalChebConv against PyG's ChebConv and a torch.sparse COO layer.

Forward + backward of one Chebyshev convolution on B HEALPix maps (NESTED
ordering) that share a k-nearest-neighbour graph, x of shape [B, n, F] with
requires_grad (a hidden layer: gradients for x, weights and bias):

  chebconv  torch_geometric.nn.ChebConv on a PyG Batch of B copies of the graph
            (x flattened to [B * n, F], batch vector given; the Laplacian is
            rebuilt by ChebConv on every call, as it does).
  coo       the earlier PyTorch DeepSphere approach: rescaled Laplacian as a
            coalesced torch.sparse COO matrix built once, batch folded into the
            feature axis [n, B * F], torch.sparse.mm recursion, one Linear per k.
  ours      pyg_sphere.nn.SphericalChebConv(cached=True) on x [B, n, F].
  chebconv3d  (opt-in, --impls) ChebConv fed x [B, n, F] and the single graph,
            which MessagePassing also accepts (node_dim=-2).

Timing: for each nside, one fresh subprocess builds every implementation and
times them in turn, round after round (--repeat rounds after one warm-up each),
so that they share whatever else the machine is doing; medians and minimums are
printed, and the ratios are against "ours" from the same rounds. The machine line
gives the load and Linux's CPU pressure (time other tasks waited for a CPU):
on a shared machine, trust the ratios and the minimums more than the medians.
Memory: one more subprocess per (implementation, nside) reports the growth of
max RSS over two forward+backward passes on CPU (torch.cuda.max_memory_allocated
above the setup on GPU). All three use the same weights; their outputs are
checked against a float64 ChebConv reference first.

    python benchmarks/bench_conv.py                        # nside 32 64 128
    python benchmarks/bench_conv.py --nside 64 --repeat 9
    python benchmarks/bench_conv.py --scaling              # ours, nside 32..256
    python benchmarks/bench_conv.py --nside 64 --loaded --impls ours chebconv
                                                           # 1 vs 2 threads, a core taken

Entries are named op_sampling_res_batch_dtype_device, e.g.
chebconv_healpix_nside64_b8_float32_cpu. Allocation-heavy CPU code is sensitive to
page faults: PyTorch's THP_MEM_ALLOC_ENABLE=1 (transparent huge pages for large
tensors) is reported in the machine line and can be set with --thp.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_THREADS = torch.get_num_threads()
IMPLS = ('chebconv', 'coo', 'ours')
OPTIONAL_IMPLS = ('chebconv3d', )
DTYPES = {'float32': torch.float32, 'float64': torch.float64}


def describe_machine() -> str:
    try:
        from _machine import describe
        text = describe()
    except Exception:  # the shared helper is optional
        text = (f'{platform.platform()}; {platform.processor() or platform.machine()}; '
                f'{os.cpu_count()} CPUs; python {platform.python_version()}, '
                f'torch {torch.__version__}, {torch.get_num_threads()} torch threads')
    mkl = 'MKL' if torch.backends.mkl.is_available() else 'no MKL'
    load = ', load average %.2f %.2f %.2f' % os.getloadavg() if hasattr(os, 'getloadavg') \
        else ''
    thp = os.environ.get('THP_MEM_ALLOC_ENABLE', '0')
    return f'{text}; {mkl}; THP_MEM_ALLOC_ENABLE={thp}{load}; cpu pressure {_cpu_pressure()}'


# --------------------------------------------------------------------------- #
# Graph: HEALPix pixels (NESTED), k neighbours, Gaussian weights.
# --------------------------------------------------------------------------- #

def healpix_graph(nside: int, k: int = 8):
    """Symmetric kNN graph on HEALPix pixel centres, weights exp(-d^2 / (4 t)).

    k=8 uses healpy's 8 (or 7) neighbours of each pixel; other k a cKDTree on the
    unit vectors. d is the chordal distance between pixel centres and t half the
    mean of d^2 over the edges (the v1 heuristic of DeepSphere).
    """
    import healpy as hp
    from torch_geometric.utils import to_undirected
    n = 12 * nside**2
    pix = np.arange(n)
    if k == 8:
        nb = hp.get_all_neighbours(nside, pix, nest=True)  # [8, n], -1 where missing
        src = np.broadcast_to(pix, nb.shape)
        keep = nb >= 0
        edge_index = torch.from_numpy(np.stack([src[keep], nb[keep]])).long()
    else:
        from scipy.spatial import cKDTree
        pos = np.stack(hp.pix2vec(nside, pix, nest=True), axis=1)
        _, idx = cKDTree(pos).query(pos, k + 1)
        src = np.repeat(pix, k)
        edge_index = torch.from_numpy(np.stack([src, idx[:, 1:].reshape(-1)])).long()
    edge_index = to_undirected(edge_index, num_nodes=n)
    pos = torch.from_numpy(np.stack(hp.pix2vec(nside, pix, nest=True), axis=1))
    d2 = (pos[edge_index[0]] - pos[edge_index[1]]).pow(2).sum(1)
    t = d2.mean() / 2
    weight = torch.exp(-d2 / (4 * t))
    return edge_index, weight, n


# --------------------------------------------------------------------------- #
# Implementations. Each returns a callable fwd(x [B, n, F]) -> [B, n, O].
# --------------------------------------------------------------------------- #

class SparseCOOChebConv(torch.nn.Module):
    """torch.sparse COO Chebyshev conv, batch folded into features (DeepSphere-pytorch style)."""

    def __init__(self, laplacian: torch.Tensor, in_channels: int, out_channels: int, K: int):
        super().__init__()
        self.register_buffer('laplacian', laplacian)  # rescaled, coalesced COO [n, n]
        self.lins = torch.nn.ModuleList(
            [torch.nn.Linear(in_channels, out_channels, bias=False) for _ in range(K)])
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))

    def forward(self, x):
        B, n, F = x.shape
        x0 = x.transpose(0, 1).reshape(n, B * F)
        out = self.lins[0](x0.view(n, B, F))
        if len(self.lins) > 1:
            x1 = torch.sparse.mm(self.laplacian, x0)
            out = out + self.lins[1](x1.view(n, B, F))
            for lin in self.lins[2:]:
                x2 = 2 * torch.sparse.mm(self.laplacian, x1) - x0
                out = out + lin(x2.view(n, B, F))
                x0, x1 = x1, x2
        return (out + self.bias).transpose(0, 1)


def make_impl(impl, edge_index, weight, n, B, F, O, K, dtype, device, state):
    from torch_geometric.nn import ChebConv
    from pyg_sphere.nn import SphericalChebConv
    edge_index, weight = edge_index.to(device), weight.to(device, dtype)
    if impl in ('chebconv', 'chebconv3d'):
        conv = ChebConv(F, O, K).to(device, dtype)
        conv.load_state_dict(state)
        if impl == 'chebconv3d':
            return lambda x: conv(x, edge_index, weight)
        E = edge_index.size(1)
        offsets = (torch.arange(B, device=device) * n).repeat_interleave(E)
        ei_b = edge_index.repeat(1, B) + offsets
        w_b = weight.repeat(B)
        batch = torch.arange(B, device=device).repeat_interleave(n)
        return lambda x: conv(x.reshape(B * n, F), ei_b, w_b, batch=batch).view(B, n, O)
    if impl == 'coo':
        ours = SphericalChebConv(F, O, K)  # only to build the same rescaled Laplacian
        lap = ours.laplacian(edge_index, n, weight)
        index = torch._convert_indices_from_csr_to_coo(lap.crow.long(), lap.col.long())
        coo = torch.sparse_coo_tensor(index, lap.value.to(dtype), (n, n)).coalesce()
        conv = SparseCOOChebConv(coo, F, O, K).to(device, dtype)
        with torch.no_grad():
            for k, lin in enumerate(conv.lins):
                lin.weight.copy_(state[f'lins.{k}.weight'])
            conv.bias.copy_(state['bias'])
        return conv
    if impl == 'ours':
        conv = SphericalChebConv(F, O, K, cached=True).to(device, dtype)
        conv.load_state_dict(state)
        return lambda x: conv(x, edge_index, weight)
    raise ValueError(f"Expected 'impl' in {IMPLS + OPTIONAL_IMPLS} (got {impl!r})")


def make_state(F, O, K, dtype, seed=0):
    from torch_geometric.nn import ChebConv
    torch.manual_seed(seed)
    conv = ChebConv(F, O, K).to(dtype)
    with torch.no_grad():
        conv.bias.normal_()
    return conv.state_dict()


# --------------------------------------------------------------------------- #
# Measurements, each in a fresh subprocess.
# --------------------------------------------------------------------------- #

def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _setup(impls, nside, B, F, K, k, device, dtype):
    device, dtype = torch.device(device), DTYPES[dtype]
    edge_index, weight, n = healpix_graph(nside, k)
    state = make_state(F, F, K, dtype)
    fns = {impl: make_impl(impl, edge_index, weight, n, B, F, F, K, dtype, device, state)
           for impl in impls}
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, n, F, generator=gen, dtype=dtype).to(device).requires_grad_()
    grad = torch.randn(B, n, F, generator=gen, dtype=dtype).to(device)

    def fwd_bwd(fn):
        x.grad = None
        if isinstance(fn, torch.nn.Module):
            for p in fn.parameters():
                p.grad = None
        fn(x).backward(grad)

    def fwd(fn):
        with torch.no_grad():
            fn(x)

    return device, n, int(edge_index.size(1)), fns, fwd_bwd, fwd


def time_case(impls, nside, B, F, K, k, repeat, device, dtype):
    """Interleaved timing: run r times each implementation in turn, so that they
    share whatever else the machine is doing; median and min per implementation."""
    device, n, edges, fns, fwd_bwd, fwd = _setup(impls, nside, B, F, K, k, device, dtype)
    out = {impl: {'impl': impl, 'nside': nside, 'npix': n, 'edges': edges} for impl in impls}
    for impl in impls:
        _sync(device)
        t0 = time.perf_counter()
        fwd_bwd(fns[impl])  # warm-up; builds and caches the Laplacian for "ours"
        _sync(device)
        out[impl]['first_s'] = time.perf_counter() - t0
    samples = {(impl, name): [] for impl in impls for name in ('fwd_bwd', 'fwd')}
    for _ in range(repeat):
        for impl in impls:
            for name, run in (('fwd_bwd', fwd_bwd), ('fwd', fwd)):
                _sync(device)
                t0 = time.perf_counter()
                run(fns[impl])
                _sync(device)
                samples[impl, name].append(time.perf_counter() - t0)
    for (impl, name), values in samples.items():
        out[impl][name] = statistics.median(values)
        out[impl][name + '_min'] = min(values)
    return list(out.values())


def memory_case(impl, nside, B, F, K, k, device, dtype):
    """Peak memory of two forward+backward passes (the first builds caches) above
    what setup (graph, input, parameters) holds: max RSS growth on CPU, peak
    allocated CUDA memory on GPU."""
    device, n, _, fns, fwd_bwd, _ = _setup([impl], nside, B, F, K, k, device, dtype)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        fwd_bwd(fns[impl])
    _sync(device)
    if device.type == 'cuda':
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 2**10  # KiB -> MiB


def check_agreement(nside, B, F, K, k, dtype, device):
    """Max error of each implementation against ChebConv in float64, relative to max |y|."""
    device = torch.device(device)
    edge_index, weight, n = healpix_graph(nside, k)
    state64 = make_state(F, F, K, torch.float64)
    gen = torch.Generator().manual_seed(2)
    x64 = torch.randn(B, n, F, generator=gen, dtype=torch.float64)
    ref = make_impl('chebconv', edge_index, weight, n, B, F, F, K, torch.float64, device,
                    state64)(x64.to(device)).detach()
    errors = {}
    dt = DTYPES[dtype]
    state = {key: v.to(dt) for key, v in state64.items()}
    for impl in IMPLS:
        out = make_impl(impl, edge_index, weight, n, B, F, F, K, dt, device, state)(
            x64.to(device, dt)).detach()
        errors[impl] = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    return errors


# --------------------------------------------------------------------------- #
# Driver.
# --------------------------------------------------------------------------- #

def spawn(kind: str, case: dict, env: dict, threads=None):
    cmd = [sys.executable, os.path.abspath(__file__), '--_case', json.dumps([kind, case])]
    if threads is not None:
        cmd += ['--threads', str(threads)]
    elif torch.get_num_threads() != _DEFAULT_THREADS:
        cmd += ['--threads', str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{kind} case {case} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def entry_name(impl, nside, B, dtype, device):
    return f'{impl}_healpix_nside{nside}_b{B}_{dtype}_{torch.device(device).type}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nside', type=int, nargs='+', default=[32, 64, 128])
    parser.add_argument('--batch', type=int, default=8, help='maps per batch B')
    parser.add_argument('--channels', type=int, default=32, help='F_in = F_out')
    parser.add_argument('--K', type=int, default=5, help='Chebyshev filter size')
    parser.add_argument('--k', type=int, default=8, help='neighbours per pixel')
    parser.add_argument('--repeat', type=int, default=7, help='timed runs (median and min)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', default='float32', choices=sorted(DTYPES))
    parser.add_argument('--impls', nargs='+', default=list(IMPLS),
                        choices=list(IMPLS + OPTIONAL_IMPLS))
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory runs')
    parser.add_argument('--scaling', action='store_true',
                        help='time ours only over --scaling-nside and fit time ~ npix^a')
    parser.add_argument('--scaling-nside', type=int, nargs='+', default=[32, 64, 128, 256])
    parser.add_argument('--thp', action='store_true',
                        help='set THP_MEM_ALLOC_ENABLE=1 in the workers')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads in the workers (default: torch\'s choice)')
    parser.add_argument('--loaded', action='store_true',
                        help='time each --nside at 1 and 2 threads beside a busy process '
                             '(--busy; no other measurement)')
    from _busy import add_busy_argument
    add_busy_argument(parser)
    parser.add_argument('--rounds', type=int, default=1,
                        help='--loaded: rounds of the 1- and 2-thread runs (alternating order)')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--_case', help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
    warnings.filterwarnings('ignore', message='Sparse invariant checks')

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._case:
        kind, case = json.loads(args._case)
        print(json.dumps(time_case(**case) if kind == 'time' else memory_case(**case)))
        return

    env = dict(os.environ)
    if args.thp:
        env['THP_MEM_ALLOC_ENABLE'] = '1'
        os.environ['THP_MEM_ALLOC_ENABLE'] = '1'  # reported in the machine line
    common = dict(B=args.batch, F=args.channels, K=args.K, k=args.k, device=args.device,
                  dtype=args.dtype)
    print(f'machine: {describe_machine()}')
    print(f'setup: B={args.batch} maps, F_in=F_out={args.channels}, K={args.K}, '
          f'k={args.k} neighbours, {args.dtype}, {args.device}, x.requires_grad=True; '
          f'{args.repeat} timed runs per implementation after 1 warm-up, interleaved')
    results = []

    def memory(impl, nside):
        if args.no_memory:
            return float('nan')
        return spawn('memory', dict(impl=impl, nside=nside, **common), env)

    if args.loaded:
        from _busy import loaded_conv_cases
        loaded_conv_cases(args, common, env, results, spawn, entry_name)
    elif args.scaling:
        print(f'{"entry":>40} {"npix":>9} {"fwd+bwd ms":>11} {"(min)":>8} {"fwd ms":>8} '
              f'{"peak MiB":>9}')
        for nside in args.scaling_nside:
            r, = spawn('time', dict(impls=['ours'], nside=nside, repeat=args.repeat,
                                    **common), env)
            r['peak_mib'] = memory('ours', nside)
            results.append(r)
            print(f'{entry_name("ours", nside, args.batch, args.dtype, args.device):>40} '
                  f'{r["npix"]:>9} {r["fwd_bwd"] * 1e3:>11.1f} {r["fwd_bwd_min"] * 1e3:>8.1f} '
                  f'{r["fwd"] * 1e3:>8.1f} {r["peak_mib"]:>9.0f}')
        npix = np.log([r['npix'] for r in results])
        for key, label in (('fwd_bwd', 'forward+backward, median'),
                           ('fwd_bwd_min', 'forward+backward, min'), ('fwd', 'forward, median')):
            slope = np.polyfit(npix, np.log([r[key] for r in results]), 1)[0]
            print(f'scaling exponent (log-log slope of time vs npix), {label}: {slope:.3f}')
    else:
        errors = check_agreement(8, 2, args.channels, args.K, args.k, args.dtype, args.device)
        print('agreement with ChebConv in float64 (nside 8, max |err| / max |y|): '
              + ', '.join(f'{impl} {err:.1e}' for impl, err in errors.items()))
        print(f'{"entry":>44} {"fwd+bwd ms":>11} {"(min)":>8} {"fwd ms":>8} {"peak MiB":>9} '
              f'{"1st call ms":>11}')
        for nside in args.nside:
            row = {r['impl']: r for r in spawn('time', dict(impls=args.impls, nside=nside,
                                                            repeat=args.repeat, **common), env)}
            for impl, r in row.items():
                r['peak_mib'] = memory(impl, nside)
                results.append(r)
                print(f'{entry_name(impl, nside, args.batch, args.dtype, args.device):>44} '
                      f'{r["fwd_bwd"] * 1e3:>11.1f} {r["fwd_bwd_min"] * 1e3:>8.1f} '
                      f'{r["fwd"] * 1e3:>8.1f} {r["peak_mib"]:>9.0f} {r["first_s"] * 1e3:>11.1f}')
            ours = row.get('ours')
            if ours:
                parts = [f'{impl}/ours = {row[impl]["fwd_bwd"] / ours["fwd_bwd"]:.2f}x '
                         f'(min {row[impl]["fwd_bwd_min"] / ours["fwd_bwd_min"]:.2f}x, '
                         f'fwd {row[impl]["fwd"] / ours["fwd"]:.2f}x)'
                         for impl in row if impl != 'ours']
                print(f'nside {nside} (npix {ours["npix"]}), forward+backward: '
                      + ', '.join(parts))
    print(f'cpu pressure after: {_cpu_pressure()}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'machine': describe_machine(), 'args': vars(args), 'results': results},
                      f, indent=1)


def _cpu_pressure() -> str:
    from _busy import cpu_pressure
    return cpu_pressure()


if __name__ == '__main__':
    main()
