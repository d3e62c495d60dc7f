"""A few Lanczos steps on a graph Laplacian, matrix-free (compiled CSR products).

The Laplacian is never assembled: ``L x`` is computed from the CSR form of
the graph (rows of ``edge_index``, as :func:`sphere_knn_graph` returns them)
and the node degrees, so an estimate costs ``steps`` passes over the edges
and three vectors of ``n`` floats.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from numba import njit, prange
from scipy.linalg import eigvalsh_tridiagonal

from ._kernels import is_non_decreasing, parallel


@njit(parallel=True, cache=True)
def _degrees(ptr, col, w, deg):
    for i in prange(ptr.shape[0] - 1):
        acc = 0.0
        for e in range(ptr[i], ptr[i + 1]):
            if col[e] != i:
                acc += w[e]
        deg[i] = acc


@njit(parallel=True, cache=True)
def _symmetric(ptr, col, w, rtol):
    """Does every ``i -> j`` carry the same total weight as ``j -> i``?"""
    n = ptr.shape[0] - 1
    bad = 0
    for i in prange(n):
        for e in range(ptr[i], ptr[i + 1]):
            j = col[e]
            if j == i:
                continue
            forward = 0.0
            for f in range(ptr[i], ptr[i + 1]):
                if col[f] == j:
                    forward += w[f]
            backward = 0.0
            for f in range(ptr[j], ptr[j + 1]):
                if col[f] == i:
                    backward += w[f]
            if abs(forward - backward) > rtol * max(abs(forward), abs(backward)):
                bad += 1
    return bad == 0


#: Rows per block of the compiled loops: sums are taken per block, then over
#: the blocks in order, so results do not depend on the number of threads.
_BLOCK = 4096


@njit(parallel=True, cache=True)
def _step_sym(ptr, col, w, scale, z, q, prev, b, y, partial):
    """``y = L q - b prev`` for ``L = I - S W S`` (``z = S q`` given; self
    loops ignored); ``partial[block] = sum of q * y`` over the block."""
    n = ptr.shape[0] - 1
    for blk in prange(partial.shape[0]):
        dot = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            acc = 0.0
            for e in range(ptr[i], ptr[i + 1]):
                j = col[e]
                if j != i:
                    acc += w[e] * z[j]
            v = q[i] - scale[i] * acc - b * prev[i]
            y[i] = v
            dot += q[i] * v
        partial[blk] = dot


@njit(parallel=True, cache=True)
def _step_comb(ptr, col, w, deg, q, prev, b, y, partial):
    """``y = L q - b prev`` for ``L = D - W``; as :func:`_step_sym`."""
    n = ptr.shape[0] - 1
    for blk in prange(partial.shape[0]):
        dot = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            acc = 0.0
            for e in range(ptr[i], ptr[i + 1]):
                j = col[e]
                if j != i:
                    acc += w[e] * q[j]
            v = deg[i] * q[i] - acc - b * prev[i]
            y[i] = v
            dot += q[i] * v
        partial[blk] = dot


@njit(parallel=True, cache=True)
def _orthogonalize(y, q, a, partial):
    """``y -= a q``; ``partial[block] = sum of y ** 2`` over the block."""
    n = y.shape[0]
    for blk in prange(partial.shape[0]):
        sq = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            v = y[i] - a * q[i]
            y[i] = v
            sq += v * v
        partial[blk] = sq


@njit(parallel=True, cache=True)
def _normalize(y, inv, scale, q, z):
    """``q = y * inv`` and ``z = scale * q``."""
    for i in prange(y.shape[0]):
        v = y[i] * inv
        q[i] = v
        z[i] = scale[i] * v


class LaplacianOperator:
    """Lanczos steps on ``L`` for :obj:`None` (``D - W``) or ``'sym'``
    (``I - D^{-1/2} W D^{-1/2}``; isolated nodes get 1 on the diagonal, as
    :func:`torch_geometric.utils.get_laplacian` gives them) from the CSR form
    of the graph. ``deg`` holds the degrees; ``'sym'`` with a negative degree
    is left to the caller (``normalized`` is then :obj:`False`)."""

    def __init__(self, edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor],
                 num_nodes: int, normalization: Optional[str]) -> None:
        row = edge_index[0].detach().cpu().contiguous()
        col = edge_index[1].detach().cpu().contiguous()
        if edge_weight is None:
            w = torch.ones(row.numel(), dtype=torch.float32)
        else:
            w = edge_weight.detach().cpu().contiguous()
            if w.dtype not in (torch.float32, torch.float64):
                w = w.double()
        with parallel():
            if not is_non_decreasing(row.numpy()):
                order = torch.sort(row, stable=True).indices
                row, col, w = row[order], col[order], w[order]
            self.n = num_nodes
            ptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
            torch.cumsum(torch.bincount(row, minlength=num_nodes), 0, out=ptr[1:])
            del row
            self.ptr, self.col, self.w = ptr.numpy(), col.numpy(), w.numpy()
            self.deg = np.empty(num_nodes)
            _degrees(self.ptr, self.col, self.w, self.deg)
        self.normalized = normalization is not None and bool((self.deg >= 0).all())
        if self.normalized:
            with np.errstate(divide='ignore'):
                s = 1.0 / np.sqrt(self.deg)
            s[~np.isfinite(s)] = 0.0
            self.scale = s
        else:
            self.scale = np.zeros(num_nodes)  # (unused by D - W)
        self.partial = np.empty((num_nodes + _BLOCK - 1) // _BLOCK)

    def symmetric(self) -> bool:
        rtol = 1e-12 if self.w.dtype == np.float64 else 1e-6
        with parallel():
            return bool(_symmetric(self.ptr, self.col, self.w, rtol))


def lanczos_largest(op: LaplacianOperator, steps: int, v0: np.ndarray) -> Tuple[float, int]:
    r"""Largest Ritz value of ``steps`` Lanczos steps from ``v0`` (plain
    three-term recurrence: the largest Ritz value only grows towards
    :math:`\lambda_{max}` and is at most it), and the steps taken. Uses
    ``'sym'`` if ``op.normalized``, else ``D - W``."""
    q = np.empty(op.n)
    z = np.empty(op.n)
    prev = np.zeros(op.n)
    y = np.empty(op.n)
    alpha, beta = [], []
    b = 0.0
    with parallel():
        _normalize(v0, 1.0 / np.linalg.norm(v0), op.scale, q, z)
        for _ in range(min(steps, op.n)):
            if op.normalized:
                _step_sym(op.ptr, op.col, op.w, op.scale, z, q, prev, b, y, op.partial)
            else:
                _step_comb(op.ptr, op.col, op.w, op.deg, q, prev, b, y, op.partial)
            a = float(op.partial.sum())
            _orthogonalize(y, q, a, op.partial)
            b = float(np.sqrt(op.partial.sum()))
            alpha.append(a)
            beta.append(b)
            if b <= 1e-12 * max(abs(a), 1.0):  # invariant subspace: exact
                break
            prev, q = q, prev
            _normalize(y, 1.0 / b, op.scale, q, z)
    d = np.array(alpha)
    e = np.array(beta[:-1])
    theta = eigvalsh_tridiagonal(d, e, select='i', select_range=(len(d) - 1, len(d) - 1))
    return float(theta[0]), len(alpha)
