r"""Private kernel of :class:`~pyg_sphere.nn.SphericalChebConv`.

Two parts:

* :func:`build_scaled_laplacian` turns a graph into the operator that
  :class:`torch_geometric.nn.ChebConv` applies, the rescaled Laplacian
  :math:`\tilde{L} = 2 L / \lambda_{\max} - I`, stored as a CSR matrix
  (int32 indices when they fit, so that MKL / cuSPARSE use it without
  converting the indices on every call). Building it syncs with the host
  (coalescing, range checks); it runs once when the layer is ``cached``.
* :class:`ChebFilter`, a :class:`torch.autograd.Function` that evaluates the
  whole Chebyshev filter :math:`Y = \sum_k T_k(\tilde{L}) X \Theta_k + b` on a
  batch of maps that share one graph. Its sparse and dense work happens in two
  opaque :mod:`torch.library` custom ops, so that ``torch.compile`` can trace
  the layer without a graph break.

Layouts. A block of maps is filtered as node-major matrices: column
``m * F + f`` of the ``[n, c * F]`` matrix is channel ``f`` of map ``m``, so one
CSR sparse-dense product serves the whole block.

* On GPUs the whole batch is one block (``x`` folded to ``[n, B, F]``, one copy):
  few, large products.
* On CPUs the maps stay in their ``[B, n, F]`` layout and are filtered one at a
  time (a few at a time when they have fewer than 32 channels): each map's
  recurrence (three ``[n, F]`` matrices) stays in cache, and neither the input,
  the output nor the gradients are copied between layouts. Measured on 2 AMD
  EPYC cores, B = 8, F = 32, K = 5: 1.2x to 1.6x faster forward + backward than
  the folded batch at HEALPix nside 32 to 128. Many small products are more
  exposed to CPU contention (two OpenMP threads sharing their cores with other
  processes) than a few large ones.

Order of operations. The filter is evaluated "weights first" with Clenshaw's
recurrence: :math:`\tilde{L}` acts on nodes and :math:`\Theta_k` on channels,
so they commute and

.. math::
    b_K = b_{K+1} = 0, \quad
    b_k = X \Theta_k + 2 \tilde{L} b_{k+1} - b_{k+2}, \quad
    Y = X \Theta_0 + \tilde{L} b_1 - b_2.

That is ``K - 1`` sparse products and ``K`` small GEMMs accumulated in place
(``addmm_`` with ``alpha`` / ``beta``) into two buffers, one of them the output;
nothing of size ``K * n * B * F`` is ever allocated or saved, so the layer saves
only its input for the backward pass. (Concatenating the ``T_k X`` and running
one GEMM with the stacked weights was 1.5x slower in the same folded layout
at nside 64 on CPU, and keeps ``K`` activations alive for the backward pass.)
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

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._laplacian import (NORMALIZATIONS, ScaledLaplacian, build_scaled_laplacian,  # noqa: F401
                         csr as _csr, trace_scaled_laplacian)

# --------------------------------------------------------------------------- #
# Dense-sparse kernels. weight [K, F_out, F] (the stacked Linear weights); the
# Laplacian as CSR parts. Two layouts of the B maps:
#   node-major [n, B, F] (``node_major=True``, used on GPUs): the whole batch is
#     one block, each sparse product covers B * F columns;
#   map-major [B, n, F] (``node_major=False``, used on CPUs): blocks of c maps
#     (c = 1 unless the maps have few channels) are filtered one after the
#     other, so that a block's recurrence (three [n, c * F] matrices) stays in
#     cache, and the input, output and gradients need no layout copies.
# --------------------------------------------------------------------------- #

#: Columns per sparse product below which map-major blocks hold several maps.
_MIN_BLOCK_COLUMNS = 32


def maps_per_block(num_maps: int, channels: int) -> int:
    """Maps filtered together in map-major layout: enough for 32 columns."""
    return max(1, min(num_maps, -(-_MIN_BLOCK_COLUMNS // max(channels, 1))))


def _clenshaw(L: Tensor, X: Tensor, weight: Tensor, bias: Optional[Tensor], out: Tensor,
              scratch: Optional[Tensor], n: int) -> None:
    """``out = sum_k T_k(L) X W_k^T + bias`` for one block of c maps.

    ``X [n * c, F]`` and ``out, scratch [n * c, O]`` are node-major (row ``i * c + m``
    is node i of map m of the block). Clenshaw's recurrence runs in the two
    buffers, in place (``addmm_`` with ``alpha`` / ``beta``), and ends in ``out``.
    """
    K, O = weight.shape[0], weight.shape[1]
    cols = X.shape[0] // n * O
    if K == 1:
        if bias is None:
            torch.mm(X, weight[0].t(), out=out)
        else:
            torch.addmm(bias, X, weight[0].t(), out=out)
        return
    assert scratch is not None
    # b_{K-1} goes to the buffer that b_0 will end in when K - 1 is even.
    first, second = (out, scratch) if (K - 1) % 2 == 0 else (scratch, out)
    torch.mm(X, weight[K - 1].t(), out=first)
    b1, b2 = first, None
    for k in range(K - 2, -1, -1):
        alpha = 2.0 if k > 0 else 1.0
        if b2 is None:  # b_{k+2} = 0
            new = second
            torch.mm(X, weight[k].t(), out=new)
            new.view(n, cols).addmm_(L, b1.view(n, cols), alpha=alpha)
        else:  # b_k = X W_k + alpha L b_{k+1} - b_{k+2}, in the buffer of b_{k+2}
            new = b2
            new.view(n, cols).addmm_(L, b1.view(n, cols), beta=-1.0, alpha=alpha)
            new.addmm_(X, weight[k].t())
        b1, b2 = new, b1
    assert b1 is out
    if bias is not None:
        out.add_(bias)


def _tall_t_matmul(a: Tensor, b: Tensor, out: Tensor, accumulate: bool = False) -> None:
    """``out (+)= a^T @ b`` for tall ``a [N, p]``, ``b [N, q]`` and a small ``[p, q]`` result.

    The long reduction is split into chunks run as one batched GEMM and summed:
    a single ``[p, N] @ [N, q]`` GEMM gives a GPU one or two thread blocks for the
    whole reduction (measured 1.2 ms at N = 6.3M on an H100), and is also a bit
    slower with MKL on CPUs.
    """
    N = a.shape[0]
    max_chunks, min_rows = (256, 1024) if a.is_cuda else (16, 4096)
    chunks = min(max_chunks, N // min_rows)
    if chunks < 2:
        if accumulate:
            out.addmm_(a.t(), b)
        else:
            torch.mm(a.t(), b, out=out)
        return
    rows = N // chunks
    m = rows * chunks
    part = torch.bmm(a[:m].view(chunks, rows, a.shape[1]).transpose(1, 2),
                     b[:m].view(chunks, rows, b.shape[1]))
    if accumulate:
        out.add_(part.sum(0))
    else:
        torch.sum(part, 0, out=out)
    if m < N:
        out.addmm_(a[m:].t(), b[m:])


def _adjoint(Lt: Optional[Tensor], G: Tensor, X: Tensor, weight: Tensor,
             grad_w: Optional[Tensor], accumulate_w: bool, grad_x: Optional[Tensor],
             z_a: Optional[Tensor], z_b: Optional[Tensor], G_writable: bool, n: int) -> None:
    """Gradients of :func:`_clenshaw` for one block (same row layout).

    ``Z_k = T_k(L^T) G`` by the forward recurrence, in two buffers (or in ``G``
    once it is no longer needed, if it may be overwritten); then
    ``grad_w[k] (+)= Z_k^T X`` and ``grad_x = sum_k Z_k W_k``.
    """
    K, O = weight.shape[0], weight.shape[1]
    cols = G.shape[0] // n * O
    z_prev: Optional[Tensor] = None
    z = G
    for k in range(K):
        if k == 1:
            assert Lt is not None and z_a is not None
            # beta=0: the buffer is written, never read.
            z_a.view(n, cols).addmm_(Lt, G.view(n, cols), beta=0.0)
            z_prev, z = z, z_a
        elif k >= 2:
            assert Lt is not None and z_prev is not None
            if z_prev is G and not G_writable:  # Z_2 = 2 L^T Z_1 - G, in z_b
                assert z_b is not None
                new = z_b.copy_(G)
            else:  # Z_k = 2 L^T Z_{k-1} - Z_{k-2}, in the buffer of Z_{k-2}
                new = z_prev
            new.view(n, cols).addmm_(Lt, z.view(n, cols), beta=-1.0, alpha=2.0)
            z_prev, z = z, new
        if grad_w is not None:
            _tall_t_matmul(z, X, grad_w[k], accumulate_w)
        if grad_x is not None:
            if k == 0:
                torch.mm(z, weight[0], out=grad_x)
            else:
                grad_x.addmm_(z, weight[k])


def _forward_impl(x: Tensor, crow: Tensor, col: Tensor, value: Tensor, weight: Tensor,
                  bias: Optional[Tensor], node_major: bool) -> Tensor:
    K, O, F = weight.shape
    if x.numel() == 0:  # no node or no map: nothing to filter
        return x.new_zeros(x.shape[:2] + (O, ))
    L = _csr(crow, col, value, crow.numel() - 1) if K > 1 else None
    if node_major:
        n, B, _ = x.shape
        out = x.new_empty(n, B, O)
        scratch = x.new_empty(n * B, O) if K > 1 else None
        _clenshaw(L, x.reshape(n * B, F), weight, bias, out.view(n * B, O), scratch, n)
        return out
    B, n, _ = x.shape
    out = x.new_empty(B, n, O)
    c = maps_per_block(B, O)
    scratch = x.new_empty(n * c, O) if K > 1 else None
    x_fold = x.new_empty(n, c, F) if c > 1 else None
    out_fold = x.new_empty(n * c, O) if c > 1 else None
    for b0 in range(0, B, c):
        m = min(c, B - b0)
        if c == 1:
            _clenshaw(L, x[b0], weight, bias, out[b0], scratch, n)
        else:  # fold a few maps with few channels into one block
            X = x_fold[:, :m].copy_(x[b0:b0 + m].transpose(0, 1)).view(n * m, F) if m == c \
                else x[b0:b0 + m].transpose(0, 1).reshape(n * m, F)
            res = out_fold if m == c else x.new_empty(n * m, O)
            _clenshaw(L, X, weight, bias, res, None if scratch is None else scratch[:n * m], n)
            out[b0:b0 + m].copy_(res.view(n, m, O).transpose(0, 1))
    return out


def _backward_impl(grad: Tensor, x: Tensor, crow_t: Tensor, col_t: Tensor, value_t: Tensor,
                   weight: Tensor, node_major: bool, need_x: bool, need_weight: bool,
                   need_bias: bool) -> Tuple[Tensor, Tensor, Tensor]:
    K, O, F = weight.shape
    # A non-contiguous incoming gradient is copied; the copy is ours to overwrite.
    owned = not grad.is_contiguous()
    grad = grad.contiguous()
    grad_b = grad.sum((0, 1)) if need_bias else grad.new_empty(0)
    grad_w = weight.new_empty(weight.shape) if need_weight else weight.new_empty(0)
    grad_x = x.new_empty(x.shape) if need_x else x.new_empty(0)
    if x.numel() == 0:  # no node or no map: zero gradients
        return grad_x, grad_w.zero_(), grad_b
    if not (need_x or need_weight):
        return grad_x, grad_w, grad_b
    Lt = _csr(crow_t, col_t, value_t, crow_t.numel() - 1) if K > 1 else None
    gw = grad_w if need_weight else None
    if node_major:
        n, B, _ = x.shape
        z_a = x.new_empty(n * B, O) if K > 1 else None
        z_b = x.new_empty(n * B, O) if K > 2 and not owned else None
        _adjoint(Lt, grad.view(n * B, O), x.reshape(n * B, F), weight, gw, False,
                 grad_x.view(n * B, F) if need_x else None, z_a, z_b, owned, n)
        return grad_x, grad_w, grad_b
    B, n, _ = x.shape
    c = maps_per_block(B, O)
    z_a = x.new_empty(n * c, O) if K > 1 else None
    z_b = x.new_empty(n * c, O) if K > 2 else None
    if c > 1:
        g_fold, x_fold = x.new_empty(n, c, O), x.new_empty(n, c, F)
        gx_fold = x.new_empty(n * c, F) if need_x else None
    for b0 in range(0, B, c):
        m = min(c, B - b0)
        if c == 1:
            _adjoint(Lt, grad[b0], x[b0], weight, gw, b0 > 0, grad_x[b0] if need_x else None,
                     z_a, z_b, owned, n)
            continue
        G = g_fold[:, :m].copy_(grad[b0:b0 + m].transpose(0, 1)).view(n * m, O) if m == c \
            else grad[b0:b0 + m].transpose(0, 1).reshape(n * m, O)
        X = x_fold[:, :m].copy_(x[b0:b0 + m].transpose(0, 1)).view(n * m, F) if m == c \
            else x[b0:b0 + m].transpose(0, 1).reshape(n * m, F)
        gx = (gx_fold if m == c else x.new_empty(n * m, F)) if need_x else None
        _adjoint(Lt, G, X, weight, gw, b0 > 0, gx, None if z_a is None else z_a[:n * m],
                 None if z_b is None else z_b[:n * m], True, n)
        if need_x:
            grad_x[b0:b0 + m].copy_(gx.view(n, m, F).transpose(0, 1))
    return grad_x, grad_w, grad_b


@torch.library.custom_op('pyg_sphere::cheb_filter_forward', mutates_args=())
def _cheb_filter_forward(x: Tensor, crow: Tensor, col: Tensor, value: Tensor, weight: Tensor,
                         bias: Optional[Tensor], node_major: bool) -> Tensor:
    return _forward_impl(x, crow, col, value, weight, bias, node_major)


@_cheb_filter_forward.register_fake
def _(x, crow, col, value, weight, bias, node_major):
    return x.new_empty((x.shape[0], x.shape[1], weight.shape[1]))


@torch.library.custom_op('pyg_sphere::cheb_filter_backward', mutates_args=())
def _cheb_filter_backward(grad: Tensor, x: Tensor, crow_t: Tensor, col_t: Tensor,
                          value_t: Tensor, weight: Tensor, node_major: bool, need_x: bool,
                          need_weight: bool, need_bias: bool) -> Tuple[Tensor, Tensor, Tensor]:
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
