"""Attach a multi-resolution pyramid of graphs and cluster maps to a sampling."""
from __future__ import annotations

import hashlib
import numbers
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Hashable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validation import check_choice, check_int, check_positive_float
from ..data import DROPPED, SphereData
from ..graph import (DISTANCES, LAMBDA_MAX_METHODS, LANCZOS_MARGIN, LANCZOS_STEPS,
                     NORMALIZATIONS, disk_cache, lambda_max, sphere_knn_graph)
from ..graph.disk_cache import CacheArg
from ..samplings._base import SphereSampling
from ..samplings.coarsen import coarsen

#: Number of pyramids kept by the in-process LRU cache of :class:`SpherePyramid`.
PYRAMID_CACHE_SIZE = 8

#: Samplings whose descriptor alone determines ``pos`` (and the pyramid); the
#: others ('points', unknown, partial sky) are keyed on a digest of the data.
_IDENTIFYING = ('healpix', 'icosahedral', 'equiangular', 'gauss_legendre', 'cubed')

_PYRAMID_KEY = re.compile(r'(edge_index|edge_weight|cluster|num_nodes|lambda_max|pos|sampling|'
                          r'ipix|num_dropped)_[1-9][0-9]*')

#: key -> (pos, factory of fresh attribute dicts)
_CACHE: 'OrderedDict[Hashable, Tuple[Tensor, Callable[[], Dict[str, Any]]]]' = OrderedDict()
_CACHE_LOCK = threading.Lock()
_MISMATCH = object()

#: Instance attribute (outside the ``Data`` store: it is not collated or
#: saved) of a pyramid that lives in the on-disk cache: ``(folder, params)``
#: of its entry, so that what is derived from it (a model's operators) can be
#: cached under the same key.
DISK_ENTRY_ATTR = '_pyg_sphere_disk_entry'
_DISK = '__disk_entry__'  # the attribute dicts carry it under this key


def _digest(tensor: Tensor) -> str:
    raw = tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
    return hashlib.blake2b(raw.tobytes(), digest_size=16).hexdigest()


