"""Tune the kNN kernel widths of non-HEALPix samplings and regenerate the table.

For every sampling family below, resolution and k in (8, 20, 40), run
pyg_sphere.metrics.tune_kernel_width (combinatorial Laplacian, geodesic
distances, 3 signals x 3 Haar rotations per degree, seed 0), then

* rewrite the generated block of pyg_sphere/graph/tuned_widths.py,
* write benchmarks/results/tune_widths.json,
* print the markdown tables of docs/equivariance.md: tuned widths, and the
  objective (geometric mean of the equivariance error over the tuning degrees)
  at the tuned width, at the HEALPix-calibrated heuristic and at
  t = mean(d^2) / 2;
* validate the tuner on HEALPix against the published widths.

    OMP_NUM_THREADS=1 python benchmarks/tune_widths.py            # ~5 min on 2 busy cores
    python benchmarks/tune_widths.py --quick                        # smallest resolutions
    python benchmarks/tune_widths.py --no-write                     # do not touch the table
    python benchmarks/tune_widths.py --from-json --no-write         # reprint the tables
"""
import argparse
import json
import os
import re
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import describe  # noqa: E402

from pyg_sphere.graph import healpix_kernel_width, sphere_knn_graph  # noqa: E402
from pyg_sphere.graph.tuned_widths import sampling_family  # noqa: E402
from pyg_sphere.metrics import laplacian_spectrum_alignment, tune_kernel_width  # noqa: E402
from pyg_sphere.samplings import (cubed, equiangular, gauss_legendre, healpix,  # noqa: E402
                                  icosahedral)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TABLE = os.path.join(ROOT, 'pyg_sphere', 'graph', 'tuned_widths.py')

#: label -> (constructor of resolution, resolutions)
FAMILIES = {
    'equiangular SOFT': (lambda r: equiangular(r, poles='none'), (32, 64, 128)),
    'equiangular DH': (lambda r: equiangular(r, poles='north'), (32, 64, 128)),
    'equiangular CC': (lambda r: equiangular(r, poles='both'), (33, 65, 129)),
    'Gauss-Legendre': (lambda r: gauss_legendre(r), (32, 64, 128)),
    'Gauss-Legendre O': (lambda r: gauss_legendre(r, reduced=True), (32, 64, 128)),
    # least-squares samplings: levels whose design matrix keeps the full tuning
    # band (level 6 would cap lmax at ~30 < 0.75 sqrt(n / 3)); higher levels
    # scale the level-5 ratio with the mean squared edge distance
    'icosahedral': (lambda r: icosahedral(r), (3, 4, 5)),
    'cubed equiangular': (lambda r: cubed(r, spacing='equiangular'), (3, 4, 5)),
    'cubed equidistant': (lambda r: cubed(r, spacing='equidistant'), (3, 4, 5)),
}
#: label -> resolution of the spectral-alignment table (~1.5-3k pixels)
SPECTRUM = {'equiangular SOFT': 32, 'equiangular DH': 32, 'equiangular CC': 33,
            'Gauss-Legendre': 32, 'Gauss-Legendre O': 32, 'icosahedral': 4,
            'cubed equiangular': 4, 'cubed equidistant': 4}
KS = (8, 20, 40)
SIGNALS, ROTATIONS = 3, 3


def tune(data, k):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        res = tune_kernel_width(data, k=k, n_signals=SIGNALS, n_rotations=ROTATIONS, seed=0,
                                return_details=True)
    edge = any('edge of the search bracket' in str(w.message) for w in caught)
    return res, edge


def run_families(families, quick):
    rows = []
    for label in families:
        make, resolutions = FAMILIES[label]
        for res in resolutions[:1] if quick else resolutions:
            data = make(res)
            for k in KS:
                t0 = time.time()
                r, edge = tune(data, k)
                family, resolution, _ = sampling_family(data.sampling)
                rows.append({
                    'label': label, 'family': list(family), 'resolution': resolution,
                    'sampling': repr(data.sampling), 'n': int(data.num_nodes), 'k': k,
                    't': r.kernel_width, 'ratio': r.ratio, 'mean_sq_distance': r.mean_sq_distance,
                    'objective': r.objective, 'degrees': r.degrees, 'errors': r.errors,
                    'at_edge': edge,
                    'calibrated': {'t': r.heuristic['calibrated'][0],
                                   'objective': r.heuristic['calibrated'][1]},
                    'half_mean': {'t': r.heuristic['half_mean'][0],
                                  'objective': r.heuristic['half_mean'][1]},
                    'seconds': time.time() - t0})
                print(f"{label:18s} {res:4d} n={data.num_nodes:6d} k={k:2d} t={r.kernel_width:.4g} "
                      f"ratio={r.ratio:.3f} E={r.objective:.3g} (calibrated "
                      f"{r.heuristic['calibrated'][1]:.3g}, mean/2 "
                      f"{r.heuristic['half_mean'][1]:.3g}){' EDGE' if edge else ''} "
                      f"{time.time() - t0:.0f}s", flush=True)
    return rows


