r"""Batch norm, ReLU and max pooling over contiguous clusters, fused.

:class:`~pyg_sphere.nn.SphericalChebBlock` ends, in DeepSphere's HEALPix
models, with

.. math::
    \mathbf{y}_{c} = \max_{i \in c} \mathrm{ReLU}\left(a\, \mathbf{x}_i + b\right),
    \qquad a = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \quad b = \beta - a \mu,

per channel, over the ``g`` contiguous children of each coarse pixel (HEALPix
NESTED). The unfused modules make five passes over the full-resolution maps
forward (statistics, normalization, activation, pooling with indices, which
PyTorch's CPU reduction with indices makes slow) and as many backward, each
allocating a full-size tensor. Here, as ReLU is monotone,
:math:`\max_i \mathrm{ReLU}(u_i) = \mathrm{ReLU}(\max_i u_i)`: the affine map is
applied slot by slot (child ``j`` of every cluster), the running maximum and
its slot kept, and only pooled-size tensors are written. The backward pass
writes the full-size gradient once:

.. math::
    \frac{\partial \ell}{\partial \mathbf{x}_i} = a\, \delta_{i}\,
    \frac{\partial \ell}{\partial \hat{y}} + c_0 + c_1 \mathbf{x}_i,

where :math:`\delta_i` selects the maximum of each cluster, and (training mode,
batch statistics over the :math:`N` pixels of every map) :math:`c_1 = -a\,
\sigma^{-1} \overline{g \hat{x}} / \sigma'`, :math:`c_0 = -a\, \bar{g} - c_1 \mu`
with :math:`\bar{g} = \frac{1}{N}\sum g`, :math:`\overline{g \hat{x}} =
\frac{1}{N}\sum g \hat{x}` (:math:`g` the gradient after ReLU, summed over the
selected pixels only, :math:`\hat{x} = (x - \mu) / \sigma`); in eval mode
:math:`c_0 = c_1 = 0`. Ties pick the lowest slot, as the unfused pooling does.

The statistics are two-pass (mean, then the mean squared deviation), and the
running estimates are updated as :class:`torch.nn.BatchNorm1d` updates them
(momentum, unbiased variance, ``num_batches_tracked``).

Two implementations of every pass: compiled loops (:mod:`._fused_kernels`, one
pass per chunk of maps, sums in float64) for contiguous float32 / float64 maps
on CPUs in eager mode, and PyTorch ops (a few per child slot, sums in the
input's dtype) everywhere else (GPUs, ``torch.compile``, half precision).
"""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .._threads import one_thread, run_blocks
from ._fused_ops import _max_slot, _torch_backward

#: Elements (maps x pixels x channels) a chunk of maps holds at least, when
#: there are enough maps to keep every thread busy.
MIN_CHUNK_ELEMENTS = 2**16


#: Whether the compiled kernels may be used (tests switch them off to check the
#: PyTorch path on CPUs).
USE_KERNELS = True

#: Largest cluster whose slots fit the kernels' int8.
MAX_KERNEL_GROUP = 127


