"""The ``pyg-sphere`` command line: train, evaluate and apply DeepSphere models.

    pyg-sphere train cosmology --out runs/cosmo
    pyg-sphere evaluate runs/cosmo
    pyg-sphere predict runs/cosmo map1.fits map2.npy --output predictions.csv
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

#: Tasks of ``pyg-sphere train``; only those in AVAILABLE_TASKS run in this version.
TASKS = ('cosmology', 'shapes', 'climate')
AVAILABLE_TASKS = ('cosmology',)


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pyg-sphere', description='Graph-based spherical CNNs (DeepSphere) on PyG.')
    sub = parser.add_subparsers(dest='command', required=True)

    train = sub.add_parser('train', help='train a model on a built-in task',
                           description='Train a DeepSphere model. Data are simulated on '
                           'first use and cached.')
    train.add_argument('task', help=f'one of {", ".join(TASKS)}')
    train.add_argument('--out', default=None,
                       help='run directory for config, metrics, checkpoints and plots '
                            '(default: runs/TASK)')
    train.add_argument('--epochs', type=int, default=12, help='training epochs (default: 12)')
    train.add_argument('--batch-size', type=int, default=16, help='maps per batch (default: 16)')
    train.add_argument('--lr', type=float, default=2e-3, help='Adam learning rate (default: 2e-3)')
    train.add_argument('--sampling', default='healpix',
                       help='sampling of the maps; cosmology: healpix (default: healpix)')
    train.add_argument('--nside', type=int, default=None,
                       help='HEALPix resolution of the maps (cosmology default: 64)')
    train.add_argument('--k', type=int, default=8, help='neighbours per pixel (default: 8)')
    train.add_argument('--n-maps', type=int, default=None,
                       help='simulated maps per class (default: the dataset default)')
    train.add_argument('--patch-order', type=int, default=None,
                       help='HEALPix base-pixel patch order o (12 o^2 patches per map; '
                            '0 = full sky; default: the dataset default)')
    train.add_argument('--noise-std', type=float, default=None,
                       help='std of the white noise added to the maps '
                            '(default: the dataset default)')
    train.add_argument('--data-root', default=None,
                       help='cache of simulated data (default: ~/.cache/pyg_sphere/...)')
    train.add_argument('--workers', type=int, default=2,
                       help='processes for data generation (default: 2)')
    train.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    train.add_argument('--seed', type=int, default=0, help='seed of weights and batches')
    train.add_argument('--resume', action='store_true',
                       help='continue an interrupted run from OUT/last.pt')
    train.add_argument('--no-progress', action='store_true', help='no progress bars')

    evaluate = sub.add_parser('evaluate', help='score a run on its test split')
    evaluate.add_argument('run_dir', help='a run directory made by train')
    evaluate.add_argument('--device', default='cpu')

    predict = sub.add_parser('predict', help="apply a trained model to one's own maps")
    predict.add_argument('run_dir', help='a run directory made by train')
    predict.add_argument('inputs', nargs='+',
                         help='HEALPix maps: FITS (RING or NESTED, read with healpy) or .npy '
                              '(NESTED)')
    predict.add_argument('--output', default=None,
                         help='CSV file of predicted classes (default: RUN_DIR/predictions.csv)')
    predict.add_argument('--device', default='cpu')
    return parser


# -- cosmology -----------------------------------------------------------------

def _cosmology_datasets(cfg: Dict[str, Any], progress: bool) -> Dict[str, Any]:
    """Train / val / test splits; ``clean_train``: the training maps without
    noise (the training loop draws fresh noise for every batch)."""
    from .datasets import CosmologyConfig, CosmologyMaps
    config = CosmologyConfig(**cfg['data'])
    kwargs = dict(root=cfg['data_root'], config=config, patch_order=cfg['patch_order'],
                  workers=cfg['workers'], log=progress)
    sets = {split: CosmologyMaps(split=split, noise_std=cfg['noise_std'], **kwargs)
            for split in ('train', 'val', 'test')}
    sets['clean_train'] = CosmologyMaps(split='train', noise_std=0.0, **kwargs)
    return sets


def _cosmology_model(cfg: Dict[str, Any], patch_data: Any) -> torch.nn.Module:
    """The DeepSphere cosmology classifier, fed maps standardised by the
    training set's pixel statistics (noise included)."""
    from .nn import DeepSphere
    from .training import Standardize
    scale = cfg.get('input_scale', {'mean': 0.0, 'std': 1.0})
    return Standardize(DeepSphere.cosmology(data=patch_data, k=cfg['k']), **scale)


