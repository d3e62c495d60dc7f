"""The per-level graphs of a model: built once, kept as non-persistent buffers."""
from __future__ import annotations

import contextlib
import numbers
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from ..._validation import _got, check_int
from ...transforms import SpherePyramid

#: Safety factor applied to the largest eigenvalue of every level's Laplacian
#: before rescaling it to :math:`[-1, 1]`, as in DeepSphere (``lambda_max *
#: 1.02``), so that the rescaled spectrum stays inside the Chebyshev domain.
#: The pyramids the models build take ``lambda_max`` from the Lanczos upper
#: estimate (:func:`pyg_sphere.graph.lambda_max`, ``method='lanczos'``: at
#: most :obj:`~pyg_sphere.graph.LANCZOS_MARGIN` above the eigenvalue, exact
#: for levels of at most :obj:`~pyg_sphere.graph.DENSE_MAX_NODES` nodes), so
#: the scale used is 1.02 to 1.04 times the eigenvalue; the factor stays for
#: pyramids built with ``lambda_max_method='eigsh'``.
LAMBDA_MAX_MARGIN = 1.02

#: Attribute marking a pyramid that :func:`model_pyramid` built for the model
#: alone: :class:`PyramidGraph` then keeps its tensors without copying them.
_PRIVATE = '_pyg_sphere_model_owned'


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


def _has_levels(data: Data, levels: int) -> bool:
    keys = ['edge_index', 'lambda_max']
    for lvl in range(1, levels + 1):
        keys += [f'edge_index_{lvl}', f'cluster_{lvl}', f'num_nodes_{lvl}', f'lambda_max_{lvl}']
    return all(getattr(data, key, None) is not None for key in keys)


def model_pyramid(data: Any, levels: int, k: int, factor: int, kernel_width: Any,
                  normalization: Optional[str], owner: str, cache: Any = True) -> Data:
    """The pyramid of ``levels`` coarser levels a model needs.

    ``data`` is either a sampling (a ``Data`` with ``pos``), from which the
    pyramid is built with :class:`~pyg_sphere.transforms.SpherePyramid`
    (Lanczos ``lambda_max``, on-disk cache ``cache``), or the output of a
    ``SpherePyramid`` with at least ``levels`` levels, used as it is (its
    first ``levels`` levels; build it with ``cache=False`` to keep a model
    off the disk cache).
    """
    if isinstance(data, Batch) or not isinstance(data, Data):
        raise ValueError(f"Expected 'data' to be one sampling (a torch_geometric.data.Data "
                         f"made by pyg_sphere.samplings, or the output of SpherePyramid), not "
                         f"a batch (got {type(data).__name__})")
    if _has_levels(data, levels):
        return data
    if getattr(data, 'cluster_1', None) is not None:
        have = 1
        while getattr(data, f'cluster_{have + 1}', None) is not None:
            have += 1
        raise ValueError(f"Expected 'data' to hold a pyramid of at least {levels} coarser "
                         f"levels for {owner} (got {have}); pass the sampling itself to build "
                         f"it, or use SpherePyramid(levels={levels})")
    try:
        pyramid = SpherePyramid(levels, k=k, factor=factor, kernel_width=kernel_width,
                                normalization=normalization, cache=cache)(data)
        object.__setattr__(pyramid, _PRIVATE, True)  # fresh tensors no one else holds
        return pyramid
    except ValueError as err:
        raise ValueError(f"Cannot build the pyramid of {levels} coarser levels (pooling by "
                         f"'factor'={factor}, i.e. about {factor ** 2} pixels into one) that "
                         f"{owner} needs on {getattr(data, 'sampling', 'this sampling')}: "
                         f"{err}") from err


