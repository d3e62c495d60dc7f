"""Rotation equivariance, spectral sanity checks, kernel-width tuning,
segmentation metrics and SHREC'17 retrieval metrics. (Rotations and harmonic transforms live in
:mod:`pyg_sphere.rotation`.)"""
from .equivariance import EquivarianceResult, equivariance_error
from .spectral import SpectrumAlignment, laplacian_spectrum_alignment
from .tuning import TuningResult, default_tuning_degrees, tune_kernel_width
from .segmentation import (SegmentationMetrics, average_precision, confusion_matrix,
                           segmentation_metrics)
from .retrieval import SHREC17_CUTOFF, RetrievalMetrics, retrieval_metrics

__all__ = [
    'EquivarianceResult',
    'equivariance_error',
    'SpectrumAlignment',
    'laplacian_spectrum_alignment',
    'TuningResult',
    'default_tuning_degrees',
    'tune_kernel_width',
    'SegmentationMetrics',
    'average_precision',
    'confusion_matrix',
    'segmentation_metrics',
    'RetrievalMetrics',
    'retrieval_metrics',
    'SHREC17_CUTOFF',
]
