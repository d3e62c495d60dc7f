"""PyG transforms for spherical data."""
from .sphere_knn_graph import SphereKNNGraph
from .sphere_laplacian_lambda_max import SphereLaplacianLambdaMax
from .random_sphere_rotation import ROTATION_MODES, RandomSphereRotation
from .sphere_pyramid import SpherePyramid

__all__ = [
    'SphereKNNGraph',
    'SphereLaplacianLambdaMax',
    'SpherePyramid',
    'RandomSphereRotation',
    'ROTATION_MODES',
]
