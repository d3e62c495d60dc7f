"""The ``pyg-sphere`` command line: train, evaluate and apply DeepSphere models.

    pyg-sphere train cosmology --out runs/cosmo
    pyg-sphere evaluate runs/cosmo
    pyg-sphere predict runs/cosmo map1.fits map2.npy --output predictions.csv
    torchrun --nproc_per_node=2 -m pyg_sphere train shapes --out runs/shapes
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from .tasks import TASKS, TaskError, get_task

#: the shared options whose defaults depend on the task
_TASK_DEFAULTS = ('epochs', 'batch_size', 'lr', 'sampling', 'k')
#: config entries learnt from the training data
_FROM_DATA = ('input_scale', 'classes')


class CLIError(TaskError):
    """A user error: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pyg-sphere', description='Graph-based spherical CNNs (DeepSphere) on PyG.')
    sub = parser.add_subparsers(dest='command', required=True)

    def task_defaults(option: str) -> str:
        return ', '.join(f'{name} {str(task.defaults.get(option))}'
                         for name, task in TASKS.items())

    train = sub.add_parser(
        'train', help='train a model on a built-in task',
        description='Train a DeepSphere model. Data are simulated on first use and cached. '
                    'Runs data-parallel under torchrun (gloo on CPU, nccl on GPU).')
    train.add_argument('task', help=f'one of {", ".join(TASKS)}')
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
                       help='sampling of the maps: cosmology healpix; shapes healpix, '
                            'icosahedral, equiangular; climate icosahedral, healpix '
                            f'(default: {task_defaults("sampling")})')
    train.add_argument('--nside', type=int, default=None,
                       help='resolution: HEALPix nside, icosahedral subdivisions, '
                            'equiangular nlat (default: cosmology nside 64, shapes nside 16, '
                            'climate icosahedral level 5 / HEALPix nside 32)')
    train.add_argument('--k', type=int, default=None,
                       help=f'neighbours per pixel (default: {task_defaults("k")})')
    train.add_argument('--n-maps', type=int, default=None,
                       help='samples to simulate: cosmology maps per class, shapes shapes '
                            'per class, climate training maps (default: the task default)')
    train.add_argument('--patch-order', type=int, default=None,
                       help='cosmology: HEALPix base-pixel patch order o (12 o^2 patches per '
                            'map; 0 = full sky; default: the dataset default)')
    train.add_argument('--noise-std', type=float, default=None,
                       help='cosmology: std of the white noise added to the maps '
                            '(default: the dataset default)')
    train.add_argument('--rotate', default=None,
                       help="shapes: random rotations of the training, validation and test "
                            "shapes, 'none', 'z' or 'so3' (default: none; unless so3, an "
                            "SO(3)-rotated test set is also scored)")
    train.add_argument('--data-dir', default=None,
                       help='shapes: a folder of meshes, one subfolder per class '
                            '(ModelNet / SHREC layout); climate: a netCDF file or folder '
                            '(default: built-in simulated data)')
    train.add_argument('--data-root', default=None,
                       help='cache of simulated data (default: ~/.cache/pyg_sphere/...)')
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
                              'climate: netCDF files on a lat-lon grid')
    predict.add_argument('--output', default=None,
                         help='output file: CSV of classes (cosmology, shapes) or npz of '
                              'segmentation maps (climate) (default: in RUN_DIR)')
    predict.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    return parser


def _comparable(config: Dict[str, Any]) -> Dict[str, Any]:
    """The options of a run that change its results: what ``--resume``
    requires to be unchanged (not the device, the workers or the cache)."""
    out = json.loads(json.dumps(config))
    for key in _FROM_DATA + ('workers', 'data_root'):
        out.pop(key, None)
    out.get('train', {}).pop('device', None)
    return out


def _check_device(device: str) -> None:
    if device != 'cpu' and device.split(':')[0] != 'cuda':
        raise CLIError(f"--device: expected 'cpu', 'cuda' or 'cuda:N' (got '{device}')")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: CUDA is not available on this machine")