class PyramidGraph(torch.nn.Module):
    r"""The graph of every level of a pyramid as non-persistent buffers.

    Level :math:`l` holds ``edge_index_{l}``, ``edge_weight_{l}`` and
    ``lambda_max_{l}`` (the largest eigenvalue of its Laplacian times
    :obj:`LAMBDA_MAX_MARGIN`, float64). They move with the module (``.to``)
    but are not saved in its ``state_dict``: they are rebuilt from the sampling.
    The tensors of a pyramid that :func:`model_pyramid` built are kept as they
    are (no copy: at nside 1024 they are gigabytes); those of a pyramid the
    caller passed are copied.
    """
    def __init__(self, data: Data, levels: int):
        super().__init__()
        self.levels = check_int('levels', levels, minimum=0)
        owned = bool(data.__dict__.get(_PRIVATE, False))
        self.num_nodes: List[int] = []
        for lvl in range(levels + 1):
            sfx = '' if lvl == 0 else f'_{lvl}'
            n = int(data.num_nodes if lvl == 0 else data[f'num_nodes{sfx}'])
            edge_index = data[f'edge_index{sfx}']
            edge_weight = getattr(data, f'edge_weight{sfx}', None)
            lam = float(data[f'lambda_max{sfx}'])
            if n < 2 or edge_index.numel() == 0 or not lam > 0:
                raise ValueError(f"Expected every level of the pyramid to have at least 2 "
                                 f"pixels and a graph, but level {lvl} has {n} pixel(s) and "
                                 f"{edge_index.size(1)} edges: use fewer levels (fewer "
                                 f"'channels' or a smaller 'levels') or a finer sampling")
            if edge_weight is None:
                edge_weight = torch.ones(edge_index.size(1))
            self.num_nodes.append(n)
            edge_index, edge_weight = edge_index.detach().long(), edge_weight.detach()
            if not owned:
                edge_index, edge_weight = edge_index.clone(), edge_weight.clone()
            self.register_buffer(f'edge_index_{lvl}', edge_index, persistent=False)
            self.register_buffer(f'edge_weight_{lvl}', edge_weight, persistent=False)
            self.register_buffer(f'lambda_max_{lvl}',
                                 torch.tensor(lam * LAMBDA_MAX_MARGIN, dtype=torch.float64),
                                 persistent=False)

    def level(self, lvl: int) -> Tuple[Tensor, Tensor, Tensor]:
        """``(edge_index, edge_weight, lambda_max)`` of level ``lvl``."""
        return (getattr(self, f'edge_index_{lvl}'), getattr(self, f'edge_weight_{lvl}'),
                getattr(self, f'lambda_max_{lvl}'))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_nodes={self.num_nodes})'


def cluster(data: Data, lvl: int) -> Tuple[Tensor, int]:
    """The cluster map from level ``lvl - 1`` to level ``lvl`` and its size."""
    return data[f'cluster_{lvl}'], int(data[f'num_nodes_{lvl}'])


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


def sampling_repr(data: Data) -> str:
    sampling = getattr(data, 'sampling', None)
    return repr(sampling) if sampling is not None else f'points(n={data.num_nodes})'


def cache_laplacians(graph: PyramidGraph, convs: Iterable[Tuple[Any, int]]) -> None:
    r"""Build the rescaled Laplacian of every conv now, from the graph of its level.

    ``convs`` holds ``(SphericalChebConv, level)`` pairs (``cached=True``).
    Convs of one level share one operator. Building at construction means that
    no forward call builds (or syncs), so that the first call is as fast as the
    next ones and ``torch.compile(model, fullgraph=True)`` works from a cold
    start.
    """
    built = {}
    for conv, lvl in convs:
        key = (lvl, conv.normalization)
        if key not in built:
            edge_index, edge_weight, lam = graph.level(lvl)
            conv.cache_laplacian(edge_index, graph.num_nodes[lvl], edge_weight, lambda_max=lam)
            built[key] = conv._cached_laplacian
        conv._cached_laplacian = built[key]


@contextlib.contextmanager
def keep_laplacians(convs: Iterable[Tuple[Any, int]]) -> Iterator[None]:
    """Restore the convs' cached Laplacians on exit (``reset_parameters`` clears
    them; a model's graphs are not parameters)."""
    saved = [(conv, conv._cached_laplacian) for conv, _ in convs]
    try:
        yield
    finally:
        for conv, lap in saved:
            conv._cached_laplacian = lap
