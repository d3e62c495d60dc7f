"""A run of a built-in task, callable from Python: :func:`train`,
:func:`evaluate`, :func:`predict` (what ``pyg-sphere`` does)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ._base import Task, TaskError
from .config import InputScale, RunConfig

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


def _task(config: RunConfig) -> Task:
    from . import get_task
    return get_task(config.task)


def check_device(device: str) -> None:
    """A device name this machine has (TaskError naming --device otherwise)."""
    if device != 'cpu' and device.split(':')[0] != 'cuda':
        raise TaskError(f"--device: expected 'cpu', 'cuda' or 'cuda:N' (got '{device}')")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise TaskError(f"--device {device}: CUDA is not available on this machine")


def _set_scale(model: torch.nn.Module, scale: InputScale) -> None:
    """Fill the :class:`~pyg_sphere.training.Standardize` buffers."""
    model.mean = torch.as_tensor(scale.mean, dtype=torch.float32).clone()
    model.std = torch.as_tensor(scale.std, dtype=torch.float32).clone()


def _write_json(path: Path, values: Dict[str, Any]) -> None:
    from ..training.loop import json_safe
    from ..utils import atomic_write_text
    atomic_write_text(path, json.dumps(json_safe(values), indent=2) + '\n')


def writable_folder(folder: Path, option: str) -> None:
    """Check that ``folder`` can be made (if missing) and written in, without
    making it, or raise a :class:`TaskError` naming ``option``."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TaskError(f'{option}: {existing} is a file, not a folder'
                        + ('' if existing == Path(folder).absolute() else f' (needed for {folder})'))
    probe = existing / f'.write-probe-{os.getpid()}'
    try:
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as err:
        raise TaskError(f'{option}: cannot write in {existing} ({err.strerror or err})') from None


