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
loss = sum of squared outputs) per batch. Times are medians of --repeat runs after
one warm-up run; ratios are pyg / ours from the same invocation (> 1: ours faster).
Entries are named op_sampling_res_batch_dtype_device, e.g.
deepsphere-shrec17_healpix_nside32_b32_float32_cpu.

    python benchmarks/bench_model.py
    python benchmarks/bench_model.py --presets shrec17 --repeat 9 --json model.json
"""
from __future__ import annotations

import argparse
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

from _machine import describe  # noqa: E402
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


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_preset(name: str, repeat: int, seed: int = 0) -> dict:
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

    def infer(fn, inp):
        def run():
            with torch.no_grad():
                fn(inp)
        return run

    def train_step(fn, inp, params):
        def run():
            for p in params:
                p.grad = None
            fn(inp).square().sum().backward()
        return run

    result = dict(preset=name, params=model.num_parameters(), params_pyg=sum(
        p.numel() for p in ref.parameters()), pixels=n, batch=B, build_s=build,
        rel_err_ours=err_ours, rel_err_pyg=err_pyg)
    model.eval()
    ref.eval()
    result['infer_ours_s'] = median_time(infer(model, x), repeat)
    result['infer_pyg_s'] = median_time(infer(ref, x_flat), repeat)
    model.train()
    ref.train()
    result['train_ours_s'] = median_time(train_step(model, x, list(model.parameters())), repeat)
    result['train_pyg_s'] = median_time(train_step(ref, x_flat, list(ref.parameters())),
                                        repeat)
    result['entry'] = f'deepsphere-{name}_{spec["label"]}_b{B}_float32_cpu'
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--presets', nargs='+', default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median kept)')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()

    machine = describe()
    print(f'machine: {machine}')
    results = []
    for name in args.presets:
        r = run_preset(name, args.repeat)
        results.append(r)
        B = r['batch']
        print(f"\n{r['entry']}: {r['params']:,} parameters (PyG network: "
              f"{r['params_pyg']:,}), {r['pixels']:,} pixels x {B} maps; model built "
              f"(pyramid + layers) in {r['build_s']:.2f} s")
        print(f"  agreement with the PyG network in float64 (max abs error / max abs "
              f"output): ours {r['rel_err_ours']:.1e}, pyg {r['rel_err_pyg']:.1e}")
        print(f"  {'':34s} {'ours':>10s} {'pyg':>10s} {'pyg/ours':>9s}")
        rows = [('inference per batch (eval, no grad)', r['infer_ours_s'], r['infer_pyg_s'], 1),
                ('inference per sample', r['infer_ours_s'] / B, r['infer_pyg_s'] / B, 1),
                ('forward + backward per batch', r['train_ours_s'], r['train_pyg_s'], 1)]
        for label, ours, pyg, _ in rows:
            print(f'  {label:34s} {ours * 1e3:8.2f}ms {pyg * 1e3:8.2f}ms {pyg / ours:8.2f}x')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, repeat=args.repeat, results=results), f, indent=1)


if __name__ == '__main__':
    main()
