import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.transforms import Compose

from pyg_sphere.rotation import random_rotation, real_sph_harm, z_rotation
from pyg_sphere.samplings import equiangular, gauss_legendre, healpix, icosahedral
from pyg_sphere.transforms import SphereKNNGraph
from pyg_sphere.transforms.random_sphere_rotation import ROTATION_MODES, RandomSphereRotation


def band_limited(data, lmax, channels=2, seed=0):
    c = np.random.default_rng(seed).normal(size=((lmax + 1) ** 2, channels))
    pos = data.sampling.rebuild(dtype=torch.float64).pos.numpy()
    return c, pos, torch.from_numpy(real_sph_harm(lmax, pos) @ c)


@pytest.mark.parametrize('make,lmax,tol', [
    (lambda: equiangular(16), 15, 1e-10),                 # exact (ring least squares)
    (lambda: gauss_legendre(12, reduced=True), 11, 1e-10),  # quadrature + iterations
    (lambda: icosahedral(3), 10, 1e-8),                   # weighted least squares
    (lambda: healpix(8), 8, 2e-3),                        # HEALPix analysis floor
])
def test_rotation_is_exact_for_band_limited_maps(make, lmax, tol):
    data = make()
    c, pos, x = band_limited(data, lmax)
    data.x = x
    R = random_rotation(1, seed=1)[0]
    out = RandomSphereRotation(lmax=lmax).rotate(data.clone(), R)
    ref = real_sph_harm(lmax, pos @ R) @ c  # x(R^-1 p)
    assert out.x.dtype == torch.float64
    assert np.linalg.norm(out.x.numpy() - ref) / np.linalg.norm(ref) < tol


def test_z_mode_ring_shift_is_exact_and_norm_preserving():
    data = equiangular(16)
    c, pos, x = band_limited(data, 15)
    data.x = x.float()
    R = z_rotation(0.731)[0]
    out = RandomSphereRotation(mode='z').rotate(data.clone(), R)
    ref = real_sph_harm(15, pos @ R) @ c
    assert out.x.dtype == torch.float32
    assert np.abs(out.x.double().numpy() - ref).max() < 1e-4 * np.abs(ref).max()
    # on any map (not band-limited), a ring shift keeps the norm of odd rings
    # exactly and loses at most the Nyquist sine parts of even ones
    noise = torch.randn(data.num_nodes, 1, dtype=torch.float64)
    data.x = noise
    shifted = RandomSphereRotation(mode='z').rotate(data.clone(), z_rotation(2 * np.pi / 32)[0])
    # a shift by one pixel spacing is a permutation of each ring
    assert torch.allclose(shifted.x.view(16, 32), noise.view(16, 32).roll(1, dims=1), atol=1e-12)


def test_preserves_norm_and_power_spectrum_on_healpix():
    nside, lmax = 16, 24
    data = healpix(nside, nest=False)
    np.random.seed(3)  # healpy.synalm draws from the global numpy RNG
    cl = 1.0 / (1.0 + np.arange(lmax + 1)) ** 1.5
    alm = hp.synalm(cl, lmax=lmax, new=True)
    data.x = torch.from_numpy(hp.alm2map(alm, nside, lmax=lmax))
    transform = RandomSphereRotation(generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        out = transform(data.clone())
        x, y = data.x.numpy(), out.x.numpy()
        # norm up to the HEALPix rotation floor (default lmax = 47 > 24: the
        # analysis error at nside 16; measured 1e-5 to 4e-5)
        assert abs(np.linalg.norm(y) / np.linalg.norm(x) - 1) < 2e-4
        before = hp.anafast(x, lmax=lmax, use_weights=False)
        after = hp.anafast(y, lmax=lmax, use_weights=False)
        # anafast (healpy map2alm, 3 Jacobi iterations) has its own floor: measured 1.2e-4
        np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-6 * before.max())
        assert not np.allclose(x, y, atol=1e-3)  # it did rotate


def test_seeded_and_random():
    data = healpix(4)
    data.x = torch.randn(data.num_nodes, 1)
    a = RandomSphereRotation(generator=torch.Generator().manual_seed(5))(data.clone()).x
    b = RandomSphereRotation(generator=torch.Generator().manual_seed(5))(data.clone()).x
    c = RandomSphereRotation(generator=torch.Generator().manual_seed(6))(data.clone()).x
    assert torch.equal(a, b) and not torch.allclose(a, c)
    torch.manual_seed(0)
    d = RandomSphereRotation()(data.clone()).x
    torch.manual_seed(0)
    assert torch.equal(d, RandomSphereRotation()(data.clone()).x)


def test_sampled_rotations_are_haar():
    t = RandomSphereRotation(generator=torch.Generator().manual_seed(0))
    R = torch.stack([t.sample_rotation() for _ in range(2000)])
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=R.dtype), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(2000, dtype=R.dtype))
    assert R[:, :, 2].mean(dim=0).abs().max() < 0.06  # rotated z axis: mean 0
    tz = RandomSphereRotation(mode='z', generator=torch.Generator().manual_seed(0))
    Rz = torch.stack([tz.sample_rotation() for _ in range(50)])
    assert torch.allclose(Rz[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=Rz.dtype))


def test_composes_and_keeps_other_attributes():
    data = icosahedral(2)
    data.x = torch.randn(data.num_nodes, 3)
    data.y = torch.randn(data.num_nodes)
    pipeline = Compose([SphereKNNGraph(k=6), RandomSphereRotation(keys=('x', 'y'), lmax=4)])
    out = pipeline(data)
    assert out.x.shape == (data.num_nodes, 3) and out.y.shape == (data.num_nodes,)
    assert out.edge_index is not None and torch.equal(out.pos, data.pos)


def test_repr():
    assert repr(RandomSphereRotation()) == \
        "RandomSphereRotation(mode='so3', lmax=None, keys=('x',), iter=3, generator=None)"
    g = torch.Generator().manual_seed(7)
    assert repr(RandomSphereRotation('z', lmax=10, keys='y', iter=0, generator=g)) == \
        "RandomSphereRotation(mode='z', lmax=10, keys=('y',), iter=0, generator=Generator(seed=7))"
    assert ROTATION_MODES == ('so3', 'z')


def test_bad_inputs():
    with pytest.raises(ValueError, match="'mode'.*'xyz'"):
        RandomSphereRotation(mode='xyz')
    with pytest.raises(ValueError, match="'lmax'"):
        RandomSphereRotation(lmax=-1)
    with pytest.raises(ValueError, match="'keys'"):
        RandomSphereRotation(keys=())
    with pytest.raises(ValueError, match="'generator'"):
        RandomSphereRotation(generator=3)
    data = healpix(4)
    data.x = torch.randn(100, 2)
    with pytest.raises(ValueError, match=r"'data.x'.*n = 192"):
        RandomSphereRotation()(data)
    data.x = torch.zeros(192, dtype=torch.long)
    with pytest.raises(ValueError, match='floating point'):
        RandomSphereRotation()(data)
    data.x = torch.randn(192)
    with pytest.raises(ValueError, match=r"'lmax' <= 3 \* nside - 1 = 11"):
        RandomSphereRotation(lmax=12)(data)
    part = healpix(4, indexes=np.arange(20))
    part.x = torch.randn(20)
    with pytest.raises(ValueError, match='partial sky'):
        RandomSphereRotation()(part)