@functional_transform('sphere_pyramid')
class SpherePyramid(BaseTransform):
    r"""Attaches a multi-resolution pyramid to a sampling (functional name:
    :obj:`sphere_pyramid`): the graph of every level and the cluster maps that
    pool each level into the next, for the encoder / decoder of a
    `DeepSphere <https://arxiv.org/abs/2012.15000>`_ network.

    Level 0 is the input sampling; level :math:`l` is
    :func:`~pyg_sphere.samplings.coarsen.coarsen` applied :math:`l` times
    with ``factor``. Each level gets the kNN graph of
    :func:`~pyg_sphere.graph.sphere_knn_graph` with
    :math:`k_l = \min(k, n_l - 1)` and weights

    .. math::
        w_{ij} = \exp\left(-\frac{d_{ij}^2}{4 t_l}\right),

    and the largest eigenvalue of its Laplacian
    (:func:`~pyg_sphere.graph.lambda_max` with ``lambda_max_method``; by
    default the Lanczos upper estimate, within
    :obj:`~pyg_sphere.graph.LANCZOS_MARGIN` above the eigenvalue, exact for
    levels of at most :obj:`~pyg_sphere.graph.DENSE_MAX_NODES` nodes). The output is a
    :class:`~pyg_sphere.data.SphereData` (which batches every level
    correctly) with

    * ``edge_index``, ``edge_weight``, ``lambda_max``: level 0;
    * for :math:`l = 1, \dots,` ``levels``: ``num_nodes_{l}``,
      ``edge_index_{l}``, ``edge_weight_{l}``, ``lambda_max_{l}``,
      ``cluster_{l}`` [num_nodes_{l-1}] (level :math:`l - 1` to level
      :math:`l`; :obj:`pyg_sphere.data.DROPPED` for the dropped pixels of a
      partial sky), ``sampling_{l}`` (the descriptor), ``pos_{l}`` (if
      ``coarse_pos``) and, for a partial HEALPix sky, ``ipix_{l}`` and
      ``num_dropped_{l}``.

    A pyramid is built once per sampling and kept in an in-process LRU cache
    of :obj:`PYRAMID_CACHE_SIZE` entries, keyed on the arguments, the
    sampling descriptor and the dtype of ``pos`` for full-sky grids, and on a
    digest of ``ipix`` / ``pos`` for partial skies and arbitrary points; a hit
    is used only if its ``pos`` equals the input's. Every call returns fresh
    copies of the cached tensors, so modifying them in place is safe.

    Pyramids of at least :obj:`~pyg_sphere.graph.disk_cache.CACHE_MIN_NODES`
    pixels are also cached on disk (:mod:`pyg_sphere.graph.disk_cache`;
    ``$PYG_SPHERE_CACHE/graphs`` by default), keyed by every argument above,
    the sampling descriptor, digests of ``pos`` and ``ipix``, the graph
    format and the library version; a later process loads them instead of
    building (the tensors are then copy-on-write maps of the checksummed
    cache files). A corrupted or stale entry is rebuilt.

    Args:
        levels (int): number of coarser levels, at least 0.
        k (int, optional): number of neighbours of the kNN graphs.
            (default: :obj:`8`)
        factor (int, optional): linear coarsening factor between levels
            (``2``: about 4 pixels pool into one). (default: :obj:`2`)
        kernel_width (float or sequence of float, optional): :math:`t` of
            level 0, scaled by :math:`f^{2l}` for level :math:`l` (the mean
            squared distance between neighbours scales like the pixel area),
            or one value per level (``levels + 1``); :obj:`None` uses
            :func:`~pyg_sphere.graph.default_kernel_width` at every level.
            (default: :obj:`None`)
        normalization (str, optional): Laplacian normalization of the
            ``lambda_max`` values, one of
            :obj:`~pyg_sphere.graph.NORMALIZATIONS`. (default: ``'sym'``)
        distance (str, optional): distance of the graph weights,
            ``'geodesic'`` or ``'chordal'``. (default: ``'geodesic'``)
        coarse_pos (bool, optional): attach ``pos_{l}`` for the coarse
            levels. (default: :obj:`True`)
        lambda_max_method (str, optional): how ``lambda_max`` is computed, one
            of :obj:`~pyg_sphere.graph.LAMBDA_MAX_METHODS`: ``'lanczos'``
            (a tight upper estimate, about 20 passes over the edges),
            ``'eigsh'`` (ARPACK to 1e-6, hundreds of passes) or ``'bound'``
            (2 for normalized Laplacians). (default: ``'lanczos'``)
        cache (bool or str, optional): the on-disk cache: :obj:`True` for
            ``pyg_sphere.utils.default_cache_dir('graphs')``, :obj:`False`
            for none, or a folder. Does not change the result.
            (default: :obj:`True`)

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> data = SpherePyramid(levels=2)(healpix(4))
        >>> data.num_nodes, data.num_nodes_1, data.num_nodes_2
        (192, 48, 12)
        >>> data.cluster_2.shape
        torch.Size([48])
    """
    def __init__(self, levels: int, k: int = 8, factor: int = 2,
                 kernel_width: Optional[Union[float, Sequence[float]]] = None,
                 normalization: Optional[str] = 'sym', distance: str = 'geodesic',
                 coarse_pos: bool = True, lambda_max_method: str = 'lanczos',
                 cache: CacheArg = True):
        self.levels = check_int('levels', levels, minimum=0)
        self.k = check_int('k', k, minimum=1)
        self.factor = check_int('factor', factor, minimum=2)
        self.normalization = check_choice('normalization', normalization, NORMALIZATIONS)
        self.distance = check_choice('distance', distance, DISTANCES)
        if not isinstance(coarse_pos, bool):
            raise ValueError(f"Expected 'coarse_pos' to be a bool (got {coarse_pos!r})")
        self.coarse_pos = coarse_pos
        if kernel_width is None or isinstance(kernel_width, numbers.Real):
            if kernel_width is not None:
                kernel_width = check_positive_float('kernel_width', kernel_width)
        else:
            widths = tuple(kernel_width)
            if len(widths) != self.levels + 1:
                raise ValueError(f"Expected 'kernel_width' to hold levels + 1 = "
                                 f"{self.levels + 1} values, one per level (got {len(widths)})")
            kernel_width = tuple(check_positive_float('kernel_width', w) for w in widths)
        self.kernel_width = kernel_width
        self.lambda_max_method = check_choice('lambda_max_method', lambda_max_method,
                                              LAMBDA_MAX_METHODS)
        self.cache = disk_cache.check_cache(cache)

    def _width(self, level: int) -> Optional[float]:
        if self.kernel_width is None:
            return None
        if isinstance(self.kernel_width, tuple):
            return self.kernel_width[level]
        return self.kernel_width * self.factor ** (2 * level)

    def _args(self) -> tuple:
        return (self.levels, self.k, self.factor, self.kernel_width, self.normalization,
                self.distance, self.coarse_pos, self.lambda_max_method)

    def _key(self, data: Data, pos: Tensor, by_pos: bool) -> tuple:
        sampling = getattr(data, 'sampling', None)
        if not isinstance(sampling, SphereSampling):
            sampling = None
        ipix = getattr(data, 'ipix', None)
        ipix_key = _digest(ipix) if isinstance(ipix, Tensor) else None
        identifying = sampling is not None and sampling.name in _IDENTIFYING
        pos_key = _digest(pos) if by_pos or not identifying else None
        return (self._args(), sampling, str(pos.dtype), tuple(pos.shape), ipix_key, pos_key)

    def forward(self, data: Data) -> SphereData:
        pos = getattr(data, 'pos', None)
        if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.size(1) != 3:
            got = tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__
            raise ValueError(f"Expected 'data.pos' to be a tensor of shape [n, 3] (got {got})")
        pos_cpu = pos.detach().cpu()
        key = self._key(data, pos_cpu, by_pos=False)
        factory = _cache_get(key, pos_cpu)
        if factory is _MISMATCH:
            # same descriptor, other points (e.g. rotated): key on the points
            key = self._key(data, pos_cpu, by_pos=True)
            factory = _cache_get(key, pos_cpu)
        attrs = None
        if factory is not None and factory is not _MISMATCH:
            try:
                attrs = factory()
            except (OSError, ValueError):  # a cache file went missing: rebuild
                attrs = None
        if attrs is None:
            attrs, factory = self._load_or_build(data, pos_cpu)
            _cache_put(key, pos_cpu.clone(), factory)

        disk_entry = attrs.pop(_DISK, None)
        out = SphereData()
        for name, value in data:
            if _PYRAMID_KEY.fullmatch(name) is None:
                out[name] = value
        for name, value in attrs.items():
            if isinstance(value, Tensor) and value.device != pos.device:
                value = value.to(pos.device)
            out[name] = value
        if disk_entry is not None:
            object.__setattr__(out, DISK_ENTRY_ATTR, disk_entry)
        return out

    def _disk_params(self, data: Data, pos: Tensor) -> Dict[str, Any]:
        width = self.kernel_width
        return disk_cache.entry_params(
            'pyramid', sampling=disk_cache.sampling_json(getattr(data, 'sampling', None)),
            num_nodes=pos.size(0), dtype=str(pos.dtype), pos=disk_cache.digest(pos),
            ipix=disk_cache.digest(getattr(data, 'ipix', None)), levels=self.levels, k=self.k,
            factor=self.factor, kernel_width=list(width) if isinstance(width, tuple) else width,
            normalization=self.normalization, distance=self.distance,
            coarse_pos=self.coarse_pos, lambda_max_method=self.lambda_max_method,
            lanczos=[LANCZOS_STEPS, LANCZOS_MARGIN])

    def _load_or_build(self, data: Data, pos: Tensor
                       ) -> Tuple[Dict[str, Any], Callable[[], Dict[str, Any]]]:
        """The pyramid's attributes and a factory of fresh copies of them."""
        disk = (disk_cache.resolve_cache(self.cache)
                if pos.size(0) >= disk_cache.CACHE_MIN_NODES else None)
        params = self._disk_params(data, pos) if disk is not None else None
        if disk is not None:
            where = (str(disk.root), params)
            entry = disk_cache.load(disk, 'pyramid', params)
            if entry is not None:
                try:
                    return _from_entry(entry, where), lambda: _from_entry(entry, where)
                except (OSError, ValueError):
                    pass
        if disk is not None:
            # the arrays go to disk level by level while the next is built
            with disk_cache.Writer(disk, 'pyramid', params) as writer:
                attrs = self._build(data, pos, sink=lambda key, tensor: writer.add(
                    key, tensor, edges=key.startswith('edge_index')))
                scalars = {k: v for k, v in attrs.items()
                           if not isinstance(v, Tensor) and not k.startswith('sampling')}
                samplings = {k: disk_cache.sampling_json(v) for k, v in attrs.items()
                             if k.startswith('sampling')}
                entry = writer.finish({'scalars': scalars, 'samplings': samplings})
            if entry is not None:
                return dict(attrs, **{_DISK: where}), lambda: _from_entry(entry, where)
        else:
            attrs = self._build(data, pos)
        kept = {k: v.clone() if isinstance(v, Tensor) else v for k, v in attrs.items()}
        return attrs, lambda: {k: v.clone() if isinstance(v, Tensor) else v
                               for k, v in kept.items()}

    @torch.no_grad()
    def _build(self, data: Data, pos: Tensor,
               sink: Optional[Callable[[str, Tensor], None]] = None) -> Dict[str, Any]:
        """The pyramid's attributes; ``sink(name, tensor)`` gets each tensor
        as soon as it is final."""
        attrs: Dict[str, Any] = {}

        def emit(name: str, value: Any) -> None:
            attrs[name] = value
            if sink is not None and isinstance(value, Tensor):
                sink(name, value)
        level = Data(pos=pos, sampling=getattr(data, 'sampling', None))
        level.num_nodes = pos.size(0)
        ipix = getattr(data, 'ipix', None)
        if ipix is not None:
            level.ipix = ipix.detach().cpu()
        for lvl in range(self.levels + 1):
            suffix = '' if lvl == 0 else f'_{lvl}'
            n = level.num_nodes
            k = min(self.k, n - 1)
            sampling = getattr(level, 'sampling', None)
            sampling = sampling if isinstance(sampling, SphereSampling) else None
            if k >= 1:
                edge_index, edge_weight, _ = sphere_knn_graph(
                    level.pos, k, kernel_width=self._width(lvl), distance=self.distance,
                    sampling=sampling, ipix=getattr(level, 'ipix', None))
                lam = lambda_max(edge_index, edge_weight, n, self.normalization,
                                 method=self.lambda_max_method, symmetric=True)
            else:
                edge_index = torch.empty(2, 0, dtype=torch.long)
                edge_weight = torch.empty(0, dtype=pos.dtype)
                lam = 0.0
            emit('edge_index' + suffix, edge_index)
            emit('edge_weight' + suffix, edge_weight)
            emit('lambda_max' + suffix, float(lam))
            if lvl == self.levels:
                break
            coarse, cluster = coarsen(level, self.factor)
            nxt = f'_{lvl + 1}'
            emit('num_nodes' + nxt, coarse.num_nodes)
            emit('cluster' + nxt, torch.where(cluster < 0, DROPPED, cluster))
            emit('sampling' + nxt, coarse.sampling)
            if self.coarse_pos:
                emit('pos' + nxt, coarse.pos)
            if getattr(coarse, 'ipix', None) is not None:
                emit('ipix' + nxt, coarse.ipix)
            if getattr(coarse, 'num_dropped', None) is not None:
                emit('num_dropped' + nxt, coarse.num_dropped)
            level = coarse
        return attrs

    @staticmethod
    def clear_cache() -> None:
        """Empty the in-process cache of pyramids."""
        with _CACHE_LOCK:
            _CACHE.clear()

    @staticmethod
    def cache_size() -> int:
        """Number of pyramids in the in-process cache."""
        with _CACHE_LOCK:
            return len(_CACHE)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(levels={self.levels}, k={self.k}, '
                f'factor={self.factor}, kernel_width={self.kernel_width}, '
                f'normalization={self.normalization}, distance={self.distance}, '
                f'coarse_pos={self.coarse_pos}, lambda_max_method={self.lambda_max_method})')


def _from_entry(entry: 'disk_cache.Entry', where: Tuple[str, Dict[str, Any]]
                ) -> Dict[str, Any]:
    attrs: Dict[str, Any] = dict(entry.open())
    attrs[_DISK] = where
    attrs.update(entry.meta['scalars'])
    for name, value in entry.meta['samplings'].items():
        attrs[name] = disk_cache.sampling_from_json(value)
    return attrs


def _cache_get(key: Hashable, pos: Tensor) -> Any:
    """The factory of the cached attributes, None if absent, _MISMATCH if
    cached for other points."""
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is None:
            return None
        cached_pos, factory = entry
        if cached_pos.shape != pos.shape or not torch.equal(cached_pos, pos):
            return _MISMATCH
        _CACHE.move_to_end(key)
        return factory


def _cache_put(key: Hashable, pos: Tensor, factory: Callable[[], Dict[str, Any]]) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = (pos, factory)
        _CACHE.move_to_end(key)
        while len(_CACHE) > PYRAMID_CACHE_SIZE:
            _CACHE.popitem(last=False)
