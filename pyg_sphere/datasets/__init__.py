"""Datasets of maps on the sphere, PyG ``InMemoryDataset`` s generated on first
use and cached (``root/raw``, ``root/processed``; ``root`` defaults to
``default_cache_dir(kind)``), each readable as dense tensors."""
from ._dense import DenseMapDataset
from ._split import SPLITS, split_indices
from .climate_events import CLIMATE_SPLITS, ClimateEvents
from .cosmology_maps import (DEFAULT_NOISE_STD, DEFAULT_PATCH_ORDER, SPLIT_FRACTIONS,
                             CosmologyMaps, split_maps)
from .mesh_folder import MESH_SPLIT_FRACTIONS, MeshFolder, scan_mesh_folder
from .procedural_shapes import SHAPE_SPLITS, ProceduralShapes

__all__ = [
    'DenseMapDataset',
    'CosmologyMaps',
    'ClimateEvents',
    'ProceduralShapes',
    'MeshFolder',
    'scan_mesh_folder',
    'SPLITS',
    'split_indices',
    'split_maps',
    'SPLIT_FRACTIONS',
    'DEFAULT_PATCH_ORDER',
    'DEFAULT_NOISE_STD',
    'CLIMATE_SPLITS',
    'SHAPE_SPLITS',
    'MESH_SPLIT_FRACTIONS',
]
