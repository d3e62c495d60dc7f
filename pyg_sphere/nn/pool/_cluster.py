"""Cluster maps: validation and the layout analysis done once, at construction."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from ..._validation import _got, check_int

#: Reductions of :class:`SpherePool`: maximum, mean, or the lowest-index member
#: of each cluster (``'keep'``: the coarse vertices of an icosahedral grid).
POOL_REDUCES = ('max', 'mean', 'keep')

#: Modes of :class:`SphereUnpool`: copy the parent to every child, or put it
#: back where the maximum came from (zeros elsewhere).
UNPOOL_MODES = ('repeat', 'max_indices')

#: Computation paths of :class:`SpherePool`: ``'reshape'`` (contiguous,
#: equal-size clusters: HEALPix NESTED full sky), ``'gather'`` (a padded table
#: of the members of each cluster), ``'scatter'`` (``scatter_reduce`` /
#: ``index_add``), or ``'auto'`` to pick the fastest applicable one.
POOL_PATHS = ('auto', 'reshape', 'gather', 'scatter')

#: Computation paths of :class:`SphereUnpool`: ``'reshape'`` (contiguous,
#: equal-size clusters), ``'index'`` (``index_select`` / ``scatter``), or
#: ``'auto'``.
UNPOOL_PATHS = ('auto', 'reshape', 'index')

#: ``'auto'`` takes the gather path for max pooling when the padded table
#: holds at most this many times the number of fine nodes.
GATHER_MAX_PADDING = 2.0


def check_cluster(cluster: Any, num_clusters: Optional[int]) -> Tuple[Tensor, int]:
    """Validate a cluster map (negative = dropped) and its number of clusters.

    Every cluster ``0 .. num_clusters - 1`` must have at least one member.
    """
    if not isinstance(cluster, Tensor) or cluster.dim() != 1:
        raise ValueError(f"Expected 'cluster' to be a 1-D LongTensor [n] (got {_got(cluster)})")
    if cluster.dtype.is_floating_point or cluster.dtype.is_complex or \
            cluster.dtype == torch.bool:
        raise ValueError(f"Expected 'cluster' to hold integers (got dtype {cluster.dtype})")
    if cluster.numel() == 0:
        raise ValueError("Expected 'cluster' to hold at least one node (got none)")
    cluster = cluster.detach().long()
    if num_clusters is not None and contiguous_group(cluster, check_int(
            'num_clusters', num_clusters, minimum=1)) is not None:
        return cluster, int(num_clusters)  # arange(n) // g: valid, every cluster has g
    kept = cluster[cluster >= 0]
    if kept.numel() == 0:
        raise ValueError("Expected 'cluster' to keep at least one node (all are negative, "
                         "i.e. dropped)")
    top = int(kept.max())
    if num_clusters is None:
        num_clusters = top + 1
    num_clusters = check_int('num_clusters', num_clusters, minimum=1)
    if top >= num_clusters:
        raise ValueError(f"Expected 'cluster' values in [0, {num_clusters - 1}] for "
                         f"num_clusters={num_clusters}, or negative for dropped nodes "
                         f"(got {top})")
    counts = torch.bincount(kept, minlength=num_clusters)
    if bool((counts == 0).any()):
        empty = int((counts == 0).nonzero()[0, 0])
        raise ValueError(f"Expected every cluster to have at least one member, but "
                         f"cluster {empty} of {num_clusters} is empty")
    return cluster, num_clusters


def contiguous_group(cluster: Tensor, num_clusters: int) -> Optional[int]:
    """``g`` if ``cluster == arange(n) // g`` (the HEALPix NESTED layout), else None."""
    n = cluster.numel()
    if n % num_clusters:
        return None
    group = n // num_clusters
    # row c of the [num_clusters, group] view must be all c: one pass over the
    # cluster map, no full-size temporaries (10^7 nodes at nside 1024)
    rows = torch.arange(num_clusters, device=cluster.device, dtype=cluster.dtype).unsqueeze(1)
    return group if bool((cluster.reshape(num_clusters, group) == rows).all()) else None


def member_table(cluster: Tensor, num_clusters: int, counts: Tensor) -> Tuple[Tensor, Tensor]:
    """Members of each cluster, ascending, padded with the first member.

    Returns ``(table [c, gmax] long, valid [c, gmax] bool)``.
    """
    fine = torch.arange(cluster.numel(), device=cluster.device)
    keep = cluster >= 0
    cl, fine = cluster[keep], fine[keep]
    order = torch.sort(cl, stable=True).indices
    cl, fine = cl[order], fine[order]
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(cl.numel(), device=cl.device) - start[cl]
    width = int(counts.max())
    table = torch.empty(num_clusters, width, dtype=torch.long, device=cluster.device)
    table[:] = fine[start].unsqueeze(1)  # pad with the first member
    table[cl, rank] = fine
    valid = torch.arange(width, device=cluster.device) < counts.unsqueeze(1)
    return table, valid


def first_members(cluster: Tensor, num_clusters: int, last: bool = False) -> Tensor:
    """The lowest (or, with ``last``, the highest) node index of each cluster, LongTensor [c]."""
    keep = cluster >= 0
    fine = torch.arange(cluster.numel(), device=cluster.device)[keep]
    init = -1 if last else cluster.numel()
    first = torch.full((num_clusters, ), init, dtype=torch.long, device=cluster.device)
    return first.scatter_reduce(0, cluster[keep], fine, 'amax' if last else 'amin')


def check_shape(cond: Any, expected: str, got: Tuple[int, ...]) -> None:
    """Raise a ValueError unless ``cond``; in eager with the offending shape, under
    ``torch.compile`` as a ``torch._check_value`` (its message may only close
    over constants)."""
    if not torch.compiler.is_compiling():
        if not cond:
            raise ValueError(f'{expected} (got {tuple(got)})')
        return
    torch._check_value(cond, lambda: expected)


def as_batched(x: Tensor, num_nodes: int, name: str = 'x') -> Tuple[Tensor, bool]:
    """View ``x`` [B, n, F] or [B * n, F] (PyG layout) as [B, n, F]."""
    if x.dim() == 3:
        check_shape(x.size(1) == num_nodes, f"Expected '{name}' of shape [B, {num_nodes}, F] "
                    f"to match the cluster map", x.shape)
        return x, False
    if x.dim() == 2:
        check_shape(x.size(0) % num_nodes == 0, f"Expected '{name}' of shape "
                    f"[B * {num_nodes}, F] to match the cluster map of {num_nodes} nodes",
                    x.shape)
        return x.reshape(-1, num_nodes, x.size(1)), True
    raise ValueError(f"Expected '{name}' to have shape [B, n, F] or [B * n, F] "
                     f"(got {tuple(x.shape)})")
