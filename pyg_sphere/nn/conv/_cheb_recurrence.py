r"""The dense-sparse recurrences of :class:`~pyg_sphere.nn.SphericalChebConv` on one block.

Each function works on one block of maps, as :mod:`._cheb_kernel` lays it out
(``rows = c n`` rows of a ``[rows, F]`` matrix, and the rescaled Laplacian of
the block as a CSR tensor ``L``): the forward filter by Clenshaw's recurrence
on the output columns (:func:`_clenshaw`) or by the forward recurrence on the
input columns (:func:`_features_first`), whichever has fewer, and the
gradients by the forward recurrence on the output gradient with
:math:`\tilde{L}^\top` (:func:`_adjoint`, :func:`_adjoint_weights`) or, for the
weights only of a widening filter, on the input with :math:`\tilde{L}`
(:func:`_basis_weights`). See :mod:`._cheb_kernel` for the formulas and the
order of operations. Products accumulate in place (``addmm_`` with ``alpha`` /
``beta``) into preallocated buffers; nothing of size ``K * rows * F`` is
allocated except by the weights-only variants.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor


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


def _features_first(L: Tensor, X: Tensor, weight: Tensor, bias: Optional[Tensor], out: Tensor,
                    t_a: Optional[Tensor], t_b: Optional[Tensor], n: int) -> None:
    """``out = sum_k T_k(L) X W_k^T + bias`` by the forward recurrence on ``X``.

    Same result as :func:`_clenshaw`, with the sparse products on the ``F``
    input columns instead of the ``O`` output columns: cheaper when ``F < O``.
    ``t_a, t_b [rows, F]`` hold ``T_k X``; ``X [rows, F]``, ``out [rows, O]``.
    """
    K = weight.shape[0]
    if bias is None:
        torch.mm(X, weight[0].t(), out=out)
    else:
        torch.addmm(bias, X, weight[0].t(), out=out)
    if K == 1:
        return
    assert t_a is not None
    cols = X.shape[0] // n * X.shape[1]
    t_a.view(n, cols).addmm_(L, X.view(n, cols), beta=0.0)  # T_1 X (never read before)
    out.addmm_(t_a, weight[1].t())
    prev, cur = X, t_a
    for k in range(2, K):
        if prev is X:  # T_2 X = 2 L T_1 X - X, in t_b
            assert t_b is not None
            new = t_b.copy_(X)
        else:  # T_k X = 2 L T_{k-1} X - T_{k-2} X, in the buffer of T_{k-2} X
            new = prev
        new.view(n, cols).addmm_(L, cur.view(n, cols), beta=-1.0, alpha=2.0)
        out.addmm_(new, weight[k].t())
        prev, cur = cur, new


def _filter(L: Optional[Tensor], X: Tensor, weight: Tensor, bias: Optional[Tensor],
            out: Tensor, buffers: Tuple[Optional[Tensor], Optional[Tensor]], n: int) -> None:
    """The cheaper of the two evaluations: sparse products on min(F, O) columns."""
    if X.shape[1] < weight.shape[1]:
        _features_first(L, X, weight, bias, out, buffers[0], buffers[1], n)
    else:
        _clenshaw(L, X, weight, bias, out, buffers[0], n)


def _filter_buffers(x: Tensor, rows: int, K: int, F: int, O: int
                    ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Scratch buffers of :func:`_filter` for blocks of ``rows`` rows."""
    if K == 1:
        return None, None
    if F < O:
        return x.new_empty(rows, F), x.new_empty(rows, F) if K > 2 else None
    return x.new_empty(rows, O), None


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


def _side_by_side(L: Tensor, V: Tensor, out: Tensor, t_a: Tensor, t_b: Optional[Tensor],
                  n: int) -> None:
    """``out[:, k] = T_k(L) V`` for every ``k < K`` (``out [rows, K, C]``, ``V [rows, C]``),
    by the forward recurrence in the contiguous buffers ``t_a``, ``t_b`` (which the
    sparse products read)."""
    K, C = out.shape[1], out.shape[2]
    cols = V.shape[0] // n * C
    out[:, 0].copy_(V)
    prev, cur = V, V
    for k in range(1, K):
        if k == 1:
            new = t_a
            new.view(n, cols).addmm_(L, V.view(n, cols), beta=0.0)
        else:  # T_k V = 2 L T_{k-1} V - T_{k-2} V, in the buffer of T_{k-2} V (t_b for V)
            assert t_b is not None
            new = t_b.copy_(V) if prev is V else prev
            new.view(n, cols).addmm_(L, cur.view(n, cols), beta=-1.0, alpha=2.0)
        out[:, k].copy_(new)
        prev, cur = cur, new


def _adjoint_weights(Lt: Tensor, G: Tensor, X: Tensor, grad_w: Tensor, Z: Tensor, z_a: Tensor,
                     z_b: Optional[Tensor], n: int) -> None:
    """``grad_w[k] = Z_k^T X`` only (an input that needs no gradient, e.g. the
    first layer), with the ``Z_k`` side by side in ``Z [rows, K, O]``: one GEMM
    ``X^T [Z_0 ... Z_{K-1}]`` with a long reduction and ``K O`` outputs, 2x
    faster than ``K`` GEMMs with ``F`` outputs for few input channels (measured
    on one CPU core, 6 channels)."""
    K, O = Z.shape[1], Z.shape[2]
    _side_by_side(Lt, G, Z, z_a, z_b, n)
    gw = torch.mm(X.t(), Z.view(-1, K * O))  # [F, K * O]
    grad_w.copy_(gw.view(-1, K, O).permute(1, 2, 0))


def _basis_weights(L: Tensor, G: Tensor, X: Tensor, grad_w: Tensor, TX: Tensor, t_a: Tensor,
                   t_b: Optional[Tensor], n: int) -> None:
    """``grad_w[k] = G^T T_k(L) X`` (which equals ``Z_k^T X``): the weights-only
    gradient with the recurrence on the ``F`` input columns, the ``T_k(L) X`` side
    by side in ``TX [rows, K, F]``, and one GEMM ``G^T [T_0 X ... T_{K-1} X]``.
    Cheaper than :func:`_adjoint_weights` when ``F < O`` (the first layer of a
    widening network: 1.3x per block at 6 -> 16 channels on one CPU core)."""
    K, F, O = TX.shape[1], TX.shape[2], G.shape[1]
    _side_by_side(L, X, TX, t_a, t_b, n)
    gw = torch.mm(G.t(), TX.view(-1, K * F))  # [O, K * F]
    grad_w.copy_(gw.view(O, K, F).transpose(0, 1))
