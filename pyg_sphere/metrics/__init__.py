"""Rotation equivariance, spectral sanity checks, kernel-width tuning and segmentation
metrics."""
from ._harmonics import BACKENDS, default_lmax, real_sph_harm
from .equivariance import EquivarianceResult, equivariance_error
from .spectral import SpectrumAlignment, laplacian_spectrum_alignment
from .tuning import TuningResult, default_tuning_degrees, tune_kernel_width
from .rotation import (random_rotation, rotate_coefficients, rotate_signal, wigner_d_real,
                       z_rotation)
from .segmentation import (SegmentationMetrics, average_precision, confusion_matrix,
                           segmentation_metrics)

__all__ = [
    'BACKENDS',
    'EquivarianceResult',
    'default_lmax',
    'equivariance_error',
    'random_rotation',
    'real_sph_harm',
    'rotate_coefficients',
    'rotate_signal',
    'wigner_d_real',
    'z_rotation',
    'SpectrumAlignment',
    'laplacian_spectrum_alignment',
    'TuningResult',
    'default_tuning_degrees',
    'tune_kernel_width',
    'SegmentationMetrics',
    'average_precision',
    'confusion_matrix',
    'segmentation_metrics',
]
