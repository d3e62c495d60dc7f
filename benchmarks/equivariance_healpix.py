"""Reproduce the HEALPix equivariance errors of DeepSphere (ICLR 2020, figure 5).

For nside in (16, 32, 64) and four graphs -- v1 (healpy's 8 neighbours, t = half
the mean squared chordal neighbour distance, as in Perraudin et al. 2019) and
the kNN graphs k = 8, 20, 40 with the published optimal widths (chordal
distance) -- measure the mean equivariance error of the combinatorial
Laplacian L = D - W per degree l (every nside // 16-th degree up to
3 nside - 1), with the rotation floor, and write

* benchmarks/results/equivariance_healpix.json and .csv,
* docs/equivariance_healpix.png (error vs degree, one panel per nside),

and print the range of the error over l >= 10 next to the published ranges.

    OMP_NUM_THREADS=1 python benchmarks/equivariance_healpix.py    # ~10 min on 2 cores
    python benchmarks/equivariance_healpix.py --nsides 16            # quick look
"""
import argparse
import csv
import json
import os
import sys
import time

import healpy as hp
import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import describe  # noqa: E402

from pyg_sphere.graph import healpix_kernel_width, laplacian, sphere_knn_graph  # noqa: E402
from pyg_sphere.metrics.equivariance import EquivarianceProblem  # noqa: E402
from pyg_sphere.samplings import healpix  # noqa: E402

#: Published ranges of the mean equivariance error over l >= 10 (nside 32-128).
PUBLISHED = {'v1': (0.15, 0.66), 'k=8': (0.05, 0.23), 'k=20': (0.01, 0.11),
             'k=40': (0.002, 0.07)}
GRAPHS = ('v1', 'k=8', 'k=20', 'k=40')
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def v1_laplacian(nside: int) -> sp.csr_matrix:
    """DeepSphere v1 graph (NESTED): healpy's 8 (or 7) neighbours, weights
    exp(-d^2 / (2 mean d^2)) with d the chordal distance, i.e. t = mean d^2 / 2."""
    npix = 12 * nside * nside
    nbr = hp.get_all_neighbours(nside, np.arange(npix), nest=True)  # [8, npix], -1 if none
    rows = np.repeat(np.arange(npix)[None, :], 8, axis=0)
    keep = nbr >= 0
    rows, cols = rows[keep], nbr[keep]
    xyz = np.stack(hp.pix2vec(nside, np.arange(npix), nest=True), axis=1)
    d2 = ((xyz[rows] - xyz[cols]) ** 2).sum(axis=1)
    w = np.exp(-d2 / (2 * d2.mean()))
    W = sp.csr_matrix((w, (rows, cols)), shape=(npix, npix))
    W = W.maximum(W.T)  # the neighbour relation is symmetric up to rare exceptions
    deg = np.asarray(W.sum(axis=1)).ravel()
    return (sp.diags(deg) - W).tocsr()


def knn_laplacian(data, k: int) -> sp.csr_matrix:
    t = healpix_kernel_width(data.sampling['nside'], k)
    ei, ew, _ = sphere_knn_graph(data.pos, k, kernel_width=t, distance='chordal',
                                 sampling=data.sampling)
    return laplacian(ei, ew, data.num_nodes, None)


