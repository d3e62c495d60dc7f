"""Pooling and unpooling on coarsened spherical samplings."""
from ._cluster import GATHER_MAX_PADDING, POOL_PATHS, POOL_REDUCES, UNPOOL_MODES, UNPOOL_PATHS
from .sphere_pool import SpherePool
from .sphere_pool_batch import sphere_pool_batch
from .sphere_unpool import SphereUnpool

__all__ = [
    'SpherePool',
    'SphereUnpool',
    'sphere_pool_batch',
    'POOL_REDUCES',
    'UNPOOL_MODES',
    'POOL_PATHS',
    'UNPOOL_PATHS',
    'GATHER_MAX_PADDING',
]
