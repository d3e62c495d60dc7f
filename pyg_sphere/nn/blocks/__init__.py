"""Building blocks of spherical CNNs."""
from .spherical_cheb_block import ACTIVATIONS, SphericalChebBlock

__all__ = ['SphericalChebBlock', 'ACTIVATIONS']
