"""Benchmark: whole DeepSphere models against the same networks built from PyG layers.

Two presets of pyg_sphere.nn.models.DeepSphere, on CPU by default:

  shrec17    DeepSphere.shrec17(): HEALPix nside 32 (12,288 pixels, NESTED), 6 input
             channels, blocks 16, 32, 64, 128, 256 (K = 4, batch norm, ReLU, max pooling
             by 4), global mean, linear to 55 classes; batch 32.
  cosmology  DeepSphere.cosmology(nside=64, order=None): full-sky HEALPix nside 64
             (49,152 pixels), 1 input channel, blocks 16, 32, 64, 64, 64 (K = 5, max
             pooling by 4), graph conv to 2 classes, global mean; batch 16.

Each is measured as

  ours  the DeepSphere model on a dense batch x [B, n, F] (cached Laplacians,
        node-major layout from one layer to the next);
  pyg   the same layers from torch_geometric: ChebConv (K weights, the same
        lambda_max per level) on the PyG batched graph (B copies of each level's
        graph, offsets as Batch makes them, built once), BatchNorm1d, ReLU,
        max_pool_x on the batched cluster maps (size and batch_size given, so no
        consecutive_cluster), global_mean_pool, Linear; x [B * n, F], batch vector.

with the same weights (loaded from ours). Before timing, both float32 outputs are
checked against the PyG network in float64. Timed: inference (eval mode, no grad)
per batch and per sample, and a training step's forward + backward (train mode,
loss = sum of squared outputs) per batch; ours steps as pyg_sphere.training does on CPU,
under pyg_sphere.nn.coarse_threads() (also printed outside it: the models apply the
policy to their own forward, so that row shows what it does to the backward), the PyG
network plainly.
The implementations run in turn, round
after round (order alternating), after one warm-up each; times are medians, and
ratios are medians of the per-round ratios (pyg / ours > 1: ours faster), so that
both share whatever else the machine is doing.

--threads runs each torch.set_num_threads value; --loaded repeats every one
beside a busy process (a `while True: pass`, started and killed by the benchmark;
pinned to the last CPU, or with --busy free left to the scheduler) and prints the
2-thread / 1-thread ratios: on a shared machine, more threads must not be slower.
It then times ours alone beside the busy process at 1 thread, at the largest
--threads, and at that count with the kernel workers allowed on the caller's CPU
(PYG_SPHERE_SEPARATE_CPUS=0), interleaved round by round (2 x --repeat rounds):
the ratios to quote, as sequential per-thread blocks drift apart on a shared machine.
--compile adds torch.compile(model, fullgraph=True) (inductor) from a cold start.
Each unloaded run also prints the FLOP and memory floors of the batch from this
machine's measured 2048^3 sgemm rate and copy bandwidth at that thread count.

Entries are named op_sampling_res_batch_dtype_device, e.g.
deepsphere-shrec17_healpix_nside32_b32_float32_cpu.

    python benchmarks/bench_model.py
    python benchmarks/bench_model.py --presets shrec17 --threads 1 2 --loaded --compile
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from torch_geometric.nn import ChebConv, global_mean_pool  # noqa: E402
from torch_geometric.nn.pool import max_pool_x  # noqa: E402

from _busy import Busy, add_busy_argument, cpu_pressure, thread_ratios  # noqa: E402
from _machine import describe  # noqa: E402
from pyg_sphere.nn import coarse_threads  # noqa: E402
from pyg_sphere.nn.models import DeepSphere  # noqa: E402

PRESETS = {
    'shrec17': dict(make=lambda: DeepSphere.shrec17(), batch=32, label='healpix_nside32'),
    'cosmology': dict(make=lambda: DeepSphere.cosmology(nside=64, order=None), batch=16,
                      label='healpix_nside64'),
}


class PyGDeepSphere(torch.nn.Module):
    """The same network from torch_geometric layers, on a PyG batch of B maps."""

    def __init__(self, model: DeepSphere, B: int):
        super().__init__()
        self.B = B
        self.head_mode = model.head_mode
        graph = model.graph
        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        self.sizes = graph.num_nodes
        for block in model.blocks:
            conv = ChebConv(block.in_channels, block.out_channels, block.K, normalization='sym')
            conv.load_state_dict(block.conv.state_dict())
            norm = torch.nn.BatchNorm1d(block.out_channels)
            norm.load_state_dict(block.norm.state_dict())
            self.convs.append(conv)
            self.norms.append(norm)
        self.head = None
        if model.head is not None:
            self.head = ChebConv(model.head.in_channels, model.head.out_channels, model.head.K,
                                 normalization='sym')
            self.head.load_state_dict(model.head.state_dict())
        self.lin = None
        if model.lin is not None:
            self.lin = torch.nn.Linear(model.lin.in_features, model.lin.out_features)
            self.lin.load_state_dict(model.lin.state_dict())
        # The batched graph of every level and the batched cluster maps, built once
        # (as a DataLoader's Batch would hand them over).
        for lvl, n in enumerate(graph.num_nodes):
            edge_index, edge_weight, lam = graph.level(lvl)
            offsets = torch.arange(B).repeat_interleave(edge_index.size(1)) * n
            self.register_buffer(f'edge_index_{lvl}', edge_index.repeat(1, B) + offsets)
            self.register_buffer(f'edge_weight_{lvl}', edge_weight.repeat(B))
            self.register_buffer(f'lambda_max_{lvl}', lam.float().repeat(B))
            self.register_buffer(f'batch_{lvl}', torch.arange(B).repeat_interleave(n))
        for lvl, block in enumerate(model.blocks):
            cluster = block.pool.cluster
            c = block.pool.num_clusters
            batched = cluster.repeat(B) + torch.arange(B).repeat_interleave(cluster.numel()) * c
            self.register_buffer(f'cluster_{lvl + 1}', batched)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lvl, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            batch = getattr(self, f'batch_{lvl}')
            x = conv(x, getattr(self, f'edge_index_{lvl}'), getattr(self, f'edge_weight_{lvl}'),
                     batch, lambda_max=getattr(self, f'lambda_max_{lvl}'))
            x = torch.relu(norm(x))
            x, _ = max_pool_x(getattr(self, f'cluster_{lvl + 1}'), x, batch,
                              batch_size=self.B, size=self.sizes[lvl + 1])
        last = len(self.convs)
        batch = getattr(self, f'batch_{last}')
        if self.head is not None:
            x = self.head(x, getattr(self, f'edge_index_{last}'),
                          getattr(self, f'edge_weight_{last}'), batch,
                          lambda_max=getattr(self, f'lambda_max_{last}'))
        x = global_mean_pool(x, batch, size=self.B)
        return x if self.lin is None else self.lin(x)


def interleaved(fns: dict, repeat: int) -> dict:
    """Median time of each function, run in turn (order alternating) after one
    warm-up each, so that they share whatever else the machine is doing; and the
    median of the per-round ratios against the first."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeat):
        for k in (names if r % 2 == 0 else names[::-1]):
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    base = names[0]
    out = {k: statistics.median(v) for k, v in times.items()}
    for k in names[1:]:
        out[k + '/' + base] = statistics.median(
            [b / a for a, b in zip(times[base], times[k])])
    return out