def _resolve(args: argparse.Namespace) -> Dict[str, Any]:
    from .training import TrainConfig
    task = get_task(args.task)
    for option in _TASK_DEFAULTS:
        if getattr(args, option) is None:
            setattr(args, option, task.defaults[option])
    try:
        train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                seed=args.seed, device=args.device)
    except ValueError as err:
        raise CLIError(str(err)) from None
    if args.k < 1:
        raise CLIError(f"--k: expected a number of neighbours >= 1 (got {args.k})")
    if args.workers < 1:
        raise CLIError(f"--workers: expected >= 1 (got {args.workers})")
    return {'task': args.task, 'train': train_cfg.__dict__, **task.resolve(args)}


def _train(args: argparse.Namespace) -> int:
    from .training import (TrainConfig, atomic_write_text, evaluate, init_from_env,
                           shutdown, train_model)
    from .training.loop import json_safe
    _check_device(args.device)
    config = _resolve(args)
    task = get_task(args.task)
    train_cfg = TrainConfig(**config['train'])
    run_dir = Path(args.out or f'runs/{args.task}')
    ctx = init_from_env(args.device)
    progress = not args.no_progress and sys.stderr.isatty() and ctx.is_main
    say = print if ctx.is_main else (lambda *a, **k: None)
    config_path = run_dir / 'config.json'
    try:
        # every process checks (and none writes) before anything starts
        if args.resume and config_path.exists():
            saved = json.loads(config_path.read_text())
            if _comparable(saved) != _comparable(config):
                raise CLIError(f'--resume: the options differ from those of the run in '
                               f'{run_dir}')
        elif not args.resume and (run_dir / 'last.pt').exists():
            raise CLIError(f'{run_dir} already holds a run: pass --resume to continue it '
                           f'or choose another --out')
        ctx.barrier()
        t0 = time.perf_counter()
        say(f'[1/3] data: {args.task} (simulated on first use, then cached) ...', flush=True)
        if ctx.is_main:  # rank 0 fills the cache; the others then read it
            data = task.load(config, progress)
        ctx.barrier()
        if not ctx.is_main:
            data = task.load(config, False)
        t_data = time.perf_counter() - t0
        X_train = data.train[0]
        say(f'      {len(data.train[1])} train / {len(data.val[1])} val / '
            f'{len(data.test[1])} test samples of {X_train.size(1)} pixels x '
            f'{X_train.size(2)} channels ({t_data:.0f} s)', flush=True)
        config['input_scale'] = task.input_scale(data)
        config['classes'] = list(data.class_names)
        torch.manual_seed(args.seed)
        model = task.model(config)  # before anything is written: a bad option fails here
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(config_path, json.dumps(config, indent=2) + '\n')
        n_params = sum(p.numel() for p in model.parameters())
        say(f'[2/3] training {getattr(model, "model", model).__class__.__name__} '
            f'({n_params:,} parameters) on {args.device}' +
            (f', {ctx.world_size} processes' if ctx.enabled else ''), flush=True)
        t1 = time.perf_counter()
        objective = task.objective(config, data)
        train_model(model, data.train, data.val, train_cfg, run_dir, objective,
                    resume=args.resume, progress=progress, noise_std=data.noise_std,
                    log=say, ctx=ctx)
        t_train = time.perf_counter() - t1
    finally:
        shutdown(ctx)
    if not ctx.is_main:
        return 0
    say('[3/3] test set, baselines and plots ...', flush=True)
    model = task.model(config)
    best = torch.load(run_dir / 'best.pt', map_location=args.device, weights_only=False)
    model.load_state_dict(best['model'])
    model.to(args.device)
    tests = {'test': data.test, **data.extra_tests}
    results = {name: evaluate(model, *xy, device=args.device, objective=objective)
               for name, xy in tests.items()}
    summary: Dict[str, Any] = {'task': args.task, **results,
                               'baselines': task.baselines(config, data),
                               'best_epoch': best['epoch'] + 1, 'parameters': n_params,
                               'device': args.device, 'processes': ctx.world_size}
    summary['seconds'] = {'data': t_data, 'train': t_train,
                          'total': time.perf_counter() - t0}
    atomic_write_text(run_dir / 'summary.json', json.dumps(json_safe(summary), indent=2) + '\n')
    plots = _plots(task, run_dir, config, model, data, summary, args.device)
    summary['seconds']['total'] = time.perf_counter() - t0
    atomic_write_text(run_dir / 'summary.json', json.dumps(json_safe(summary), indent=2) + '\n')
    print(_summary_text(task, summary, run_dir, plots))
    return 0


