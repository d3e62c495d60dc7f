"""Benchmark: the paper's "it matters" table on the cosmology task.

Perraudin et al. 2019 / Defferrard et al. 2020 (table 3 of the DeepSphere V2 paper) train
the cosmology classifier with

  heuristic8  the old 8-neighbour graph with the heuristic kernel width t = mean(d^2) / 2
  dense       the "CNN" variant: the same convolutions, a dense readout (not rotation
              invariant; k = 8, optimal width)
  k8/k20/k40  kNN graphs with k = 8, 20, 40 neighbours and the optimal (published) widths

and report 62.1 / 83.8 / 87.1 / 91.3 / 92.5 % accuracy and 185 / 250 / 363 ms inference
per sample for k = 8 / 20 / 40 (nside 1024, order 2, on their machine). This script runs
each variant on the task's data (the run's options: nside, patch order, noise, maps), with
the task's training recipe (augmentation, fresh noise per batch, best epoch on validation),
for several seeds, and prints accuracy (mean +- std) and inference time per patch beside the
paper's.

    python benchmarks/bench_cosmo_k.py                          # the task defaults, 3 seeds
    python benchmarks/bench_cosmo_k.py --nside 64 --patch-order 1 --n-maps 16 --epochs 2 \\
        --seeds 0 --variants k8 k20                             # a small smoke run
    python benchmarks/bench_cosmo_k.py --time-only --seeds 0 1 2   # times alone, no training

Times are wall times on the machine it runs on (say whether it is loaded).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

PAPER = {'heuristic8': (62.1, None), 'dense': (83.8, None), 'k8': (87.1, 185),
         'k20': (91.3, 250), 'k40': (92.5, 363)}
VARIANTS = tuple(PAPER)


def variant_kwargs(name: str, graph) -> dict:
    """``(k, model kwargs)`` of a variant."""
    from pyg_sphere.graph import sphere_knn_graph
    if name == 'heuristic8':
        from pyg_sphere.samplings import sampling_positions
        pos = sampling_positions(graph)
        ei, _, _ = sphere_knn_graph(pos, 8, kernel_width=1.0, sampling=graph.sampling,
                                    ipix=getattr(graph, 'ipix', None))
        d2 = torch.arccos((pos[ei[0]] * pos[ei[1]]).sum(1).clamp(-1, 1)).pow(2).mean()
        return {'k': 8, 'kernel_width': float(d2) / 2}
    if name == 'dense':
        return {'k': 8, 'readout': 'dense', 'head': 'linear'}
    return {'k': int(name[1:])}


def main(argv=None) -> int:
    from pyg_sphere import cli
    from pyg_sphere.tasks import get_task
    from pyg_sphere.tasks.run import InputScale, _set_scale
    from pyg_sphere.training import evaluate, train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--json', default=None, help='write the results here')
    parser.add_argument('--time-only', action='store_true',
                        help='no training: time inference with initial weights (the time does '
                             'not depend on them); for a quiet-machine timing of a loaded run')
    args, task_args = parser.parse_known_args(argv)
    targs = cli._parser().parse_args(['train', 'cosmology', '--out', 'unused', '--no-progress',
                                      *task_args])
    task = get_task('cosmology')
    base = cli.run_config(targs)
    data = task.load(base, progress=False)
    base = base.replace(input_scale=InputScale(*map(tuple, task.input_scale(data))))
    graph = task.sampling(base)
    rows = {}
    for name in args.variants:
        accs, times = [], []
        for seed in args.seeds:
            config = base.replace(train=dataclasses.replace(base.train, seed=seed))
            kwargs = variant_kwargs(name, graph)
            torch.manual_seed(seed)
            from pyg_sphere.nn import DeepSphere
            from pyg_sphere.training import Standardize
            net = DeepSphere.cosmology(data=graph, **kwargs)
            model = Standardize(net, 0.0, 1.0)
            _set_scale(model, config.input_scale)
            if args.time_only:
                accs.append(float('nan'))
            else:
                with tempfile.TemporaryDirectory() as run_dir:
                    train_model(model, data.train, data.val, config.train, run_dir,
                                task.objective(config, data), progress=False,
                                noise_std=data.noise_std, log=lambda *a: None,
                                augment=task.augment(config, data))
                    best = torch.load(os.path.join(run_dir, 'best.pt'), weights_only=False)
                model.load_state_dict(best['model'])
                accs.append(100 * evaluate(model, *data.test)['accuracy'])
            model.eval()
            x = data.test[0][:16]
            with torch.no_grad():
                model(x)
                t0 = time.perf_counter()
                for _ in range(3):
                    model(x)
            times.append(1000 * (time.perf_counter() - t0) / (3 * len(x)))
            print(f'{name} seed {seed}: {accs[-1]:.1f} %, {times[-1]:.2f} ms/patch', flush=True)
        rows[name] = {'accuracy': accs, 'ms_per_patch': times}
    print(f'\n{"variant":<11} {"accuracy %":>15} {"ms/patch":>9}   paper: accuracy, ms/sample')
    for name, r in rows.items():
        acc, ms = r['accuracy'], r['ms_per_patch']
        pa, pt = PAPER[name]
        if args.time_only:
            cell = f'{"(not trained)":>15}'
        else:
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            cell = f'{statistics.mean(acc):8.1f} +- {sd:4.1f}'
        print(f'{name:<11} {cell} {statistics.median(ms):9.2f}'
              f'   {pa:.1f} %' + (f', {pt} ms' if pt else ''))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'options': task_args, 'seeds': args.seeds, 'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