def _kernels(x: Tensor, g: int = 1):
    """The compiled kernels' module if they apply to ``x`` (contiguous float32 or
    float64 on a CPU, eager mode, clusters of at most 127), else None."""
    if not USE_KERNELS or x.device.type != 'cpu' or x.dtype not in (torch.float32,
                                                                   torch.float64) \
            or not x.is_contiguous() or g > MAX_KERNEL_GROUP or torch.compiler.is_compiling():
        return None
    from . import _fused_kernels
    return _fused_kernels


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def _chunks(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """``(maps per chunk, chunks)`` for maps of ``shape`` [B, n, F]: a few ten thousand
    elements per chunk, and at least two chunks when there are two maps. It does
    not depend on the number of threads, so that results do not either. One chunk
    under ``torch.compile`` (which fuses the ops itself and cannot trace our threads)."""
    B = shape[0]
    if torch.compiler.is_compiling() or B <= 1:
        return max(B, 1), 1
    per_map = max(1, shape[1] * shape[2])
    c = max(1, min(-(-MIN_CHUNK_ELEMENTS // per_map), -(-B // 2)))
    return c, -(-B // c)


#: A single chunk of at least this many elements runs with PyTorch's intra-op
#: threads (long parallel regions).
INTRA_OP_ELEMENTS = 2**21


def _threads(x: Tensor):
    """Our chunks run on the kernel threads, PyTorch single-threaded around them (no
    parallel region of its own per small op); a single large chunk (one large map)
    runs with PyTorch's threads instead. Nothing under compile."""
    if torch.compiler.is_compiling() or (_chunks(x.shape)[1] == 1
                                         and x.numel() >= INTRA_OP_ELEMENTS):
        return contextlib.nullcontext()
    return one_thread()


#: Pieces a single large chunk is cut into for the kernels' passes that sum
#: nothing (pooling forward, full-size gradient): one map of 10^7 pixels on
#: every thread, as PyTorch's intra-op threads would run it.
ROW_PIECES = 16


def _one_large_chunk(x: Tensor) -> bool:
    return _chunks(x.shape)[1] == 1 and x.numel() >= INTRA_OP_ELEMENTS


def _run_rows(fn, rows: int) -> None:
    """``fn(slice)`` over :data:`ROW_PIECES` ranges of ``rows``, on the kernel threads."""
    step = -(-rows // ROW_PIECES)
    run_blocks(lambda i, p: fn(slice(i * step, min(rows, (i + 1) * step))),
               -(-rows // step) if rows else 0)


def _run(fn, shape: Tuple[int, ...]) -> None:
    """``fn(chunk, b0, b1)`` over chunks of maps of ``shape``, on the kernel threads."""
    c, num = _chunks(shape)
    B = shape[0]
    if num == 1:
        fn(0, 0, B)
        return
    run_blocks(lambda i, p: fn(i, i * c, min(B, (i + 1) * c)), num)


def batch_stats(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of ``x`` [B, n, F].

    Each chunk of maps gets its mean and sum of squared deviations in two
    passes while it is in cache; the chunks are then merged exactly (Chan et
    al.), which stays accurate for channels whose mean is large against their
    spread (unlike a sum of squares).
    """
    B, n, F = x.shape
    c, num = _chunks(x.shape)
    counts = chunk_counts(B, n, c)
    kernels = _kernels(x)
    if kernels is not None:
        parts = np.empty((num, 2, F))
        xr = _np(x).reshape(B * n, F)
        _run(lambda i, b0, b1: kernels.chunk_stats(xr[b0 * n:b1 * n], parts[i]), x.shape)
        means, m2s = torch.from_numpy(parts).unbind(1)
    else:
        means = x.new_empty(num, F)
        m2s = x.new_empty(num, F)
        counts = counts.to(x.device, x.dtype)

        def chunk(i: int, b0: int, b1: int) -> None:
            xc = x[b0:b1]
            mean = xc.mean((0, 1))
            dev = xc - mean
            means[i] = mean
            m2s[i] = dev.mul_(dev).sum((0, 1))

        _run(chunk, x.shape)
    return merge_stats(means, m2s, counts, x.dtype)


def chunk_counts(B: int, n: int, c: int) -> Tensor:
    """Pixels ``[chunks, 1]`` (float64) of the chunks of ``c`` maps of ``n`` pixels of a
    batch of ``B`` maps (the last one may hold fewer)."""
    num = -(-B // c)
    counts = torch.full((num, 1), float(c * n), dtype=torch.float64)
    counts[-1] = (B - (num - 1) * c) * n
    return counts


def merge_stats(means: Tensor, m2s: Tensor, counts: Tensor,
                dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """Mean and biased variance of the union of chunks, from their ``means``,
    sums of squared deviations ``m2s`` [chunks, F] and ``counts`` [chunks, 1]
    (Chan et al.), in ``dtype``."""
    total = counts.sum()
    mean = (means * counts).sum(0) / total
    m2 = m2s.sum(0) + ((means - mean).square() * counts).sum(0)
    return mean.to(dtype), (m2 / total).to(dtype)


class BatchNormReLUMaxPool(torch.autograd.Function):
    """``max over g contiguous children of ReLU(a x + b)``, see the module docstring.

    Inputs: ``x`` [B, n, F] (any strides, ``n = C g``), ``gamma``, ``beta``,
    ``mean``, ``var`` [F] (the batch statistics in training mode, the running
    ones in eval mode; constants), ``eps``, ``g``, ``training``, ``track`` (keep
    what the backward pass needs). Returns the pooled, activated maps [B, C, F].
    Chunks of maps run on the kernel threads (see ``pyg_sphere/nn/_threads.py``).
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, eps, g, training, track):
        with _threads(x):
            return BatchNormReLUMaxPool._forward(ctx, x, gamma, beta, mean, var, eps, g,
                                                 training, track)

    @staticmethod
    def _forward(ctx, x, gamma, beta, mean, var, eps, g, training, track):
        rstd = torch.rsqrt(var + eps)
        a = gamma * rstd
        y, slot, x_sel, kernels = pool_forward(x, a, beta - mean * a, g, track)
        if track:
            ctx.save_for_backward(x, y, slot, x_sel, mean, rstd, a)
        ctx.g, ctx.training, ctx.kernels = g, training, kernels
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        with _threads(ctx.saved_tensors[0]):
            return BatchNormReLUMaxPool._backward(ctx, gy)

    @staticmethod
    def _backward(ctx, gy):
        x, y, slot, x_sel, mean, rstd, a = ctx.saved_tensors
        g, training = ctx.g, ctx.training
        B, n, F = x.shape
        backward = _kernel_backward if ctx.kernels else _torch_backward
        sums, dx = backward(x, y, slot, x_sel, g)
        ag, g_gamma, g_beta = backward_sums(sums, x.shape, gy, mean, rstd, a, ctx.kernels)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            c0, c1 = grad_coeffs(a, rstd, mean, g_gamma, g_beta, B * n) if training else (None,
                                                                                           None)
            if ctx.kernels and _one_large_chunk(x):  # no reduction: split the clusters
                C = n // g
                _run_rows(lambda r: kernel_dx(
                    None if c0 is None else x.view(B * C, g, F)[r], slot.view(B * C, 1, F)[r],
                    ag.view(B * C, 1, F)[r], c0, c1, grad_x.view(B * C, g, F)[r], g), B * C)
            else:
                _run(lambda i, b0, b1: dx(grad_x, ag, b0, b1, c0, c1), x.shape)
        return (grad_x, g_gamma if ctx.needs_input_grad[1] else None,
                g_beta if ctx.needs_input_grad[2] else None, None, None, None, None, None,
                None)


def pool_forward(x: Tensor, a: Tensor, b: Tensor, g: int, track: bool
                 ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor], bool]:
    """``y = max over g children of ReLU(a x + b)`` for ``x`` [B, n, F], chunk by chunk;
    with ``track``, the slot of each maximum (and, for the kernels, its input).
    Returns ``(y, slot, x_sel, kernels)``: the compiled kernels' int8 slots and
    inputs at the maxima, or PyTorch's float slots and no inputs."""
    B, n, F = x.shape
    C = n // g
    y = x.new_empty(B, C, F)
    kernels = _kernels(x, g)
    if kernels is not None:
        slot, x_sel, yk, sk, vk = kernel_outputs(y, track)
        xk, ak, bk = _np(x).reshape(B * C, g, F), _np(a), _np(b)

        def rows(r: slice) -> None:
            kernels.pool_forward(xk[r], ak, bk, yk[r], sk[r], vk[r], track)

        if _one_large_chunk(x):  # no reduction: split the clusters instead
            _run_rows(rows, B * C)
            return y, slot, x_sel, True

        def chunk(i: int, b0: int, b1: int) -> None:
            rows(slice(b0 * C, b1 * C))
    else:  # slots as floats
        xv = x.unflatten(1, (C, g))
        slot = torch.empty_like(y) if track else None
        x_sel = None

        def chunk(i: int, b0: int, b1: int) -> None:
            _max_slot(xv[b0:b1], a, b, y[b0:b1], None if slot is None else slot[b0:b1])
            y[b0:b1].relu_()

    _run(chunk, x.shape)
    return y, slot, x_sel, kernels is not None


def kernel_outputs(y: Tensor, track: bool):
    """What the forward kernel writes besides ``y`` [B, C, F]: with ``track``, the int8
    slots and the input at each maximum (which the backward pass reads rather than
    gather it from the full-size maps). Returns them and the ``[B C, F]`` arrays of
    ``y``, slots and inputs (empty stand-ins without ``track``)."""
    B, C, F = y.shape
    slot = torch.empty(B, C, F, dtype=torch.int8) if track else None
    x_sel = torch.empty_like(y) if track else None
    yk = _np(y).reshape(B * C, F)
    sk = _np(slot).reshape(B * C, F) if track else np.empty((0, 0), np.int8)
    vk = _np(x_sel).reshape(B * C, F) if track else yk[:0]
    return slot, x_sel, yk, sk, vk


def backward_sums(sums, shape: Tuple[int, int, int], gy: Tensor, mean: Tensor, rstd: Tensor,
                  a: Tensor, kernels: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """First backward pass over the pooled maps, by chunks of maps of ``shape`` (the
    full-size maps'): ``ag`` (the gradient at the selected pixels, after ReLU,
    times ``a``) and the gradients of gamma and beta, summed in chunk order."""
    gy = gy.contiguous()
    ag = torch.empty_like(gy)
    num = _chunks(shape)[1]
    parts = np.empty((num, 2, shape[2])) if kernels else gy.new_empty(num, 2, shape[2])
    _run(lambda i, b0, b1: sums(parts[i], gy, ag, b0, b1, mean, rstd, a), shape)
    g_beta, g_gamma = torch.as_tensor(parts).sum(0).to(gy.dtype)
    return ag, g_gamma, g_beta


def grad_coeffs(a: Tensor, rstd: Tensor, mean: Tensor, g_gamma: Tensor, g_beta: Tensor,
                count: int) -> Tuple[Tensor, Tensor]:
    """``c0, c1`` of the full-size gradient in training mode (module docstring)."""
    c1 = -a * rstd * (g_gamma / count)
    return -a * (g_beta / count) - c1 * mean, c1


def _kernel_backward(x: Tensor, y: Tensor, slot: Tensor, x_sel: Tensor, g: int):
    """The two chunk passes of the backward pass, with the compiled kernels."""
    from . import _fused_kernels as kernels
    B, C, F = y.shape
    yk, sk, vk = (_np(t).reshape(B * C, F) for t in (y, slot, x_sel))

    def sums(out: np.ndarray, gy: Tensor, ag: Tensor, b0: int, b1: int, mean: Tensor,
             rstd: Tensor, a: Tensor) -> None:
        r = slice(b0 * C, b1 * C)
        kernels.pool_backward_sums(_np(gy).reshape(B * C, F)[r], yk[r], vk[r], _np(mean),
                                   _np(rstd), _np(a), _np(ag).reshape(B * C, F)[r], out)

    def dx(grad_x: Tensor, ag: Tensor, b0: int, b1: int, c0: Optional[Tensor],
           c1: Optional[Tensor]) -> None:
        kernel_dx(x[b0:b1], slot[b0:b1], ag[b0:b1], c0, c1, grad_x[b0:b1], g)

    return sums, dx


def kernel_dx(x: Optional[Tensor], slot: Tensor, ag: Tensor, c0: Optional[Tensor],
              c1: Optional[Tensor], out: Tensor, g: int) -> None:
    """``out`` (contiguous, the elements of ``[m, C g, F]``) = the full-size gradient of
    ``m`` maps from their slots and ``ag`` [m, C, F]: ``c0 + c1 x`` in training mode
    (``c0`` given), 0 in eval mode (``x`` unused, may be None), plus ``ag`` at the
    selected children. With the compiled kernels, in this thread."""
    from . import _fused_kernels as kernels
    m, C, F = slot.shape
    gx = _np(out).reshape(m * C, g, F)
    training = c0 is not None
    xk = _np(x).reshape(m * C, g, F) if training else gx
    c0k = _np(c0) if training else np.empty(0, gx.dtype)
    c1k = _np(c1) if training else c0k
    kernels.pool_backward_dx(xk, _np(slot).reshape(m * C, F), _np(ag).reshape(m * C, F), c0k,
                             c1k, training, gx)


def update_running_stats(norm: torch.nn.BatchNorm1d, mean: Tensor, var: Tensor,
                         count: int) -> None:
    """Update ``norm``'s running estimates as its own training-mode forward would."""
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative moving average
            factor = 1.0 / norm.num_batches_tracked.double()
        else:
            factor = norm.momentum
        unbiased = var * (count / max(count - 1, 1))
        norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), factor)
        norm.running_var.lerp_(unbiased.to(norm.running_var.dtype), factor)


def fused_bn_relu_max_pool(x: Tensor, norm: torch.nn.BatchNorm1d, group: int) -> Tensor:
    """``pool(relu(norm(x)))`` for ``x`` [B, n, F] and clusters of ``group``
    contiguous pixels; ``norm`` is an affine BatchNorm1d that tracks running stats."""
    use_batch = norm.training or norm.running_mean is None
    if use_batch:
        with torch.no_grad(), _threads(x):
            mean, var = batch_stats(x.detach())
        if norm.training and norm.track_running_stats:
            update_running_stats(norm, mean, var, x.shape[0] * x.shape[1])
    else:
        mean, var = norm.running_mean.to(x.dtype), norm.running_var.to(x.dtype)
    # the slots of the maxima are tracked only for a backward pass to come (under
    # no_grad, needs_input_grad still says True for parameters)
    track = torch.is_grad_enabled() and (x.requires_grad or norm.weight.requires_grad
                                         or norm.bias.requires_grad)
    return BatchNormReLUMaxPool.apply(x, norm.weight, norm.bias, mean, var, norm.eps, group,
                                      use_batch, track)


def can_fuse(norm: Optional[torch.nn.Module], act: Optional[torch.nn.Module],
             pool: Optional[torch.nn.Module]) -> Optional[int]:
    """The cluster size ``g`` if (norm, act, pool) is an affine BatchNorm1d, a ReLU and
    a max SpherePool over contiguous clusters (without indices), else None."""
    from ..pool import SpherePool
    if type(norm) is not torch.nn.BatchNorm1d or not norm.affine:
        return None
    if type(act) is not torch.nn.ReLU:
        return None
    if not isinstance(pool, SpherePool) or pool.reduce != 'max' or pool.path != 'reshape' \
            or pool.return_indices:
        return None
    return pool.group
