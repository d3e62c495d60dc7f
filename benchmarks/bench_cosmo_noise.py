"""Benchmark: cosmology accuracy against the noise level (the paper's figure of accuracy
against noise), for the graph CNN and every baseline of the run summary.

Each noise level (factors of the task's default noise std: 0, 1/2, 1, 2) is one full
`pyg-sphere train cosmology` run (the maps are simulated once and cached; the noise is drawn
on top), for each seed; the script prints a table (mean +- std over seeds) and writes a plot
of accuracy against noise std.

    python benchmarks/bench_cosmo_noise.py --out runs/noise                     # defaults
    python benchmarks/bench_cosmo_noise.py --out runs/noise --seeds 0 --factors 0 1 \\
        --nside 64 --patch-order 1 --n-maps 16 --epochs 2                     # a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

NAMES = ('DeepSphere', 'power_spectrum', 'histogram', 'peak_counts', 'combined')


def main(argv=None) -> int:
    from pyg_sphere import cli
    from pyg_sphere.datasets.cosmology_maps import DEFAULT_NOISE_STD
    from pyg_sphere.tasks.run import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='folder of the runs, the table and plot')
    parser.add_argument('--factors', nargs='+', type=float, default=[0.0, 0.5, 1.0, 2.0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    args, task_args = parser.parse_known_args(argv)
    if '--noise-std' in task_args:
        parser.error('--noise-std is set by --factors (times the default noise)')
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for factor in args.factors:
        noise = factor * DEFAULT_NOISE_STD
        for seed in args.seeds:
            run = os.path.join(args.out, f'noise{factor:g}_seed{seed}')
            targs = cli._parser().parse_args(
                ['train', 'cosmology', '--out', run, '--no-progress', '--noise-std', str(noise),
                 '--seed', str(seed), *task_args])
            done = os.path.join(run, 'summary.json')
            if os.path.exists(done):  # a rerun keeps the finished runs
                with open(done) as f:
                    summary = json.load(f)
            else:
                summary = train(cli.run_config(targs), run)
            b = summary['baselines']
            accs = {'DeepSphere': summary['test']['accuracy'],
                    **{k: b[k]['test_accuracy'] for k in NAMES[1:]}}
            results.setdefault(noise, []).append(accs)
            print(f'noise {noise:g} seed {seed}: ' +
                  ', '.join(f'{k} {100 * v:.1f}' for k, v in accs.items()), flush=True)
    table = {noise: {k: (100 * statistics.mean(r[k] for r in rows),
                         100 * (statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0))
                     for k in NAMES} for noise, rows in results.items()}
    print(f'\n{"noise std":>9} ' + ' '.join(f'{k:>16}' for k in NAMES))
    for noise, row in table.items():
        print(f'{noise:9.4f} ' + ' '.join(f'{m:9.1f} +- {s:4.1f}' for m, s in row.values()))
    with open(os.path.join(args.out, 'noise.json'), 'w') as f:
        json.dump({'options': task_args, 'seeds': args.seeds,
                   'table': {str(k): v for k, v in table.items()}}, f, indent=1)
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('(install matplotlib for the plot)')
        return 0
    fig, ax = plt.subplots(figsize=(6, 4))
    noises = list(table)
    for k in NAMES:
        ax.errorbar(noises, [table[n][k][0] for n in noises], [table[n][k][1] for n in noises],
                    marker='o', capsize=3, label=k)
    ax.set_xlabel('noise std per pixel')
    ax.set_ylabel('test accuracy (%)')
    ax.axhline(50, color='grey', lw=0.5)
    ax.legend()
    ax.set_title('cosmology: accuracy against noise (mean +- std over seeds)')
    fig.tight_layout()
    path = os.path.join(args.out, 'accuracy_vs_noise.png')
    fig.savefig(path, dpi=120)
    print('plot:', path)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
