"""Graph Laplacians and their largest eigenvalue, as ChebConv defines them."""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from .._validation import check_choice

#: Laplacian normalizations, as in :class:`torch_geometric.nn.ChebConv`.
NORMALIZATIONS = (None, 'sym', 'rw')


def laplacian(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor], num_nodes: int,
              normalization: Optional[str] = 'sym') -> sp.csr_matrix:
    r"""Graph Laplacian as a float64 SciPy CSR matrix.

    1. :obj:`None`: :math:`\mathbf{L} = \mathbf{D} - \mathbf{W}`
    2. ``'sym'``: :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2}`
    3. ``'rw'``: :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1}\mathbf{W}`

    Self loops are ignored (as :func:`torch_geometric.utils.get_laplacian`
    does); isolated nodes get a zero row.
    """
    check_choice('normalization', normalization, NORMALIZATIONS)
    row = edge_index[0].cpu().numpy()
    col = edge_index[1].cpu().numpy()
    if edge_weight is None:
        w = np.ones(row.shape[0])
    else:
        w = edge_weight.detach().cpu().double().numpy()
    keep = row != col
    W = sp.csr_matrix((w[keep], (row[keep], col[keep])), shape=(num_nodes, num_nodes))
    deg = np.asarray(W.sum(axis=1)).ravel()
    if normalization is None:
        return (sp.diags(deg) - W).tocsr()
    with np.errstate(divide='ignore'):
        inv = 1.0 / deg
    inv[~np.isfinite(inv)] = 0.0
    eye = sp.diags((deg > 0).astype(np.float64))
    if normalization == 'sym':
        s = sp.diags(np.sqrt(inv))
        return (eye - s @ W @ s).tocsr()
    return (eye - sp.diags(inv) @ W).tocsr()


def lambda_max(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor], num_nodes: int,
               normalization: Optional[str] = 'sym', tol: float = 1e-6) -> float:
    """Largest eigenvalue of :func:`laplacian` (Lanczos, SciPy ``eigsh``).

    For ``'rw'`` the eigenvalues equal those of ``'sym'`` (the two matrices
    are similar), so the symmetric one is used. Falls back to the
    non-symmetric solver when the graph is directed.
    """
    from scipy.sparse.linalg import eigs, eigsh
    norm = 'sym' if normalization == 'rw' else normalization
    L = laplacian(edge_index, edge_weight, num_nodes, norm)
    if num_nodes < 3:
        return float(np.linalg.eigvals(L.toarray()).real.max())
    symmetric = abs(L - L.T).max() <= 1e-12 * max(abs(L).max(), 1.0)
    # A fixed starting vector: ARPACK's default is random per process, which
    # made lambda_max (and every run built on it) differ from run to run.
    v0 = np.random.default_rng(0).standard_normal(num_nodes)
    if symmetric:
        val = eigsh(L, k=1, which='LA', tol=tol, v0=v0, return_eigenvectors=False)
    else:
        L = laplacian(edge_index, edge_weight, num_nodes, normalization)
        val = eigs(L, k=1, which='LR', tol=tol, v0=v0, return_eigenvectors=False)
    return float(np.real(val).max())
