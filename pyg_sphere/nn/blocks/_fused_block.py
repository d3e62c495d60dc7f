r"""A whole DeepSphere block on CPUs: Chebyshev conv, batch norm, ReLU and max pooling.

:mod:`._fused` fuses what follows the conv; here the conv's blocks of maps
(see :mod:`pyg_sphere.nn.conv._cheb_kernel`) also end in the work that needs
their output while it is in cache, so that the full-resolution maps are
written once or never:

* training forward: each conv block's per-channel mean and sum of squared
  deviations (merged exactly as in :func:`._fused.batch_stats`), then one
  pooling pass over the conv output (which the backward pass needs);
* eval forward: each conv block is normalized, activated and pooled as soon as
  it is filtered; the full-resolution output is never written;
* backward: each conv block's output gradient
  :math:`a\, \delta_i\, \partial\ell/\partial\hat{y} + c_0 + c_1 \mathbf{x}_i`
  is written into a per-thread buffer just before the conv's adjoint
  recurrence reads it; the full-resolution gradient is never written.

The same values as the conv followed by :class:`._fused.BatchNormReLUMaxPool`
(the statistics are summed by conv blocks instead of pooling chunks, which
changes their rounding only). Used for contiguous float32 / float64 maps of at
least two maps on CPUs in eager mode (where the compiled kernels of
:mod:`._fused` apply); everything else takes the unfused path.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from .._threads import one_thread
from ..conv._cheb_kernel import _backward_impl, _forward_impl, maps_per_block
from ..conv._laplacian import ScaledLaplacian
from . import _fused
from ._fused import _np


def applies(x: Tensor, lap: ScaledLaplacian, group: int) -> bool:
    """Whether :func:`fused_block` runs ``x`` [B, n, F] (else the unfused path)."""
    return (x.dim() == 3 and x.shape[0] >= 2 and x.shape[1] > 0 and _fused._kernels(x, group)
            is not None and lap.value.dtype == x.dtype)


class ChebBatchNormReLUMaxPool(torch.autograd.Function):
    """``pool(relu(norm(conv(x))))``, see the module docstring.

    Inputs: ``x`` [B, n, F] (contiguous), the conv's ``weight`` [K, O, F] and
    ``bias``, the norm's ``gamma``, ``beta``, then constants: the Laplacian, the
    ``norm`` module (running statistics, updated in training mode), the cluster
    size ``g`` and ``track`` (keep what the backward pass needs).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, lap, norm, g, track):
        with torch.no_grad(), one_thread():
            return ChebBatchNormReLUMaxPool._forward(ctx, x, weight, bias, gamma, beta, lap, norm,
                                                     g, track)

    @staticmethod
    def _forward(ctx, x, weight, bias, gamma, beta, lap, norm, g, track):
        from . import _fused_kernels as kernels
        B, n, _ = x.shape
        O = weight.shape[1]
        C = n // g
        use_batch = norm.training or norm.running_mean is None
        if use_batch:  # statistics of each conv block while it is in cache
            c = maps_per_block(B, n)
            num = -(-B // c)
            parts = np.empty((num, 2, O))
            out = _forward_impl(x, lap.crow, lap.col, lap.value, weight, bias, False,
                                lambda i, b0, ob: kernels.chunk_stats(_np(ob), parts[i]))
            means, m2s = torch.from_numpy(parts).unbind(1)
            mean, var = _fused.merge_stats(means, m2s, _fused.chunk_counts(B, n, c), x.dtype)
            if norm.training and norm.track_running_stats:
                _fused.update_running_stats(norm, mean, var, B * n)
        else:
            mean, var = norm.running_mean.to(x.dtype), norm.running_var.to(x.dtype)
        rstd = torch.rsqrt(var + norm.eps)
        a = gamma * rstd
        b = beta - mean * a
        if use_batch:
            y, slot, x_sel, _ = _fused.pool_forward(out, a, b, g, track)
        else:  # each block pooled as soon as it is filtered
            out = None
            y = x.new_empty(B, C, O)
            slot, x_sel, yk, sk, vk = _fused.kernel_outputs(y, track)
            ak, bk = _np(a), _np(b)

            def pool(i: int, b0: int, ob: Tensor) -> None:
                r = slice(b0 * C, b0 * C + ob.shape[0] // g)
                kernels.pool_forward(_np(ob).reshape(-1, g, O), ak, bk, yk[r], sk[r], vk[r],
                                     track)

            _forward_impl(x, lap.crow, lap.col, lap.value, weight, bias, False, pool, keep=False)
        if track:
            ctx.save_for_backward(x, weight, out, y, slot, x_sel, mean, rstd, a)
        ctx.lap, ctx.g, ctx.training = lap, g, use_batch
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        with one_thread():
            return ChebBatchNormReLUMaxPool._backward(ctx, gy)

    @staticmethod
    def _backward(ctx, gy):
        x, weight, out, y, slot, x_sel, mean, rstd, a = ctx.saved_tensors
        lap, g, training = ctx.lap, ctx.g, ctx.training
        B, n, _ = x.shape
        O = weight.shape[1]
        sums, _ = _fused._kernel_backward(None, y, slot, x_sel, g)
        ag, g_gamma, g_beta = _fused.backward_sums(sums, (B, n, O), gy, mean, rstd, a, True)
        c0, c1 = _fused.grad_coeffs(a, rstd, mean, g_gamma, g_beta, B * n) if training else (
            None, None)

        def grad_block(i: int, b0: int, gb: Tensor) -> None:
            m = gb.shape[0] // n
            _fused.kernel_dx(None if out is None else out[b0:b0 + m], slot[b0:b0 + m],
                             ag[b0:b0 + m], c0, c1, gb, g)

        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x or need_w or need_b:
            grad_x, grad_w, grad_b = _backward_impl(None, x, lap.crow_t, lap.col_t, lap.value_t,
                                                    weight, False, need_x, need_w or need_b,
                                                    need_b, grad_block,
                                                    (lap.crow, lap.col, lap.value))
        return (grad_x if need_x else None, grad_w if need_w else None,
                grad_b if need_b else None, g_gamma if ctx.needs_input_grad[3] else None,
                g_beta if ctx.needs_input_grad[4] else None, None, None, None, None)


def fused_block(x: Tensor, weight: Tensor, bias: Optional[Tensor], lap: ScaledLaplacian,
                norm: torch.nn.BatchNorm1d, group: int) -> Tensor:
    """``pool(relu(norm(conv(x))))`` for ``x`` [B, n, F] where :func:`applies`; ``norm``
    is an affine BatchNorm1d, ``group`` the size of the contiguous clusters."""
    params = (weight, bias, norm.weight, norm.bias)
    track = torch.is_grad_enabled() and (x.requires_grad or any(
        p is not None and p.requires_grad for p in params))
    return ChebBatchNormReLUMaxPool.apply(x.contiguous(), weight, bias, norm.weight, norm.bias,
                                          lap, norm, group, track)

