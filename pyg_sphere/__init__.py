"""pyg_sphere: graph-based spherical CNNs (DeepSphere) for PyTorch Geometric."""
from . import datasets, graph, metrics, nn, rotation, samplings, transforms, utils
from .data import SphereData

__version__ = '0.1.0.dev0'

__all__ = ['datasets', 'graph', 'metrics', 'nn', 'rotation', 'samplings', 'transforms',
           'utils', 'SphereData', '__version__']
