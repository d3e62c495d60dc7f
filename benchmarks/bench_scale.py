"""Benchmark: graph, pyramid and model construction from nside 64 to 1024.

Every stage runs in a fresh subprocess (its peak memory, the max RSS of the
whole process, is its own; "warm" stages are new processes that find the
disk cache the "cold" stage of the same nside wrote). Times exclude the
imports and the sampling itself (``healpix(nside)``, timed as its own column
of the model stages). Ratios are against baselines measured in the same run:

* ``ckdtree``: scipy cKDTree query + ``torch_geometric.utils.to_undirected``
  + weights, the graph one writes without pyg_sphere (as bench_knn.py);
  skipped above ``--ckdtree-max`` (it needs ~20 GiB at nside 1024).
* ``eigsh``: the pyramid with ``lambda_max_method='eigsh'`` (ARPACK, the
  previous default), no disk cache; skipped above ``--eigsh-max``.

    python benchmarks/bench_scale.py                      # nside 64 .. 1024
    python benchmarks/bench_scale.py --nside 256 1024 --eigsh-max 256
    python benchmarks/bench_scale.py --nside 1024 --forward --no-baselines

``--forward`` adds the forward pass of one random full-sky map (no grad) in
the warm model process: the first call, then the second (the peak memory of
that process includes them).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

try:
    from _machine import describe
except ImportError:  # run from elsewhere
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _machine import describe

K = 8
LEVELS = 5  # the cosmology model's pyramid


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def forward_seconds(model, nside: int) -> dict:
    """Seconds of the first and the second forward pass of one map."""
    import torch
    x = torch.randn(1, 12 * nside * nside, 1, generator=torch.Generator().manual_seed(0))
    out = {}
    model.eval()
    with torch.no_grad():
        for name in ('first', 'second'):
            t0 = time.perf_counter()
            model(x)
            out[name] = round(time.perf_counter() - t0, 2)
    return out


def run_stage(stage: str, nside: int, cache: str, forward: bool) -> dict:
    import torch

    from pyg_sphere.samplings import healpix
    out = {}
    if stage.startswith('model'):
        from pyg_sphere.nn import DeepSphere
        t0 = time.perf_counter()
        model = DeepSphere.cosmology(nside=nside, order=None)
        out['seconds'] = time.perf_counter() - t0
        t0 = time.perf_counter()
        healpix(nside)
        out['sampling_s'] = time.perf_counter() - t0  # included in the build above
        if forward and stage == 'model_warm':
            out['forward'] = forward_seconds(model, nside)
        out['peak_gib'] = _peak_gib()
        return out
    data = healpix(nside)
    t0 = time.perf_counter()
    if stage in ('graph', 'graph_cold', 'graph_warm'):
        from pyg_sphere.transforms import SphereKNNGraph
        cached = cache if stage != 'graph' else False
        res = SphereKNNGraph(k=K, cache=cached)(data)
        out['edges'] = int(res.edge_index.size(1))
    elif stage == 'ckdtree':
        import numpy as np
        from scipy.spatial import cKDTree
        from torch_geometric.utils import to_undirected

        from pyg_sphere.graph import chordal_to_geodesic, healpix_kernel_width
        pts = data.pos.double().numpy()
        dist, idx = cKDTree(pts).query(pts, K + 1, workers=-1)
        row = torch.arange(data.num_nodes).repeat_interleave(K)
        col = torch.from_numpy(np.ascontiguousarray(idx[:, 1:]).reshape(-1))
        d2 = chordal_to_geodesic(torch.from_numpy(dist[:, 1:].reshape(-1))) ** 2
        del dist, idx
        edge_index, d2 = to_undirected(torch.stack([row, col]), d2, reduce='max')
        torch.exp(-d2 / (4 * healpix_kernel_width(nside, K))).float()
        out['edges'] = int(edge_index.size(1))
    elif stage.startswith('pyramid'):
        from pyg_sphere.transforms import SpherePyramid
        method = 'eigsh' if stage == 'pyramid_eigsh' else 'lanczos'
        cached = cache if stage in ('pyramid_cold', 'pyramid_warm') else False
        res = SpherePyramid(LEVELS, k=K, lambda_max_method=method, cache=cached)(data)
        out['lambda_max'] = float(res.lambda_max)
    else:
        raise ValueError(f'unknown stage {stage}')
    out['seconds'] = time.perf_counter() - t0
    out['peak_gib'] = _peak_gib()
    return out


def _subprocess(stage: str, nside: int, cache: str, forward: bool) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--_one', f'{stage}:{nside}',
           '--_cache', cache]
    if forward:
        cmd.append('--forward')
    # the models use the default cache folder: point it at this run's
    env = dict(os.environ, PYG_SPHERE_CACHE=cache)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ['']
        return {'error': f'exit {proc.returncode}: {tail[0][:60]}'}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nside', nargs='+', type=int, default=[64, 128, 256, 512, 1024])
    parser.add_argument('--ckdtree-max', type=int, default=512)
    parser.add_argument('--eigsh-max', type=int, default=256)
    parser.add_argument('--no-model', action='store_true', help='skip the model stages')
    parser.add_argument('--forward', action='store_true',
                        help='time the first and second forward pass of the warm model')
    parser.add_argument('--no-baselines', action='store_true',
                        help='skip the cKDTree and eigsh baselines')
    parser.add_argument('--_one', help=argparse.SUPPRESS)
    parser.add_argument('--_cache', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        stage, nside = args._one.split(':')
        print(json.dumps(run_stage(stage, int(nside), args._cache, args.forward)))
        return
    print(f'machine: {describe()}')
    print(f'k={K}, pyramid of {LEVELS} coarser levels (the cosmology model), '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}')
    head = (f'{"nside":>5} {"graph":>6} {"ckdtree":>7} {"x":>5} {"cold":>6} {"warm":>5} '
            f'{"pyramid":>7} {"eigsh":>6} {"x":>5} {"pyr.cold":>8} {"pyr.warm":>8} {"mod.cold":>8} '
            f'{"mod.warm":>8} {"sampl.":>6} {"peak GiB (graph/pyr/model/warm+fwd)":>36}  forward')
    print('times in seconds; x = baseline / ours (same run); cold = first build, '
          'writing the disk cache; warm = a new process reading it')
    print(head)
    for nside in args.nside:
        cache = tempfile.mkdtemp(prefix=f'pyg_sphere_bench_{nside}_')
        try:
            stages = ['graph', 'graph_cold', 'graph_warm', 'pyramid', 'pyramid_cold',
                      'pyramid_warm']
            if nside <= args.ckdtree_max and not args.no_baselines:
                stages.append('ckdtree')
            if nside <= args.eigsh_max and not args.no_baselines:
                stages.append('pyramid_eigsh')
            if not args.no_model:
                stages += ['model_cold', 'model_warm']
            r = {}
            for stage in stages:
                # each cold / warm pair shares a folder of its own
                folder = os.path.join(cache, stage.split('_')[0])
                os.makedirs(folder, exist_ok=True)
                r[stage] = _subprocess(stage, nside, folder, args.forward)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

        def sec(stage, r=r):
            v = r.get(stage, {})
            return f'{v["seconds"]:.2f}' if 'seconds' in v else ('-' if not v else 'fail')

        def ratio(base, ours, r=r):
            a, b = r.get(base, {}), r.get(ours, {})
            return f'{a["seconds"] / b["seconds"]:.2f}' if 'seconds' in a and 'seconds' in b \
                else '-'

        peaks = '/'.join(f'{r[s]["peak_gib"]:.2f}' if 'peak_gib' in r.get(s, {}) else '-'
                         for s in ('graph', 'pyramid', 'model_cold', 'model_warm'))
        samp = r.get('model_warm', {}).get('sampling_s')
        fwd = r.get('model_warm', {}).get('forward', '')
        print(f'{nside:>5} {sec("graph"):>6} {sec("ckdtree"):>7} {ratio("ckdtree", "graph"):>5} '
              f'{sec("graph_cold"):>6} {sec("graph_warm"):>5} {sec("pyramid"):>7} '
              f'{sec("pyramid_eigsh"):>6} {ratio("pyramid_eigsh", "pyramid"):>5} '
              f'{sec("pyramid_cold"):>8} {sec("pyramid_warm"):>8} {sec("model_cold"):>8} '
              f'{sec("model_warm"):>8} {f"{samp:.2f}" if samp else "-":>6} {peaks:>36}  '
              f'{fwd}', flush=True)
        for stage, v in r.items():
            if 'error' in v:
                print(f'      {stage}: {v["error"]}')


if __name__ == '__main__':
    main()
