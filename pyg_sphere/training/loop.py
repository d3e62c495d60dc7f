"""A small, resumable, optionally data-parallel training loop for dense
batches of spherical maps.

Everything a run writes goes to its run directory: ``metrics.jsonl`` (one
JSON line per epoch), ``last.pt`` and ``best.pt``. Files are written
atomically (temporary file + ``os.replace``) and, in a distributed run, by
rank 0 only, so an interrupted run never leaves a half-written checkpoint.
Batches are drawn in an order seeded by ``(seed, epoch)``, so a resumed run
ends with the same weights as an uninterrupted one, and a run on N processes
makes the same steps as a run on one.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from ..nn import coarse_threads
from ..utils import atomic_save, atomic_write_text, progress as _progress
from .config import TrainConfig
from .distributed import SINGLE, DistContext, all_reduce_sum, convert_batchnorm, gather_rows
from .objectives import Classification, Segmentation

Objective = Union[Classification, Segmentation]


class Standardize(torch.nn.Module):
    """``model((x - mean) / std)``; ``mean`` and ``std`` (scalars or one value
    per channel) are saved with the weights."""
    def __init__(self, model: torch.nn.Module, mean: Any = 0.0, std: Any = 1.0) -> None:
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer('std', torch.as_tensor(std, dtype=torch.float32).clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN / infinite float replaced by :obj:`None`, so
    that ``json.dumps`` writes valid JSON (``null``, not ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
        else model


@torch.no_grad()
def predict_proba(model: torch.nn.Module, X: Tensor, batch_size: int = 32,
                  device: Union[str, torch.device] = 'cpu',
                  ctx: DistContext = SINGLE) -> Tensor:
    """Class probabilities of dense maps ``X [N, n, F]``: ``[N, C]`` for a
    classifier, ``[N, n, C]`` for a segmentation model. In a distributed run
    every process predicts every ``world_size``-th sample and all processes
    receive all probabilities."""
    net = _unwrap(model)
    net.eval()
    idx = torch.arange(ctx.rank, X.size(0), ctx.world_size)
    out = []
    for start in range(0, idx.numel(), batch_size):
        xb = X[idx[start:start + batch_size]].to(device)
        out.append(torch.softmax(net(xb).float(), dim=-1).cpu())
    if out:
        local = torch.cat(out)
    else:  # this rank has no samples: learn the output shape from one map
        local = torch.softmax(net(X[:1].to(device)).float(), dim=-1).cpu()[:0]
    if not ctx.enabled:
        return local
    counts = [len(range(r, X.size(0), ctx.world_size)) for r in range(ctx.world_size)]
    gathered = gather_rows(local.to(device), counts, ctx).cpu()
    order = torch.cat([torch.arange(r, X.size(0), ctx.world_size)
                       for r in range(ctx.world_size)])
    prob = torch.empty_like(gathered)
    prob[order] = gathered
    return prob


def evaluate(model: torch.nn.Module, X: Tensor, y: Tensor, batch_size: int = 32,
             device: Union[str, torch.device] = 'cpu', objective: Optional[Objective] = None,
             ctx: DistContext = SINGLE) -> Dict[str, Any]:
    """The objective's metrics on ``(X, y)`` (accuracy, loss and confusion
    matrix for a classifier)."""
    objective = objective or Classification()
    prob = predict_proba(model, X, batch_size, device, ctx)
    return objective.metrics(prob, y)


def train_model(model: torch.nn.Module, train: Tuple[Tensor, Tensor],
                val: Tuple[Tensor, Tensor], config: TrainConfig, run_dir: Path,
                objective: Optional[Objective] = None, resume: bool = False,
                log: Callable[[str], None] = print, progress: bool = True,
                noise_std: float = 0.0, ctx: DistContext = SINGLE,
                augment: Optional[Callable[[Tensor, torch.Generator], Tensor]] = None
                ) -> Dict[str, Any]:
    """Train ``model`` on dense maps and keep the best checkpoint by the
    objective's validation score.

    Args:
        model: maps ``[B, n, F]`` to logits (``[B, C]`` or ``[B, n, C]``).
        train, val: ``(X [N, n, F], y)`` tensors, on the CPU.
        config: optimisation settings; ``batch_size`` is the global batch.
        run_dir: where checkpoints and metrics go (created).
        objective: :class:`Classification` (default) or :class:`Segmentation`.
        resume: continue from ``run_dir/last.pt`` if it exists.
        noise_std: std of white noise drawn afresh for every training batch
            (seeded by ``(seed, epoch)``, drawn for the whole global batch);
            ``train`` then holds clean maps.
        augment: ``augment(x, generator) -> x`` applied to every training
            batch ``x`` [B, n, F] before the noise (e.g.
            :class:`~pyg_sphere.training.PatchSymmetries`), with a generator
            seeded by ``(seed, epoch)`` and drawn for the whole global batch,
            so that runs stay deterministic and resumable.
        ctx: the distributed context (:func:`init_from_env`); every process
            must call this with the same data and arguments.

    Returns:
        The last epoch's metrics.
    """
    objective = objective or Classification()
    if config.batch_size < ctx.world_size:
        raise ValueError(f"Expected 'batch_size' >= the number of processes "
                         f"({ctx.world_size}), so that every process gets samples (got "
                         f"{config.batch_size})")
    run_dir = Path(run_dir)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()
    device = torch.device(config.device)
    if device.type == 'cuda' and device.index is None and ctx.enabled:
        device = torch.device('cuda', ctx.local_rank)
    torch.manual_seed(config.seed)
    model.to(device)
    net = model
    if ctx.enabled:
        convert_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    start_epoch, best = 0, -float('inf')
    last_path, best_path, metrics_path = (run_dir / 'last.pt', run_dir / 'best.pt',
                                          run_dir / 'metrics.jsonl')
    if resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        sched.load_state_dict(state['scheduler'])
        start_epoch, best = state['epoch'] + 1, state['best']
        torch.set_rng_state(state['rng'])
        if ctx.is_main:
            log(f'resuming after epoch {state["epoch"] + 1} (best val '
                f'{objective.score_name} {best:.3f})')
    if ctx.is_main:  # keep only the metric lines of the epochs the checkpoint has seen
        lines = metrics_path.read_text().splitlines() if metrics_path.exists() else []
        atomic_write_text(metrics_path, ''.join(line + '\n' for line in lines[:start_epoch]))

    X, y = train
    n = X.size(0)
    world, rank = ctx.world_size, ctx.rank
    short = n % config.batch_size
    if 0 < short < world and ctx.is_main:
        log(f'note: the last batch of each epoch ({short} samples) is smaller than the number '
            f'of processes ({world}) and is skipped, so this run makes one step per epoch '
            f'fewer than a single-process run')
    last: Dict[str, Any] = {}
    # on CPU, PyTorch's small ops single-threaded, the kernels on all threads
    step_threads = coarse_threads if device.type == 'cpu' else contextlib.nullcontext
    for epoch in range(start_epoch, config.epochs):
        net.train()
        t0 = time.perf_counter()
        order = _epoch_order(n, config.seed, epoch)
        noise_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 7_919)
        augment_gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 15_485_863)
        total, correct, seen = 0.0, 0.0, 0
        batches = range(0, n, config.batch_size)
        bar = _progress(len(batches), f'epoch {epoch + 1}/{config.epochs}',
                        progress and ctx.is_main, leave=False)
        for start in batches:
            idx = order[start:start + config.batch_size]
            if idx.numel() < world:  # too few samples to give every process one
                continue
            xb = X[idx]
            if augment is not None:
                xb = augment(xb, augment_gen)
            if noise_std > 0:
                xb = xb + noise_std * torch.randn(xb.shape, generator=noise_gen, dtype=xb.dtype)
            norm = objective.normalizer(y[idx])
            if norm <= 0:  # only zero-weight labels: nothing to learn (same on every rank)
                continue
            mine = slice(rank, None, world)
            xb, yb = xb[mine].to(device), y[idx][mine].to(device)
            with step_threads():
                logits = net(xb)
                loss_sum = objective.loss_sum(logits, yb)
                # DDP averages gradients over the processes: scale by world size so
                # that the sum over processes is the global-batch mean
                loss = loss_sum * (world / norm)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
            total += float(loss_sum.detach()) / norm * len(idx)
            correct += objective.batch_stats(logits.detach(), yb)
            seen += yb.size(0)
            bar.update(1)
            bar.set_postfix(loss=f'{total / max(seen, 1):.3f}')
        bar.close()
        total = all_reduce_sum(total, ctx, device if device.type == 'cuda' else None)
        correct = all_reduce_sum(correct, ctx, device if device.type == 'cuda' else None)
        seen = int(all_reduce_sum(seen, ctx, device if device.type == 'cuda' else None))
        val_metrics = evaluate(net, *val, batch_size=max(config.batch_size // world, 1),
                               device=device, objective=objective, ctx=ctx)
        last = {'epoch': epoch + 1, 'train_loss': total / max(seen, 1),
                'train_accuracy': correct / max(seen, 1)}
        last.update({f'val_{k}': v for k, v in val_metrics.items()
                     if isinstance(v, (int, float))})
        last.update({'lr': sched.get_last_lr()[0], 'seconds': time.perf_counter() - t0})
        score = val_metrics['score']
        # a NaN score (e.g. no event pixel in the validation set) never
        # improves, but the first epoch always leaves a best checkpoint
        improved = (math.isfinite(score) and score > best) or not (
            best_path.exists() or epoch > start_epoch)
        if improved and math.isfinite(score):
            best = score
        if ctx.is_main:
            if improved:
                atomic_save({'model': model.state_dict(), 'epoch': epoch, 'metrics': last},
                            best_path)
            atomic_save({'model': model.state_dict(), 'optimizer': opt.state_dict(),
                         'scheduler': sched.state_dict(), 'epoch': epoch, 'best': best,
                         'rng': torch.get_rng_state()}, last_path)
            with open(metrics_path, 'a') as f:
                f.write(json.dumps(json_safe(last)) + '\n')
            name = objective.score_name
            log(f'epoch {epoch + 1:3d}: train loss {last["train_loss"]:.4f} acc '
                f'{last["train_accuracy"]:.3f} | val loss {last["val_loss"]:.4f} {name} '
                f'{val_metrics["score"]:.3f}{" *" if improved else ""} '
                f'({last["seconds"]:.1f} s)')
        ctx.barrier()
    return last
