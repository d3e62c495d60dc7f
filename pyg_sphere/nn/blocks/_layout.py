"""Node-major layout helpers shared by the blocks and the models.

:class:`~pyg_sphere.nn.SphericalChebConv` folds a batch of maps ``[B, n, F]``
into node-major memory ``[n, B, F]`` and returns a ``[B, n, F]`` *view* of it
(``.transpose(0, 1)``). Every per-channel operation that follows a conv (batch
norm, activation, pooling over pixels, unpooling, concatenation of channels)
can run on that memory as it is, so that the next conv consumes it without a
copy. These helpers do exactly that; on inputs in any other layout they make
one copy and stay correct.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor


def node_major(x: Tensor) -> Tensor:
    """``x`` [B, n, F] as contiguous node-major memory [n, B, F] (free for a conv output)."""
    return x.transpose(0, 1).contiguous()


def rows(x: Tensor) -> Tuple[Tensor, Tuple[int, int, int]]:
    """``x`` [B, n, F] as the rows [n * B, F] of its node-major memory, and its shape."""
    B, n, F = x.shape
    return node_major(x).view(n * B, F), (B, n, F)


def from_rows(r: Tensor, shape: Tuple[int, int, int]) -> Tensor:
    """Inverse of :func:`rows`: a [B, n, F] view of node-major rows [n * B, F]."""
    B, n, F = shape
    return r.view(n, B, F).transpose(0, 1)


def pool_dense(pool: torch.nn.Module, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
    """Apply a :class:`~pyg_sphere.nn.SpherePool` to ``x`` [B, n, F] in node-major memory.

    The ``B * F`` columns of the node-major matrix are pooled independently, as
    ``pool`` pools every channel of every map independently: the ``[1, n, B * F]``
    view gives the same values (and argmax node indices in ``[0, n)``) as
    ``pool(x)``, without transposing the maps.
    """
    B, n, F = x.shape
    out = pool(node_major(x).view(1, n, B * F))
    if isinstance(out, tuple):
        return tuple(o.reshape(-1, B, F).transpose(0, 1) for o in out)
    return out.reshape(-1, B, F).transpose(0, 1)


def unpool_dense(unpool: torch.nn.Module, x: Tensor,
                 indices: Optional[Tensor] = None) -> Tensor:
    """Apply a :class:`~pyg_sphere.nn.SphereUnpool` to ``x`` [B, c, F] in node-major memory."""
    B, c, F = x.shape
    xv = node_major(x).view(1, c, B * F)
    if indices is None:
        out = unpool(xv)
    else:
        out = unpool(xv, node_major(indices).view(1, c, B * F))
    return out.reshape(-1, B, F).transpose(0, 1)


def cat_channels(a: Tensor, b: Tensor) -> Tensor:
    """Concatenate ``a`` [B, n, F1] and ``b`` [B, n, F2] along the channels, node-major."""
    return torch.cat([a.transpose(0, 1), b.transpose(0, 1)], dim=-1).transpose(0, 1)
