"""Offset one cluster map for a PyG batch of maps of the same sampling."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._cluster import check_cluster


def sphere_pool_batch(cluster: Tensor, batch: Tensor,
                      num_clusters: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    r"""The cluster map of a :class:`~torch_geometric.data.Batch` of ``B`` maps
    of one sampling, for PyG's pooling functions.

    ``Batch`` concatenates the nodes of its graphs, so node :math:`b n + i` is
    node :math:`i` of graph :math:`b`. It pools into coarse node
    :math:`b c + \mathrm{cluster}(i)`, where :math:`c` = ``num_clusters``:

    .. math::
        \mathrm{cluster}_B(b n + i) = \mathrm{batch}(b n + i)\, c +
        \mathrm{cluster}(i)

    (dropped nodes, with a negative cluster, stay negative). The result is
    consecutive, so :func:`torch_geometric.nn.pool.max_pool_x` /
    :func:`~torch_geometric.nn.pool.avg_pool_x` (with no dropped nodes) and
    :class:`SpherePool` give the coarse nodes graph by graph. For a ``Batch``
    of :class:`~pyg_sphere.transforms.SpherePyramid` outputs this is not
    needed: their ``cluster_{l}`` are offset by the ``Batch`` itself.

    Args:
        cluster (torch.Tensor): cluster map of one graph, LongTensor [n].
        batch (torch.Tensor): batch vector [B * n] of the PyG batch.
        num_clusters (int, optional): number of coarse nodes per graph.
            (default: :obj:`cluster.max() + 1`)

    Returns:
        ``(cluster [B * n], batch [B * c])``: the batched cluster map and the
        batch vector of the coarse nodes.

    Example:
        >>> cluster = torch.tensor([0, 0, 1, 1])
        >>> batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
        >>> sphere_pool_batch(cluster, batch)
        (tensor([0, 0, 1, 1, 2, 2, 3, 3]), tensor([0, 0, 1, 1]))
    """
    cluster, num_clusters = check_cluster(cluster, num_clusters)
    n = cluster.numel()
    if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.numel() % n:
        got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
        raise ValueError(f"Expected 'batch' of shape [B * {n}] for a cluster map of {n} "
                         f"nodes (got {got})")
    cluster = cluster.to(batch.device)
    num_graphs = batch.numel() // n
    tiled = cluster.repeat(num_graphs)
    out = torch.where(tiled < 0, tiled, tiled + batch.long() * num_clusters)
    coarse_batch = batch.view(num_graphs, n)[:, :1].expand(num_graphs, num_clusters)
    return out, coarse_batch.reshape(-1)
