"""Transform attaching the Gaussian-weighted kNN graph of a spherical sampling."""
from __future__ import annotations

from typing import Dict, Union

from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validation import check_choice, check_int, check_positive_float
from ..graph import DISTANCES, disk_cache, sphere_knn_graph
from ..graph.disk_cache import CacheArg

#: String values of ``kernel_width``: ``'tune'`` runs
#: :func:`pyg_sphere.metrics.tune_kernel_width` on the sampling.
KERNEL_WIDTH_MODES = ('tune',)


@functional_transform('sphere_knn_graph')
class SphereKNNGraph(BaseTransform):
    r"""Joins every pixel to its ``k`` nearest neighbours on the sphere, with
    Gaussian weights of their distance (functional name:
    :obj:`sphere_knn_graph`), as in `DeepSphere <https://arxiv.org/abs/2012.15000>`_.

    .. math::
        w_{ij} = \exp\left(-\frac{d_{ij}^2}{4t}\right)

    The graph is symmetric: ``i`` and ``j`` are joined if either is among the
    ``k`` nearest of the other. Sets ``edge_index`` [2, E] (sorted by source),
    ``edge_weight`` [E] (dtype of ``pos``) and ``kernel_width`` (the ``t``
    used, a float).

    For HEALPix samplings (full or partial sky, NESTED or RING) the search
    walks the 12 base-face grids instead of a k-d tree (exact, several times
    faster; 12.6 M pixels at nside 1024 in seconds). Other samplings use a
    k-d tree. Coincident points (pole rows of Driscoll-Healy / Clenshaw-Curtis
    grids) are not joined to each other.

    Args:
        k (int, optional): number of neighbours. (default: :obj:`8`)
        kernel_width (float or str, optional): the width ``t`` (unit sphere,
            in squared radians). :obj:`None` uses the published optimum for
            HEALPix and k in (8, 20, 40, 60)
            (:func:`pyg_sphere.graph.healpix_kernel_width`), the tuned widths of
            :mod:`pyg_sphere.graph.tuned_widths` for equiangular,
            Gauss-Legendre, icosahedral and cubed grids with a tuned k, and the
            HEALPix-calibrated heuristic
            :func:`pyg_sphere.graph.heuristic_kernel_width` otherwise.
            ``'tune'`` tunes ``t`` for this sampling and ``k`` with
            :func:`pyg_sphere.metrics.tune_kernel_width` (seconds to minutes,
            once per sampling descriptor, ``k`` and ``distance``: cached by the
            transform; not cached for ``points`` or partial skies).
            (default: :obj:`None`)
        distance (str, optional): ``'geodesic'`` (great-circle angle) or
            ``'chordal'`` (straight line). The published widths use chordal
            distances; for neighbours both differ by less than 0.1 %.
            (default: :obj:`'geodesic'`)
        cache (bool or str, optional): cache graphs of at least
            :obj:`~pyg_sphere.graph.disk_cache.CACHE_MIN_NODES` nodes on disk
            (:mod:`pyg_sphere.graph.disk_cache`), keyed by the sampling
            descriptor, digests of ``pos`` and ``ipix``, ``k``, the kernel
            width, ``distance``, the graph format and the library version:
            :obj:`True` for ``pyg_sphere.utils.default_cache_dir('graphs')``
            (``$PYG_SPHERE_CACHE`` moves it), :obj:`False` for none, or a
            folder. Does not change the result. (default: :obj:`True`)

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> data = SphereKNNGraph(k=8)(healpix(4))
        >>> data.edge_index.shape[0], bool(data.edge_weight.max() <= 1)
        (2, True)
    """
    def __init__(self, k: int = 8, kernel_width: Union[float, str, None] = None,
                 distance: str = 'geodesic', cache: CacheArg = True) -> None:
        self.k = check_int('k', k, minimum=1)
        if isinstance(kernel_width, str):
            self.kernel_width = check_choice('kernel_width', kernel_width, KERNEL_WIDTH_MODES)
        else:
            self.kernel_width = (None if kernel_width is None else
                                 check_positive_float('kernel_width', kernel_width))
        self.distance = check_choice('distance', distance, DISTANCES)
        self.cache = disk_cache.check_cache(cache)
        self._tuned: Dict[tuple, float] = {}

    def _tuned_width(self, data: Data) -> float:
        from ..metrics import tune_kernel_width
        sampling = getattr(data, 'sampling', None)
        cacheable = (getattr(sampling, 'name', 'points') != 'points'
                     and getattr(data, 'ipix', None) is None)
        key = (sampling, self.k, self.distance)
        if cacheable and key in self._tuned:
            return self._tuned[key]
        t = tune_kernel_width(data, k=self.k, distance=self.distance)
        if cacheable:
            self._tuned[key] = t
        return t

    def forward(self, data: Data) -> Data:
        if getattr(data, 'pos', None) is None:
            raise ValueError("Expected 'data.pos' to hold the [n, 3] unit vectors of a "
                             "sampling (got None)")
        width = self._tuned_width(data) if self.kernel_width == 'tune' else self.kernel_width
        sampling, ipix = getattr(data, 'sampling', None), getattr(data, 'ipix', None)
        disk = None
        if data.pos.size(0) >= disk_cache.CACHE_MIN_NODES:
            disk = disk_cache.resolve_cache(self.cache)
        params = entry = None
        if disk is not None:
            params = disk_cache.entry_params(
                'knn_graph', sampling=disk_cache.sampling_json(sampling),
                num_nodes=data.pos.size(0), dtype=str(data.pos.dtype),
                pos=disk_cache.digest(data.pos), ipix=disk_cache.digest(ipix), k=self.k,
                kernel_width=width, distance=self.distance)
            entry = disk_cache.load(disk, 'knn_graph', params)
        if entry is not None:
            graph = entry.open()
            edge_index, edge_weight = graph['edge_index'], graph['edge_weight']
            t = entry.meta['kernel_width']
        else:
            edge_index, edge_weight, t = sphere_knn_graph(
                data.pos, self.k, kernel_width=width, distance=self.distance,
                sampling=sampling, ipix=ipix)
            if disk is not None:
                disk_cache.store(disk, 'knn_graph', params,
                                 {'edge_index': edge_index, 'edge_weight': edge_weight},
                                 {'kernel_width': t}, edges=('edge_index', ))
        data.edge_index = edge_index
        data.edge_weight = edge_weight
        data.kernel_width = t
        return data

    def __repr__(self) -> str:
        width = (repr(self.kernel_width) if isinstance(self.kernel_width, str)
                 else self.kernel_width)
        return (f'{self.__class__.__name__}(k={self.k}, kernel_width={width}, '
                f'distance={self.distance!r})')
