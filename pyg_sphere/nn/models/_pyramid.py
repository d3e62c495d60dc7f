"""The per-level graphs of a model: built once, kept as non-persistent buffers."""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from ..._validation import check_int
from ...graph import disk_cache
from ...transforms import SpherePyramid
from ...transforms.sphere_pyramid import DISK_ENTRY_ATTR
from ..conv._cheb_kernel import compute_dtype
from ..conv._laplacian_store import laplacian_params, load_laplacian, store_laplacian

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
    caller passed are copied. A pyramid that :func:`model_pyramid` read from
    or wrote to the on-disk cache keeps that entry's key in ``disk_entry``
    (else :obj:`None`): :func:`cache_laplacians` caches the operators there.
    """
    def __init__(self, data: Data, levels: int):
        super().__init__()
        self.levels = check_int('levels', levels, minimum=0)
        owned = bool(data.__dict__.get(_PRIVATE, False))
        # a caller's pyramid may have been edited since it was cached: no key
        self.disk_entry = data.__dict__.get(DISK_ENTRY_ATTR) if owned else None
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


def sampling_repr(data: Data) -> str:
    sampling = getattr(data, 'sampling', None)
    return repr(sampling) if sampling is not None else f'points(n={data.num_nodes})'


def cache_laplacians(graph: PyramidGraph, convs: Iterable[Tuple[Any, int]]) -> None:
    r"""Build the rescaled Laplacian of every conv now, from the graph of its level.

    ``convs`` holds ``(SphericalChebConv, level)`` pairs (``cached=True``).
    Convs of one level share one operator. Building at construction means that
    no forward call builds (or syncs), so that the first call is as fast as the
    next ones and ``torch.compile(model, fullgraph=True)`` works from a cold
    start. The operators of the levels of at least
    :obj:`~pyg_sphere.graph.disk_cache.CACHE_MIN_NODES` nodes of a pyramid in
    the on-disk cache (``graph.disk_entry``) are read from, or written to, that
    cache: at nside 1024 assembling them takes longer than the rest of the model.
    All are looked up first; each one assembled is then written by a
    background thread while the next is assembled.
    """
    built: Dict[Tuple[int, Optional[str]], Any] = {}
    missing = []
    for conv, lvl in convs:
        key = (lvl, conv.normalization)
        if key not in built:
            built[key] = _load_level(graph, conv, lvl)
            if built[key] is None:
                missing.append((key, conv, lvl))
    with ThreadPoolExecutor(max_workers=1) as writer:
        stores = []
        for key, conv, lvl in missing:
            edge_index, edge_weight, lam = graph.level(lvl)
            conv.cache_laplacian(edge_index, graph.num_nodes[lvl], edge_weight, lambda_max=lam)
            built[key] = conv._cached_laplacian
            params = _level_params(graph, conv, lvl)
            if params is not None:
                stores.append(writer.submit(store_laplacian, graph.disk_entry, params,
                                            built[key]))
        for future in stores:
            future.result()  # errors other than an unwritable folder (a warning) propagate
    for conv, lvl in convs:
        conv._cached_laplacian = built[(lvl, conv.normalization)]


def _level_params(graph: PyramidGraph, conv: Any, lvl: int) -> Optional[Dict[str, Any]]:
    """The disk-cache key of the operator of ``conv`` on level ``lvl``, or
    :obj:`None` if that level is not cached on disk."""
    if graph.disk_entry is None or graph.num_nodes[lvl] < disk_cache.CACHE_MIN_NODES:
        return None
    dtype = compute_dtype(torch.get_default_dtype())
    lam = float(graph.level(lvl)[2])
    return laplacian_params(graph.disk_entry, lvl, conv.normalization, lam, dtype)


def _load_level(graph: PyramidGraph, conv: Any, lvl: int) -> Any:
    params = _level_params(graph, conv, lvl)
    lap = None if params is None else load_laplacian(graph.disk_entry, params)
    return lap if lap is not None and lap.num_nodes == graph.num_nodes[lvl] else None


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
