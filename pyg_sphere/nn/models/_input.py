"""What a model takes: its channel arguments and its input maps (dense
[B, n, F], PyG's node layout [B * n, F], or a ``Data`` / ``Batch``)."""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Tuple

from torch import Tensor
from torch_geometric.data import Data

from ..._validation import _got


def check_channels(channels: Any, minimum_length: int = 1) -> Tuple[int, ...]:
    """A non-empty sequence of positive ints."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise ValueError(f"Expected 'channels' to be a sequence of positive integers "
                         f"(got {_got(channels)})")
    if len(channels) < minimum_length:
        raise ValueError(f"Expected 'channels' to hold at least {minimum_length} widths "
                         f"(got {list(channels)})")
    out = []
    for c in channels:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"Expected 'channels' to be a sequence of positive integers "
                             f"(got {list(channels)})")
        out.append(int(c))
    return tuple(out)


def dense_input(x: Any, batch: Optional[Tensor], num_nodes: int,
                in_channels: int) -> Tuple[Tensor, bool]:
    """``x`` as a dense batch [B, n, F], and whether it came in PyG's layout [B * n, F].

    Accepts a dense tensor, PyG's node layout (``Batch.x``, optionally with its
    batch vector), or a ``Data`` / ``Batch`` holding ``x``. Checks shapes only
    (no host sync): the ``B`` graphs of a PyG batch must be maps of the model's
    sampling, their nodes consecutive as ``Batch`` concatenates them.
    """
    if isinstance(x, Data):
        data = x
        if batch is not None:
            raise ValueError("Expected 'batch' to be None when a Data / Batch is given (its "
                             "own batch vector is used)")
        x = getattr(data, 'x', None)
        if not isinstance(x, Tensor):
            raise ValueError(f"Expected the Data / Batch to hold node features 'x' (got "
                             f"{_got(x)})")
        batch = getattr(data, 'batch', None)
        num_graphs = int(getattr(data, 'num_graphs', 1) or 1)
        if x.dim() == 2 and x.size(0) != num_graphs * num_nodes:
            raise ValueError(f"Expected each of the {num_graphs} graph(s) of the batch to be "
                             f"a map of the model's sampling of {num_nodes} pixels, i.e. "
                             f"'x' of shape [{num_graphs * num_nodes}, F] (got "
                             f"{list(x.shape)})")
    if not isinstance(x, Tensor):
        raise ValueError(f"Expected 'x' to be a tensor [B, n, F] or [B * n, F] (got {_got(x)})")
    if x.dim() == 3:
        if batch is not None:
            raise ValueError(f"Expected 'batch' only with x of shape [B * n, F] (got x of "
                             f"shape {list(x.shape)})")
        if x.size(1) != num_nodes:
            raise ValueError(f"Expected 'x' of shape [B, n, F] to have the n = {num_nodes} "
                             f"pixels of the model's sampling in dimension 1 (got "
                             f"{list(x.shape)})")
    elif x.dim() == 2:
        if x.size(0) == 0 or x.size(0) % num_nodes:
            raise ValueError(f"Expected 'x' of shape [B * n, F] (PyG layout) to hold whole "
                             f"maps of the n = {num_nodes} pixels of the model's sampling "
                             f"(got {list(x.shape)})")
        if batch is not None and (not isinstance(batch, Tensor) or batch.dim() != 1
                                  or batch.size(0) != x.size(0)):
            raise ValueError(f"Expected 'batch' of shape [{x.size(0)}], one graph index per "
                             f"row of x (got {_got(batch)})")
    else:
        raise ValueError(f"Expected 'x' to have shape [B, n, F] or [B * n, F] (got "
                         f"{list(x.shape)})")
    if x.size(-1) != in_channels:
        raise ValueError(f"Expected 'x' to have in_channels={in_channels} features in its "
                         f"last dimension (got {x.size(-1)})")
    if x.dim() == 2:
        return x.reshape(-1, num_nodes, in_channels), True
    return x, False
