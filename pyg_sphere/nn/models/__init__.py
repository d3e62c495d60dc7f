"""Spherical CNN architectures: DeepSphere classifiers and the spherical U-Net."""
from ._pyramid import LAMBDA_MAX_MARGIN
from .deep_sphere import HEADS, POOLS, READOUTS, DeepSphere
from .spherical_unet import UNET_POOLS, SphericalUNet

__all__ = [
    'DeepSphere',
    'SphericalUNet',
    'POOLS',
    'READOUTS',
    'HEADS',
    'UNET_POOLS',
    'LAMBDA_MAX_MARGIN',
]