def run_healpix(nsides):
    rows = []
    for nside in nsides:
        data = healpix(nside)
        for k in KS:
            t0 = time.time()
            r, edge = tune(data, k)
            # the published widths are for chordal distances: compare like with like
            rc = tune_kernel_width(data, k=k, n_signals=SIGNALS, n_rotations=ROTATIONS, seed=0,
                                   distance='chordal')
            pub = healpix_kernel_width(nside, k)
            rows.append({'nside': nside, 'k': k, 't': r.kernel_width, 't_chordal': rc,
                         'published': pub, 'extrapolated': nside < 32, 'ratio': r.ratio,
                         'objective': r.objective, 'at_edge': edge,
                         'calibrated': {'t': r.heuristic['calibrated'][0],
                                        'objective': r.heuristic['calibrated'][1]},
                         'half_mean': {'t': r.heuristic['half_mean'][0],
                                       'objective': r.heuristic['half_mean'][1]}})
            note = ' (published value extrapolated)' if nside < 32 else ''
            print(f'HEALPix nside {nside:3d} k={k:2d}: tuned {rc:.4g} (chordal) / published '
                  f'{pub:.4g} = {rc / pub:.2f}{note} {time.time() - t0:.0f}s', flush=True)
    return rows


def run_spectra(rows, families, lmax=4):
    """Spectral alignment of the graphs with the tuned widths (and HEALPix with
    the published ones), k = 8 and 20."""
    out = []
    cases = [('HEALPix', healpix(16), None)]
    for label in families:
        make, _ = FAMILIES[label]
        cases.append((label, make(SPECTRUM[label]), SPECTRUM[label]))
    for label, data, res in cases:
        for k in (8, 20):
            if res is None:
                t = healpix_kernel_width(data.sampling['nside'], k)
            else:
                match = [r for r in rows if r['label'] == label and r['resolution'] == res
                         and r['k'] == k]
                if not match:
                    continue
                t = match[0]['t']
            ei, ew, _ = sphere_knn_graph(data.pos, k, kernel_width=t, sampling=data.sampling)
            a = laplacian_spectrum_alignment(data, ei, ew, lmax=lmax)
            out.append({'label': label, 'sampling': repr(data.sampling), 'n': data.num_nodes,
                        'k': k, 't': t, 'group_sizes': a.group_sizes,
                        'alignment': a.alignment, 'spread': a.spread})
            print(f'{label:18s} k={k:2d} groups {a.group_sizes} alignment '
                  + ' '.join(f'{v:.3f}' for v in a.alignment), flush=True)
    return out


def write_table(rows):
    table, edges = {}, []
    for row in rows:
        fam = tuple(row['family'])
        table.setdefault(fam, {}).setdefault(row['resolution'], {})[row['k']] = (
            float(f"{row['t']:.5g}"), float(f"{row['ratio']:.4g}"))
        if row['at_edge']:
            edges.append((fam, row['resolution'], row['k']))
    lines = ['# BEGIN GENERATED',
             '#: {family: {resolution: {k: (t, t / mean d^2)}}}; family = (sampling name,',
             '#: variant), resolution = nlat (equiangular, Gauss-Legendre) or subdivisions',
             '#: (icosahedral, cubed).',
             'TUNED_WIDTHS: Dict[Tuple[str, ...], Dict[int, Dict[int, Tuple[float, float]]]] = {']
    for fam in table:
        lines.append(f'    {fam!r}: {{')
        for res in sorted(table[fam]):
            entries = ', '.join(f'{k}: {v!r}' for k, v in sorted(table[fam][res].items()))
            lines.append(f'        {res}: {{{entries}}},')
        lines.append('    },')
    lines.append('}')
    lines.append('#: (family, resolution, k) whose optimum sat at the edge of the search bracket.')
    lines.append('AT_BRACKET_EDGE: Tuple[Tuple[Tuple[str, ...], int, int], ...] = (')
    for e in edges:
        lines.append(f'    {e!r},')
    lines.append(')')
    lines.append('# END GENERATED')
    with open(TABLE) as f:
        text = f.read()
    new = re.sub(r'# BEGIN GENERATED.*# END GENERATED', '\n'.join(lines), text, flags=re.S)
    with open(TABLE, 'w') as f:
        f.write(new)
    print(f'rewrote {TABLE}')


