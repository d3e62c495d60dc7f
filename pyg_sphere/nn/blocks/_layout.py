"""Layout helpers shared by the blocks and the models.

On GPUs :class:`~pyg_sphere.nn.SphericalChebConv` folds a batch of maps
``[B, n, F]`` into node-major memory ``[n, B, F]`` and returns a ``[B, n, F]``
*view* of it (``.transpose(0, 1)``); on CPUs it returns map-major memory
``[B, n, F]``. Every per-channel operation that follows a conv (batch norm,
activation, pooling over pixels, unpooling, concatenation of channels) can run
on either memory as it is, so that the next conv consumes it without a copy.
These helpers do exactly that; on inputs in any other layout they make one copy
and stay correct.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor


def node_major(x: Tensor) -> Tensor:
    """``x`` [B, n, F] as contiguous node-major memory [n, B, F] (free for a conv output)."""
    return x.transpose(0, 1).contiguous()


def rows(x: Tensor) -> Tuple[Tensor, Tuple[int, int, int, bool]]:
    """``x`` [B, n, F] as rows [B * n, F] of its memory, without a copy when it is
    map-major (CPU conv outputs) or node-major (GPU conv outputs), and its layout."""
    B, n, F = x.shape
    if x.is_contiguous():
        return x.view(B * n, F), (B, n, F, False)
    return node_major(x).view(n * B, F), (B, n, F, True)


def from_rows(r: Tensor, shape: Tuple[int, int, int, bool]) -> Tensor:
    """Inverse of :func:`rows`: a [B, n, F] view of the rows."""
    B, n, F, node_major_rows = shape
    if node_major_rows:
        return r.view(n, B, F).transpose(0, 1)
    return r.view(B, n, F)


def pool_dense(pool: torch.nn.Module, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
    """Apply a :class:`~pyg_sphere.nn.SpherePool` to ``x`` [B, n, F] in its own memory.

    A map-major ``x`` is pooled as it is. Otherwise the ``B * F`` columns of the
    node-major matrix are pooled independently, as ``pool`` pools every channel
    of every map independently: the ``[1, n, B * F]`` view gives the same values
    (and argmax node indices in ``[0, n)``) as ``pool(x)``, without transposing
    the maps.
    """
    if x.is_contiguous():
        return pool(x)
    B, n, F = x.shape
    out = pool(node_major(x).view(1, n, B * F))
    if isinstance(out, tuple):
        return tuple(o.reshape(-1, B, F).transpose(0, 1) for o in out)
    return out.reshape(-1, B, F).transpose(0, 1)


def unpool_dense(unpool: torch.nn.Module, x: Tensor,
                 indices: Optional[Tensor] = None) -> Tensor:
    """Apply a :class:`~pyg_sphere.nn.SphereUnpool` to ``x`` [B, c, F] in its own memory."""
    if x.is_contiguous():
        return unpool(x) if indices is None else unpool(x, indices)
    B, c, F = x.shape
    xv = node_major(x).view(1, c, B * F)
    if indices is None:
        out = unpool(xv)
    else:
        out = unpool(xv, node_major(indices).view(1, c, B * F))
    return out.reshape(-1, B, F).transpose(0, 1)


def cat_channels(a: Tensor, b: Tensor) -> Tensor:
    """Concatenate ``a`` [B, n, F1] and ``b`` [B, n, F2] along the channels, in the
    memory layout of ``a`` (map-major or node-major)."""
    if a.is_contiguous():
        return torch.cat([a, b], dim=-1)
    return torch.cat([a.transpose(0, 1), b.transpose(0, 1)], dim=-1).transpose(0, 1)
