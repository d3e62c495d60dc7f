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

from ._kernels import LOCK, set_threads


@njit(cache=True)
def _rows_sorted(row):
    for e in range(1, row.shape[0]):
        if row[e] < row[e - 1]:
            return False
    return True


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
def _step(ptr, col, w, scale, diag, sign, q, prev, b, z, y, partial):
    """``y = L q - b prev`` with ``L = diag + sign * scale W scale`` (self loops
    ignored); ``partial[block] = sum of q * y`` over the block."""
    n = ptr.shape[0] - 1
    blocks = partial.shape[0]
    for blk in prange(blocks):
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            z[i] = scale[i] * q[i]
    for blk in prange(blocks):
        dot = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            acc = 0.0
            for e in range(ptr[i], ptr[i + 1]):
                j = col[e]
                if j != i:
                    acc += w[e] * z[j]
            v = diag[i] * q[i] + sign * scale[i] * acc - b * prev[i]
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
def _scale_into(y, inv, out):
    for i in prange(y.shape[0]):
        out[i] = y[i] * inv


class LaplacianOperator:
    """``x -> L x`` for :obj:`None` (``D - W``) or ``'sym'``
    (``I - D^{-1/2} W D^{-1/2}``; isolated nodes get 1 on the diagonal, as
    :func:`torch_geometric.utils.get_laplacian` gives them)."""

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
        if not _rows_sorted(row.numpy()):
            order = torch.sort(row, stable=True).indices
            row, col, w = row[order], col[order], w[order]
        self.n = num_nodes
        self.ptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(row, minlength=num_nodes), 0, out=self.ptr[1:])
        self.col, self.w = col.numpy(), w.numpy()
        self.ptr_np = self.ptr.numpy()
        deg = np.empty(num_nodes)
        with LOCK:
            set_threads(torch.get_num_threads())
            _degrees(self.ptr_np, self.col, self.w, deg)
        self.deg = deg
        if normalization is None:
            self.scale, self.diag, self.sign = np.ones(num_nodes), deg, -1.0
        else:
            if (deg < 0).any():
                raise ValueError("Expected non-negative degrees for a 'sym' Laplacian")
            with np.errstate(divide='ignore'):
                s = 1.0 / np.sqrt(deg)
            s[~np.isfinite(s)] = 0.0
            self.scale, self.diag, self.sign = s, np.ones(num_nodes), -1.0
        self._z = np.empty(num_nodes)
        self._partial = np.empty((num_nodes + _BLOCK - 1) // _BLOCK)

    def symmetric(self) -> bool:
        rtol = 1e-12 if self.w.dtype == np.float64 else 1e-6
        with LOCK:
            set_threads(torch.get_num_threads())
            return bool(_symmetric(self.ptr_np, self.col, self.w, rtol))

    def step(self, q: np.ndarray, prev: np.ndarray, b: float, y: np.ndarray) -> float:
        """``y = L q - b prev``; returns ``q . y``."""
        _step(self.ptr_np, self.col, self.w, self.scale, self.diag, self.sign, q, prev, b,
              self._z, y, self._partial)
        return float(self._partial.sum())

    def orthogonalize(self, y: np.ndarray, q: np.ndarray, a: float) -> float:
        """``y -= a q``; returns ``||y||``."""
        _orthogonalize(y, q, a, self._partial)
        return float(np.sqrt(self._partial.sum()))


def lanczos_largest(op: LaplacianOperator, steps: int, v0: np.ndarray) -> Tuple[float, int]:
    r"""Largest Ritz value of ``steps`` Lanczos steps from ``v0`` (plain
    three-term recurrence: the largest Ritz value only grows towards
    :math:`\lambda_{max}` and is at most it), and the steps taken."""
    q = v0 / np.linalg.norm(v0)
    prev = np.zeros_like(q)
    y = np.empty_like(q)
    alpha, beta = [], []
    b = 0.0
    with LOCK:
        set_threads(torch.get_num_threads())
        for _ in range(min(steps, op.n)):
            a = op.step(q, prev, b, y)
            b = op.orthogonalize(y, q, a)
            alpha.append(a)
            beta.append(b)
            if b <= 1e-12 * max(abs(a), 1.0):  # invariant subspace: exact
                break
            prev, q = q, prev
            _scale_into(y, 1.0 / b, q)
    d = np.array(alpha)
    e = np.array(beta[:-1])
    theta = eigvalsh_tridiagonal(d, e, select='i', select_range=(len(d) - 1, len(d) - 1))
    return float(theta[0]), len(alpha)
