"""Benchmark: SpherePool (reshape / gather / scatter paths) against PyG's max_pool_x / avg_pool_x.

Forward + backward of one pooling layer by 4 (nside -> nside / 2) on B HEALPix
maps in NESTED ordering, x of shape [B, n, F] with requires_grad:

  reshape   SpherePool, fast path picked at construction: view [B, n/4, 4, F], max / mean.
  gather    SpherePool(path='gather'): padded member table, index_select + max / weighted sum.
  scatter   SpherePool(path='scatter'): scatter_reduce (max + argmax) / index_add (mean).
  pyg       torch_geometric.nn.pool.max_pool_x / avg_pool_x(cluster, x, batch) on the
            equivalent PyG batch (x [B * n, F], cluster offset per graph by
            sphere_pool_batch), as a PyG user calls them (consecutive_cluster each call).
  pyg_size  the same with size=n/4 and batch_size=B given (skips consecutive_cluster).

Times are medians over --repeat runs after one warm-up run; ratios are the PyG
baseline ("pyg") time divided by each time, measured in the same invocation (> 1:
faster than PyG). Every output is first checked against a float64 reference.
Entries are named op_sampling_res_batch_dtype_device, e.g.
maxpool_healpix_nside64_b8_float32_cpu.

    python benchmarks/bench_pool.py                      # nside 64 128 256, B=8, F=32
    python benchmarks/bench_pool.py --nside 64 --repeat 9 --out pool.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_geometric.nn.pool import avg_pool_x, max_pool_x  # noqa: E402

from pyg_sphere.nn.pool import SpherePool, sphere_pool_batch  # noqa: E402
from pyg_sphere.samplings import healpix  # noqa: E402
from pyg_sphere.samplings.coarsen import coarsen  # noqa: E402

IMPLS = ('reshape', 'gather', 'scatter', 'pyg', 'pyg_size')
DTYPES = {'float32': torch.float32, 'float64': torch.float64}


def describe_machine(device: torch.device) -> str:
    text = (f'{platform.platform()}; {platform.processor() or platform.machine()}; '
            f'{os.cpu_count()} CPUs; python {platform.python_version()}, '
            f'torch {torch.__version__}, {torch.get_num_threads()} torch threads')
    if device.type == 'cuda':
        text += f'; {torch.cuda.get_device_name(device)}'
    return text


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def make_impl(impl, reduce, cluster, num_clusters, B, n, device):
    """A callable x [B, n, F] -> pooled [B * c, F] (or [B, c, F])."""
    if impl in ('reshape', 'gather', 'scatter'):
        pool = SpherePool(cluster, num_clusters, reduce=reduce, path=impl).to(device)
        assert pool.path == impl
        return pool
    batch = torch.arange(B, device=device).repeat_interleave(n)
    cl, _ = sphere_pool_batch(cluster.to(device), batch, num_clusters)
    fn = max_pool_x if reduce == 'max' else avg_pool_x
    if impl == 'pyg':
        return lambda x: fn(cl, x.reshape(B * n, -1), batch)[0]
    return lambda x: fn(cl, x.reshape(B * n, -1), batch, batch_size=B, size=num_clusters)[0]


def run_entry(reduce, nside, B, F, dtype, device, repeat, impls):
    fine = healpix(nside)
    coarse, cluster = coarsen(fine)
    n, C = fine.num_nodes, coarse.num_nodes
    g = torch.Generator().manual_seed(0)
    x64 = torch.randn(B, n, F, generator=g, dtype=torch.float64)
    grad_out = torch.randn(B, C, F, generator=g, dtype=torch.float64)
    # float64 reference: the closed form of HEALPix NESTED pooling
    blocks = x64.view(B, C, 4, F)
    ref = blocks.amax(2) if reduce == 'max' else blocks.mean(2)
    x = x64.to(device, dtype).requires_grad_()
    grad_out = grad_out.to(device, dtype)
    times = {}
    for impl in impls:
        fn = make_impl(impl, reduce, cluster, C, B, n, device)
        out = fn(x).reshape(B, C, F)
        tol = 0 if reduce == 'max' else 1e-5
        assert torch.allclose(out.double().cpu(), ref, atol=tol), impl
        del out
        runs = []
        for i in range(repeat + 1):
            x.grad = None
            sync(device)
            t0 = time.perf_counter()
            out = fn(x).reshape(B, C, F)
            out.backward(grad_out)
            sync(device)
            if i:  # the first run warms up
                runs.append(time.perf_counter() - t0)
            del out
        times[impl] = statistics.median(runs)
    return n, C, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nside', type=int, nargs='+', default=[64, 128, 256])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--reduce', nargs='+', default=['max', 'mean'],
                        choices=['max', 'mean'])
    parser.add_argument('--dtype', default='float32', choices=sorted(DTYPES))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--impls', nargs='+', default=list(IMPLS), choices=IMPLS)
    parser.add_argument('--out', help='also write the results as JSON to this file')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    impls = list(args.impls)
    if 'pyg' not in impls:
        impls.append('pyg')  # the baseline of the ratios

    machine = describe_machine(device)
    print(f'# machine: {machine}')
    print(f'# forward + backward, B={args.batch}, F={args.channels}, {args.dtype}, '
          f'median of {args.repeat}; ratio = pyg time / time (> 1: faster than PyG)')
    print(f'{"entry":44s} {"impl":9s} {"ms":>10s} {"vs pyg":>8s}')
    results = []
    for nside in args.nside:
        for reduce in args.reduce:
            n, C, times = run_entry(reduce, nside, args.batch, args.channels, dtype, device,
                                    args.repeat, impls)
            entry = (f'{reduce}pool_healpix_nside{nside}_b{args.batch}_{args.dtype}_'
                     f'{device.type}')
            for impl in impls:
                ratio = times['pyg'] / times[impl]
                print(f'{entry:44s} {impl:9s} {times[impl] * 1e3:10.2f} {ratio:8.2f}x',
                      flush=True)
                results.append({'entry': entry, 'impl': impl, 'nside': nside, 'n': n,
                                'num_clusters': C, 'batch': args.batch,
                                'channels': args.channels, 'dtype': args.dtype,
                                'device': device.type, 'seconds': times[impl],
                                'speedup_vs_pyg': ratio})
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({'machine': machine, 'results': results}, f, indent=1)


if __name__ == '__main__':
    main()
