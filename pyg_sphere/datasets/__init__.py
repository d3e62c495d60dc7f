"""Datasets: simulated maps on the sphere, generated on first use and cached."""
from .cosmology import (COSMOLOGIES, DEFAULT_NOISE_STD, DEFAULT_PATCH_ORDER, HALOFIT_VERSIONS,
                        SPLIT_FRACTIONS, SPLITS, CosmologyConfig, CosmologyMaps, default_root,
                        generate_maps, load_maps, split_maps)
from .cosmology_baselines import (LinearClassifier, baseline_accuracies, histogram_edges,
                                  histogram_features, power_spectrum_features)

__all__ = [
    'CosmologyConfig',
    'CosmologyMaps',
    'generate_maps',
    'load_maps',
    'split_maps',
    'default_root',
    'power_spectrum_features',
    'histogram_edges',
    'histogram_features',
    'LinearClassifier',
    'baseline_accuracies',
    'COSMOLOGIES',
    'SPLITS',
    'SPLIT_FRACTIONS',
    'HALOFIT_VERSIONS',
    'DEFAULT_PATCH_ORDER',
    'DEFAULT_NOISE_STD',
]
