"""PyG transforms for spherical data."""
from .sphere_knn_graph import SphereKNNGraph
from .sphere_laplacian_lambda_max import SphereLaplacianLambdaMax
from .random_sphere_rotation import ROTATION_MODES, RandomSphereRotation
from .sphere_pyramid import SpherePyramid
from .mesh_projection import (MESH_CENTERS, MESH_CHANNELS, MESH_ROTATIONS, SphereMeshProjection,
                              normalize_mesh, project_mesh)

__all__ = [
    'SphereKNNGraph',
    'SphereLaplacianLambdaMax',
    'SpherePyramid',
    'RandomSphereRotation',
    'ROTATION_MODES',
    'SphereMeshProjection',
    'project_mesh',
    'normalize_mesh',
    'MESH_CHANNELS',
    'MESH_CENTERS',
    'MESH_ROTATIONS',
]