def model_flops(model: DeepSphere, B: int) -> dict:
    """Floating-point operations of one batch: inference and forward + backward.

    Per conv of K weights, n pixels, F -> O channels and nnz Laplacian entries:
    (K - 1) sparse products on min(F, O) columns forward and O backward
    (2 nnz B cols each), and K dense products of 2 n B F O forward, as many for
    the weight gradients and (but for the first layer) for the input gradients.
    Batch norm, pooling and readout add O(n B F), a few percent, left out.
    """
    fwd = bwd = 0
    convs = [(blk.conv, lvl if model.levels else 0) for lvl, blk in enumerate(model.blocks)]
    if model.head is not None:
        convs.append((model.head, model.levels))
    for i, (conv, lvl) in enumerate(convs):
        lap = conv._cached_laplacian
        n, nnz = lap.num_nodes, lap.col.numel()
        K, f_in, f_out = conv.K, conv.in_channels, conv.out_channels
        dense = 2 * K * n * B * f_in * f_out
        fwd += 2 * nnz * B * min(f_in, f_out) * (K - 1) + dense
        bwd += 2 * nnz * B * f_out * (K - 1) + dense * (1 if i == 0 else 2)
    return dict(infer=fwd, train=fwd + bwd)


def activation_bytes(model: DeepSphere, B: int) -> int:
    """Bytes of every conv input and output (float32): a pass must read or write
    each at least once."""
    total = 0
    for lvl, blk in enumerate(model.blocks):
        n = model.graph.num_nodes[lvl if model.levels else 0]
        total += 4 * B * n * (blk.conv.in_channels + blk.conv.out_channels)
    return total