def markdown_spectra(spectra):
    out = ['| sampling | n | k | group sizes l=0..4 | alignment l=1 | l=2 | l=3 | l=4 |',
           '|' + '---|' * 8]
    for s in spectra:
        al = s['alignment']
        out.append(f"| {s['label']} | {s['n']} | {s['k']} | "
                   f"{', '.join(map(str, s['group_sizes']))} | "
                   + ' | '.join(f'{v:.3f}' for v in al[1:]) + ' |')
    return '\n'.join(out)


def markdown(rows, hp_rows):
    out = ['| sampling | res. | n | ' + ' | '.join(
        f'k={k}: t (t / mean d^2) | E tuned / calibrated / mean d^2 / 2' for k in KS) + ' |',
        '|' + '---|' * (3 + 2 * len(KS))]
    groups = {}
    for r in rows:
        groups.setdefault((r['label'], r['resolution'], r['n']), {})[r['k']] = r
    for (label, res, n), by_k in groups.items():
        cells = []
        for k in KS:
            r = by_k.get(k)
            if r is None:
                cells += ['-', '-']
                continue
            cells.append(f"{r['t']:.3g} ({r['ratio']:.3f}{'*' if r['at_edge'] else ''})")
            cells.append(f"{r['objective']:.2g} / {r['calibrated']['objective']:.2g} / "
                         f"{r['half_mean']['objective']:.2g}")
        out.append(f'| {label} | {res} | {n} | ' + ' | '.join(cells) + ' |')
    out.append('')
    out.append('(* = optimum at the edge of the search bracket: the error keeps falling '
               'towards the unweighted graph)')
    if hp_rows:
        out += ['', '| HEALPix nside | k | tuned t (chordal) | published t | tuned / published | '
                'E tuned / calibrated (~ published) / mean d^2 / 2 |',
                '|---|---|---|---|---|---|']
        for r in hp_rows:
            objectives = ''
            if 'calibrated' in r:
                objectives = (f"{r['objective']:.2g} / {r['calibrated']['objective']:.2g} / "
                              f"{r['half_mean']['objective']:.2g}")
            out.append(f"| {r['nside']} | {r['k']} | {r['t_chordal']:.4g} | {r['published']:.4g}"
                       f"{' (extrap.)' if r['extrapolated'] else ''} | "
                       f"{r['t_chordal'] / r['published']:.2f} | {objectives} |")
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--families', nargs='+', default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument('--quick', action='store_true', help='smallest resolution only')
    parser.add_argument('--healpix', type=int, nargs='*', default=[16, 32, 64])
    parser.add_argument('--no-write', action='store_true', help='do not rewrite the table')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'tune_widths.json'))
    parser.add_argument('--from-json', action='store_true',
                        help='re-print the tables from OUT (and rewrite the table unless '
                             '--no-write)')
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.out) as f:
            saved = json.load(f)
        print(saved['machine'])
        if not args.no_write:
            write_table(saved['rows'])
        print(markdown(saved['rows'], saved['healpix']))
        if saved.get('spectra'):
            print()
            print(markdown_spectra(saved['spectra']))
        return
    machine = describe()
    print(machine)
    t0 = time.time()
    hp_rows = run_healpix(args.healpix)
    rows = run_families(args.families, args.quick)
    spectra = [] if args.quick else run_spectra(rows, args.families)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump({'machine': machine, 'seconds': time.time() - t0, 'signals': SIGNALS,
                   'rotations': ROTATIONS, 'healpix': hp_rows, 'rows': rows,
                   'spectra': spectra}, f, indent=1)
    if not args.no_write:
        write_table(rows)
    print(markdown(rows, hp_rows))
    if spectra:
        print()
        print(markdown_spectra(spectra))
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
