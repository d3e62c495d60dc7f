"""A small, resumable training loop for dense batches of spherical maps.

Everything a run writes goes to its run directory: ``config.json``,
``metrics.jsonl`` (one JSON line per epoch), ``last.pt`` and ``best.pt``.
Files are written atomically (temporary file + ``os.replace``), so an
interrupted run never leaves a half-written checkpoint. Batches are drawn in an
order seeded by ``(seed, epoch)``, so a resumed run ends with the same weights
as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ._validation import check_int, check_positive_float


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Adam with a per-step exponential decay, as in
    DeepSphere's cosmology experiments)."""
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    lr_decay: float = 0.999
    weight_decay: float = 0.0
    seed: int = 0
    device: str = 'cpu'

    def __post_init__(self) -> None:
        check_int('epochs', self.epochs, minimum=1)
        check_int('batch_size', self.batch_size, minimum=1)
        check_positive_float('lr', self.lr)
        check_positive_float('lr_decay', self.lr_decay)
        if self.weight_decay < 0:
            raise ValueError(f"Expected 'weight_decay' >= 0 (got {self.weight_decay})")


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    """Write through a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file."""
    _atomic_write(path, lambda f: torch.save(obj, f), 'wb')


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file that never exists half-written."""
    _atomic_write(path, lambda f: f.write(text), 'w')


@torch.no_grad()
def predict_proba(model: torch.nn.Module, X: torch.Tensor, batch_size: int = 32,
                  device: str = 'cpu') -> torch.Tensor:
    """Class probabilities ``[N, C]`` of dense maps ``X [N, n, F]``."""
    model.eval()
    out = []
    for start in range(0, X.size(0), batch_size):
        xb = X[start:start + batch_size].to(device)
        out.append(torch.softmax(model(xb).float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 32,
             device: str = 'cpu') -> Dict[str, Any]:
    """Accuracy, mean cross-entropy and confusion matrix on ``(X, y)``."""
    prob = predict_proba(model, X, batch_size, device)
    num_classes = prob.size(1)
    loss = F.nll_loss(torch.log(prob.clamp_min(1e-12)), y).item()
    pred = prob.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    return {'accuracy': float((pred == y).float().mean()), 'loss': loss,
            'confusion': confusion.tolist()}


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen)


class Standardize(torch.nn.Module):
    """``model((x - mean) / std)``; mean and std are saved with the weights."""
    def __init__(self, model: torch.nn.Module, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(float(mean)))
        self.register_buffer('std', torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def train_classifier(model: torch.nn.Module, train: Tuple[torch.Tensor, torch.Tensor],
                     val: Tuple[torch.Tensor, torch.Tensor], config: TrainConfig,
                     run_dir: Path, resume: bool = False,
                     log: Callable[[str], None] = print,
                     progress: bool = True, noise_std: float = 0.0) -> Dict[str, Any]:
    """Train ``model`` on dense maps and keep the best checkpoint by val accuracy.

    Args:
        model: maps ``[B, n, F]`` to logits ``[B, C]``.
        train, val: ``(X [N, n, F], y [N])`` tensors.
        config: optimisation settings.
        run_dir: where checkpoints and metrics go (created).
        resume: continue from ``run_dir/last.pt`` if it exists.
        noise_std: std of white noise drawn afresh for every training batch
            (seeded by ``(seed, epoch)``); ``train`` then holds clean maps.

    Returns:
        The last epoch's metrics.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    start_epoch, best = 0, -1.0
    last_path, best_path, metrics_path = (run_dir / 'last.pt', run_dir / 'best.pt',
                                          run_dir / 'metrics.jsonl')
    if resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        sched.load_state_dict(state['scheduler'])
        start_epoch, best = state['epoch'] + 1, state['best']
        torch.set_rng_state(state['rng'])
        log(f'resuming after epoch {state["epoch"] + 1} (best val accuracy {best:.3f})')
    # keep only the metric lines of the epochs the checkpoint has seen
    lines = metrics_path.read_text().splitlines() if metrics_path.exists() else []
    atomic_write_text(metrics_path, ''.join(line + '\n' for line in lines[:start_epoch]))

    X, y = train
    n = X.size(0)
    last: Dict[str, Any] = {}
    for epoch in range(start_epoch, config.epochs):
        model.train()
        t0 = time.perf_counter()
        order = _epoch_order(n, config.seed, epoch)
        noise_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 7_919)
        total, correct, seen = 0.0, 0, 0
        batches = range(0, n, config.batch_size)
        bar = _bar(len(batches), f'epoch {epoch + 1}/{config.epochs}', progress)
        for start in batches:
            idx = order[start:start + config.batch_size]
            xb = X[idx]
            if noise_std > 0:
                xb = xb + noise_std * torch.randn(xb.shape, generator=noise_gen, dtype=xb.dtype)
            xb, yb = xb.to(device), y[idx].to(device)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f'{total / seen:.3f}', acc=f'{correct / seen:.3f}')
        if bar is not None:
            bar.close()
        val_metrics = evaluate(model, *val, batch_size=config.batch_size, device=device)
        last = {'epoch': epoch + 1, 'train_loss': total / n, 'train_accuracy': correct / n,
                'val_loss': val_metrics['loss'], 'val_accuracy': val_metrics['accuracy'],
                'lr': sched.get_last_lr()[0], 'seconds': time.perf_counter() - t0}
        improved = last['val_accuracy'] > best
        if improved:
            best = last['val_accuracy']
            atomic_save({'model': model.state_dict(), 'epoch': epoch, 'metrics': last},
                        best_path)
        atomic_save({'model': model.state_dict(), 'optimizer': opt.state_dict(),
                     'scheduler': sched.state_dict(), 'epoch': epoch, 'best': best,
                     'rng': torch.get_rng_state()}, last_path)
        with open(metrics_path, 'a') as f:
            f.write(json.dumps(last) + '\n')
        log(f'epoch {epoch + 1:3d}: train loss {last["train_loss"]:.4f} acc '
            f'{last["train_accuracy"]:.3f} | val loss {last["val_loss"]:.4f} acc '
            f'{last["val_accuracy"]:.3f}{" *" if improved else ""} '
            f'({last["seconds"]:.1f} s)')
    return last


def _bar(total: int, desc: str, enabled: bool) -> Optional[Any]:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


def config_dict(config: TrainConfig) -> Dict[str, Any]:
    return asdict(config)