def run(nsides, n_signals, n_rotations, seed, iters):
    results = {}
    for nside in nsides:
        t0 = time.time()
        data = healpix(nside, dtype=torch.float64)
        lmax = 3 * nside - 1
        step = max(1, nside // 16)
        degrees = np.arange(1, lmax + 1, step)
        problem = EquivarianceProblem(data, degrees=degrees, n_signals=n_signals,
                                      n_rotations=n_rotations, seed=seed, iter=iters)
        floor = problem.floor().mean(axis=(1, 2))
        results[nside] = {'degrees': degrees.tolist(), 'floor': floor.tolist(), 'graphs': {}}
        for name in GRAPHS:
            L = v1_laplacian(nside) if name == 'v1' else knn_laplacian(data, int(name[2:]))
            samples = problem.errors(lambda x, f, L=L: L @ x)
            results[nside]['graphs'][name] = {
                'error': samples.mean(axis=(1, 2)).tolist(),
                'error_std': samples.std(axis=(1, 2)).tolist(),
                'relative': np.sqrt(samples).mean(axis=(1, 2)).tolist()}
        print(f'nside {nside}: {len(degrees)} degrees, {n_signals} signals x {n_rotations} '
              f'rotations, {time.time() - t0:.0f} s', flush=True)
    return results


def clean_limit(res, name, factor=100):
    """First degree >= 10 where the error is no longer > factor x the rotation floor
    (the floor is a squared relative error too: 100x = 10 % of the norm)."""
    deg = np.array(res['degrees'])
    err = np.array(res['graphs'][name]['error'])
    bad = deg[(deg >= 10) & ~(err > factor * np.array(res['floor']))]
    return int(bad.min()) if bad.size else int(deg.max()) + 1


def ranges(results, key='error', min_degree=10, clean=False):
    """{graph: {nside: (min, max)}} of a per-degree quantity over degrees >= min_degree
    (and, with ``clean``, below :func:`clean_limit`)."""
    out = {}
    for name in GRAPHS:
        out[name] = {}
        for nside, res in results.items():
            deg = np.array(res['degrees'])
            val = np.array(res['graphs'][name][key])
            keep = deg >= min_degree
            if clean:
                keep &= deg < clean_limit(res, name)
            out[name][nside] = (val[keep].min(), val[keep].max())
    return out


def table(results) -> str:
    nsides = list(results)
    lines = []
    for key, title in (('error', 'E = mean (||RLf - LRf|| / ||Lf||)^2 (the paper\'s formula)'),
                       ('relative', 'mean ||RLf - LRf|| / ||Lf|| (unsquared)')):
        for clean in (False, True):
            rng = ranges(results, key, clean=clean)
            where = ('10 <= l, E > 100 x floor' if clean else 'all l >= 10')
            lines += [f'{title}, range over {where}:', '',
                      '| graph | published (nside 32-128) | ' + ' | '.join(
                          f'nside {n}' for n in nsides) + ' | all |',
                      '|' + '---|' * (3 + len(nsides))]
            for name in GRAPHS:
                cells = [f'{lo:.2g} - {hi:.2g}' for lo, hi in (rng[name][n] for n in nsides)]
                lo = min(rng[name][n][0] for n in nsides)
                hi = max(rng[name][n][1] for n in nsides)
                pub = PUBLISHED[name]
                lines.append(f'| {name} | {pub[0]:g} - {pub[1]:g} | ' + ' | '.join(cells)
                             + f' | {lo:.2g} - {hi:.2g} |')
            lines.append('')
    lines.append('degrees kept (E > 100 x floor): l < ' + ', '.join(
        f'nside {n}: ' + '/'.join(str(clean_limit(results[n], g)) for g in GRAPHS)
        for n in nsides) + ' (v1/k=8/k=20/k=40)')
    floor_cells = []
    for n in nsides:
        deg = np.array(results[n]['degrees'])
        fl = np.array(results[n]['floor'])[deg >= 10]
        floor_cells.append(f'{fl.min():.2g} - {fl.max():.2g}')
    lines.append('rotation round-trip floor (squared), l >= 10: ' + ', '.join(
        f'nside {n}: {c}' for n, c in zip(nsides, floor_cells)))
    return '\n'.join(lines)


def write(results, out_json, out_csv, meta):
    os.makedirs(os.path.dirname(out_json), exist_ok=True)
    with open(out_json, 'w') as f:
        json.dump({'meta': meta, 'results': {str(k): v for k, v in results.items()}}, f,
                  indent=1)
    with open(out_csv, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['nside', 'graph', 'degree', 'error', 'error_std', 'relative', 'floor'])
        for nside, res in results.items():
            for name in GRAPHS:
                g = res['graphs'][name]
                for d, e, s, r, fl in zip(res['degrees'], g['error'], g['error_std'],
                                          g['relative'], res['floor']):
                    w.writerow([nside, name, d, f'{e:.6g}', f'{s:.6g}', f'{r:.6g}',
                                f'{fl:.6g}'])


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib missing (pip install pyg-sphere[plot]): no plot written')
        return
    nsides = list(results)
    fig, axes = plt.subplots(2, len(nsides), figsize=(4.2 * len(nsides), 7.2), sharey='row',
                             sharex='col', squeeze=False)
    colors = {'v1': 'tab:green', 'k=8': 'tab:cyan', 'k=20': 'tab:red', 'k=40': 'tab:blue'}
    for col, nside in enumerate(nsides):
        res = results[nside]
        deg = np.array(res['degrees'])
        top, bottom = axes[0][col], axes[1][col]
        for name in GRAPHS:
            top.loglog(deg, res['graphs'][name]['error'], '-', color=colors[name], label=name)
            bottom.loglog(deg, res['graphs'][name]['relative'], '-', color=colors[name],
                          label=name)
            lo, hi = PUBLISHED[name]
            bottom.fill_between([10, deg.max()], lo, hi, color=colors[name], alpha=0.08, lw=0)
        top.loglog(deg, res['floor'], 'k:', label='rotation floor')
        bottom.loglog(deg, np.sqrt(res['floor']), 'k:', label='rotation floor')
        for ax in (top, bottom):
            ax.axvline(10, color='0.8', lw=0.8)
            ax.grid(True, which='both', alpha=0.3)
        top.set_title(f'HEALPix nside {nside} ($n$ = {12 * nside * nside})')
        bottom.set_xlabel(r'degree $\ell$')
    axes[0][0].set_ylabel(r'$E = \mathrm{mean}\,(\|RLf - LRf\| / \|Lf\|)^2$')
    axes[1][0].set_ylabel(r'mean $\|RLf - LRf\| / \|Lf\|$ (bands: published)')
    axes[0][-1].legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f'wrote {path}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nsides', type=int, nargs='+', default=[16, 32, 64])
    parser.add_argument('--signals', type=int, default=3)
    parser.add_argument('--rotations', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--iter', type=int, default=30,
                        help='conjugate-gradient steps of the HEALPix analysis (floor)')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'equivariance_healpix'))
    parser.add_argument('--plot', default=os.path.join(ROOT, 'docs', 'equivariance_healpix.png'))
    parser.add_argument('--from-json', action='store_true',
                        help='re-print the table and redraw the plot from OUT.json')
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.out + '.json') as f:
            saved = json.load(f)
        results = {int(k): v for k, v in saved['results'].items()}
        print(saved['meta']['machine'])
        print(table(results))
        if args.plot:
            plot(results, args.plot)
        return
    machine = describe()
    print(machine)
    t0 = time.time()
    results = run(args.nsides, args.signals, args.rotations, args.seed, args.iter)
    meta = {'machine': machine, 'seconds': time.time() - t0, 'signals': args.signals,
            'rotations': args.rotations, 'seed': args.seed, 'laplacian': 'combinatorial D - W',
            'distance': 'chordal', 'analysis_cg_iterations': args.iter}
    write(results, args.out + '.json', args.out + '.csv', meta)
    print(table(results))
    if args.plot:
        plot(results, args.plot)


if __name__ == '__main__':
    main()
