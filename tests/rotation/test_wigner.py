import healpy as hp
import numpy as np
import pytest
import torch

from pyg_sphere.rotation import (random_rotation, real_sph_harm, rotate_coefficients,
                                rotate_signal, wigner_d_real, z_rotation)
from pyg_sphere.rotation.harmonics import alm_to_real, real_to_alm
from pyg_sphere.rotation import euler_zyz
from pyg_sphere.samplings import equiangular, healpix, icosahedral


def unit(n, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def test_haar_rotations_are_rotations_and_uniform():
    R = random_rotation(4000, seed=0)
    eye = np.einsum('nij,nkj->nik', R, R)
    assert np.abs(eye - np.eye(3)).max() < 1e-12
    assert np.allclose(np.linalg.det(R), 1.0)
    # the rotated z axis is uniform on the sphere: mean 0, second moment I / 3
    z = R[:, :, 2]
    assert np.abs(z.mean(axis=0)).max() < 0.05  # 4 sigma, sigma = (1/3)^0.5 / 4000^0.5
    assert np.abs(z.T @ z / len(z) - np.eye(3) / 3).max() < 0.03
    # the rotation angle has density (1 - cos a) / pi on [0, pi]: E[cos a] = -1/2
    cos_angle = (np.trace(R, axis1=1, axis2=2) - 1) / 2
    assert abs(cos_angle.mean() + 0.5) < 0.03


def test_random_rotation_seeded_and_z_axis():
    assert np.array_equal(random_rotation(3, seed=5), random_rotation(3, seed=5))
    assert not np.allclose(random_rotation(1, seed=5), random_rotation(1, seed=6))
    Rz = random_rotation(10, seed=1, axis='z')
    assert np.allclose(Rz[:, 2], [0, 0, 1]) and np.allclose(Rz[:, :, 2], [0, 0, 1])
    with pytest.raises(ValueError, match="'axis'"):
        random_rotation(1, axis='x')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_wigner_matches_evaluation_at_rotated_points(seed):
    # coefficients D c describe f(R^-1 x) exactly
    R = random_rotation(1, seed=seed)[0]
    lmax = 12
    c = np.random.default_rng(seed).normal(size=(lmax + 1) ** 2)
    pos = unit(100, seed)
    lhs = real_sph_harm(lmax, pos @ R) @ c  # rows of pos @ R are R^T x
    rhs = real_sph_harm(lmax, pos) @ rotate_coefficients(c, R)
    np.testing.assert_allclose(lhs, rhs, atol=1e-12)


@pytest.mark.parametrize('R', [np.eye(3), np.diag([-1.0, 1.0, -1.0]), z_rotation(0.3)[0],
                               np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])])
def test_wigner_degenerate_euler_angles(R):
    a, b, g = euler_zyz(R)
    c = np.random.default_rng(0).normal(size=49)
    pos = unit(30)
    np.testing.assert_allclose(real_sph_harm(6, pos @ R) @ c,
                               real_sph_harm(6, pos) @ rotate_coefficients(c, R), atol=1e-12)


def test_wigner_against_healpy_rotate_alm():
    R = random_rotation(1, seed=7)[0]
    lmax = 20
    c = np.random.default_rng(7).normal(size=((lmax + 1) ** 2, 1))
    alm = real_to_alm(c, lmax)[0]
    hp.rotate_alm(alm, matrix=R, lmax=lmax)
    np.testing.assert_allclose(alm_to_real(alm, lmax), rotate_coefficients(c, R), atol=1e-12)


def test_wigner_orthogonal_and_homomorphic_at_high_degree():
    R1, R2 = random_rotation(2, seed=3)
    D = wigner_d_real(R1, 150)
    assert max(np.abs(d @ d.T - np.eye(len(d))).max() for d in D[::10]) < 1e-11
    c = np.random.default_rng(3).normal(size=151 ** 2)
    np.testing.assert_allclose(rotate_coefficients(rotate_coefficients(c, R2), R1),
                               rotate_coefficients(c, R1 @ R2), atol=1e-10)


def test_rotation_rejects_non_rotations():
    with pytest.raises(ValueError, match="'rotation'"):
        rotate_coefficients(np.zeros(4), np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="'rotation'"):
        rotate_coefficients(np.zeros(4), np.eye(2))


# Round-trip floors (rotate by R, then by R^-1, relative error of the map):
# exact samplings ~1e-13; HEALPix (analysis with 3 Jacobi iterations, no
# weights) 1e-6 below l = nside, 1e-2 near 3 nside - 1.
@pytest.mark.parametrize('data,lmax,floor', [
    (equiangular(16, dtype=torch.float64), 15, 1e-11),
    (icosahedral(3, dtype=torch.float64), 14, 1e-9),
    (healpix(8, dtype=torch.float64), 8, 2e-3),
])
def test_round_trip_below_floor(data, lmax, floor):
    R = random_rotation(1, seed=11)[0]
    c = np.random.default_rng(11).normal(size=((lmax + 1) ** 2, 2))
    x = real_sph_harm(lmax, data.pos.numpy()) @ c
    there = rotate_signal(data, x, R, lmax=lmax)
    back = rotate_signal(data, there, R.T, lmax=lmax)
    assert np.linalg.norm(back - x) / np.linalg.norm(x) < floor
    # and the rotation itself is right (exact band-limited evaluation)
    ref = real_sph_harm(lmax, data.pos.numpy() @ R) @ c
    assert np.linalg.norm(there - ref) / np.linalg.norm(ref) < floor


def test_rotate_signal_tensor_and_shape_errors():
    data = equiangular(8)
    x = torch.randn(data.num_nodes, 3)
    out = rotate_signal(data, x, np.eye(3))
    assert out.dtype == torch.float32 and out.shape == x.shape
    with pytest.raises(ValueError, match="'x'.*128"):
        rotate_signal(data, torch.randn(100), np.eye(3))
