"""Benchmark: SphereKNNGraph against a cKDTree-based graph construction.

Each case runs in a fresh subprocess so that its peak memory (max RSS of the
whole process, sampling included) is its own. Ratios are against the
baseline measured in the same run.

    python benchmarks/bench_knn.py                 # nside 256 k=20 and nside 1024 k=8
    python benchmarks/bench_knn.py --cases 64:8 128:20

Baseline "ckdtree": scipy cKDTree query (k+1, all cores) + the usual PyG
symmetrisation (torch_geometric.utils.to_undirected) + Gaussian weights:
what one writes without pyg_sphere. "ckdtree-query" is the bare query alone. SphereKNNGraph runs with
cache=False: this times the build (bench_scale.py times the disk cache).
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

try:
    from _machine import describe
except ImportError:  # run from elsewhere
    sys.path.insert(0, __file__.rsplit('/', 1)[0])
    from _machine import describe


def run_case(impl: str, nside: int, k: int) -> dict:
    from pyg_sphere.samplings import healpix
    data = healpix(nside)
    t0 = time.perf_counter()
    if impl == 'pyg_sphere':
        from pyg_sphere.transforms import SphereKNNGraph
        out = SphereKNNGraph(k=k, cache=False)(data)  # the build, not the disk cache
        edges = out.edge_index.size(1)
    else:
        from scipy.spatial import cKDTree
        pts = data.pos.double().numpy()
        dist, idx = cKDTree(pts).query(pts, k + 1, workers=-1)
        if impl == 'ckdtree':
            from torch_geometric.utils import to_undirected
            from pyg_sphere.graph import chordal_to_geodesic, healpix_kernel_width
            row = torch.arange(data.num_nodes).repeat_interleave(k)
            col = torch.from_numpy(idx[:, 1:].reshape(-1))
            d2 = chordal_to_geodesic(torch.from_numpy(dist[:, 1:].reshape(-1))) ** 2
            del dist, idx
            edge_index, d2 = to_undirected(torch.stack([row, col]), d2, reduce='max')
            weight = torch.exp(-d2 / (4 * healpix_kernel_width(nside, k))).float()
            edges = edge_index.size(1)
        else:
            edges = idx.size
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {'impl': impl, 'nside': nside, 'k': k, 'seconds': seconds, 'peak_gib': peak,
            'edges': int(edges)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', nargs='+', default=['256:20', '1024:8'],
                        help='nside:k pairs (default: 256:20 1024:8)')
    parser.add_argument('--repeat', type=int, default=1, help='runs per case (min is kept)')
    parser.add_argument('--impls', nargs='+', default=['pyg_sphere', 'ckdtree', 'ckdtree-query'])
    parser.add_argument('--_one', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        impl, nside, k = args._one.split(':')
        print(json.dumps(run_case(impl, int(nside), int(k))))
        return
    print(f'machine: {describe()}')
    print(f'{"case":>14} {"impl":>14} {"time [s]":>9} {"peak [GiB]":>10} {"edges":>11} '
          f'{"speed-up of pyg_sphere":>22}')
    for case in args.cases:
        nside, k = (int(v) for v in case.split(':'))
        res = {}
        for impl in args.impls:
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run([sys.executable, __file__, '--_one', f'{impl}:{nside}:{k}'],
                                     capture_output=True, text=True)
                if out.returncode != 0:  # e.g. killed for memory: say so, go on
                    print(f'{f"nside={nside},k={k}":>14} {impl:>14} failed (exit '
                          f'{out.returncode}{", out of memory?" if out.returncode == -9 else ""})')
                    break
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            if runs:
                res[impl] = min(runs, key=lambda r: r['seconds'])
        ours = res.get('pyg_sphere')
        for impl, r in res.items():
            ratio = '' if ours is None or impl == 'pyg_sphere' else \
                f'{r["seconds"] / ours["seconds"]:.2f}x'
            print(f'{f"nside={nside},k={k}":>14} {impl:>14} {r["seconds"]:9.2f} '
                  f'{r["peak_gib"]:10.2f} {r["edges"]:11d} {ratio:>22}')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