def machine_rates(threads: int) -> dict:
    """Attainable float32 GEMM GFLOP/s and copy bandwidth (GB/s) with ``threads``."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    src, dst = torch.randn(2**26), torch.empty(2**26)  # 256 MiB each
    gemm = min(_timed(lambda: a @ b) for _ in range(5))
    copy = min(_timed(lambda: dst.copy_(src)) for _ in range(5))
    return dict(gflops=2 * 2048**3 / gemm / 1e9, gbs=2 * src.numel() * 4 / copy / 1e9)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_preset(name: str, repeat: int, threads: list, loaded: bool, compile_: bool,
               seed: int = 0, busy_pinned: bool = True) -> dict:
    spec = PRESETS[name]
    B = spec['batch']
    torch.manual_seed(seed)
    t = time.perf_counter()
    model = spec['make']()
    build = time.perf_counter() - t
    # non-trivial batch-norm statistics, so that eval mode is not the identity
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    n, F = model.num_nodes, model.in_channels
    ref = PyGDeepSphere(model, B)
    x = torch.randn(B, n, F, generator=gen)
    x_flat = x.reshape(B * n, F)

    # agreement, eval mode: both float32 outputs against the PyG network in float64
    model.eval()
    ref.eval()
    with torch.no_grad():
        expected = PyGDeepSphere(model.double(), B).double().eval()(x_flat.double())
        model.float()
        out_ours, out_pyg = model(x), ref(x_flat)
    scale = expected.abs().max().item()
    err_ours = (out_ours.double() - expected).abs().max().item() / scale
    err_pyg = (out_pyg.double() - expected).abs().max().item() / scale
    assert err_ours < 1e-4 and err_pyg < 1e-4, (err_ours, err_pyg)

    def infer(fn, inp, module):
        def run():
            module.eval()
            with torch.no_grad():
                fn(inp)
        return run

    def train_step(fn, inp, module, policy=contextlib.nullcontext):
        params = list(module.parameters())

        def run():
            module.train()
            for p in params:
                p.grad = None
            with policy():
                fn(inp).square().sum().backward()
        return run

    result = dict(preset=name, params=model.num_parameters(), params_pyg=sum(
        p.numel() for p in ref.parameters()), pixels=n, batch=B, build_s=build,
        rel_err_ours=err_ours, rel_err_pyg=err_pyg, flops=model_flops(model, B),
        activation_bytes=activation_bytes(model, B), runs=[])
    compiled = None
    if compile_:
        compiled = torch.compile(model, fullgraph=True)
        t = time.perf_counter()
        infer(compiled, x, model)()
        train_step(compiled, x, model)()
        result['compile_s'] = time.perf_counter() - t
    for load in ([False, True] if loaded else [False]):
        for T in threads:
            torch.set_num_threads(T)
            fns_i = {'ours': infer(model, x, model), 'pyg': infer(ref, x_flat, ref)}
            # ours as pyg_sphere.training steps it (coarse_threads on CPU), and without
            fns_t = {'ours': train_step(model, x, model, coarse_threads),
                     'ours-plain': train_step(model, x, model),
                     'pyg': train_step(ref, x_flat, ref)}
            if compiled is not None:
                fns_i['compiled'] = infer(compiled, x, model)
                fns_t['compiled'] = train_step(compiled, x, model)
            with (Busy(busy_pinned) if load else contextlib.nullcontext()):
                run = dict(threads=T, loaded=load, infer=interleaved(fns_i, repeat),
                           train=interleaved(fns_t, repeat))
            result['runs'].append(run)
    if loaded and max(threads) > 1:
        fns = {'infer': infer(model, x, model),
               'train': train_step(model, x, model, coarse_threads)}
        with Busy(busy_pinned):
            result['loaded_ratios'] = thread_ratios(fns, max(threads), 2 * repeat)
        result['loaded_threads'] = max(threads)
    result['entry'] = f'deepsphere-{name}_{spec["label"]}_b{B}_float32_cpu'
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--presets', nargs='+', default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument('--repeat', type=int, default=5, help='timed rounds (median kept)')
    parser.add_argument('--threads', type=int, nargs='+', default=[torch.get_num_threads()],
                        help='torch.set_num_threads values to run (default: the current one)')
    parser.add_argument('--loaded', action='store_true',
                        help='also run every thread count beside a busy process (--busy)')
    add_busy_argument(parser)
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile(model, fullgraph=True) (inductor)')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()

    machine = describe()
    print(f'machine: {machine}; cpu pressure {cpu_pressure()}')
    results = []
    for name in args.presets:
        r = run_preset(name, args.repeat, args.threads, args.loaded, args.compile,
                       busy_pinned=args.busy == 'pinned')
        results.append(r)
        B = r['batch']
        print(f"\n{r['entry']}: {r['params']:,} parameters (PyG network: "
              f"{r['params_pyg']:,}), {r['pixels']:,} pixels x {B} maps; model built "
              f"(pyramid + layers) in {r['build_s']:.2f} s")
        print(f"  agreement with the PyG network in float64 (max abs error / max abs "
              f"output): ours {r['rel_err_ours']:.1e}, pyg {r['rel_err_pyg']:.1e}")
        if 'compile_s' in r:
            print(f"  torch.compile (inductor, cold, fullgraph): first inference + training "
                  f"step {r['compile_s']:.1f} s")
        fl = r['flops']
        print(f"  work per batch: inference {fl['infer'] / 1e9:.2f} GFLOP, training step "
              f"{fl['train'] / 1e9:.2f} GFLOP; conv inputs + outputs "
              f"{r['activation_bytes'] / 2**20:.0f} MiB")
        for run in r['runs']:
            T, load = run['threads'], ' beside a busy process' if run['loaded'] else ''
            rates = machine_rates(T) if not run['loaded'] else None
            print(f"  {T} thread(s){load}:")
            head = f"    {'':34s} {'ours':>10s} {'pyg':>10s} {'pyg/ours':>9s}"
            comp = 'compiled' in run['infer']
            print(head + (f" {'compiled':>10s} {'ours/comp':>9s}" if comp else ''))
            for label, key, per in (('inference per batch (eval, no grad)', 'infer', 1),
                                    ('inference per sample', 'infer', B),
                                    ('forward + backward per batch', 'train', 1)):
                t = run[key]
                line = (f"    {label:34s} {t['ours'] / per * 1e3:8.2f}ms "
                        f"{t['pyg'] / per * 1e3:8.2f}ms {t['pyg/ours']:8.2f}x")
                if comp:
                    line += (f" {t['compiled'] / per * 1e3:8.2f}ms "
                             f"{1 / t['compiled/ours']:8.2f}x")
                print(line)
            plain = run['train'].get('ours-plain')
            if plain is not None:
                print(f"    {'fwd + bwd outside coarse_threads':34s} {plain * 1e3:8.2f}ms "
                      f"(ours / this: {1 / run['train']['ours-plain/ours']:.2f})")
            if rates:
                floor_i = max(fl['infer'] / (rates['gflops'] * 1e9),
                              r['activation_bytes'] / (rates['gbs'] * 1e9))
                floor_t = max(fl['train'] / (rates['gflops'] * 1e9),
                              3 * r['activation_bytes'] / (rates['gbs'] * 1e9))
                print(f"    floors with {T} thread(s) ({rates['gflops']:.0f} GFLOP/s "
                      f"2048^3 sgemm, {rates['gbs']:.0f} GB/s copy): inference "
                      f"{floor_i * 1e3:.1f} ms/batch (ours {run['infer']['ours'] / floor_i:.1f}x "
                      f"it), training {floor_t * 1e3:.1f} ms/batch (ours "
                      f"{run['train']['ours'] / floor_t:.1f}x it)")
        by = {(q['threads'], q['loaded']): q for q in r['runs']}
        if args.loaded and 1 in args.threads:
            for T in args.threads:
                if T > 1:
                    for key in ('infer', 'train'):
                        one, many = by[1, True][key], by[T, True][key]
                        print(f"  loaded, {key}: ours {T} threads / 1 thread = "
                              f"{many['ours'] / one['ours']:.2f} (pyg "
                              f"{many['pyg'] / one['pyg']:.2f}); < 1: faster on {T}")
        if 'loaded_ratios' in r:
            T = r['loaded_threads']
            print(f"  loaded, ours alone, thread counts interleaved round by round "
                  f"({2 * args.repeat} rounds of 3 calls), {T} threads / 1 thread "
                  f"(median; mean +- std):")
            for key, cases in r['loaded_ratios'].items():
                line = f"    {key:6s}"
                for case, ratios in cases.items():
                    label = (f'{T} threads' if case == str(T) else
                             f'{T}, workers allowed on the caller\'s CPU')
                    line += (f"  {label}: {statistics.median(ratios):.2f}; "
                             f"{statistics.mean(ratios):.2f} +- {statistics.stdev(ratios):.2f}")
                print(line)
    print(f'cpu pressure after: {cpu_pressure()}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, repeat=args.repeat, results=results), f, indent=1)


if __name__ == '__main__':
    main()
