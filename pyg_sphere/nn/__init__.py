"""Neural network layers for graph-based spherical CNNs."""
from ._threads import coarse_threads, kernel_threads
from .conv import SphericalChebConv
from .blocks import SphericalChebBlock
from .models import DeepSphere, SphericalUNet
from .pool import SpherePool, SphereUnpool, sphere_pool_batch

__all__ = [
    'SphericalChebConv',
    'SphericalChebBlock',
    'SpherePool',
    'SphereUnpool',
    'sphere_pool_batch',
    'DeepSphere',
    'SphericalUNet',
    'kernel_threads',
    'coarse_threads',
]
