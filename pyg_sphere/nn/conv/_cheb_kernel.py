r"""Private kernel of :class:`~pyg_sphere.nn.SphericalChebConv`.

:class:`ChebFilter`, a :class:`torch.autograd.Function`, evaluates the whole
Chebyshev filter :math:`Y = \sum_k T_k(\tilde{L}) X \Theta_k + b` on a batch of
maps that share one graph; its operator, the rescaled Laplacian in CSR form,
comes from :mod:`._laplacian`. The sparse and dense work happens in two opaque
:mod:`torch.library` custom ops, so that ``torch.compile`` can trace the layer
without a graph break.

Layouts.

* On GPUs the whole batch is one block (``x`` folded to ``[n, B, F]``, one copy;
  column ``m * F + f`` of the ``[n, B * F]`` matrix is channel ``f`` of map ``m``):
  few, large products.
* On CPUs the maps stay in their ``[B, n, F]`` layout: a block of ``c``
  consecutive maps is the ``[c n, F]`` rows of ``x`` as it is, filtered with
  the block-diagonal operator :math:`I_c \otimes \tilde{L}`. ``c = 1`` at fine
  resolutions (a map's recurrence stays in cache), more at coarse ones (a few
  thousand rows per product); neither the input, the output nor the gradients
  are copied between layouts. The blocks run on the kernel threads of
  :mod:`pyg_sphere.nn._threads` (each single-threaded, balanced dynamically:
  robust when another process holds a core), and their number depends on the
  batch only, so that results do not depend on the number of threads.

Order of operations. The filter is evaluated "weights first" with Clenshaw's
recurrence: :math:`\tilde{L}` acts on nodes and :math:`\Theta_k` on channels,
so they commute and

.. math::
    b_K = b_{K+1} = 0, \quad
    b_k = X \Theta_k + 2 \tilde{L} b_{k+1} - b_{k+2}, \quad
    Y = X \Theta_0 + \tilde{L} b_1 - b_2.

That is ``K - 1`` sparse products on ``F_out`` columns and ``K`` small GEMMs
accumulated in place
(``addmm_`` with ``alpha`` / ``beta``) into two buffers, one of them the output;
nothing of size ``K * n * B * F`` is ever allocated or saved, so the layer saves
only its input for the backward pass. (Concatenating the ``T_k X`` and running
one GEMM with the stacked weights was 1.5x slower in the same folded layout
at nside 64 on CPU, and keeps ``K`` activations alive for the backward pass.)
When the layer widens (``F_in < F_out``) the forward recurrence
:math:`T_k(\tilde{L}) X` on the ``F_in`` input columns is cheaper, and used
instead (:func:`._cheb_recurrence._features_first`; 1.15x to 1.4x faster per
block for the SHREC'17 layers, measured on one CPU core); it keeps nothing
more for the backward pass either. The per-block recurrences live in
:mod:`._cheb_recurrence`.
The backward pass runs the forward Chebyshev recurrence on the output gradient
with :math:`\tilde{L}^\top`,

.. math::
    Z_0 = G, \quad Z_1 = \tilde{L}^\top G, \quad
    Z_k = 2 \tilde{L}^\top Z_{k-1} - Z_{k-2}, \qquad
    \frac{\partial \ell}{\partial \Theta_k} = X^\top Z_k, \quad
    \frac{\partial \ell}{\partial X} = \sum_k Z_k \Theta_k^\top,

where :math:`\tilde{L}^\top` is :math:`\tilde{L}` itself when the operator is
exactly symmetric (``'sym'`` or ``None`` normalization of a symmetric graph),
and an explicitly transposed CSR matrix otherwise (``'rw'``, directed graphs).

Edge weights are treated as constants: no gradient flows to ``edge_weight``.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from ._laplacian import (NORMALIZATIONS, ScaledLaplacian, build_scaled_laplacian,  # noqa: F401
                         csr as _csr, trace_scaled_laplacian)
from .._threads import num_participants, one_thread, run_blocks
from ._cheb_recurrence import (_adjoint, _adjoint_weights, _basis_weights, _filter,
                               _filter_buffers)

# --------------------------------------------------------------------------- #
# Dense-sparse kernels. weight [K, F_out, F] (the stacked Linear weights); the
# Laplacian as CSR parts. Two layouts of the B maps:
#   node-major [n, B, F] (``node_major=True``, used on GPUs): the whole batch is
#     one block, each sparse product covers B * F columns;
#   map-major [B, n, F] (``node_major=False``, used on CPUs): blocks of c
#     consecutive maps are the rows [c * n, F] of x as it is, filtered with the
#     block-diagonal operator kron(I_c, L~) (c = 1 at fine resolutions, where a
#     map's recurrence stays in cache; more at coarse ones, so that each product
#     has a few thousand rows); blocks run in parallel (see _threads.py), and the
#     input, output and gradients need no layout copies.
# --------------------------------------------------------------------------- #

#: Rows (nodes times maps) a map-major block holds at least, when there are
#: enough maps to keep every thread busy.
MIN_BLOCK_ROWS = 4096


#: A single block of at least this many rows runs with PyTorch's intra-op
#: threads (long parallel regions) rather than on one participant.
INTRA_OP_ROWS = 2**17


def maps_per_block(num_maps: int, num_nodes: int) -> int:
    """Maps filtered together in map-major layout: a few thousand rows per block,
    and at least two blocks when there are two maps. It does not depend on the
    number of threads, so that results do not either."""
    c = -(-MIN_BLOCK_ROWS // max(num_nodes, 1))
    return max(1, min(c, -(-num_maps // 2)))


def _block_diagonal(crow: Tensor, col: Tensor, value: Tensor, n: int,
                    c: int) -> Tuple[Tensor, Tensor, Tensor]:
    """CSR parts of kron(I_c, L): its first m * n rows are kron(I_m, L)."""
    if c == 1:
        return crow, col, value
    nnz = col.numel()
    dtype = crow.dtype if c * max(n, nnz) < 2**31 - 1 else torch.int64
    offset = torch.arange(c, dtype=dtype).unsqueeze(1)
    crow_b = torch.cat([(crow[:-1].to(dtype) + offset * nnz).reshape(-1),
                        torch.tensor([c * nnz], dtype=dtype)])
    col_b = (col.to(dtype) + offset * n).reshape(-1)
    return crow_b, col_b, value.repeat(c)


def _block_operators(crow: Tensor, col: Tensor, value: Tensor, B: int, c: int
                     ) -> Tuple[Tensor, Tensor]:
    """The operators of full blocks (c maps) and of the last block (B mod c maps)."""
    n = crow.numel() - 1
    crow_b, col_b, value_b = _block_diagonal(crow, col, value, n, c)
    full = _csr(crow_b, col_b, value_b, c * n)
    m = B - (B - 1) // c * c
    if m == c:
        return full, full
    nnz = col.numel()
    return full, _csr(crow_b[:m * n + 1], col_b[:m * nnz], value_b[:m * nnz], m * n)


def _forward_impl(x: Tensor, crow: Tensor, col: Tensor, value: Tensor, weight: Tensor,
                  bias: Optional[Tensor], node_major: bool,
                  epilogue: Optional[Callable[[int, int, Tensor], None]] = None,
                  keep: bool = True) -> Tensor:
    """The filter; map-major (CPU) blocks may end in ``epilogue(block, first map, out)``
    on the block's output ``[m * n, O]`` while it is in cache, and with ``keep=False``
    that output is a per-participant buffer (the full output is never written; an
    empty tensor is returned)."""
    K, O, F = weight.shape
    if x.numel() == 0:  # no node or no map: nothing to filter
        return x.new_zeros(x.shape[:2] + (O, ))
    L = _csr(crow, col, value, crow.numel() - 1) if K > 1 else None
    if node_major:
        n, B, _ = x.shape
        out = x.new_empty(n, B, O)
        _filter(L, x.reshape(n * B, F), weight, bias, out.view(n * B, O),
                _filter_buffers(x, n * B, K, F, O), n)
        return out
    B, n, _ = x.shape
    out = x.new_empty(B, n, O) if keep else x.new_empty(0)
    T = num_participants()
    c = maps_per_block(B, n)
    num_blocks = -(-B // c)
    Ls = _block_operators(crow, col, value, B, c) if K > 1 else (None, None)
    P = min(T, num_blocks)
    scratch = [_filter_buffers(x, c * n, K, F, O) for _ in range(P)]
    outs = None if keep else [x.new_empty(c * n, O) for _ in range(P)]

    def block(i: int, p: int) -> None:
        b0 = i * c
        m = min(c, B - b0)
        buf = tuple(None if t is None else t[:m * n] for t in scratch[p])
        ob = out[b0:b0 + m].view(m * n, O) if keep else outs[p][:m * n]
        _filter(Ls[0] if m == c else Ls[1], x[b0:b0 + m].view(m * n, F), weight, bias, ob, buf,
                m * n)
        if epilogue is not None:
            epilogue(i, b0, ob)

    run_blocks(block, num_blocks, T, intra_op=num_blocks == 1 and c * n >= INTRA_OP_ROWS)
    return out


def _backward_impl(grad: Optional[Tensor], x: Tensor, crow_t: Tensor, col_t: Tensor,
                   value_t: Tensor, weight: Tensor, node_major: bool, need_x: bool,
                   need_weight: bool, need_bias: bool,
                   grad_fn: Optional[Callable[[int, int, Tensor], None]] = None,
                   forward_op: Optional[Tuple[Tensor, Tensor, Tensor]] = None
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """The gradients; with ``grad=None`` (map-major, CPU, maps and nodes > 0, some
    gradient needed) each block's output gradient is written by ``grad_fn(block,
    first map, out [m * n, O])`` into a per-participant buffer instead: the full
    output gradient is never materialised; ``forward_op``, the CSR parts of
    :math:`\tilde{L}` itself, lets a weights-only gradient use
    :func:`._cheb_recurrence._basis_weights`."""
    K, O, F = weight.shape
    if grad is None:
        return _backward_blocks(None, x, crow_t, col_t, value_t, weight, need_x, need_weight,
                                need_bias, True, grad_fn, forward_op)
    # A non-contiguous incoming gradient is copied; the copy is ours to overwrite.
    owned = not grad.is_contiguous()
    grad = grad.contiguous()
    if not node_major and x.numel() > 0 and (need_x or need_weight):
        return _backward_blocks(grad, x, crow_t, col_t, value_t, weight, need_x, need_weight,
                                need_bias, owned, None, None)
    grad_w = weight.new_empty(weight.shape) if need_weight else weight.new_empty(0)
    grad_x = x.new_empty(x.shape) if need_x else x.new_empty(0)
    grad_b = grad.sum((0, 1)) if need_bias else grad.new_empty(0)
    if x.numel() == 0:  # no node or no map: zero gradients
        return grad_x, grad_w.zero_(), grad_b
    if not (need_x or need_weight):
        return grad_x, grad_w, grad_b
    Lt = _csr(crow_t, col_t, value_t, crow_t.numel() - 1) if K > 1 else None
    n, B, _ = x.shape
    z_a = x.new_empty(n * B, O) if K > 1 else None
    z_b = x.new_empty(n * B, O) if K > 2 and not owned else None
    _adjoint(Lt, grad.view(n * B, O), x.reshape(n * B, F), weight,
             grad_w if need_weight else None, False,
             grad_x.view(n * B, F) if need_x else None, z_a, z_b, owned, n)
    return grad_x, grad_w, grad_b


def _backward_blocks(grad: Optional[Tensor], x: Tensor, crow_t: Tensor, col_t: Tensor,
                     value_t: Tensor, weight: Tensor, need_x: bool, need_weight: bool,
                     need_bias: bool, owned: bool, grad_fn: Optional[Callable],
                     forward_op: Optional[Tuple[Tensor, Tensor, Tensor]]
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    """Map-major blocks of :func:`_backward_impl` (the output gradient in ``grad`` or
    from ``grad_fn``; ``owned``: the blocks may overwrite it)."""
    K, O, F = weight.shape
    grad_w = weight.new_empty(weight.shape) if need_weight else weight.new_empty(0)
    grad_x = x.new_empty(x.shape) if need_x else x.new_empty(0)
    B, n, _ = x.shape
    T = num_participants()
    c = maps_per_block(B, n)
    num_blocks = -(-B // c)
    P = min(T, num_blocks)
    # weights only, widening: the recurrence on the F input columns (T_k(L) X)
    basis = forward_op is not None and need_weight and not need_x and K > 1 and F < O
    if basis:
        Lts = _block_operators(*forward_op, B, c)
        width, z_cat = F, [x.new_empty(c * n, K, F) for _ in range(P)]
    else:
        Lts = _block_operators(crow_t, col_t, value_t, B, c) if K > 1 else (None, None)
        width = O
        z_cat = [x.new_empty(c * n, K, O) if not need_x and K > 1 else None for _ in range(P)]
    z_a = [x.new_empty(c * n, width) if K > 1 else None for _ in range(P)]
    z_b = [x.new_empty(c * n, width) if K > 2 and (not owned or not need_x) else None
           for _ in range(P)]
    # the weight gradient of each block, summed in block order (deterministic)
    gws = grad_w.new_empty((num_blocks, ) + weight.shape) if need_weight else None
    gbs = x.new_empty(num_blocks, O) if need_bias else None
    grads = None if grad_fn is None else [x.new_empty(c * n, O) for _ in range(P)]

    def block(i: int, p: int) -> None:
        b0 = i * c
        m = min(c, B - b0)
        rows = m * n
        za, zb = z_a[p], z_b[p]
        if grads is None:
            gb = grad[b0:b0 + m].view(rows, O)
        else:
            gb = grads[p][:rows]
            grad_fn(i, b0, gb)
        if gbs is not None:  # before the recurrence may overwrite the gradient
            torch.sum(gb, 0, out=gbs[i])
        za = None if za is None else za[:rows]
        zb = None if zb is None else zb[:rows]
        if basis:
            _basis_weights(Lts[0] if m == c else Lts[1], gb, x[b0:b0 + m].view(rows, F), gws[i],
                           z_cat[p][:rows], za, zb, rows)
            return
        if not need_x and K > 1:
            _adjoint_weights(Lts[0] if m == c else Lts[1], gb, x[b0:b0 + m].view(rows, F),
                             gws[i], z_cat[p][:rows], za, zb, rows)
            return
        _adjoint(Lts[0] if m == c else Lts[1], gb, x[b0:b0 + m].view(rows, F), weight,
                 None if gws is None else gws[i], False,
                 grad_x[b0:b0 + m].view(rows, F) if need_x else None, za, zb, owned, rows)

    run_blocks(block, num_blocks, T, intra_op=num_blocks == 1 and c * n >= INTRA_OP_ROWS)
    if need_weight:
        torch.sum(gws, 0, out=grad_w)
    grad_b = gbs.sum(0) if gbs is not None else x.new_empty(0)
    return grad_x, grad_w, grad_b


def _threads_for(x: Tensor, node_major: bool):
    """Around the CPU kernels: PyTorch single-threaded (the blocks run on the kernel
    threads), unless a single large block uses PyTorch's intra-op threads."""
    if node_major or x.device.type != 'cpu':
        return contextlib.nullcontext()
    B, n = x.shape[0], x.shape[1]
    if -(-B // maps_per_block(B, n)) == 1 and B * n >= INTRA_OP_ROWS:
        return contextlib.nullcontext()
    return one_thread()


@torch.library.custom_op('pyg_sphere::cheb_filter_forward', mutates_args=())
def _cheb_filter_forward(x: Tensor, crow: Tensor, col: Tensor, value: Tensor, weight: Tensor,
                         bias: Optional[Tensor], node_major: bool) -> Tensor:
    with _threads_for(x, node_major):
        return _forward_impl(x, crow, col, value, weight, bias, node_major)


@_cheb_filter_forward.register_fake
def _(x, crow, col, value, weight, bias, node_major):
    return x.new_empty((x.shape[0], x.shape[1], weight.shape[1]))


@torch.library.custom_op('pyg_sphere::cheb_filter_backward', mutates_args=())
def _cheb_filter_backward(grad: Tensor, x: Tensor, crow_t: Tensor, col_t: Tensor,
                          value_t: Tensor, weight: Tensor, node_major: bool, need_x: bool,
                          need_weight: bool, need_bias: bool) -> Tuple[Tensor, Tensor, Tensor]:
    with _threads_for(x, node_major):
        return _backward_impl(grad, x, crow_t, col_t, value_t, weight, node_major, need_x,
                              need_weight, need_bias)


@_cheb_filter_backward.register_fake
def _(grad, x, crow_t, col_t, value_t, weight, node_major, need_x, need_weight, need_bias):
    return (x.new_empty(x.shape if need_x else (0,)),
            weight.new_empty(weight.shape if need_weight else (0,)),
            grad.new_empty((grad.shape[-1],) if need_bias else (0,)))


class ChebFilter(torch.autograd.Function):
    r"""Chebyshev filter :math:`Y = \sum_{k<K} T_k(\tilde{L}) X \Theta_k^\top + b`.

    Inputs: ``x`` (contiguous) of shape ``[n, B, F]`` if ``node_major`` else
    ``[B, n, F]``, ``weight [K, F_out, F]``, ``bias [F_out]`` or :obj:`None`, the
    CSR parts of :math:`\tilde{L}`, and those of :math:`\tilde{L}^\top` or three
    :obj:`None` when :math:`\tilde{L}` is symmetric (the backward pass then
    multiplies by :math:`\tilde{L}` itself), and ``node_major``. The Laplacian is
    a constant. Returns ``[n, B, F_out]`` or ``[B, n, F_out]`` (same layout as
    ``x``). The backward pass is not itself differentiable (no double backward).
    """

    @staticmethod
    def forward(x, weight, bias, crow, col, value, crow_t, col_t, value_t, node_major):
        return _cheb_filter_forward(x, crow, col, value, weight, bias, node_major)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, crow, col, value, crow_t, col_t, value_t, node_major = inputs
        if crow_t is None:  # symmetric: L~^T = L~
            crow_t, col_t, value_t = crow, col, value
        ctx.save_for_backward(x, weight, crow_t, col_t, value_t)
        ctx.node_major = node_major

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight, crow_t, col_t, value_t = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_x, grad_w, grad_b = _cheb_filter_backward(
            grad, x, crow_t, col_t, value_t, weight, ctx.node_major, need_x, need_weight,
            need_bias)
        return (grad_x if need_x else None, grad_w if need_weight else None,
                grad_b if need_bias else None) + (None, ) * 7


def fold_batch(device: torch.device) -> bool:
    """Whether maps are folded node-major (one block) rather than filtered in blocks.

    GPUs want few, large products; CPUs want each block's recurrence to stay in
    cache and no layout copies (measured: see benchmarks/bench_conv.py).
    """
    return device.type != 'cpu'


#: Dtypes whose sparse products run in float32 (cast in and out): CPU sparse
#: kernels have no half-precision implementation.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the filter computes in (and its Laplacian is cached in) for ``x`` of ``dtype``."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def cheb_filter(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                laplacian: ScaledLaplacian) -> Tensor:
    """Filter a batch of maps ``x [B, n, F]`` (any strides) -> ``[B, n, F_out]``.

    ``laplacian`` must already be on ``x``'s device, in ``compute_dtype(x.dtype)``:
    half-precision inputs, weights and bias are cast to float32, filtered, and the
    result rounded once to ``x``'s dtype. On GPUs the result is a ``[B, n, F_out]``
    view of node-major memory.
    """
    lap = laplacian
    dtype = x.dtype
    if lap.value.dtype != dtype:
        x, weight = x.to(lap.value.dtype), weight.to(lap.value.dtype)
        bias = None if bias is None else bias.to(lap.value.dtype)
    transposed = (None, None, None) if lap.symmetric else (lap.crow_t, lap.col_t, lap.value_t)
    if fold_batch(x.device):
        out = ChebFilter.apply(x.transpose(0, 1).contiguous(), weight, bias, lap.crow, lap.col,
                               lap.value, *transposed, True).transpose(0, 1)
    else:
        out = ChebFilter.apply(x.contiguous(), weight, bias, lap.crow, lap.col, lap.value,
                               *transposed, False)
    return out if out.dtype == dtype else out.to(dtype)
