"""Unpooling from the coarse nodes back to the fine nodes of their clusters."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..._validation import check_choice
from ._cluster import (UNPOOL_MODES, UNPOOL_PATHS, as_batched, check_cluster, check_shape,
                       contiguous_group)


class SphereUnpool(torch.nn.Module):
    r"""Unpools coarse node features back to the fine nodes, the inverse of
    :class:`SpherePool` for the decoder of a U-Net on the sphere, as in
    `DeepSphere (Defferrard et al. 2020) <https://arxiv.org/abs/2012.15000>`_.

    With ``mode='repeat'`` (average unpooling) every fine node gets the value
    of its parent, and dropped fine nodes (negative cluster) get zeros:

    .. math::
        \mathbf{x}'_i = \mathbf{x}_{\mathrm{cluster}(i)}.

    With ``mode='max_indices'`` (like :class:`torch.nn.MaxUnpool2d`) the value
    of coarse node :math:`c` goes back to the fine node its maximum came from,
    as returned by ``SpherePool(..., reduce='max', return_indices=True)``, and
    the other fine nodes get zeros (per channel):

    .. math::
        \mathbf{x}'_{i, f} = \begin{cases} \mathbf{x}_{c, f} & i =
        \mathrm{argmax}_{c, f} \\ 0 & \text{otherwise.} \end{cases}

    Contiguous cluster maps (HEALPix NESTED) repeat by a reshape, detected
    once at construction; ``forward`` makes no host synchronisation.

    Args:
        cluster (torch.Tensor): coarse node of each fine node, LongTensor [n],
            negative for dropped nodes (the map given to :class:`SpherePool`).
        num_clusters (int, optional): number of coarse nodes.
            (default: :obj:`cluster.max() + 1`)
        mode (str, optional): one of :obj:`UNPOOL_MODES`: ``'repeat'`` or
            ``'max_indices'``. (default: ``'repeat'``)
        path (str, optional): one of :obj:`UNPOOL_PATHS`, to force a
            computation path. (default: ``'auto'``)

    Shapes:
        - **input:** coarse features :math:`(B, c, F)` or :math:`(B \cdot c, F)`;
          with ``mode='max_indices'``, the indices from :class:`SpherePool`, of
          the same shape
        - **output:** :math:`(B, n, F)` or :math:`(B \cdot n, F)`

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> from pyg_sphere.samplings.coarsen import coarsen
        >>> from pyg_sphere.nn.pool import SpherePool
        >>> coarse, cluster = coarsen(healpix(4))
        >>> pool = SpherePool(cluster, coarse.num_nodes, return_indices=True)
        >>> unpool = SphereUnpool(cluster, coarse.num_nodes, mode='max_indices')
        >>> x = torch.randn(2, 192, 16)
        >>> y, indices = pool(x)
        >>> unpool(y, indices).shape
        torch.Size([2, 192, 16])
    """
    def __init__(self, cluster: Tensor, num_clusters: Optional[int] = None,
                 mode: str = 'repeat', path: str = 'auto'):
        super().__init__()
        self.mode = check_choice('mode', mode, UNPOOL_MODES)
        check_choice('path', path, UNPOOL_PATHS)
        with torch.no_grad():
            cluster, num_clusters = check_cluster(cluster, num_clusters)
            self.num_nodes = cluster.numel()
            self.num_clusters = num_clusters
            self.has_dropped = bool((cluster < 0).any())
            group = None if self.has_dropped else contiguous_group(cluster, num_clusters)
            if path == 'auto':
                path = 'reshape' if group is not None else 'index'
            elif path == 'reshape' and group is None:
                raise ValueError("Expected a contiguous cluster map (cluster == arange(n) "
                                 "// group, as HEALPix NESTED) for path='reshape'")
            self.path = path
            self.group = group
            self.register_buffer('cluster', cluster, persistent=False)
            self.register_buffer('parent', cluster.clamp(min=0), persistent=False)
            self.register_buffer('dropped', cluster < 0, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """No learnable parameters."""

    def forward(self, x: Tensor, indices: Optional[Tensor] = None) -> Tensor:
        """Unpool ``x`` [B, c, F] or [B * c, F] (``indices`` for 'max_indices')."""
        xb, flat = as_batched(x, self.num_clusters)
        B, C, F = xb.shape
        n = self.num_nodes
        if self.mode == 'max_indices':
            if indices is None:
                raise ValueError("Expected 'indices' (from SpherePool(..., "
                                 "return_indices=True)) with mode='max_indices'")
            check_shape(indices.shape == x.shape, "Expected 'indices' of the shape of x",
                        indices.shape)
            if flat:  # indices into the B * n nodes
                return x.new_zeros(B * n, F).scatter(0, indices, x)
            return x.new_zeros(B, n, F).scatter(1, indices, x)
        if indices is not None:
            raise ValueError("Expected no 'indices' with mode='repeat'")
        if self.path == 'reshape':
            out = xb.unsqueeze(2).expand(B, C, self.group, F).reshape(B, n, F)
        else:
            out = xb.index_select(1, self.parent)
            if self.has_dropped:
                out = out.masked_fill(self.dropped.view(1, n, 1), 0)
        return out.reshape(B * n, F) if flat else out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_clusters} -> {self.num_nodes}, '
                f'mode={self.mode}, path={self.path})')
