"""Pooling over the clusters of a coarsened sampling."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from ..._validation import check_choice
from ._cluster import (GATHER_MAX_PADDING, POOL_PATHS, POOL_REDUCES, as_batched, check_cluster,
                       check_shape, contiguous_group, first_members, member_table)


class SpherePool(torch.nn.Module):
    r"""Pools node features over the clusters of a coarsened sampling
    (:func:`pyg_sphere.samplings.coarsen.coarsen`), as in `DeepSphere
    (Defferrard et al. 2020) <https://arxiv.org/abs/2012.15000>`_:

    .. math::
        \mathbf{x}'_c = \max_{i \,:\, \mathrm{cluster}(i) = c} \mathbf{x}_i
        \quad \text{or} \quad
        \mathbf{x}'_c = \frac{1}{|\{i : \mathrm{cluster}(i) = c\}|}
        \sum_{i \,:\, \mathrm{cluster}(i) = c} \mathbf{x}_i

    (per channel), or with ``reduce='keep'`` :math:`\mathbf{x}'_c =
    \mathbf{x}_{\min\{i : \mathrm{cluster}(i) = c\}}`, the subsampling of
    `Jiang et al. (2019) <https://arxiv.org/abs/1901.02039>`_ that keeps the
    coarse vertices of an icosahedral grid (``x[:, :n_coarse]``). Fine nodes
    with a negative cluster (dropped pixels of a partial sky) are ignored.

    The cluster map is analysed once, here, and a computation path picked
    (``path='auto'``): a reshape to ``[B, c, n / c, F]`` when
    ``cluster == arange(n) // (n / c)`` (HEALPix NESTED full sky, where the
    :math:`4^m` children of a pixel are contiguous); otherwise, for the
    maximum, a gather through a padded table of the members of each cluster
    when that table is at most :obj:`GATHER_MAX_PADDING` times the number of
    nodes (every other built-in sampling), and ``scatter_reduce`` (max) /
    ``index_add`` (mean) in the remaining cases. All paths agree (including
    which maximum is picked on ties: the lowest node index) and ``forward``
    makes no host synchronisation, so it compiles with
    ``torch.compile(fullgraph=True)``.

    Batches: a dense ``[B, n, F]`` tensor, or PyG's node layout ``[B * n, F]``
    of ``B`` maps of the same sampling (as
    :class:`~torch_geometric.data.Batch` concatenates them). For a ``Batch`` of
    maps of different samplings, build the module from the batched cluster
    map of a :class:`~pyg_sphere.transforms.SpherePyramid`
    (``SpherePool(batch.cluster_1, int(batch.num_nodes_1.sum()))``, whose
    values are already offset per graph), or offset one map with
    :func:`sphere_pool_batch`.

    Max pooling can return the argmax indices (like
    :class:`torch.nn.MaxPool2d`) for :class:`SphereUnpool` with
    ``mode='max_indices'``; gradients flow to the argmax only.

    Args:
        cluster (torch.Tensor): coarse node of each fine node, LongTensor [n],
            negative for dropped nodes; every cluster needs a member.
        num_clusters (int, optional): number of coarse nodes.
            (default: :obj:`cluster.max() + 1`)
        reduce (str, optional): one of :obj:`POOL_REDUCES`: ``'max'``,
            ``'mean'`` or ``'keep'``. (default: ``'max'``)
        return_indices (bool, optional): also return the argmax indices
            (``reduce='max'`` only). (default: :obj:`False`)
        path (str, optional): one of :obj:`POOL_PATHS`, to force a
            computation path (for tests and benchmarks). (default: ``'auto'``)

    Shapes:
        - **input:** node features :math:`(B, n, F)` or :math:`(B \cdot n, F)`,
          optional batch vector :math:`(B \cdot n)` (2-D input only)
        - **output:** :math:`(B, c, F)` or :math:`(B \cdot c, F)`; with
          ``return_indices``, also the argmax indices of the same shape (fine
          node indices in ``[0, n)``, or in ``[0, B n)`` for 2-D input); when a
          batch vector is given, the coarse batch vector :math:`(B \cdot c)`
          comes last: the batch entry of each cluster's last (highest-index)
          member, as :func:`torch_geometric.nn.pool.max_pool_x` gives it (the
          map's graph id when ``batch`` holds one id per map; not checked,
          which would sync).

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> from pyg_sphere.samplings.coarsen import coarsen
        >>> coarse, cluster = coarsen(healpix(4))
        >>> pool = SpherePool(cluster, coarse.num_nodes, reduce='max')
        >>> pool
        SpherePool(192 -> 48, reduce=max, path=reshape)
        >>> pool(torch.randn(2, 192, 16)).shape
        torch.Size([2, 48, 16])
    """
    def __init__(self, cluster: Tensor, num_clusters: Optional[int] = None,
                 reduce: str = 'max', return_indices: bool = False, path: str = 'auto'):
        super().__init__()
        self.reduce = check_choice('reduce', reduce, POOL_REDUCES)
        if not isinstance(return_indices, bool):
            raise ValueError(f"Expected 'return_indices' to be a bool (got {return_indices!r})")
        if return_indices and reduce != 'max':
            raise ValueError(f"Expected reduce='max' with return_indices=True (got "
                             f"reduce={reduce!r})")
        self.return_indices = return_indices
        check_choice('path', path, POOL_PATHS)
        with torch.no_grad():
            cluster, num_clusters = check_cluster(cluster, num_clusters)
            self.num_nodes = n = cluster.numel()
            self.num_clusters = num_clusters
            group = contiguous_group(cluster, num_clusters)
            device = cluster.device
            if group is not None:  # HEALPix NESTED: everything follows from g
                self.has_dropped = False
                counts = torch.full((num_clusters, ), group, dtype=torch.long, device=device)
            else:
                self.has_dropped = bool((cluster < 0).any())
                counts = torch.bincount(cluster[cluster >= 0], minlength=num_clusters)
            padded = num_clusters * int(counts.max())  # size of the gather table
            if path == 'auto':
                if group is not None:
                    path = 'reshape'
                elif reduce != 'mean' and padded <= GATHER_MAX_PADDING * n:
                    path = 'gather'
                else:
                    path = 'scatter'
            elif path == 'reshape' and group is None:
                raise ValueError("Expected a contiguous cluster map (cluster == arange(n) "
                                 "// group, as HEALPix NESTED) for path='reshape'")
            self.path = path
            self.group = group
            # only the gather path needs the (possibly large) padded table
            if path == 'gather':
                table, valid = member_table(cluster, num_clusters, counts)
            else:
                table = valid = torch.zeros(num_clusters, 0, dtype=torch.long, device=device)
            # 'keep': the first member of every cluster; a prefix for icosahedral grids;
            # the last one gives the coarse batch vector
            if group is not None:
                first = torch.arange(num_clusters, device=device) * group
                last = first + (group - 1)
            else:
                first = first_members(cluster, num_clusters)
                last = first_members(cluster, num_clusters, last=True)
            self.keep_prefix = bool(torch.equal(first, torch.arange(num_clusters,
                                                                    device=device)))
            # dropped nodes go to an extra bin (num_clusters), sliced off afterwards
            index = torch.where(cluster < 0, num_clusters, cluster) if self.has_dropped \
                else cluster
            self.register_buffer('cluster', cluster, persistent=False)
            self.register_buffer('index', index, persistent=False)
            self.register_buffer('first', first, persistent=False)
            self.register_buffer('last', last, persistent=False)
            self.register_buffer('table', table, persistent=False)
            self.register_buffer('weight', valid.double() / counts.unsqueeze(1).double(),
                                 persistent=False)
            self.register_buffer('inv_count', 1.0 / counts.double(), persistent=False)
            start = torch.arange(num_clusters, device=cluster.device) * (group or 0)
            self.register_buffer('start', start, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """No learnable parameters."""

    def forward(self, x: Tensor, batch: Optional[Tensor] = None
                ) -> Union[Tensor, Tuple[Tensor, ...]]:
        """Pool ``x`` [B, n, F] or [B * n, F] (optional batch vector [B * n])."""
        xb, flat = as_batched(x, self.num_nodes)
        if batch is not None and not flat:
            raise ValueError(f"Expected 'batch' only with x of shape [B * n, F] "
                             f"(got x of shape {tuple(x.shape)})")
        out, idx = self._pool(xb)
        B, C = xb.size(0), self.num_clusters
        if flat:
            out = out.reshape(B * C, -1)
            if idx is not None:
                offset = torch.arange(B, device=idx.device) * self.num_nodes
                idx = (idx + offset.view(B, 1, 1)).reshape(B * C, -1)
        result = (out, ) if idx is None else (out, idx)
        if batch is not None:
            check_shape(batch.dim() == 1 and batch.size(0) == x.size(0),
                        "Expected 'batch' of shape [B * n], one entry per row of x",
                        batch.shape)
            # as max_pool_x: the graph of each cluster's last member (maps of
            # one sampling, one graph id per map, give that map's id)
            coarse = batch.view(B, self.num_nodes).index_select(1, self.last)
            result = result + (coarse.reshape(-1), )
        return result[0] if len(result) == 1 else result

    def _pool(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        B, n, F = x.shape
        C = self.num_clusters
        if self.reduce == 'keep':
            if self.keep_prefix:
                return x[:, :C], None
            return x.index_select(1, self.first), None
        want = self.return_indices
        if self.path == 'reshape':
            xr = x.reshape(B, C, self.group, F)
            if self.reduce == 'mean':
                return xr.mean(dim=2), None
            val, arg = xr.max(dim=2)
            if not want:
                return val, None
            return val, arg + self.start.view(1, C, 1)
        if self.path == 'gather':
            G = self.table.size(1)
            xg = x.index_select(1, self.table.view(-1)).view(B, C, G, F)
            if self.reduce == 'mean':
                w = self.weight.to(x.dtype).view(1, C, G, 1)
                return (xg * w).sum(dim=2), None
            val, arg = xg.max(dim=2)
            if not want:
                return val, None
            table = self.table.view(1, C, G, 1).expand(B, C, G, F)
            return val, table.gather(2, arg.unsqueeze(2)).squeeze(2)
        return self._scatter(x)

    def _scatter(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        B, n, F = x.shape
        C = self.num_clusters
        bins = C + 1 if self.has_dropped else C
        if self.reduce == 'mean':
            total = x.new_zeros(B, bins, F).index_add(1, self.index, x)
            return total[:, :C] * self.inv_count.to(x.dtype).view(1, C, 1), None
        with torch.no_grad():
            xd = x.detach()
            index = self.index.view(1, n, 1).expand(B, n, F)
            vmax = xd.new_zeros(B, bins, F).scatter_reduce(1, index, xd, 'amax',
                                                           include_self=False)
            hit = (xd == vmax.gather(1, index)) | torch.isnan(xd)
            small = torch.int32 if n < 2**31 - 1 else torch.int64
            node = torch.arange(n, device=x.device, dtype=small).view(1, n, 1)
            cand = torch.where(hit, node, n)
            arg = torch.full((B, bins, F), n, dtype=small, device=x.device)
            arg = arg.scatter_reduce(1, index, cand, 'amin', include_self=False)
            arg = arg[:, :C].long()
        return x.gather(1, arg), (arg if self.return_indices else None)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_nodes} -> {self.num_clusters}, '
                f'reduce={self.reduce}, path={self.path})')
