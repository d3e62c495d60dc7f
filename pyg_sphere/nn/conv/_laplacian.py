r"""The operator of :class:`~pyg_sphere.nn.SphericalChebConv`: the rescaled Laplacian.

:class:`torch_geometric.nn.ChebConv` applies :math:`\tilde{L} = 2 L / \lambda_{\max} - I`;
this module builds it as a CSR matrix (int32 indices when they fit, so that MKL /
cuSPARSE use it without converting the indices on every call), together with
:math:`\tilde{L}^\top` (the very same tensors when :math:`\tilde{L}` is symmetric).

Two builds give the same operator:

* :func:`build_scaled_laplacian` validates its inputs, drops self loops, sums
  duplicate edges and detects symmetry. It syncs with the host and runs once per
  graph when the layer is ``cached``. On CPUs the CSR matrices are assembled by
  compiled passes over the rows when the edges are grouped by source (the
  graphs of :mod:`pyg_sphere.graph`), else by :mod:`scipy.sparse` (counting
  sorts, linear in the number of edges: 100 M edges in seconds, where
  ``torch.Tensor.coalesce`` took minutes); on other devices by a
  ``torch.sort`` of the entries.
* :func:`trace_scaled_laplacian` makes no host sync and has static shapes, so
  that ``torch.compile(fullgraph=True)`` traces it: self loops get weight zero
  instead of being dropped, duplicates stay (a sparse product sums them), no
  symmetry is assumed, and nothing is validated. It serves a layer compiled
  before its cache was filled, and uncached layers under ``torch.compile``.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .._threads import one_thread
from ._laplacian_cpu import cpu_entries, grouped_csr, scipy_csr

#: Allowed values of ``normalization`` (same as :class:`torch_geometric.nn.ChebConv`).
NORMALIZATIONS = (None, 'sym', 'rw')

_INT32_MAX = 2**31 - 1

#: Device types whose eager build assembles the CSR matrices with scipy.
SCIPY_DEVICES = ('cpu', )


class ScaledLaplacian(NamedTuple):
    r"""The rescaled Laplacian :math:`\tilde{L}` in CSR form, as plain tensors.

    Row ``i`` holds the coefficients that ``ChebConv`` uses to aggregate the
    messages received by node ``i`` (rows are targets, columns sources).
    ``crow_t, col_t, value_t`` hold :math:`\tilde{L}^\top`; they are the very
    same tensors as ``crow, col, value`` when ``symmetric`` is :obj:`True`.
    """
    crow: Tensor
    col: Tensor
    value: Tensor
    crow_t: Tensor
    col_t: Tensor
    value_t: Tensor
    symmetric: bool
    num_nodes: int

    def to(self, dtype: torch.dtype, device: torch.device) -> 'ScaledLaplacian':
        """Cast the values (and move everything); a no-op when nothing changes."""
        value = self.value.to(device=device, dtype=dtype)
        if value is self.value and self.crow.device == device:
            return self
        crow, col = self.crow.to(device), self.col.to(device)
        if self.symmetric:
            crow_t, col_t, value_t = crow, col, value
        else:
            crow_t, col_t = self.crow_t.to(device), self.col_t.to(device)
            value_t = self.value_t.to(device=device, dtype=dtype)
        return ScaledLaplacian(crow, col, value, crow_t, col_t, value_t, self.symmetric,
                               self.num_nodes)

    def to_sparse_csr(self, transpose: bool = False) -> Tensor:
        """:math:`\\tilde{L}` (or its transpose) as a ``torch.sparse_csr`` tensor."""
        if transpose:
            return csr(self.crow_t, self.col_t, self.value_t, self.num_nodes)
        return csr(self.crow, self.col, self.value, self.num_nodes)


_csr_warning_silenced = False


def csr(crow: Tensor, col: Tensor, value: Tensor, n: int) -> Tensor:
    """Wrap CSR parts in a ``torch.sparse_csr`` tensor (no copy)."""
    # PyTorch warns once per process that sparse CSR support is in beta: let
    # that one warning happen under a filter (a catch_warnings block on every
    # call costs more than the small products it would wrap).
    global _csr_warning_silenced
    if not _csr_warning_silenced:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
            out = torch.sparse_csr_tensor(crow, col, value, (n, n), check_invariants=False)
        _csr_warning_silenced = True
        return out
    return torch.sparse_csr_tensor(crow, col, value, (n, n), check_invariants=False)


def check_lambda_max_number(lambda_max: object) -> None:
    """A Python number ``lambda_max`` must be finite and > 0 (checked without a sync)."""
    if isinstance(lambda_max, bool) or (lambda_max is not None and not isinstance(
            lambda_max, (numbers.Real, Tensor))):
        raise ValueError(f"Expected 'lambda_max' to be None, a positive number or a tensor "
                         f"(got {lambda_max!r})")
    if isinstance(lambda_max, numbers.Real) and not (math.isfinite(lambda_max)
                                                     and lambda_max > 0):
        raise ValueError(f"Expected 'lambda_max' to be finite and > 0, the largest "
                         f"eigenvalue of the Laplacian (got {lambda_max})")


def _values(src: Tensor, dst: Tensor, weight: Tensor, n: int, normalization: Optional[str],
            lambda_max: Optional[object], batch: Optional[Tensor], loop: Optional[Tensor],
            dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    r"""Entries of :math:`\tilde{L}`: ``off [E]`` for the edges, ``diag [n]``.

    ``loop`` marks self loops left in the edge list (weight zero, value zero);
    :obj:`None` when they were dropped.
    """
    device = weight.device
    if loop is not None:
        weight = torch.where(loop, 0.0, weight)
    deg = torch.zeros(n, dtype=dtype, device=device).index_add_(0, src, weight)
    if normalization is None:
        off, diag = -weight, deg
    elif normalization == 'sym':
        dis = deg.pow(-0.5)
        dis = torch.where(torch.isinf(dis), 0.0, dis)
        # (d_i^-1/2 d_j^-1/2) w_ij: a product that is exactly symmetric
        off, diag = -((dis[src] * dis[dst]) * weight), torch.ones_like(deg)
    else:
        dinv = 1.0 / deg
        dinv = torch.where(torch.isinf(dinv), 0.0, dinv)
        off, diag = -(dinv[src] * weight), torch.ones_like(deg)

    # ChebConv.__norm__: lambda_max, rescaling, -1 on the diagonal.
    if lambda_max is None:
        cand = off if loop is None else torch.where(loop, -math.inf, off)
        lam = 2.0 * torch.cat([cand, diag]).max() if n > 0 else torch.ones((), dtype=dtype)
        lam = lam.to(device)
    elif isinstance(lambda_max, Tensor):
        lam = lambda_max.detach().to(device=device, dtype=dtype)
    else:
        lam = torch.tensor(float(lambda_max), dtype=dtype, device=device)
    if lam.numel() > 1:
        assert batch is not None
        lam = lam.reshape(-1)
        lam_off, lam_diag = lam[batch[src]], lam[batch]
    else:
        lam_off = lam_diag = lam.reshape(())
    off = (2.0 * off) / lam_off
    diag = (2.0 * diag) / lam_diag
    off = torch.where(torch.isinf(off), 0.0, off)
    diag = torch.where(torch.isinf(diag), 0.0, diag) - 1
    return off, diag


def _values_eager(src: Tensor, dst: Tensor, weight: Tensor, n: int,
                  normalization: Optional[str], lambda_max: Optional[object],
                  batch: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """:func:`_values` for the eager build (self loops dropped), in a few in-place
    passes over the edges: the common case of one positive ``lambda_max`` (given
    or computed) scales by a Python number; anything else takes :func:`_values`."""
    if isinstance(lambda_max, Tensor) and lambda_max.numel() > 1:
        return _values(src, dst, weight, n, normalization, lambda_max, batch, None,
                       torch.float64)
    deg = torch.zeros(n, dtype=torch.float64, device=weight.device).index_add_(0, src, weight)
    if normalization is None:
        off, diag = weight.clone(), deg
    elif normalization == 'sym':
        dis = deg.pow(-0.5)
        dis.masked_fill_(torch.isinf(dis), 0.0)
        # (d_i^-1/2 d_j^-1/2) w_ij: a product that is exactly symmetric
        off = dis.index_select(0, src).mul_(dis.index_select(0, dst)).mul_(weight)
        diag = torch.ones_like(deg)
    else:
        dinv = 1.0 / deg
        dinv.masked_fill_(torch.isinf(dinv), 0.0)
        off, diag = dinv.index_select(0, src).mul_(weight), torch.ones_like(deg)
    if lambda_max is None:  # 2 max_ij L_ij, L = diag - off
        lam = float(diag.max()) if n > 0 else 1.0
        if off.numel():
            lam = max(lam, -float(off.min()))
        lam *= 2.0
    else:
        lam = float(lambda_max)
    if not (lam > 0 and math.isfinite(lam)):  # an edgeless D - A: as ChebConv
        return _values(src, dst, weight, n, normalization, lambda_max, batch, None,
                       torch.float64)
    scale = 2.0 / lam
    return off.mul_(-scale), diag.mul(scale).sub_(1.0)


def _index_dtype(n: int, nnz: int) -> torch.dtype:
    return torch.int32 if max(n, nnz) < _INT32_MAX else torch.int64


def _sorted_csr(row: Tensor, col: Tensor, value: Tensor, n: int, dedupe: bool,
                index_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """CSR parts of the entries ``(row, col, value)`` by a sort of ``row * n + col``;
    ``dedupe`` sums duplicate entries (a data-dependent size: not traceable)."""
    key, order = torch.sort(row.long() * n + col.long())
    value = value[order]
    if dedupe and key.numel() > 1:
        key, inverse = torch.unique_consecutive(key, return_inverse=True)
        value = value.new_zeros(key.numel()).index_add_(0, inverse, value)
    row, col = key // n, key % n
    crow = torch.searchsorted(row, torch.arange(n + 1, device=row.device))
    return crow.to(index_dtype), col.to(index_dtype), value


def _entries(src: Tensor, dst: Tensor, off: Tensor, diag: Tensor, n: int,
             index_dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """``(row, col, value)`` of the edges then the diagonal; row = target, column =
    source, so that ``out[i] = sum_j L~[i, j] x[j]``."""
    nodes = torch.arange(n, dtype=index_dtype, device=src.device)
    row = torch.cat([dst.to(index_dtype), nodes])
    col = torch.cat([src.to(index_dtype), nodes])
    return row, col, torch.cat([off, diag])


@torch.no_grad()
def build_scaled_laplacian(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Optional[Tensor] = None,
    normalization: Optional[str] = 'sym',
    lambda_max: Optional[object] = None,
    batch: Optional[Tensor] = None,
    dtype: torch.dtype = torch.float64,
) -> ScaledLaplacian:
    r"""The operator applied by :class:`torch_geometric.nn.ChebConv`, in CSR form.

    Mirrors ``ChebConv.__norm__``: self loops of the input are dropped, the
    Laplacian of :func:`torch_geometric.utils.get_laplacian` is built
    (:math:`D - A`, :math:`I - D^{-1/2} A D^{-1/2}` or :math:`I - D^{-1} A`, with
    degrees summed over ``edge_index[0]``), and rescaled as

    .. math::
        \tilde{L} = \frac{2 L}{\lambda_{\max}} - I,

    with :math:`\lambda_{\max} = 2 \max_{ij} L_{ij}` when ``lambda_max`` is
    :obj:`None` (that is :math:`2` for ``'sym'`` and ``'rw'``, and twice the
    largest degree, a Gershgorin bound, for ``None``), and one value per graph
    (indexed by ``batch``) when ``lambda_max`` has more than one entry.
    Entry :math:`(i, j)` of the result is the coefficient of the message sent
    along the edge :math:`j \to i`, as in ``ChebConv``'s aggregation.

    Unlike ``ChebConv``, the normalized weights are computed as
    :math:`(d_i^{-1/2} d_j^{-1/2}) w_{ij}`, a product that is exactly symmetric,
    so that the symmetry of the operator (checked exactly, entry by entry) can
    be used in the backward pass. The results differ by rounding only. The
    entries are computed in float64 and rounded once to ``dtype``.

    Syncs with the host (validation, assembly): call it once and cache it.

    Args:
        edge_index (torch.Tensor): Edges ``[2, E]`` (source, target).
        num_nodes (int): Number of nodes :math:`n`.
        edge_weight (torch.Tensor, optional): Finite weights ``[E]``; treated
            as constants. (default: :obj:`None`, all ones)
        normalization (str, optional): :obj:`None`, ``'sym'`` or ``'rw'``.
            (default: ``'sym'``)
        lambda_max (float or torch.Tensor, optional): Largest eigenvalue, a
            finite positive scalar or one value per graph. (default: :obj:`None`)
        batch (torch.Tensor, optional): Graph index of each node ``[n]``.
            (default: :obj:`None`)
        dtype (torch.dtype, optional): Precision of the values.
            (default: :obj:`torch.float64`)

    Returns:
        ScaledLaplacian: CSR parts of :math:`\tilde{L}` and :math:`\tilde{L}^\top`.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"Expected 'normalization' to be one of {NORMALIZATIONS} "
                         f"(got {normalization!r})")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)
        raise ValueError(f"Expected 'edge_index' to be a tensor of shape [2, E] (got {got})")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise ValueError(f"Expected 'edge_index' to hold integers (got {edge_index.dtype})")
    check_lambda_max_number(lambda_max)
    device = edge_index.device
    n = int(num_nodes)
    num_edges = edge_index.size(1)
    if edge_weight is not None and (edge_weight.dim() != 1 or edge_weight.numel() != num_edges):
        raise ValueError(f"Expected 'edge_weight' to have shape [E] = [{num_edges}] "
                         f"(got {tuple(edge_weight.shape)})")
    if batch is not None and (batch.dim() != 1 or batch.numel() != n):
        raise ValueError(f"Expected 'batch' to have shape [n] = [{n}] (got {tuple(batch.shape)})")
    if isinstance(lambda_max, Tensor):
        lam = lambda_max.detach()
        if lam.numel() == 0 or not bool((torch.isfinite(lam) & (lam > 0)).all()):
            raise ValueError(f"Expected 'lambda_max' to be finite and > 0, the largest "
                             f"eigenvalue of the Laplacian (got "
                             f"{lam.item() if lam.numel() == 1 else lam.flatten()[:8].tolist()})")
        if lam.numel() > 1:
            if batch is None:
                raise ValueError(f"Expected 'lambda_max' to be a scalar when 'batch' is None "
                                 f"(got {lam.numel()} values)")
            batch = batch.to(device).long()
            if n > 0 and int(batch.max()) >= lam.numel():
                raise ValueError(f"Expected 'lambda_max' to hold one value per graph, i.e. "
                                 f"{int(batch.max()) + 1} values (got {lam.numel()})")

    index_dtype = _index_dtype(n, num_edges + n)
    one_lambda = not (isinstance(lambda_max, Tensor) and lambda_max.numel() > 1)
    if device.type in SCIPY_DEVICES and dtype in (torch.float32, torch.float64) and one_lambda:
        parts = grouped_csr(edge_index, n, edge_weight, normalization, lambda_max, dtype,
                            index_dtype)
        if parts is not None:
            return ScaledLaplacian(*parts, n)
        with one_thread():  # memory-bound passes: robust, and as fast, on one thread
            entries = list(cpu_entries(edge_index, n, edge_weight, normalization, lambda_max,
                                        dtype, index_dtype))
            return ScaledLaplacian(*scipy_csr(entries, n), n)

    edge_index = edge_index.long()
    if num_edges > 0:
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"Expected 'edge_index' to index the {n} nodes of x, i.e. to lie in "
                             f"[0, {n - 1}] (got {lo if lo < 0 else hi})")
    if edge_weight is None:
        weight = torch.ones(num_edges, dtype=torch.float64, device=device)
    else:
        weight = edge_weight.detach().to(device=device, dtype=torch.float64)
        bad = int((~torch.isfinite(weight)).sum())
        if bad:
            raise ValueError(f"Expected 'edge_weight' to be finite (got {bad} NaN or infinite "
                             f"value(s) among {num_edges})")
    # get_laplacian: drop self loops, degrees over edge_index[0].
    keep = edge_index[0] != edge_index[1]
    if not bool(keep.all()):
        edge_index, weight = edge_index[:, keep], weight[keep]
    del keep
    src, dst = edge_index[0], edge_index[1]
    off, diag = _values_eager(src, dst, weight, n, normalization, lambda_max, batch)
    del weight
    row, col, value = _entries(src, dst, off.to(dtype), diag.to(dtype), n, index_dtype)
    del src, dst, edge_index, off, diag
    if device.type in SCIPY_DEVICES and dtype in (torch.float32, torch.float64):
        entries = [row, col, value]
        del row, col, value
        return ScaledLaplacian(*scipy_csr(entries, n), n)
    crow, col_, value_ = _sorted_csr(row, col, value, n, True, index_dtype)
    crow_t, col_t, value_t = _sorted_csr(col, row, value, n, True, index_dtype)
    symmetric = (torch.equal(crow, crow_t) and torch.equal(col_, col_t)
                 and torch.equal(value_, value_t))
    if symmetric:
        crow_t, col_t, value_t = crow, col_, value_
    return ScaledLaplacian(crow, col_, value_, crow_t, col_t, value_t, symmetric, n)


