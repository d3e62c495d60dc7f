"""Data-parallel training with ``torch.distributed`` (``torchrun``).

``torchrun --nproc_per_node=N -m pyg_sphere train ...`` starts N processes
with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment;
:func:`init_from_env` joins them into one process group (gloo on CPU, nccl on
GPU). Every process holds the whole (deterministically generated) dataset and
takes every N-th sample of each global batch, so a run on N processes makes
the same optimisation steps as one process with the same ``batch_size``:
the loss is normalised by the global batch, gradients are summed by
:class:`~torch.nn.parallel.DistributedDataParallel`, and batch norm uses
statistics of the global batch (:class:`GlobalBatchNorm`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = DistContext()


def init_from_env(device: str = 'cpu') -> DistContext:
    """Join the process group described by torchrun's environment variables.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) this is a single-process
    run and nothing is initialised. The backend is nccl for CUDA devices and
    gloo otherwise; on CUDA each process uses GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return SINGLE
    rank = int(os.environ['RANK'])
    local = int(os.environ.get('LOCAL_RANK', rank))
    if not dist.is_initialized():
        backend = 'nccl' if device.startswith('cuda') else 'gloo'
        if backend == 'nccl':
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=local)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (a no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def gather_rows(local: Tensor, counts: list, ctx: DistContext) -> Tensor:
    """Concatenate the per-rank tensors ``local`` (``counts[r]`` rows on rank
    ``r``) along dimension 0, on every rank, in rank order."""
    if not ctx.enabled:
        return local
    size = max(counts)
    pad = local.new_zeros((size - local.size(0),) + tuple(local.shape[1:]))
    buf = torch.cat([local, pad]) if size > local.size(0) else local
    parts = [torch.empty_like(buf) for _ in range(ctx.world_size)]
    dist.all_gather(parts, buf.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


class GlobalBatchNorm(torch.nn.BatchNorm1d):
    r"""Batch norm over the global batch of a data-parallel run.

    In training mode inside an initialised process group, the per-channel sums
    :math:`\sum x` and :math:`\sum x^2` and the counts are summed over all
    processes (in float64, through the autograd-aware
    :func:`torch.distributed.nn.functional.all_reduce`), so the normalisation,
    its gradient and the running statistics equal those of one process seeing
    the whole batch. Elsewhere it is :class:`~torch.nn.BatchNorm1d`. Unlike
    :class:`~torch.nn.SyncBatchNorm` it runs on CPU (gloo) as well as GPU.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        import warnings
        from torch.distributed.nn.functional import all_reduce
        dims = [0] + list(range(2, x.dim()))
        count = x.numel() // x.size(1)
        stats = torch.cat([x.sum(dims, dtype=torch.float64),
                           x.square().sum(dims, dtype=torch.float64),
                           torch.tensor([float(count)], dtype=torch.float64, device=x.device)])
        with warnings.catch_warnings():  # deprecated in favour of a private module
            warnings.simplefilter('ignore', FutureWarning)
            stats = all_reduce(stats)
        c = self.num_features
        total = stats[2 * c]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                n = float(total)
                unbiased = var * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - factor).add_(factor * mean.to(x.dtype))
                self.running_var.mul_(1 - factor).add_(factor * unbiased.to(x.dtype))
        shape = [1, c] + [1] * (x.dim() - 2)
        # only the sums need float64; normalise in the input's dtype
        inv_std = torch.rsqrt(var + self.eps).to(x.dtype)
        out = (x - mean.to(x.dtype).view(shape)) * inv_std.view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every :class:`~torch.nn.BatchNorm1d` of ``module`` (in place)
    by a :class:`GlobalBatchNorm` with the same parameters and statistics."""
    for name, child in list(module.named_children()):
        if type(child) is torch.nn.BatchNorm1d:
            new = GlobalBatchNorm(child.num_features, eps=child.eps, momentum=child.momentum,
                                  affine=child.affine,
                                  track_running_stats=child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(next(child.buffers(), torch.empty(0)).device)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def all_reduce_sum(value: float, ctx: DistContext, device: Optional[torch.device] = None) -> float:
    """Sum a Python number over all processes."""
    if not ctx.enabled:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t)
