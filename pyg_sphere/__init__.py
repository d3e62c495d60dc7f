"""pyg_sphere: graph-based spherical CNNs (DeepSphere) for PyTorch Geometric.

Sub-packages are imported on first use (``pyg_sphere.nn``, ``pyg_sphere.datasets``,
...), so that ``import pyg_sphere`` and ``pyg-sphere --help`` stay fast.
"""
import importlib
from typing import Any

__version__ = '0.1.0.dev0'

_SUBPACKAGES = ('baselines', 'datasets', 'graph', 'io', 'metrics', 'nn', 'plotting', 'rotation',
                'samplings', 'simulate', 'tasks', 'training', 'transforms', 'utils')

__all__ = [*_SUBPACKAGES, 'SphereData', '__version__']


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f'.{name}', __name__)
    if name == 'SphereData':
        from .data import SphereData
        return SphereData
    raise AttributeError(f"module 'pyg_sphere' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(__all__)