def trace_scaled_laplacian(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Optional[Tensor] = None,
    normalization: Optional[str] = 'sym',
    lambda_max: Optional[object] = None,
    batch: Optional[Tensor] = None,
    dtype: torch.dtype = torch.float64,
) -> ScaledLaplacian:
    r"""The operator of :func:`build_scaled_laplacian`, without a host sync.

    Static shapes throughout (``E + n`` entries, self loops kept with value
    zero, duplicates kept), so that ``torch.compile(fullgraph=True)`` traces
    it; :math:`\tilde{L}^\top` is always built explicitly. Nothing that needs
    the values is validated: use the eager build (a ``cached`` layer's first
    eager call) to have the inputs checked.
    """
    device = edge_index.device
    n = num_nodes
    edge_index = edge_index.long()
    src, dst = edge_index[0], edge_index[1]
    if edge_weight is None:
        weight = torch.ones(src.shape, dtype=torch.float64, device=device)
    else:
        weight = edge_weight.detach().to(device=device, dtype=torch.float64)
    if batch is not None:
        batch = batch.to(device).long()
    off, diag = _values(src, dst, weight, n, normalization, lambda_max, batch, src == dst,
                        torch.float64)
    index_dtype = _index_dtype(n, src.numel() + n)
    row, col, value = _entries(src, dst, off.to(dtype), diag.to(dtype), n, index_dtype)
    crow, col_, value_ = _sorted_csr(row, col, value, n, False, index_dtype)
    crow_t, col_t, value_t = _sorted_csr(col, row, value, n, False, index_dtype)
    return ScaledLaplacian(crow, col_, value_, crow_t, col_t, value_t, False, n)
