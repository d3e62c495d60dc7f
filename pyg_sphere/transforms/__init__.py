"""PyG transforms for spherical data."""
from .sphere_knn_graph import SphereKNNGraph
from .sphere_laplacian_lambda_max import SphereLaplacianLambdaMax
from .sphere_pyramid import SpherePyramid

__all__ = [
    'SphereKNNGraph',
    'SphereLaplacianLambdaMax',
    'SpherePyramid',
]
