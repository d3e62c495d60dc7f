"""Graph Laplacians and their largest eigenvalue, as ChebConv defines them."""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from .._validation import check_choice

#: Laplacian normalizations, as in :class:`torch_geometric.nn.ChebConv`.
NORMALIZATIONS = (None, 'sym', 'rw')

#: How :func:`lambda_max` gets the eigenvalue: ``'eigsh'`` (ARPACK to
#: ``tol``), ``'lanczos'`` (a fixed number of Lanczos steps and a safety
#: margin: an upper estimate), ``'bound'`` (Gershgorin: 2 for normalized
#: Laplacians with non-negative weights).
LAMBDA_MAX_METHODS = ('eigsh', 'lanczos', 'bound')

#: Lanczos steps of ``method='lanczos'``.
LANCZOS_STEPS = 20
#: Relative safety margin of ``method='lanczos'``: the largest Ritz value
#: after :obj:`LANCZOS_STEPS` steps is below :math:`\lambda_{max}` by at most
#: 1.0 % on every graph measured (HEALPix nside 2-1024, k 8-40; icosahedral,
#: equiangular, Gauss-Legendre, cubed grids; random points), 2 % lifts it
#: above :math:`\lambda_{max}`.
LANCZOS_MARGIN = 0.02
#: Graphs with at most this many nodes are solved exactly (dense).
DENSE_MAX_NODES = 1024


def _weights(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor]) -> np.ndarray:
    if edge_weight is None:
        return np.ones(edge_index.size(1))
    return edge_weight.detach().cpu().double().numpy()


def _adjacency(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor],
               num_nodes: int) -> sp.csr_matrix:
    row = edge_index[0].cpu().numpy()
    col = edge_index[1].cpu().numpy()
    w = _weights(edge_index, edge_weight)
    keep = row != col
    return sp.csr_matrix((w[keep], (row[keep], col[keep])), shape=(num_nodes, num_nodes))


def _negative_degree_error(deg: np.ndarray) -> ValueError:
    node = int(np.flatnonzero(deg < 0)[0])
    return ValueError(f"Expected non-negative node degrees for normalization='sym' "
                      f"(D^-1/2 W D^-1/2), but node {node} has degree {deg[node]:.6g}: "
                      f"use normalization='rw' or None for graphs with negative weights")


def laplacian(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor], num_nodes: int,
              normalization: Optional[str] = 'sym') -> sp.csr_matrix:
    r"""Graph Laplacian as a float64 SciPy CSR matrix, equal to
    :func:`torch_geometric.utils.get_laplacian`.

    1. :obj:`None`: :math:`\mathbf{L} = \mathbf{D} - \mathbf{W}`
    2. ``'sym'``: :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2}`
    3. ``'rw'``: :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1}\mathbf{W}`

    Self loops are ignored; in the normalized Laplacians every node has 1 on
    the diagonal (isolated nodes too) and terms with a zero degree are 0.
    ``'sym'`` needs non-negative degrees (``'rw'`` and :obj:`None` take any).
    """
    check_choice('normalization', normalization, NORMALIZATIONS)
    W = _adjacency(edge_index, edge_weight, num_nodes)
    deg = np.asarray(W.sum(axis=1)).ravel()
    if normalization is None:
        return (sp.diags(deg) - W).tocsr()
    if normalization == 'sym' and (deg < 0).any():
        raise _negative_degree_error(deg)
    with np.errstate(divide='ignore'):
        inv = 1.0 / deg
    inv[~np.isfinite(inv)] = 0.0
    eye = sp.identity(num_nodes, format='csr')
    if normalization == 'sym':
        s = sp.diags(np.sqrt(inv))
        return (eye - s @ W @ s).tocsr()
    return (eye - sp.diags(inv) @ W).tocsr()


def _start(num_nodes: int) -> np.ndarray:
    # A fixed starting vector: ARPACK's default is random per process, which
    # made lambda_max (and every run built on it) differ from run to run.
    return np.random.default_rng(0).standard_normal(num_nodes)


def _dense(edge_index, edge_weight, num_nodes, normalization) -> float:
    if num_nodes == 0:
        return 0.0
    L = laplacian(edge_index, edge_weight, num_nodes, normalization).toarray()
    if np.array_equal(L, L.T):
        return float(np.linalg.eigvalsh(L)[-1])
    return float(np.linalg.eigvals(L).real.max())


def _eigsh(edge_index, edge_weight, num_nodes, normalization, tol) -> float:
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigs, eigsh
    norm = normalization
    if normalization == 'rw':
        # the eigenvalues of 'rw' are those of 'sym' (similar matrices) when
        # no degree is negative; otherwise solve the non-symmetric matrix
        deg = np.asarray(_adjacency(edge_index, edge_weight, num_nodes).sum(axis=1)).ravel()
        norm = 'sym' if (deg >= 0).all() else 'rw'
    L = laplacian(edge_index, edge_weight, num_nodes, norm)
    if num_nodes <= 2 or (L - sp.diags(L.diagonal())).count_nonzero() == 0:
        # tiny or diagonal (e.g. edgeless): ARPACK cannot start on it
        return float(L.diagonal().max()) if num_nodes > 2 else \
            _dense(edge_index, edge_weight, num_nodes, normalization)
    symmetric = abs(L - L.T).max() <= 1e-12 * max(abs(L).max(), 1.0)
    try:
        if symmetric:
            val = eigsh(L, k=1, which='LA', tol=tol, v0=_start(num_nodes),
                        return_eigenvectors=False)
        else:
            if norm == 'sym':
                L = laplacian(edge_index, edge_weight, num_nodes, normalization)
            val = eigs(L, k=1, which='LR', tol=tol, v0=_start(num_nodes),
                       return_eigenvectors=False)
    except ArpackNoConvergence as err:  # pragma: no cover - ARPACK's own limit
        val = err.eigenvalues
    except ArpackError:
        # e.g. a Krylov space that closes early (a few edges among many
        # isolated nodes); small graphs are solved densely instead
        if num_nodes > 4 * DENSE_MAX_NODES:
            raise
        return _dense(edge_index, edge_weight, num_nodes, normalization)
    return float(np.real(val).max())


