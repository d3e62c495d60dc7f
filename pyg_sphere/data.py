"""A ``Data`` that batches the coarse levels of a multi-resolution pyramid."""
from __future__ import annotations

import re
from typing import Any

import torch

from torch_geometric.data import Data

#: Cluster value of the fine nodes dropped by pooling (partial sky) in a
#: :class:`SphereData`: negative, and large enough to stay negative when a
#: ``Batch`` adds its offsets (``coarsen`` itself returns -1).
DROPPED = -(2 ** 62)

_LEVEL_KEY = re.compile(r'(edge_index|cluster)_([1-9][0-9]*)')


class SphereData(Data):
    r"""A :class:`torch_geometric.data.Data` holding a graph at several
    resolutions, as made by :class:`pyg_sphere.transforms.SpherePyramid`.

    Level 0 is the usual ``edge_index`` / ``edge_weight`` over ``num_nodes``
    nodes. Level :math:`l \ge 1` has ``num_nodes_{l}`` nodes, a graph
    ``edge_index_{l}`` / ``edge_weight_{l}`` between them, and the map
    ``cluster_{l}`` [num_nodes_{l-1}] from the nodes of level :math:`l - 1`
    to those of level :math:`l` (negative, :obj:`DROPPED`, for the dropped
    pixels of a partial sky).

    In a :class:`~torch_geometric.data.Batch`, ``edge_index_{l}`` and
    ``cluster_{l}`` are offset by the number of level-:math:`l` nodes of the
    graphs before (``__inc__``), and ``edge_index_{l}`` is concatenated along
    its last dimension (``__cat_dim__``), so that ``batch.cluster_1`` pools
    the batched level-0 nodes into the batched level-1 nodes.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch
        >>> d = SphereData(num_nodes=4, num_nodes_1=2,
        ...                cluster_1=torch.tensor([0, 0, 1, 1]))
        >>> Batch.from_data_list([d, d]).cluster_1.tolist()
        [0, 0, 1, 1, 2, 2, 3, 3]
    """
    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        match = _LEVEL_KEY.fullmatch(key)
        if match is not None:
            return self[f'num_nodes_{match.group(2)}']
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        match = _LEVEL_KEY.fullmatch(key)
        if match is not None:
            return -1 if match.group(1) == 'edge_index' else 0
        return super().__cat_dim__(key, value, *args, **kwargs)


# Datasets saved with a SpherePyramid pre-transform hold SphereData; allow it
# for torch.load(weights_only=True) (PyG tries that first, and warned).
if hasattr(torch.serialization, 'add_safe_globals'):
    torch.serialization.add_safe_globals([SphereData])