def _resolve_cosmology(args: argparse.Namespace) -> Dict[str, Any]:
    from .datasets import DEFAULT_NOISE_STD, DEFAULT_PATCH_ORDER, CosmologyConfig
    if args.sampling != 'healpix':
        raise CLIError(f"--sampling: the cosmology task uses HEALPix maps (got "
                       f"'{args.sampling}')")
    data: Dict[str, Any] = {}
    if args.nside is not None:
        data['nside'] = args.nside
    if args.n_maps is not None:
        data['n_maps'] = args.n_maps
    data['seed'] = args.seed
    try:
        CosmologyConfig(**data)
    except ValueError as err:
        raise CLIError(str(err)) from None
    order = DEFAULT_PATCH_ORDER if args.patch_order is None else \
        (None if args.patch_order == 0 else args.patch_order)
    return {'task': 'cosmology', 'data': data, 'patch_order': order,
            'noise_std': DEFAULT_NOISE_STD if args.noise_std is None else args.noise_std,
            'data_root': args.data_root, 'workers': args.workers, 'k': args.k}


def _train(args: argparse.Namespace) -> int:
    from .training import TrainConfig, atomic_write_text, evaluate, train_classifier
    if args.task not in TASKS:
        raise CLIError(f"unknown task '{args.task}' (expected one of {', '.join(TASKS)})")
    if args.task not in AVAILABLE_TASKS:
        raise CLIError(f"task '{args.task}' is not available in this version yet "
                       f"(available: {', '.join(AVAILABLE_TASKS)})")
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise CLIError(f"--device {args.device}: CUDA is not available on this machine")
    run_dir = Path(args.out or f'runs/{args.task}')
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                seed=args.seed, device=args.device)
    except ValueError as err:
        raise CLIError(str(err)) from None
    task_cfg = _resolve_cosmology(args)
    if task_cfg['noise_std'] < 0:
        raise CLIError(f"--noise-std: expected a value >= 0 (got {task_cfg['noise_std']})")
    config = {'task': args.task, 'train': train_cfg.__dict__, **task_cfg}
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / 'config.json'
    if args.resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        saved.pop('input_scale', None)
        if saved != json.loads(json.dumps(config)):
            raise CLIError(f'--resume: the options differ from those of the run in {run_dir}')
    elif not args.resume and (run_dir / 'last.pt').exists():
        raise CLIError(f'{run_dir} already holds a run: pass --resume to continue it or '
                       f'choose another --out')
    atomic_write_text(config_path, json.dumps(config, indent=2) + '\n')

    t0 = time.perf_counter()
    print(f'[1/3] data: simulating / loading convergence maps (cached) ...', flush=True)
    sets = _cosmology_datasets(config, progress)
    X_train, y_train = sets['clean_train'].tensors()
    X_val, y_val = sets['val'].tensors()
    X_test, y_test = sets['test'].tensors()
    t_data = time.perf_counter() - t0
    print(f'      {len(y_train)} train / {len(y_val)} val / {len(y_test)} test samples of '
          f'{X_train.size(1)} pixels ({t_data:.0f} s)', flush=True)
    noisy = sets['train'].tensors()[0]
    config['input_scale'] = {'mean': float(noisy.mean()), 'std': float(noisy.std())}
    del noisy
    atomic_write_text(config_path, json.dumps(config, indent=2) + '\n')
    torch.manual_seed(args.seed)
    model = _cosmology_model(config, sets['train'].patch_data(0))
    print(f'[2/3] training {getattr(model, "model", model).__class__.__name__} '
          f'({sum(p.numel() for p in model.parameters()):,} parameters)', flush=True)
    t1 = time.perf_counter()
    train_classifier(model, (X_train, y_train), (X_val, y_val), train_cfg, run_dir,
                     resume=args.resume, progress=progress, noise_std=config['noise_std'])
    t_train = time.perf_counter() - t1
    print('[3/3] test set and baselines ...', flush=True)
    best = torch.load(run_dir / 'best.pt', map_location=args.device, weights_only=False)
    model.load_state_dict(best['model'])
    test = evaluate(model, X_test, y_test, device=args.device)
    from .datasets import baseline_accuracies
    baselines = baseline_accuracies(sets['train'], sets['test'])
    summary = {'test': test, 'baselines': baselines, 'best_epoch': best['epoch'] + 1,
               'seconds': {'data': t_data, 'train': t_train,
                           'total': time.perf_counter() - t0}}
    atomic_write_text(run_dir / 'summary.json', json.dumps(summary, indent=2) + '\n')
    _plots(run_dir, test)
    print(_summary_text(summary, run_dir))
    return 0


