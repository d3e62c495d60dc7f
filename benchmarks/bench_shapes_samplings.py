"""Benchmark: the paper's SHREC'17 sampling table, on the procedural shapes.

DeepSphere (Defferrard et al. 2020, table 3) trains the SHREC'17 network on HEALPix
nside 32 and on an equiangular grid (b = 64) and reports F1, mAP, parameters,
inference time per sample and training time. This trains the shapes task's network
(`pyg_sphere.tasks.shapes`: blocks 16 ... 256, K = 4, max pooling, global average
readout) with the task's recipe on the task's data (24 procedural classes, deformed,
noised and cut as the default run makes them) on each sampling, at comparable pixel
counts:

  healpix      nside N                       12 N^2 pixels (paper: N = 32, 12,288)
  equiangular  nlat L, nlon 2 L: 2 L^2 pixels, L the multiple of 2^(levels - 1)
               nearest sqrt(6) N (L = 80 for N = 32: 12,800 pixels, 4 poolings
               where HEALPix has 5, so one block fewer)
  icosahedral  the subdivisions whose vertex count is nearest 12 N^2 (5 for N = 32)

and prints, per sampling: test accuracy, SHREC'17 micro F1 and mAP (and on the
SO(3)-rotated test set), parameters, inference ms per sample (eval mode, batch 32,
median of --repeat passes over the test set) and training seconds per epoch (mean
over the epochs), with the machine. Wall times measured on a shared machine are
upper bounds.

    python benchmarks/bench_shapes_samplings.py                      # nside 32 scale
    python benchmarks/bench_shapes_samplings.py --nside 8 --n-per-class 8 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

from pyg_sphere.tasks import RunConfig, ShapesData  # noqa: E402
from pyg_sphere.tasks.run import _set_scale  # noqa: E402
from pyg_sphere.tasks.config import InputScale  # noqa: E402
from pyg_sphere.tasks.shapes import ShapeRetrieval, ShapesTask  # noqa: E402
from pyg_sphere.training import TrainConfig, evaluate, predict_proba, train_model  # noqa: E402

SAMPLINGS = ('healpix', 'equiangular', 'icosahedral')


def resolution(name: str, nside: int) -> int:
    """The resolution of ``name`` with about the pixels of HEALPix ``nside``."""
    target = 12 * nside * nside
    if name == 'healpix':
        return nside
    if name == 'equiangular':  # a multiple of 2^(levels - 1): pooled as often as it can be
        step = 2 ** max(1, min(int(math.log2(nside)), 4) - 1)
        return max(2 * step, step * round(math.sqrt(target / 2) / step))
    return min(range(9), key=lambda s: abs(10 * 4 ** s + 2 - target))


def run_one(name: str, args: argparse.Namespace, log) -> dict:
    task = ShapesTask()
    res = resolution(name, args.nside)
    config = RunConfig('shapes', TrainConfig(epochs=args.epochs, batch_size=16, lr=2e-3,
                                             seed=args.seed),
                       ShapesData(sampling=name, resolution=res, n_per_class=args.n_per_class,
                                  seed=args.seed),
                       k=8, data_root=args.data_root, workers=args.workers)
    config = config.replace(classes=tuple(task.classes(config)))
    t0 = time.perf_counter()
    data = task.load(config, progress=False)
    t_data = time.perf_counter() - t0
    config = config.replace(input_scale=InputScale(*map(tuple, task.input_scale(data))))
    graph = task.graph(config)
    torch.manual_seed(args.seed)
    model = task.model(config, graph)
    _set_scale(model, config.input_scale)
    objective = ShapeRetrieval()
    with tempfile.TemporaryDirectory() as tmp:
        train_model(model, data.train, data.val, config.train, Path(tmp), objective,
                    progress=False, log=lambda line: None)
        epochs = [json.loads(line) for line in (Path(tmp) / 'metrics.jsonl').read_text()
                  .splitlines()]
        model.load_state_dict(torch.load(Path(tmp) / 'best.pt', weights_only=False)['model'])
    test = evaluate(model, *data.test, objective=objective)
    rotated = evaluate(model, *data.extra_tests['test_rotated'], objective=objective)
    model.eval()
    X = data.test[0]
    times = []
    with torch.no_grad():
        predict_proba(model, X[:32])  # warm-up
        for _ in range(args.repeat):
            t = time.perf_counter()
            predict_proba(model, X, batch_size=32)
            times.append((time.perf_counter() - t) / len(X))
    row = {'sampling': name, 'resolution': res, 'pixels': task.sampling(config).pos.size(0),
           'levels': task._levels(config),
           'accuracy': test['accuracy'], 'f1': test['retrieval']['micro_f1'],
           'map': test['retrieval']['micro_map'], 'rotated_accuracy': rotated['accuracy'],
           'rotated_f1': rotated['retrieval']['micro_f1'],
           'rotated_map': rotated['retrieval']['micro_map'],
           'parameters': sum(p.numel() for p in model.parameters()),
           'inference_ms': 1e3 * statistics.median(times),
           'epoch_s': statistics.mean(e['seconds'] for e in epochs), 'data_s': t_data,
           'train': len(data.train[1]), 'test': len(data.test[1])}
    log(f"  {name}: {row['pixels']} pixels, acc {row['accuracy']:.3f}, "
        f"F1 {row['f1']:.3f}, {row['epoch_s']:.1f} s/epoch")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--samplings', nargs='+', default=list(SAMPLINGS), choices=SAMPLINGS)
    parser.add_argument('--nside', type=int, default=32, help='HEALPix nside (the paper: 32)')
    parser.add_argument('--n-per-class', type=int, default=40,
                        help='training shapes per class (val, test: a quarter)')
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeat', type=int, default=5, help='timed inference passes')
    parser.add_argument('--workers', type=int, default=2, help='data generation processes')
    parser.add_argument('--data-root', default=None, help='cache of the shapes data')
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args()
    log = (lambda line: print(line, flush=True))
    log(f'machine: {describe()}')
    log(f'shapes: 24 classes, {args.n_per_class} training shapes per class, {args.epochs} '
        f'epochs, seed {args.seed}; HEALPix nside {args.nside} and the same pixel count')
    rows = [run_one(name, args, log) for name in args.samplings]
    head = (f'{"sampling":<24} {"pixels":>7} {"pools":>5} {"acc":>6} {"F1":>6} {"mAP":>6} {"rot F1":>7} '
            f'{"rot mAP":>7} {"params":>8} {"ms/sample":>9} {"s/epoch":>8}')
    print(head)
    for r in rows:
        label = f"{r['sampling']} {r['resolution']}"
        print(f"{label:<24} {r['pixels']:>7} {r['levels']:>5} {100 * r['accuracy']:6.1f} {100 * r['f1']:6.1f} "
              f"{100 * r['map']:6.1f} {100 * r['rotated_f1']:7.1f} {100 * r['rotated_map']:7.1f} "
              f"{r['parameters']:>8,} {r['inference_ms']:9.2f} {r['epoch_s']:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({'machine': describe(), 'args': vars(args),
                                               'rows': rows}, indent=1))


if __name__ == '__main__':
    main()
