"""Simulators of the built-in tasks' data, usable on their own: weak-lensing
convergence maps (GLASS + CAMB), 16-channel climate states with labelled
extreme events, and parametric solids (with random deformations, noise and cuts)."""
from .climate import (CHANNEL_UNITS, CLIMATE_CHANNELS, CLIMATE_CLASSES, TARGET_FRACTIONS,
                      climate_maps, generate_climate_fields)
from .cosmology_config import COSMOLOGIES, HALOFIT_VERSIONS, CosmologyConfig
from .lensing import compute_spectra, map_seed, pixel_window, simulate_map
from .degeneracy import convergence_spectrum, degenerate_sigma8, spectrum_ratio
from .lensing_maps import cached_spectra, generate_maps, load_maps
from .mesh_perturbation import perturb_mesh, subdivide_mesh
from .solids import BASIC_SHAPE_CLASSES, CONFUSABLE_PAIRS, SHAPE_CLASSES, generate_shape

__all__ = [
    'CosmologyConfig',
    'COSMOLOGIES',
    'HALOFIT_VERSIONS',
    'generate_maps',
    'load_maps',
    'cached_spectra',
    'degenerate_sigma8',
    'spectrum_ratio',
    'convergence_spectrum',
    'compute_spectra',
    'simulate_map',
    'pixel_window',
    'map_seed',
    'generate_climate_fields',
    'climate_maps',
    'CLIMATE_CHANNELS',
    'CHANNEL_UNITS',
    'CLIMATE_CLASSES',
    'TARGET_FRACTIONS',
    'generate_shape',
    'SHAPE_CLASSES',
    'BASIC_SHAPE_CLASSES',
    'CONFUSABLE_PAIRS',
    'perturb_mesh',
    'subdivide_mesh',
]
