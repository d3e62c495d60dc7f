"""Chebyshev graph convolution for maps on the sphere (DeepSphere)."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import zeros
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor

from ..._validation import check_choice, check_int
from ._cheb_kernel import cheb_filter, compute_dtype
from ._laplacian import (NORMALIZATIONS, ScaledLaplacian, build_scaled_laplacian,
                         check_lambda_max_number, trace_scaled_laplacian)

Adj = Union[Tensor, SparseTensor]

# Keyword arguments of MessagePassing that ChebConv accepts and that this layer
# honours (only with these values).
_SUPPORTED_KWARGS = {'aggr': ('add', 'sum'), 'flow': ('source_to_target', ), 'node_dim': (-2, )}


class SphericalChebConv(torch.nn.Module):
    r"""Chebyshev spectral graph convolution, a fast drop-in for
    :class:`torch_geometric.nn.ChebConv`, from the `"DeepSphere: a graph-based
    spherical CNN" <https://arxiv.org/abs/2012.15000>`_ paper (filters of
    `"Convolutional Neural Networks on Graphs with Fast Localized Spectral
    Filtering" <https://arxiv.org/abs/1606.09375>`_).

    .. math::
        \mathbf{X}^{\prime} = \sum_{k=0}^{K-1} T_k(\tilde{\mathbf{L}})\,
        \mathbf{X}\, \mathbf{\Theta}^{(k)} + \mathbf{b},
        \qquad \tilde{\mathbf{L}} = \frac{2\mathbf{L}}{\lambda_{\max}} - \mathbf{I},

    with the Chebyshev polynomials :math:`T_0(\tilde{L}) X = X`,
    :math:`T_1(\tilde{L}) X = \tilde{L} X` and

    .. math::
        T_k(\tilde{\mathbf{L}}) \mathbf{X} = 2 \tilde{\mathbf{L}}\,
        T_{k-1}(\tilde{\mathbf{L}}) \mathbf{X} - T_{k-2}(\tilde{\mathbf{L}}) \mathbf{X}.

    Same arguments, parameters (``lins.k.weight``, ``bias``), initialization and
    results as :class:`~torch_geometric.nn.ChebConv` (up to rounding), so that
    ``state_dict`` s load from one into the other. The Laplacian :math:`L` is that
    of :func:`torch_geometric.utils.get_laplacian` (self loops of the input
    dropped); :obj:`lambda_max=None` means :math:`2 \max_{ij} L_{ij}` as in
    ``ChebConv`` (exactly :math:`2` for ``'sym'`` and ``'rw'``, a bound on the
    spectrum for :obj:`None`).

    Differences from ``ChebConv``:

    * ``x`` may also be a dense batch ``[B, n, F]`` of maps sampled on one
      graph (e.g. HEALPix maps, pixel :math:`i` of every map at node :math:`i`).
      :math:`\tilde{L}` is built once as a CSR matrix and the filter runs as
      ``K - 1`` sparse-dense products and ``K`` small GEMMs (Clenshaw's
      recurrence, weights applied first), on the whole batch folded into the
      feature axis (``[n, B * F]``) on GPUs, map by map on CPUs (cache-sized
      work, no layout copies); the input is the only activation saved for the
      backward pass.
    * ``edge_weight`` (and ``lambda_max``) are treated as constants: no gradient
      flows to them.
    * With ``cached=True``, :math:`\tilde{L}` is built on the first call and
      reused afterwards, whatever ``edge_index``, ``edge_weight``, ``batch`` and
      ``lambda_max`` are passed: the cache assumes the same graph on every call
      (as ``cached`` does in :class:`~torch_geometric.nn.GCNConv`). It holds
      :math:`\tilde{L}` in the dtype and on the device of ``x`` and is rebuilt,
      from the arguments of that call, if they change (it follows ``.to()``
      when that loses no precision). :meth:`reset_parameters` clears it;
      :meth:`cache_laplacian` fills it ahead of the first call. The cached
      forward does not sync with the host.
    * ``torch.compile(fullgraph=True)`` works from a cold start: with nothing
      cached (or ``cached=False``), the compiled layer builds
      :math:`\tilde{L}` inside the graph on every call, without a host sync
      and without validating the graph (static shapes: self loops weighted
      zero, duplicate edges kept, summed by the products). To compile a
      ``cached`` layer that reuses its operator, fill the cache first
      (:meth:`cache_laplacian` or one eager call); the models of
      :mod:`pyg_sphere.nn.models` do so at construction.
    * ``lambda_max`` must be finite and positive and ``edge_weight`` finite:
      checked when :math:`\tilde{L}` is built eagerly (a ``ValueError``),
      a Python-number ``lambda_max`` on every call.
    * Half-precision inputs (``float16``, ``bfloat16``) are filtered in
      float32 (CPU sparse kernels have no half-precision products) and the
      output rounded once to the input's dtype.
    * ``in_channels=-1`` (lazy initialization) is not supported.

    The layer does not depend on the pixel ordering (HEALPix RING or NESTED,
    or any other sampling): the graph alone says which nodes are neighbours;
    only the pooling layers need NESTED. Without ``cached``, :math:`\tilde{L}`
    is rebuilt on every call (as ``ChebConv`` does), which syncs with the host.

    A 2-D ``x`` is the single-map case ``B = 1``. A :class:`~torch_geometric.data.Batch`
    of graphs (``batch`` given) runs through the same kernel on the
    block-diagonal graph, with one ``lambda_max`` per graph if a tensor of
    ``num_graphs`` values is given. A sparse adjacency (``torch.sparse`` COO/CSR or
    :class:`torch_sparse.SparseTensor`) may replace ``edge_index``; as in PyG it is
    read as the transposed adjacency ``adj_t`` (entry :math:`(i, j)` weights the
    edge :math:`j \to i`) and its values are the edge weights.

    Args:
        in_channels (int): Size of each input sample :math:`F_{in}`.
        out_channels (int): Size of each output sample :math:`F_{out}`.
        K (int): Chebyshev filter size :math:`K \geq 1` (polynomial order
            :math:`K - 1`).
        normalization (str, optional): Normalization of the graph Laplacian:
            :obj:`None` (:math:`L = D - A`), ``'sym'``
            (:math:`L = I - D^{-1/2} A D^{-1/2}`) or ``'rw'``
            (:math:`L = I - D^{-1} A`). (default: ``'sym'``)
        bias (bool, optional): If :obj:`False`, the layer learns no additive
            bias. (default: :obj:`True`)
        cached (bool, optional): If :obj:`True`, build :math:`\tilde{L}` on the
            first call and reuse it (same graph assumed).
            (default: :obj:`False`)
        **kwargs (optional): ``ChebConv``'s ``MessagePassing`` arguments, accepted
            with their default values only (``aggr='add'``,
            ``flow='source_to_target'``, ``node_dim=-2``).

    Shapes:
        - **input:**
          node features :math:`(n, F_{in})` or a batch of maps
          :math:`(B, n, F_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(n, n)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*,
          batch vector :math:`(n)` *(optional)*,
          maximum :obj:`lambda` value :math:`()` or :math:`(|\mathcal{G}|)`
          *(optional)*
        - **output:** :math:`(n, F_{out})` or :math:`(B, n, F_{out})`. On GPUs
          the batched output is a view of node-major memory ``[n, B, F_out]``
          (``.transpose(0, 1)``), which the next layer consumes without a copy;
          use ``.reshape`` rather than ``.view`` on it.

    Example:
        >>> import torch
        >>> from torch_geometric.utils import to_undirected
        >>> from pyg_sphere.nn import SphericalChebConv
        >>> edge_index = to_undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]))
        >>> conv = SphericalChebConv(16, 32, K=3, cached=True)
        >>> conv
        SphericalChebConv(16, 32, K=3, normalization=sym)
        >>> conv(torch.randn(8, 4, 16), edge_index).shape
        torch.Size([8, 4, 32])
    """
    _cached_laplacian: Optional[ScaledLaplacian]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        normalization: Optional[str] = 'sym',
        bias: bool = True,
        cached: bool = False,
        **kwargs: Any,
    ):
        super().__init__()
        in_channels = check_int('in_channels', in_channels, minimum=1)
        out_channels = check_int('out_channels', out_channels, minimum=1)
        K = check_int('K', K, minimum=1)
        check_choice('normalization', normalization, NORMALIZATIONS)
        for key, value in kwargs.items():
            if key not in _SUPPORTED_KWARGS:
                raise ValueError(f"Unexpected keyword argument '{key}' (SphericalChebConv "
                                 f"accepts {sorted(_SUPPORTED_KWARGS)} with their defaults)")
            check_choice(key, value, _SUPPORTED_KWARGS[key])

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalization = normalization
        self.cached = bool(cached)
        self.lins = torch.nn.ModuleList([
            Linear(in_channels, out_channels, bias=False, weight_initializer='glorot')
            for _ in range(K)
        ])
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)
        self._cached_laplacian = None
        self.reset_parameters()

    @property
    def K(self) -> int:
        """Chebyshev filter size (number of weight matrices)."""
        return len(self.lins)

    def reset_parameters(self):
        r"""Re-initialize the weights (Glorot) and the bias (zeros); clear the cache."""
        for lin in self.lins:
            lin.reset_parameters()
        zeros(self.bias)
        self._cached_laplacian = None

    def _apply(self, fn, recurse=True):
        # The cache follows the module (.to(device), .double(), ...) when that
        # loses nothing: moves, and casts to a lower precision, which give what
        # a rebuild would. A cast to a higher precision drops it instead: the
        # next call rebuilds it from its graph, in float64 rounded once.
        super()._apply(fn, recurse)
        lap = self._cached_laplacian
        if lap is not None:
            probe = fn(lap.value[:0])
            dtype = compute_dtype(probe.dtype)
            if torch.finfo(dtype).eps < torch.finfo(lap.value.dtype).eps:
                self._cached_laplacian = None
            else:
                self._cached_laplacian = lap.to(dtype, probe.device)
        return self

    def laplacian(
        self,
        edge_index: Adj,
        num_nodes: int,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        lambda_max: Optional[Union[float, Tensor]] = None,
        dtype: torch.dtype = torch.float64,
    ) -> ScaledLaplacian:
        r"""Build :math:`\tilde{L}` (CSR parts, values in ``dtype``), syncing with the host."""
        edge_index, edge_weight = _as_edge_index(edge_index, edge_weight, num_nodes)
        return build_scaled_laplacian(edge_index, num_nodes, edge_weight, self.normalization,
                                      lambda_max, batch, dtype=dtype)

    def cache_laplacian(
        self,
        edge_index: Adj,
        num_nodes: int,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        lambda_max: Optional[Union[float, Tensor]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        r"""Build :math:`\tilde{L}` now and cache it (``cached=True`` only), as the
        first call would: afterwards no call builds it, so that a
        ``torch.compile`` d layer runs on the cache from its first call.

        ``dtype`` is the dtype of the inputs to come (default: the default
        dtype); the graph's device is used.
        """
        if not self.cached:
            raise ValueError("Expected cached=True to cache the Laplacian (got a layer built "
                             "with cached=False, which rebuilds it on every call)")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self._cached_laplacian = self.laplacian(edge_index, num_nodes, edge_weight, batch,
                                                lambda_max, dtype=compute_dtype(dtype))

    def forward(
        self,
        x: Tensor,
        edge_index: Adj,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        lambda_max: Optional[Union[float, Tensor]] = None,
    ) -> Tensor:
        lap, weight = self.operands(x, edge_index, edge_weight, batch, lambda_max)
        if x.dim() == 2:
            return cheb_filter(x.unsqueeze(0), weight, self.bias, lap).squeeze(0)
        return cheb_filter(x, weight, self.bias, lap)

    def operands(
        self,
        x: Tensor,
        edge_index: Adj,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        lambda_max: Optional[Union[float, Tensor]] = None,
    ) -> Tuple[ScaledLaplacian, Tensor]:
        r"""Check a call's arguments and return what the filter needs: :math:`\tilde{L}`
        (the cache, or built for this call) and the stacked weights ``[K, F_out, F_in]``."""
        # Shape checks on Python ints: no host sync, and under torch.compile
        # they are decided while tracing (torch._check_value's message closure
        # is not traceable by every supported torch version).
        ndim, n, f_in = x.dim(), x.size(-2), x.size(-1)
        if ndim != 2 and ndim != 3:
            raise ValueError(f"Expected x to have shape [n, F] or [B, n, F] (got "
                             f"{list(x.shape)})")
        if f_in != self.in_channels:
            raise ValueError(f"Expected x to have in_channels={self.in_channels} features in "
                             f"its last dimension (got {f_in})")
        if not x.is_floating_point():
            raise ValueError(f"Expected x to be a floating-point tensor (got {x.dtype})")
        check_lambda_max_number(lambda_max)
        lap = self._cached_laplacian
        dtype = compute_dtype(x.dtype)
        compiling = torch.compiler.is_compiling()
        if lap is not None and (lap.value.dtype != dtype or lap.value.device != x.device):
            # Eager: rebuilt from this call's graph (in float64, rounded once).
            # Compiled: converted, as a rebuild would sync.
            lap = lap.to(dtype, x.device) if compiling else None
        if lap is None:
            if compiling:  # a cold compile: built in the graph, for this call only
                edge_index, edge_weight = _as_edge_index(edge_index, edge_weight, n)
                lap = trace_scaled_laplacian(edge_index, n, edge_weight, self.normalization,
                                             lambda_max, batch, dtype=dtype)
            else:
                lap = self.laplacian(edge_index, n, edge_weight, batch, lambda_max,
                                     dtype=dtype)
                if lap.crow.device != x.device:
                    lap = lap.to(dtype, x.device)
                if self.cached:
                    self._cached_laplacian = lap
        if n != lap.num_nodes:
            raise ValueError(f"Expected x to have {lap.num_nodes} nodes in dimension -2, the "
                             f"nodes of the graph its Laplacian was built (or cached) for "
                             f"(got {n})")

        return lap, torch.stack([lin.weight for lin in self.lins])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, K={len(self.lins)}, '
                f'normalization={self.normalization})')


def _as_edge_index(edge_index: Adj, edge_weight: Optional[Tensor],
                   num_nodes: int) -> Tuple[Tensor, Optional[Tensor]]:
    """Edges ``[2, E]`` (source, target) and weights from any PyG adjacency."""
    if isinstance(edge_index, SparseTensor) or is_torch_sparse_tensor(edge_index):
        if edge_weight is not None:
            raise ValueError("Expected 'edge_weight' to be None when 'edge_index' is a sparse "
                             "adjacency (its values are the edge weights)")
        size = tuple(edge_index.sizes() if isinstance(edge_index, SparseTensor)
                     else edge_index.shape)
        if size[:2] != (num_nodes, num_nodes):
            raise ValueError(f"Expected the sparse adjacency to have shape [n, n] = "
                             f"[{num_nodes}, {num_nodes}] for the nodes of x (got {list(size)})")
        if isinstance(edge_index, SparseTensor):
            row, col, value = edge_index.coo()
        else:
            adj = edge_index.to_sparse_coo().coalesce()
            (row, col), value = adj.indices(), adj.values()
        # adj_t[i, j] weights the edge j -> i: source = column, target = row.
        return torch.stack([col, row]), value
    return edge_index, edge_weight
