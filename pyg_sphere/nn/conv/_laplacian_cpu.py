r"""CPU assembly of the operator of :mod:`._laplacian`.

* :func:`grouped_csr`: edges grouped by source (``edge_index[0]``
  non-decreasing, as every graph of :mod:`pyg_sphere.graph` is): each node's
  edges form its row of :math:`\tilde{L}^\top`, assembled, sorted and summed in
  compiled parallel passes (:mod:`._laplacian_kernels`); :math:`\tilde{L}` is
  that matrix when it is symmetric (checked exactly), its scipy transpose if not.
* Any other order: the entries of :math:`\tilde{L}` in chunked passes over the
  edges (:func:`cpu_entries`, validating on the way), and their CSR form (and
  that of the transpose) by :mod:`scipy.sparse` counting sorts
  (:func:`scipy_csr`), linear in the number of edges.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor


#: Edges from which grouped edge lists are assembled by the compiled passes:
#: loading their kernels costs about 0.4 s once per process, what the scipy
#: assembly spends on some 4 M edges (nside 256 at k = 8 has 7 M).
GROUPED_MIN_EDGES = 1 << 22
_NORMS = {None: 0, 'sym': 1, 'rw': 2}


def grouped_csr(edge_index: Tensor, n: int, edge_weight: Optional[Tensor],
                normalization: Optional[str], lambda_max: Optional[object],
                dtype: torch.dtype, index_dtype: torch.dtype
                ) -> Optional[Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, bool]]:
    r"""The output of :func:`scipy_csr` for the entries of :func:`cpu_entries`
    (the same checks and errors, the same values; duplicates summed in edge
    order), from edges grouped by source, or :obj:`None` when ``edge_index[0]``
    is not non-decreasing, the graph is small, or :math:`\lambda_{\max}` is
    zero (an edgeless ``D - A``: the general path handles it)."""
    import numpy as np

    from ...graph import _kernels
    from . import _laplacian_kernels as kern
    E = edge_index.size(1)
    if E < GROUPED_MIN_EDGES:
        return None
    if edge_index.dtype not in (torch.int32, torch.int64):
        edge_index = edge_index.long()
    src, dst = edge_index[0].contiguous().numpy(), edge_index[1].contiguous().numpy()
    if edge_weight is None:
        w = np.empty(0, dtype=np.float64)
    else:
        weight = edge_weight.detach()
        if weight.dtype not in (torch.float32, torch.float64):
            weight = weight.to(torch.float64)
        w = weight.contiguous().numpy()
    with _kernels.parallel():
        scan = np.zeros((max(1, 4 * torch.get_num_threads()), 6), dtype=np.int64)
        kern.scan_edges(src, dst, w, scan)
        lo, hi = int(scan[:, 1].min()), int(scan[:, 2].max())
        if lo < 0 or hi >= n:
            raise ValueError(f"Expected 'edge_index' to index the {n} nodes of x, i.e. to lie "
                             f"in [0, {n - 1}] (got {lo if lo < 0 else hi})")
        if int(scan[:, 0].sum()):
            return None  # not grouped by source
        if int(scan[:, 3].sum()):
            raise ValueError(f"Expected 'edge_weight' to be finite (got {int(scan[:, 4].sum())} "
                             f"NaN or infinite value(s) among {E})")
        ptr = np.empty(n + 1, dtype=np.int64)
        _kernels.row_starts(src, ptr)
        deg = np.empty(n, dtype=np.float64)
        kern.row_degrees(ptr, dst, w, deg)
        norm = _NORMS[normalization]
        if normalization is not None:  # as cpu_entries (torch's pow rounds as it does)
            t = torch.from_numpy(deg)
            t = t.pow(-0.5) if normalization == 'sym' else 1.0 / t
            f = t.masked_fill_(torch.isinf(t), 0.0).numpy()
        else:
            f = np.empty(0, dtype=np.float64)
        diag = deg if normalization is None else np.ones(n, dtype=np.float64)
        if lambda_max is None:  # 2 max_ij L_ij over the diagonal and the edges
            best = np.empty(n, dtype=np.float64)
            kern.row_max_entry(ptr, dst, w, norm, f, best)
            lam = 2.0 * max(float(diag.max()) if n > 0 else 1.0, float(best.max()))
            del best
        else:
            lam = float(lambda_max)
        if not (lam > 0 and math.isfinite(lam)):
            return None
        cols = torch.empty(E + n, dtype=index_dtype)
        vals = torch.empty(E + n, dtype=dtype)
        counts = np.empty(n, dtype=np.int64)
        kern.fill_rows(ptr, dst, w, norm, f, 2.0 / lam, diag, cols.numpy(), vals.numpy(),
                       counts)
        del deg, diag, f
        crow = torch.zeros(n + 1, dtype=index_dtype)
        np.cumsum(counts, out=crow.numpy()[1:])
        nnz = int(crow[-1])
        if nnz < E + n:  # self loops or duplicate edges: close the gaps
            packed_cols = torch.empty(nnz, dtype=index_dtype)
            packed_vals = torch.empty(nnz, dtype=dtype)
            kern.compact_rows(ptr, crow.numpy(), cols.numpy(), vals.numpy(),
                              packed_cols.numpy(), packed_vals.numpy())
            cols, vals = packed_cols, packed_vals
        del ptr, counts
        bad = np.zeros(n, dtype=np.bool_)
        _kernels.csr_asymmetric_rows(crow.numpy(), cols.numpy(), vals.numpy(), bad)
        symmetric = not bool(bad.any())
    tr = (crow, cols, vals)  # rows = sources: the transpose
    if symmetric:
        return tr + tr + (True, )
    import scipy.sparse as sp
    mat = _transpose(sp.csr_matrix((vals.numpy(), cols.numpy(), crow.numpy()), shape=(n, n)))
    fwd = (torch.from_numpy(mat.indptr).to(index_dtype),
           torch.from_numpy(mat.indices).to(index_dtype), torch.from_numpy(mat.data))
    return fwd + tr + (False, )


def scipy_csr(entries: list, n: int
               ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, bool]:
    """CSR parts of the entries ``[row, col, value]`` and of the transpose by
    :mod:`scipy.sparse` (CPU): counting sorts, linear in the number of entries.
    The list is emptied once the entries are assembled (their memory freed)."""
    import numpy as np
    import scipy.sparse as sp
    row, col, value = entries
    entries.clear()
    dtype = row.dtype
    mat = sp.csr_matrix((value.numpy(), (row.numpy(), col.numpy())), shape=(n, n))
    del row, col, value
    mat.sum_duplicates()  # canonical: sorted columns, no duplicates
    if mat.nnz >= SYMMETRY_KERNEL_NNZ:  # check first: the transpose costs seconds at 10^8
        symmetric = is_symmetric(mat)
        tr = None if symmetric else _transpose(mat)
    else:
        tr = _transpose(mat)
        symmetric = bool(np.array_equal(mat.indptr, tr.indptr)
                         and np.array_equal(mat.indices, tr.indices)
                         and np.array_equal(mat.data, tr.data))
    if symmetric:
        del tr

    def parts(m):
        return (torch.from_numpy(m.indptr).to(dtype), torch.from_numpy(m.indices).to(dtype),
                torch.from_numpy(m.data))

    fwd = parts(mat)
    return fwd + (fwd if symmetric else parts(tr)) + (symmetric, )


#: Entries from which the symmetry of the operator is checked by a compiled scan
#: (:func:`is_symmetric`) before any transpose is built; below, the scipy
#: transpose is cheaper than loading the kernel.
SYMMETRY_KERNEL_NNZ = 1 << 20


def _transpose(mat):
    tr = mat.T.tocsr()
    tr.sort_indices()
    return tr


def is_symmetric(mat) -> bool:
    """Whether a canonical scipy CSR matrix equals its transpose, entry by entry
    (exactly), without building the transpose."""
    import numpy as np
    from ...graph import _kernels
    bad = np.zeros(mat.shape[0], dtype=np.bool_)
    with _kernels.parallel():
        _kernels.csr_asymmetric_rows(mat.indptr, mat.indices, mat.data, bad)
    return not bool(bad.any())


#: Edges per chunk of the CPU build: its temporaries stay in cache.
CHUNK_EDGES = 1 << 20


def cpu_entries(edge_index: Tensor, n: int, edge_weight: Optional[Tensor],
                 normalization: Optional[str], lambda_max: Optional[object],
                 dtype: torch.dtype, index_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """``(row, col, value)`` of the entries of :math:`\tilde{L}` (edges, then the
    diagonal), validating on the way, in two chunked passes over the edges that
    write the final arrays directly (memory-bound work at 10^8 edges: no
    full-size temporaries). Self loops are kept with value zero: the assembly sums
    them into the diagonal entry. A scalar ``lambda_max`` (or None) only."""
    E = edge_index.size(1)
    src_all, dst_all = edge_index[0], edge_index[1]
    deg = torch.zeros(n, dtype=torch.float64)
    bad = 0
    chunks = [(a, min(E, a + CHUNK_EDGES)) for a in range(0, E, CHUNK_EDGES)]
    loops = set()  # chunks with self loops (a boolean mask costs more than the arithmetic)

    def load(a: int, b: int) -> Tuple[Tensor, Tensor, Tensor]:
        s, d = src_all[a:b].long(), dst_all[a:b].long()
        if edge_weight is None:
            w = torch.ones(b - a, dtype=torch.float64)
        else:
            w = edge_weight[a:b].detach().to(torch.float64, copy=True)  # ours to modify
        if a in loops:
            w.masked_fill_(s == d, 0.0)  # get_laplacian drops self loops
        return s, d, w

    for a, b in chunks:  # pass 1: checks and degrees (over edge_index[0])
        s, d = src_all[a:b], dst_all[a:b]
        lo, hi = int(torch.minimum(s.min(), d.min())), int(torch.maximum(s.max(), d.max()))
        if lo < 0 or hi >= n:
            raise ValueError(f"Expected 'edge_index' to index the {n} nodes of x, i.e. to lie in "
                             f"[0, {n - 1}] (got {lo if lo < 0 else hi})")
        if bool((s == d).any()):
            loops.add(a)
        s, d, w = load(a, b)
        if not math.isfinite(float(w.sum())):  # one fast pass; exact count when it fails
            bad += int((~torch.isfinite(edge_weight[a:b])).sum())
        deg.index_add_(0, s, w)
    if bad:
        raise ValueError(f"Expected 'edge_weight' to be finite (got {bad} NaN or infinite "
                         f"value(s) among {E})")
    if normalization == 'sym':
        dis = deg.pow(-0.5)
        dis.masked_fill_(torch.isinf(dis), 0.0)
    elif normalization == 'rw':
        dinv = 1.0 / deg
        dinv.masked_fill_(torch.isinf(dinv), 0.0)

    def minus_off(a: int, b: int) -> Tuple[Tensor, Optional[Tensor]]:
        """-L_ij of the edges (the normalized weights), and the self loops (or None).
        index_select: several times faster than indexing with a tensor on CPU."""
        s, d, w = load(a, b)
        loop = (s == d) if a in loops else None
        if normalization is None:
            return w, loop
        if normalization == 'sym':  # (d_i^-1/2 d_j^-1/2) w_ij: exactly symmetric
            return dis.index_select(0, s).mul_(dis.index_select(0, d)).mul_(w), loop
        return dinv.index_select(0, s).mul_(w), loop

    diag = deg if normalization is None else torch.ones(n, dtype=torch.float64)
    if lambda_max is None:  # 2 max_ij L_ij over the diagonal and the edges
        lam = float(diag.max()) if n > 0 else 1.0
        for a, b in chunks:
            p, loop = minus_off(a, b)
            if loop is not None:
                if bool(loop.all()):
                    continue
                p.masked_fill_(loop, math.inf)
            lam = max(lam, -float(p.min()))
        lam *= 2.0
    else:
        lam = float(lambda_max)
    row = torch.empty(E + n, dtype=index_dtype)
    col = torch.empty(E + n, dtype=index_dtype)
    value = torch.empty(E + n, dtype=dtype)
    scale = 2.0 / lam if lam > 0 and math.isfinite(lam) else None
    for a, b in chunks:  # pass 2: the entries, row = target, column = source
        p, _ = minus_off(a, b)
        row[a:b], col[a:b] = dst_all[a:b], src_all[a:b]
        if scale is not None:
            value[a:b] = p.mul_(-scale)
        else:  # an edgeless D - A (lambda_max 0): as ChebConv, inf -> 0, NaN stays
            v = (-2.0 * p) / lam
            value[a:b] = v.masked_fill_(torch.isinf(v), 0.0)
    torch.arange(n, out=row[E:])
    col[E:] = row[E:]
    if scale is not None:
        value[E:] = diag.mul_(scale).sub_(1.0)
    else:
        v = (2.0 * diag) / lam
        value[E:] = v.masked_fill_(torch.isinf(v), 0.0).sub_(1.0)
    return row, col, value
