"""The PyTorch-op path of the fused batch norm + ReLU + max pooling of :mod:`._fused`.

Used on GPUs, under ``torch.compile``, for half precision and wherever the
compiled kernels of :mod:`._fused_kernels` do not apply: a few ops per child
slot and chunk of maps, the slots of the maxima tracked as floats with
arithmetic only (PyTorch's CPU kernels for boolean masks are several times
slower than float arithmetic).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _max_slot(xv: Tensor, a: Tensor, b: Tensor, best: Tensor, slot: Optional[Tensor]) -> None:
    """``best`` = max over the slots of ``a * xv + b`` (``xv`` [m, C, g, F]), and in
    ``slot`` the slot of the maximum (the lowest one on ties).

    The slot is tracked as floats with arithmetic only (PyTorch's CPU kernels
    for boolean masks are several times slower than float arithmetic).
    """
    torch.addcmul(b, xv[:, :, 0], a, out=best)
    if slot is not None:
        slot.zero_()
    u = torch.empty_like(best)
    step = torch.empty_like(best) if slot is not None else None
    for j in range(1, xv.shape[2]):
        torch.addcmul(b, xv[:, :, j], a, out=u)
        if slot is not None:
            # 1 where u > best (a new maximum), else 0: slot += step * (j - slot)
            torch.sub(u, best, out=step).sign_().clamp_(min=0)
            slot.addcmul_(step, slot.neg().add_(j))
        torch.maximum(best, u, out=best)


def _is_slot(slot: Tensor, j: int) -> Tensor:
    """1.0 where ``slot == j`` (slots hold small integers), 0.0 elsewhere."""
    return torch.sub(slot, j).abs_().neg_().add_(1).clamp_(min=0)


def _torch_backward(x: Tensor, y: Tensor, slot: Tensor, x_sel: Optional[Tensor], g: int):
    """The two chunk passes of the backward pass, with PyTorch ops (slots as floats)."""
    B, n, F = x.shape
    xv = x.unflatten(1, (n // g, g))

    def sums(out: Tensor, gy: Tensor, ag: Tensor, b0: int, b1: int, mean: Tensor, rstd: Tensor,
             a: Tensor) -> None:
        gp = torch.mul(gy[b0:b1], torch.sign(y[b0:b1]), out=ag[b0:b1])
        sl, xc = slot[b0:b1], xv[b0:b1]
        xs = _is_slot(sl, 0).mul_(xc[:, :, 0])
        for j in range(1, g):
            xs.addcmul_(_is_slot(sl, j), xc[:, :, j])
        xhat = xs.sub_(mean).mul_(rstd)
        out[0] = gp.sum((0, 1))
        out[1] = xhat.mul_(gp).sum((0, 1))
        gp.mul_(a)

    def dx(grad_x: Tensor, ag: Tensor, b0: int, b1: int, c0: Optional[Tensor],
           c1: Optional[Tensor]) -> None:
        if c0 is not None:
            torch.addcmul(c0, x[b0:b1], c1, out=grad_x[b0:b1])
        else:
            grad_x[b0:b1].zero_()
        gv = grad_x[b0:b1].unflatten(1, (n // g, g))
        sl, agc = slot[b0:b1], ag[b0:b1]
        for j in range(g):
            gv[:, :, j].addcmul_(_is_slot(sl, j), agc)

    return sums, dx