def _bound(edge_index, edge_weight, num_nodes, normalization) -> float:
    # Gershgorin on D - W (None) or on I - D^-1 W ('sym' and 'rw' have the
    # same eigenvalues when the degrees are non-negative): the real part of
    # every eigenvalue is at most max_i (L_ii + sum_j |L_ij|)
    W = _adjacency(edge_index, edge_weight, num_nodes)
    deg = np.asarray(W.sum(axis=1)).ravel()
    absolute = np.asarray(abs(W).sum(axis=1)).ravel()
    if num_nodes == 0:
        return 0.0
    if normalization is None:
        return float((deg + absolute).max())
    if normalization == 'sym' and (deg < 0).any():
        raise _negative_degree_error(deg)
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.where(deg != 0, absolute / np.abs(deg), 0.0)
    return float(1.0 + ratio.max())


def _lanczos(edge_index, edge_weight, num_nodes, normalization, steps, margin,
             symmetric: Optional[bool]) -> Optional[float]:
    """The Lanczos estimate, or None where it does not apply (directed graph,
    'rw' with negative degrees)."""
    from ._lanczos import LaplacianOperator, lanczos_largest
    op = LaplacianOperator(edge_index, edge_weight, num_nodes, normalization)
    if normalization is not None and not op.normalized:  # a negative degree
        if normalization == 'sym':
            raise _negative_degree_error(op.deg)
        return None  # 'rw': not similar to a symmetric matrix
    if symmetric is None:
        symmetric = op.symmetric()
    if not symmetric:
        return None
    theta, _ = lanczos_largest(op, steps, _start(num_nodes))
    return theta * (1.0 + margin)


def lambda_max(edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor], num_nodes: int,
               normalization: Optional[str] = 'sym', tol: float = 1e-6,
               method: str = 'eigsh', symmetric: Optional[bool] = None) -> float:
    r"""Largest eigenvalue (largest real part) of :func:`laplacian`.

    Three methods (:obj:`LAMBDA_MAX_METHODS`):

    * ``'eigsh'``: ARPACK (SciPy ``eigsh``; ``eigs`` for a directed graph or
      ``'rw'`` with negative degrees) to relative accuracy ``tol``, from a
      fixed starting vector (the same value in every process). What
      :class:`torch_geometric.transforms.LaplacianLambdaMax` computes, and
      the costliest: hundreds of passes over the edges.
    * ``'lanczos'``: :obj:`LANCZOS_STEPS` Lanczos steps (matrix-free, from
      the same fixed vector) give the largest Ritz value
      :math:`\theta \le \lambda_{max}`; the result is
      :math:`\theta (1 + m)` with the safety margin :math:`m =`
      :obj:`LANCZOS_MARGIN`, an upper estimate:
      :math:`\lambda_{max} \le \theta (1 + m) \le (1 + m) \lambda_{max}`
      (the first inequality measured, not proven: see
      :obj:`LANCZOS_MARGIN`). For Chebyshev filters, whose rescaled
      spectrum :math:`2 \mathbf{L} / \lambda - \mathbf{I}` must stay inside
      :math:`[-1, 1]`. About 20 passes over the edges. Graphs of at most
      :obj:`DENSE_MAX_NODES` nodes are solved exactly (dense) instead;
      directed graphs and ``'rw'`` with negative degrees use ``'eigsh'``.
    * ``'bound'``: Gershgorin's bound, no eigensolver: 2 for ``'sym'`` and
      ``'rw'`` with non-negative weights (what :class:`~torch_geometric.nn.ChebConv`
      assumes), :math:`2 \max_i d_i` for :obj:`None` with non-negative weights.

    Args:
        tol (float): relative accuracy of ``'eigsh'``. (default: ``1e-6``)
        method (str): one of :obj:`LAMBDA_MAX_METHODS`. (default: ``'eigsh'``)
        symmetric (bool, optional): whether the graph is undirected with
            symmetric weights, if known (``'lanczos'`` checks otherwise).

    An edgeless graph gives 1 for ``'sym'`` and ``'rw'`` (the identity) and 0
    for :obj:`None`. ``'sym'`` raises a ``ValueError`` for negative degrees.
    """
    check_choice('normalization', normalization, NORMALIZATIONS)
    check_choice('method', method, LAMBDA_MAX_METHODS)
    if method == 'bound':
        return _bound(edge_index, edge_weight, num_nodes, normalization)
    if method == 'lanczos':
        if num_nodes <= DENSE_MAX_NODES:
            return _dense(edge_index, edge_weight, num_nodes, normalization)
        est = _lanczos(edge_index, edge_weight, num_nodes, normalization, LANCZOS_STEPS,
                       LANCZOS_MARGIN, symmetric)
        if est is not None:
            return est
    return _eigsh(edge_index, edge_weight, num_nodes, normalization, tol)
