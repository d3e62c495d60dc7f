"""The ``pyg-sphere`` command line: parses arguments, calls
:mod:`pyg_sphere.tasks` and prints.

    pyg-sphere train cosmology --out runs/cosmo
    pyg-sphere evaluate runs/cosmo
    pyg-sphere predict runs/cosmo map1.fits map2.npy --output predictions.csv
    torchrun --nproc_per_node=2 -m pyg_sphere train shapes --out runs/shapes
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

#: the shared options whose defaults depend on the task
_TASK_DEFAULTS = ('epochs', 'batch_size', 'lr', 'sampling', 'k')


def _parser() -> argparse.ArgumentParser:
    from ._catalog import RESOLUTION_HELP, TASK_DEFAULTS, TASK_SAMPLINGS

    parser = argparse.ArgumentParser(
        prog='pyg-sphere', description='Graph-based spherical CNNs (DeepSphere) on PyG.')
    sub = parser.add_subparsers(dest='command', required=True)

    def task_defaults(option: str) -> str:
        return ', '.join(f'{name} {d.get(option)}' for name, d in TASK_DEFAULTS.items())

    train = sub.add_parser(
        'train', help='train a model on a built-in task',
        description='Train a DeepSphere model. Data are simulated on first use and cached. '
                    'Runs data-parallel under torchrun (gloo on CPU, nccl on GPU).')
    train.add_argument('task', help=f'one of {", ".join(TASK_DEFAULTS)}')
    train.add_argument('--out', default=None,
                       help='run directory for config, metrics, checkpoints and plots '
                            '(default: runs/TASK)')
    train.add_argument('--epochs', type=int, default=None,
                       help=f'training epochs (default: {task_defaults("epochs")})')
    train.add_argument('--batch-size', type=int, default=None,
                       help='samples per step, over all processes '
                            f'(default: {task_defaults("batch_size")})')
    train.add_argument('--lr', type=float, default=None,
                       help=f'Adam learning rate (default: {task_defaults("lr")})')
    train.add_argument('--sampling', default=None,
                       help='sampling of the maps: ' + '; '.join(
                           f'{name} {", ".join(samplings)}'
                           for name, samplings in TASK_SAMPLINGS.items())
                       + f' (default: {task_defaults("sampling")})')
    train.add_argument('--nside', type=int, default=None,
                       help=f'{RESOLUTION_HELP["nside"]} (default: cosmology 128, shapes 16, '
                            f'climate 32)')
    train.add_argument('--subdivisions', type=int, default=None,
                       help=f'{RESOLUTION_HELP["subdivisions"]} (default: shapes 4, climate 5)')
    train.add_argument('--nlat', type=int, default=None,
                       help=f'{RESOLUTION_HELP["nlat"]} (default: shapes 32)')
    train.add_argument('--k', type=int, default=None,
                       help=f'neighbours per pixel (default: {task_defaults("k")})')
    train.add_argument('--n-maps', type=int, default=None,
                       help='samples to simulate: cosmology maps per class, shapes shapes '
                            'per class, climate training maps (default: the task default)')
    train.add_argument('--patch-order', type=int, default=None,
                       help='cosmology: HEALPix base-pixel patch order o (12 o^2 patches per '
                            'map; 0 = full sky; default: 2)')
    train.add_argument('--noise-std', type=float, default=None,
                       help='cosmology: std of the white noise added to the maps '
                            '(default: 0.004)')
    train.add_argument('--augment', default=None,
                       help="cosmology: augmentation of the training patches, 'symmetries' "
                            "(the 8 rotations and reflections of a patch's grid) or 'none' "
                            "(default: symmetries for patches, none for full-sky maps)")
    train.add_argument('--rotate', default=None,
                       help="shapes: random rotations of the training, validation and test "
                            "shapes, 'none', 'z' or 'so3' (default: none; unless so3, an "
                            "SO(3)-rotated test set is also scored)")
    train.add_argument('--deform', type=float, default=None,
                       help='shapes: strength of the random deformation of the procedural '
                            'shapes, in [0, 1] (default: 1)')
    train.add_argument('--surface-noise', type=float, default=None,
                       help='shapes: surface noise of the procedural shapes, in units of '
                            'their radius, in [0, 0.1] (default: 0.02)')
    train.add_argument('--partial', type=float, default=None,
                       help='shapes: largest fraction of the surface of a procedural shape '
                            'cut away (partial meshes), in [0, 1) (default: 0.3)')
    train.add_argument('--data-dir', default=None,
                       help='shapes: a folder of meshes, one subfolder per class '
                            '(ModelNet / plain layout) or OBJ files with a SHREC\'17 CSV; '
                            'climate: a netCDF file or folder (default: built-in simulated data)')
    train.add_argument('--data-root', default=None,
                       help='cache of simulated data; DATA_ROOT/TASK holds each task\'s '
                            'datasets (default: $PYG_SPHERE_CACHE or ~/.cache/pyg_sphere)')
    train.add_argument('--workers', type=int, default=2,
                       help='processes for data generation (default: 2)')
    train.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    train.add_argument('--seed', type=int, default=0, help='seed of data, weights and batches '
                                                           '(default: 0)')
    train.add_argument('--resume', action='store_true',
                       help='continue an interrupted run from OUT/last.pt')
    train.add_argument('--no-progress', action='store_true', help='no progress bars')

    evaluate = sub.add_parser('evaluate', help='score a run on its test split')
    evaluate.add_argument('run_dir', help='a run directory made by train')
    evaluate.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")

    predict = sub.add_parser('predict', help="apply a trained model to one's own data")
    predict.add_argument('run_dir', help='a run directory made by train')
    predict.add_argument('inputs', nargs='+',
                         help='cosmology: HEALPix maps, FITS (RING or NESTED, read with '
                              'healpy) or .npy (NESTED); shapes: meshes (OFF/OBJ/STL/PLY); '
                              'climate: netCDF files on a lat-lon grid, .npy arrays [n, 16] '
                              'or [T, n, 16] on the run\'s pixels, or 16-field HEALPix FITS '
                              '(HEALPix runs)')
    predict.add_argument('--output', default=None,
                         help='output file: CSV of classes (cosmology, shapes) or npz of '
                              'segmentation maps (climate) (default: in RUN_DIR)')
    predict.add_argument('--masked', default='error', choices=('error', 'skip'),
                         help='maps with NaN or healpy.UNSEEN pixels: refuse them (error), or '
                              '(cosmology runs on patches) score only the patches without '
                              'masked pixels (skip) (default: error)')
    predict.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    return parser


def run_config(args: argparse.Namespace) -> Any:
    """The typed run configuration of parsed ``train`` arguments."""
    from .tasks import RunConfig, TaskError, get_task
    from .tasks._samplings import optional_path
    from .tasks.run import check_device
    from .training import TrainConfig
    task = get_task(args.task)
    check_device(args.device)
    for option in _TASK_DEFAULTS:
        if getattr(args, option) is None:
            setattr(args, option, task.defaults[option])
    try:
        train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, device=args.device)
    except ValueError as err:
        raise TaskError(str(err)) from None
    if args.k < 1:
        raise TaskError(f"--k: expected a number of neighbours >= 1 (got {args.k})")
    if args.workers < 1:
        raise TaskError(f"--workers: expected >= 1 (got {args.workers})")
    return RunConfig(task=args.task, train=train, data=task.data_config(args), k=args.k,
                     data_root=optional_path(args.data_root), workers=args.workers)


def _summary_text(task: Any, summary: Dict[str, Any], run_dir: Path) -> str:
    lines: List[str] = ['', f'{task.name}: run in {run_dir}']
    lines += task.summary_lines(summary)
    s = summary['seconds']
    lines.append(f'time: data {s["data"]:.0f} s, training {s["train"]:.0f} s, total '
                 f'{s["total"]:.0f} s; best epoch {summary["best_epoch"]}; '
                 f'{summary["parameters"]:,} parameters')
    if summary.get('plots'):
        lines.append(f'plots: {", ".join(summary["plots"])}')
    return '\n'.join(lines)


def _train(args: argparse.Namespace) -> int:
    from .tasks import get_task, train
    config = run_config(args)
    run_dir = Path(args.out or f'runs/{args.task}')
    progress = not args.no_progress and sys.stderr.isatty()
    summary = train(config, run_dir, resume=args.resume, progress=progress,
                    log=lambda line: print(line, flush=True))
    if summary:  # rank 0
        print(_summary_text(get_task(args.task), summary, run_dir))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .tasks import evaluate
    from .training.loop import json_safe
    print(json.dumps(json_safe(evaluate(args.run_dir, args.device))))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .tasks import predict
    out = predict(args.run_dir, args.inputs, args.output, args.device, masked=args.masked)
    print(f'predictions written to {out}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    from .tasks import TaskError  # after parsing: --help stays fast
    try:
        return {'train': _train, 'evaluate': _evaluate, 'predict': _predict}[args.command](args)
    except TaskError as err:
        print(f'pyg-sphere: error: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ' (rerun with --resume to continue)' if args.command == 'train' else ''
        print(f'pyg-sphere: interrupted{hint}', file=sys.stderr)
        return 130


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
