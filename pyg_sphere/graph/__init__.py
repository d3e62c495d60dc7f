"""Graph construction on the sphere: kNN, kernel widths, Laplacians."""
from .geometry import DISTANCES, chordal_to_geodesic, geodesic_to_chordal
from .kernel_width import (HEALPIX_WIDTH_RATIO, PUBLISHED_SIGMA, TABULATED_K, gaussian_weight,
                           healpix_kernel_width, heuristic_kernel_width, sigma_to_t)
from .knn import knn, symmetrize
from .laplacian import (DENSE_MAX_NODES, LAMBDA_MAX_METHODS, LANCZOS_MARGIN, LANCZOS_STEPS,
                        NORMALIZATIONS, lambda_max, laplacian)
from .sphere_graph import default_kernel_width, sphere_knn_graph
from .tuned_widths import AT_BRACKET_EDGE, TUNED_WIDTHS, tuned_kernel_width

__all__ = [
    'DISTANCES',
    'NORMALIZATIONS',
    'LAMBDA_MAX_METHODS',
    'LANCZOS_STEPS',
    'LANCZOS_MARGIN',
    'DENSE_MAX_NODES',
    'PUBLISHED_SIGMA',
    'TABULATED_K',
    'HEALPIX_WIDTH_RATIO',
    'chordal_to_geodesic',
    'geodesic_to_chordal',
    'sigma_to_t',
    'healpix_kernel_width',
    'heuristic_kernel_width',
    'default_kernel_width',
    'tuned_kernel_width',
    'TUNED_WIDTHS',
    'AT_BRACKET_EDGE',
    'gaussian_weight',
    'knn',
    'symmetrize',
    'sphere_knn_graph',
    'laplacian',
    'lambda_max',
]
