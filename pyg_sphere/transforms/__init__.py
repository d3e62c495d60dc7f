"""PyG transforms for spherical data."""
from .sphere_knn_graph import SphereKNNGraph
from .sphere_laplacian_lambda_max import SphereLaplacianLambdaMax
from .random_sphere_rotation import ROTATION_MODES, RandomSphereRotation
from .sphere_pyramid import SpherePyramid
from .mesh_projection import (MESH_CENTERS, MESH_CHANNELS, MESH_ROTATIONS, check_translate,
                              normalize_mesh, project_mesh, random_pose)
from .sphere_mesh_projection import SphereMeshProjection

__all__ = [
    'SphereKNNGraph',
    'SphereLaplacianLambdaMax',
    'SpherePyramid',
    'RandomSphereRotation',
    'ROTATION_MODES',
    'SphereMeshProjection',
    'project_mesh',
    'normalize_mesh',
    'random_pose',
    'check_translate',
    'MESH_CHANNELS',
    'MESH_CENTERS',
    'MESH_ROTATIONS',
]
