"""Rotations of the sphere and of maps sampled on it: rotation matrices (Haar
random, about z, Euler angles), real spherical harmonics and harmonic
transforms of sampled maps, and exact rotations of band-limited maps through
real Wigner matrices. Used by the transforms (random rotations of data), the
metrics (equivariance) and the datasets (random poses)."""
from .harmonic_transform import BACKENDS, HarmonicTransform, harmonic_transform
from .harmonics import default_lmax, degree_slice, num_coefficients, real_sph_harm
from .matrices import (as_generator, check_rotation, euler_zyz, quaternion_to_matrix,
                       random_rotation, z_rotation)
from .wigner import (WignerRotation, ring_structure, rotate_coefficients, rotate_rings_z,
                     rotate_signal, wigner_d_real)

__all__ = [
    'random_rotation',
    'z_rotation',
    'quaternion_to_matrix',
    'check_rotation',
    'euler_zyz',
    'as_generator',
    'real_sph_harm',
    'default_lmax',
    'degree_slice',
    'num_coefficients',
    'BACKENDS',
    'HarmonicTransform',
    'harmonic_transform',
    'WignerRotation',
    'wigner_d_real',
    'rotate_coefficients',
    'rotate_signal',
    'ring_structure',
    'rotate_rings_z',
]
