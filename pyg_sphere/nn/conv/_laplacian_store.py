r"""The rescaled Laplacians of a cached pyramid, in the same on-disk cache.

Assembling :math:`\tilde{L}` is the costliest part of building a model on a
pyramid that is already cached (at nside 1024 the finest level has 10^8
entries: about 10 s of counting sorts and a transpose). The operator is a
function of the pyramid's graph, the layer's normalization, ``lambda_max`` and
the dtype of its values, so it is cached under the key of the pyramid's entry
plus those: an entry ``laplacian`` of :mod:`pyg_sphere.graph.disk_cache`
(checksummed arrays, meta written last, rebuilt when anything is missing,
truncated or edited). Only the pyramids that :class:`~pyg_sphere.transforms.SpherePyramid`
itself read from or wrote to the disk cache have such a key, and only levels of
at least :obj:`~pyg_sphere.graph.disk_cache.CACHE_MIN_NODES` nodes are cached.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Optional, Tuple

import torch

from ...graph import disk_cache
from ...utils import ArrayCache
from ._laplacian import ScaledLaplacian

#: ``(folder, params of the pyramid's entry)``, see ``SpherePyramid``.
PyramidEntry = Tuple[str, Dict[str, Any]]

_NAME = 'laplacian'


def laplacian_params(pyramid: PyramidEntry, level: int, normalization: Optional[str],
                     lambda_max: float, dtype: torch.dtype) -> Dict[str, Any]:
    """The key of the operator of ``level`` of the pyramid ``pyramid``."""
    text = json.dumps(pyramid[1], sort_keys=True, default=repr)
    return disk_cache.entry_params(
        _NAME, pyramid=hashlib.sha256(text.encode('utf-8')).hexdigest(), level=int(level),
        normalization=normalization, lambda_max=float(lambda_max).hex(), dtype=str(dtype))


def load_laplacian(pyramid: PyramidEntry, params: Dict[str, Any]
                   ) -> Optional[ScaledLaplacian]:
    """The cached operator (copy-on-write maps of the files), or :obj:`None`."""
    entry = disk_cache.load(ArrayCache(pyramid[0]), _NAME, params)
    if entry is None:
        return None
    try:
        arrays = entry.open()
        symmetric, n = bool(entry.meta['symmetric']), int(entry.meta['num_nodes'])
        crow, col, value = arrays['crow'], arrays['col'], arrays['value']
        if symmetric:
            transposed = (crow, col, value)
        else:
            transposed = (arrays['crow_t'], arrays['col_t'], arrays['value_t'])
    except (OSError, ValueError, KeyError, TypeError):  # a file went missing: rebuild
        return None
    if crow.numel() != n + 1:
        return None
    return ScaledLaplacian(crow, col, value, *transposed, symmetric, n)


def store_laplacian(pyramid: PyramidEntry, params: Dict[str, Any],
                    laplacian: ScaledLaplacian) -> None:
    """Write the operator (a warning, and no entry, if the folder cannot be written)."""
    lap = laplacian
    tensors = {'crow': lap.crow, 'col': lap.col, 'value': lap.value}
    if not lap.symmetric:
        tensors.update(crow_t=lap.crow_t, col_t=lap.col_t, value_t=lap.value_t)
    disk_cache.store(ArrayCache(pyramid[0]), _NAME, params, tensors,
                     {'symmetric': bool(lap.symmetric), 'num_nodes': int(lap.num_nodes)})