def _load_checkpoint(path: Path, device: str = 'cpu') -> Dict[str, Any]:
    """A checkpoint of this package, or a :class:`TaskError` naming the file."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # torch raises many kinds on a damaged file
        raise TaskError(f'{path}: not a readable checkpoint ({type(err).__name__}: '
                        f'{str(err).splitlines()[0][:160] if str(err) else "empty"}); delete '
                        f'it to start the run again') from None
    if not isinstance(state, dict) or 'model' not in state:
        raise TaskError(f'{path}: not a checkpoint of pyg_sphere (no model weights)')
    return state


def _check_run_dir(config: RunConfig, run_dir: Path, resume: bool) -> Optional[Dict[str, Any]]:
    """Refuse to overwrite a run, or to resume one with other options; the
    summary of a finished run that ``resume`` would only repeat."""
    config_path = run_dir / 'config.json'
    writable_folder(run_dir, '--out')
    if config.data_root is not None:
        writable_folder(Path(config.data_root), '--data-root')
    if resume and config_path.exists():
        saved = RunConfig.load(config_path)
        if saved.task != config.task:
            raise TaskError(f'--resume: {run_dir} holds a run of the {saved.task} task, not '
                            f'{config.task}')
        changed = config.differences(saved)
        if changed:
            raise TaskError(f'--resume: the options differ from those of the run in {run_dir}: '
                            f'{"; ".join(changed)}')
        summary_path = run_dir / 'summary.json'
        last = run_dir / 'last.pt'
        if last.exists():
            state = _load_checkpoint(last)
            if state.get('epoch', -1) + 1 >= config.train.epochs and summary_path.exists():
                try:
                    return json.loads(summary_path.read_text())
                except ValueError:
                    pass  # a damaged summary: score the finished run again
    elif not resume and (run_dir / 'last.pt').exists():
        raise TaskError(f'{run_dir} already holds a run: pass --resume to continue it '
                        f'or choose another --out')
    return None


def build_model(task: Task, config: RunConfig) -> Tuple[Any, torch.nn.Module]:
    """``(graph, model)`` of a run (seeded by ``config.train.seed``), or a
    :class:`TaskError` saying why the options give no model."""
    from ..samplings import sampling_positions
    n = sampling_positions(task.sampling(config)).size(0)
    if config.k >= n:
        raise TaskError(f'--k: expected fewer neighbours than the {n} pixels of the sampling '
                        f'(got {config.k})')
    try:
        graph = task.graph(config)
        torch.manual_seed(config.train.seed)
        model = task.model(config, graph)
    except ValueError as err:
        if isinstance(err, TaskError):
            raise
        raise TaskError(f'the {task.name} network cannot be built with these options: '
                        f'{str(err).splitlines()[0]}') from None
    return graph, model


def train(config: RunConfig, run_dir: Union[str, Path], resume: bool = False,
          progress: bool = False, log: Log = _quiet) -> Dict[str, Any]:
    """Train the model of ``config.task`` and score it beside the task's
    baselines on the same test split; returns the summary (also written to
    ``run_dir/summary.json``, next to ``config.json``, ``metrics.jsonl``,
    ``best.pt``, ``last.pt`` and the plots).

    Everything that can be checked is checked before any data is made (the
    model, and so its graph pyramid, is built first, once). Under
    ``torchrun`` every process calls this; rank 0 writes. A finished run
    passed with ``resume=True`` is not trained or scored again: its summary
    is returned as it is.
    """
    from ..training import evaluate, init_from_env, shutdown, train_model
    run_dir = Path(run_dir)
    task = _task(config)
    check_device(config.train.device)
    ctx = init_from_env(config.train.device)
    say = log if ctx.is_main else _quiet
    try:
        finished = _check_run_dir(config, run_dir, resume)
        if finished is not None:
            say(f'{run_dir} holds a finished run ({config.train.epochs} epochs); its summary '
                f'is shown unchanged')
            return dict(finished, resumed_finished_run=True)
        config = config.replace(classes=tuple(task.classes(config)))
        t0 = time.perf_counter()
        graph, model = build_model(task, config)  # a bad option fails here, before any data
        ctx.barrier()
        say(f'[1/3] data: {config.task} (simulated on first use, then cached) ...')
        if ctx.is_main:  # rank 0 fills the cache; the others then read it
            data = task.load(config, progress and ctx.is_main)
        ctx.barrier()
        if not ctx.is_main:
            data = task.load(config, False)
        t_data = time.perf_counter() - t0
        X_train = data.train[0]
        say(f'      {len(data.train[1])} train / {len(data.val[1])} val / '
            f'{len(data.test[1])} test samples of {X_train.size(1)} pixels x '
            f'{X_train.size(2)} channels ({t_data:.0f} s)')
        config = config.replace(input_scale=InputScale(*map(tuple, task.input_scale(data))))
        _set_scale(model, config.input_scale)
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            config.save(run_dir / 'config.json')
        n_params = sum(p.numel() for p in model.parameters())
        say(f'[2/3] training {getattr(model, "model", model).__class__.__name__} '
            f'({n_params:,} parameters) on {config.train.device}' +
            (f', {ctx.world_size} processes' if ctx.enabled else ''))
        t1 = time.perf_counter()
        objective = task.objective(config, data)
        train_model(model, data.train, data.val, config.train, run_dir, objective,
                    resume=resume, progress=progress, noise_std=data.noise_std, log=say,
                    ctx=ctx, augment=task.augment(config, data))
        t_train = time.perf_counter() - t1
    finally:
        shutdown(ctx)
    if not ctx.is_main:
        return {}
    say('[3/3] test set, baselines and plots ...')
    device = config.train.device
    best = _load_checkpoint(run_dir / 'best.pt', device)
    model.load_state_dict(best['model'])
    model.to(device)
    tests = {'test': data.test, **data.extra_tests}
    results = {name: evaluate(model, *xy, device=device, objective=objective)
               for name, xy in tests.items()}
    summary: Dict[str, Any] = {'task': config.task, **results,
                               'baselines': task.baselines(config, data, graph, say),
                               **task.summary_extras(config, data),
                               'best_epoch': best['epoch'] + 1, 'parameters': n_params,
                               'device': device, 'processes': ctx.world_size}
    summary['seconds'] = {'data': t_data, 'train': t_train, 'total': time.perf_counter() - t0}
    _write_json(run_dir / 'summary.json', summary)
    summary['plots'] = _plots(task, run_dir, config, model, data, summary, say)
    summary['seconds']['total'] = time.perf_counter() - t0
    _write_json(run_dir / 'summary.json', summary)
    return summary


def _plots(task: Task, run_dir: Path, config: RunConfig, model: torch.nn.Module, data: Any,
           summary: Dict[str, Any], log: Log) -> List[str]:
    """Training curves, the confusion matrix and the task's map plots, when
    matplotlib is installed."""
    try:
        from ..plotting import plot_confusion, plot_training_curves
        rows = [json.loads(line) for line in
                (run_dir / 'metrics.jsonl').read_text().splitlines()]
        plot_training_curves(rows, run_dir / 'training.png')
        # per true class: the background of segmentation would swamp raw counts
        plot_confusion(summary['test']['confusion'], data.class_names, run_dir / 'confusion.png',
                       normalize=True, title='confusion (fraction of each true class)')
        return ['training.png', 'confusion.png'] + task.plots(
            run_dir, config, model, data, summary, config.train.device)
    except ImportError:
        log('      (install matplotlib for plots: pip install pyg-sphere[plot])')
        return []


def load_run(run_dir: Union[str, Path], device: str = 'cpu'
             ) -> Tuple[Task, RunConfig, torch.nn.Module]:
    """The task, configuration and best model of a finished run."""
    run_dir = Path(run_dir)
    check_device(device)
    config_path, best_path = run_dir / 'config.json', run_dir / 'best.pt'
    if not config_path.exists() or not best_path.exists():
        raise TaskError(f'{run_dir} is not a finished run directory (no config.json / best.pt)')
    config = RunConfig.load(config_path)
    task = _task(config)
    _, model = build_model(task, config)
    state = _load_checkpoint(best_path, device)
    try:
        model.load_state_dict(state['model'])
    except RuntimeError as err:  # another architecture, e.g. an edited resolution
        raise TaskError(f'{best_path}: the weights do not fit the model of {config_path} '
                        f'({str(err).splitlines()[0][:160]}); was config.json edited?') from None
    return task, config, model.to(device)


def evaluate(run_dir: Union[str, Path], device: str = 'cpu') -> Dict[str, Dict[str, Any]]:
    """The metrics of a finished run's best model on each of its test sets."""
    from ..training import evaluate as evaluate_model
    task, config, model = load_run(run_dir, device)
    data = task.load(config, progress=False)
    objective = task.objective(config, data)
    return {name: evaluate_model(model, *xy, device=device, objective=objective)
            for name, xy in {'test': data.test, **data.extra_tests}.items()}


def predict(run_dir: Union[str, Path], inputs: Sequence[str], output: Optional[str] = None,
            device: str = 'cpu', masked: str = 'error') -> Path:
    """Apply a finished run's best model to the user's files (see the task's
    ``predict``); returns the path of the output file."""
    run_dir = Path(run_dir)
    if output is not None:
        out = Path(output)
        if out.is_dir():
            raise TaskError(f'--output: {out} is a directory; expected a file name')
        if not out.parent.is_dir():
            raise TaskError(f'--output: no such directory: {out.parent}')
        writable_folder(out.parent, '--output')
    elif run_dir.is_dir():
        writable_folder(run_dir, 'RUN_DIR (where predictions go without --output)')
    task, config, model = load_run(run_dir, device)
    return task.predict(run_dir, config, model, inputs, output, device, masked=masked)