def _summary_text(summary: Dict[str, Any], run_dir: Path) -> str:
    rows = [('DeepSphere (graph CNN)', summary['test']['accuracy']),
            ('power-spectrum baseline', summary['baselines']['power_spectrum']),
            ('histogram baseline', summary['baselines']['histogram'])]
    lines = ['', f'cosmology: test accuracy (same split), run in {run_dir}']
    lines += [f'  {name:<26} {acc * 100:6.1f} %' for name, acc in rows]
    s = summary['seconds']
    lines.append(f'  time: data {s["data"]:.0f} s, training {s["train"]:.0f} s, total '
                 f'{s["total"]:.0f} s; best epoch {summary["best_epoch"]}')
    return '\n'.join(lines)


def _plots(run_dir: Path, test: Dict[str, Any]) -> None:
    """Training curves and the confusion matrix, when matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('      (install matplotlib for plots: pip install pyg-sphere[plot])')
        return
    rows = [json.loads(line) for line in (run_dir / 'metrics.jsonl').read_text().splitlines()]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    epochs = [r['epoch'] for r in rows]
    ax[0].plot(epochs, [r['train_loss'] for r in rows], label='train')
    ax[0].plot(epochs, [r['val_loss'] for r in rows], label='val')
    ax[0].set(xlabel='epoch', ylabel='cross-entropy')
    ax[0].legend()
    ax[1].plot(epochs, [r['train_accuracy'] for r in rows], label='train')
    ax[1].plot(epochs, [r['val_accuracy'] for r in rows], label='val')
    ax[1].set(xlabel='epoch', ylabel='accuracy')
    ax[1].legend()
    cm = np.asarray(test['confusion'])
    ax[2].imshow(cm, cmap='Blues')
    for (i, j), v in np.ndenumerate(cm):
        ax[2].text(j, i, str(v), ha='center', va='center')
    ax[2].set(xlabel='predicted', ylabel='true', title='test confusion')
    fig.tight_layout()
    fig.savefig(run_dir / 'training.png', dpi=100)
    plt.close(fig)


# -- evaluate / predict --------------------------------------------------------

def _load_run(run_dir: Path, device: str) -> tuple:
    config_path = run_dir / 'config.json'
    if not config_path.exists() or not (run_dir / 'best.pt').exists():
        raise CLIError(f'{run_dir} is not a finished run directory (no config.json / best.pt)')
    config = json.loads(config_path.read_text())
    from .datasets import CosmologyConfig
    from .samplings import healpix
    data_cfg = CosmologyConfig(**config['data'])
    nside, order = data_cfg.nside, config['patch_order']
    patch = healpix(nside) if order is None else \
        healpix(nside, indexes=torch.arange((nside // order) ** 2))
    model = _cosmology_model(config, patch)
    state = torch.load(run_dir / 'best.pt', map_location=device, weights_only=False)
    model.load_state_dict(state['model'])
    return config, model.to(device), nside, order


def _evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate
    run_dir = Path(args.run_dir)
    config, model, _, _ = _load_run(run_dir, args.device)
    test = _cosmology_datasets(config, progress=False)['test']
    X, y = test.tensors()
    metrics = evaluate(model, X, y, device=args.device)
    print(json.dumps({'accuracy': metrics['accuracy'], 'loss': metrics['loss'],
                      'confusion': metrics['confusion']}))
    return 0


def read_map(path: Path, nside: int) -> np.ndarray:
    """A HEALPix map as a NESTED float64 array of 12 nside^2 pixels."""
    import healpy as hp
    if not path.exists():
        raise CLIError(f'{path}: no such file')
    if path.suffix.lower() == '.npy':
        values = np.load(path, allow_pickle=False)
        nest = True
    elif path.suffix.lower() in ('.fits', '.fit', '.fz') or path.name.endswith('.fits.gz'):
        try:
            values, header = hp.read_map(str(path), nest=None, h=True, dtype=np.float64)
        except Exception as err:  # healpy raises many kinds of errors
            raise CLIError(f'{path}: cannot read a HEALPix map ({err})') from None
        ordering = dict(header).get('ORDERING', 'RING').strip().upper()
        nest = ordering.startswith('NEST')
    else:
        raise CLIError(f'{path}: expected a .fits or .npy HEALPix map')
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != 12 * nside * nside:
        got = hp.npix2nside(values.size) if hp.isnpixok(values.size) else None
        raise CLIError(f'{path}: expected a map of nside {nside} ({12 * nside * nside} pixels), '
                       f'got {values.size} pixels' + (f' (nside {got})' if got else ''))
    bad = ~np.isfinite(values) | (values == hp.UNSEEN)
    if bad.any():
        raise CLIError(f'{path}: {int(bad.sum())} NaN / UNSEEN pixels (first at pixel '
                       f'{int(np.nonzero(bad)[0][0])}); fill or mask them first')
    if not nest:
        values = hp.reorder(values, r2n=True)
    return values


def _predict(args: argparse.Namespace) -> int:
    from .training import atomic_write_text, predict_proba
    run_dir = Path(args.run_dir)
    config, model, nside, order = _load_run(run_dir, args.device)
    maps = [read_map(Path(p), nside) for p in args.inputs]
    patches = 1 if order is None else 12 * order * order
    X = torch.from_numpy(np.stack(maps)).float().view(len(maps) * patches, -1, 1)
    prob = predict_proba(model, X, device=args.device).view(len(maps), patches, -1)
    out = Path(args.output) if args.output else run_dir / 'predictions.csv'
    rows: List[List[Any]] = []
    for path, p in zip(args.inputs, prob):
        mean = p.mean(0)
        rows.append([path, 'all', int(mean.argmax())] + [f'{v:.6f}' for v in mean.tolist()])
        if patches > 1:
            rows += [[path, i, int(q.argmax())] + [f'{v:.6f}' for v in q.tolist()]
                     for i, q in enumerate(p)]
    import io
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(['file', 'patch', 'class'] + [f'prob_{c}' for c in range(prob.size(-1))])
    writer.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    for path, p in zip(args.inputs, prob):
        print(f'{path}: class {int(p.mean(0).argmax())} '
              f'(p = {", ".join(f"{v:.3f}" for v in p.mean(0).tolist())})')
    print(f'predictions written to {out}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {'train': _train, 'evaluate': _evaluate, 'predict': _predict}[args.command](args)
    except CLIError as err:
        print(f'pyg-sphere: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
