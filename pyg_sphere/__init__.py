"""pyg_sphere: graph-based spherical CNNs (DeepSphere) for PyTorch Geometric."""
from . import samplings

__version__ = '0.1.0.dev0'

__all__ = ['samplings', '__version__']