def _plots(task: Any, run_dir: Path, config: Dict[str, Any], model: torch.nn.Module,
           data: Any, summary: Dict[str, Any], device: str) -> list:
    """Training curves, the confusion matrix and the task's map plots, when
    matplotlib is installed."""
    try:
        from .plotting import plot_confusion, plot_training_curves
        rows = [json.loads(line) for line in
                (run_dir / 'metrics.jsonl').read_text().splitlines()]
        plot_training_curves(rows, run_dir / 'training.png')
        plot_confusion(summary['test']['confusion'], data.class_names, run_dir / 'confusion.png')
        return ['training.png', 'confusion.png'] + task.plots(run_dir, config, model, data,
                                                               summary, device)
    except ImportError:
        print('      (install matplotlib for plots: pip install pyg-sphere[plot])')
        return []


def _summary_text(task: Any, summary: Dict[str, Any], run_dir: Path, plots: list) -> str:
    lines = ['', f'{task.name}: run in {run_dir}']
    lines += task.summary_lines(summary)
    s = summary['seconds']
    lines.append(f'time: data {s["data"]:.0f} s, training {s["train"]:.0f} s, total '
                 f'{s["total"]:.0f} s; best epoch {summary["best_epoch"]}; '
                 f'{summary["parameters"]:,} parameters')
    if plots:
        lines.append(f'plots: {", ".join(plots)}')
    return '\n'.join(lines)


# -- evaluate / predict --------------------------------------------------------

def _load_run(run_dir: Path, device: str) -> tuple:
    _check_device(device)
    config_path = run_dir / 'config.json'
    if not config_path.exists() or not (run_dir / 'best.pt').exists():
        raise CLIError(f'{run_dir} is not a finished run directory (no config.json / best.pt)')
    config = json.loads(config_path.read_text())
    task = get_task(config.get('task', ''))
    model = task.model(config)
    state = torch.load(run_dir / 'best.pt', map_location=device, weights_only=False)
    model.load_state_dict(state['model'])
    return task, config, model.to(device)


def _evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate
    from .training.loop import json_safe
    task, config, model = _load_run(Path(args.run_dir), args.device)
    data = task.load(config, progress=False)
    objective = task.objective(config, data)
    out = {}
    for name, xy in {'test': data.test, **data.extra_tests}.items():
        metrics = evaluate(model, *xy, device=args.device, objective=objective)
        out[name] = {k: v for k, v in metrics.items()}
    print(json.dumps(json_safe(out)))
    return 0


def _predict(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if args.output is not None:
        out = Path(args.output)
        if out.is_dir():
            raise CLIError(f'--output: {out} is a directory; expected a file name')
        if not out.parent.is_dir():
            raise CLIError(f'--output: no such directory: {out.parent}')
    task, config, model = _load_run(run_dir, args.device)
    out = task.predict(run_dir, config, model, args.inputs, args.output, args.device)
    print(f'predictions written to {out}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {'train': _train, 'evaluate': _evaluate, 'predict': _predict}[args.command](args)
    except TaskError as err:
        print(f'pyg-sphere: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
