"""The SphereMeshProjection transform: a mesh in PyG's layout projected onto a
sampling, in a random pose drawn from the transform's torch generator."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from pyg_sphere.samplings import healpix, points
from pyg_sphere.simulate import generate_shape
from pyg_sphere.transforms import (MESH_CENTERS, MESH_ROTATIONS, SphereMeshProjection,
                                   project_mesh)


def mesh_data(y=3):
    """A non-convex solid as PyG stores a mesh (pos [V, 3], face [3, F])."""
    v, f = generate_shape('l_prism', 0)
    return Data(pos=torch.from_numpy(v).float(), face=torch.from_numpy(f).t().contiguous(),
                y=torch.tensor([y]))


def test_transform_output_and_repr():
    sampling = healpix(4)
    t = SphereMeshProjection(sampling)
    data = mesh_data()
    out = t(data)
    assert out.x.shape == (192, 6) and out.x.dtype == torch.float32
    assert out.y.tolist() == [3] and out.pos is sampling.pos and out.sampling == sampling.sampling
    assert 'x' not in sampling and 'x' not in data  # inputs untouched
    assert torch.equal(out.x, project_mesh(data.pos, data.face.t(), sampling.pos))
    assert repr(t) == ("SphereMeshProjection(sampling=healpix(nest=True, nside=4), "
                       "rotate='none', translate=0.0, center='bbox', generator=None)")
    g = torch.Generator().manual_seed(5)
    t = SphereMeshProjection(points([0., 1.], [0., 0.5]), rotate='so3', translate=0.1,
                             center='mean', generator=g)
    assert repr(t).startswith("SphereMeshProjection(sampling=points(n=2, digest='")
    assert repr(t).endswith("rotate='so3', translate=0.1, center='mean', "
                            "generator=Generator(seed=5))")
    assert MESH_ROTATIONS == ('none', 'z', 'so3') and MESH_CENTERS == ('bbox', 'mean')


def test_transform_augmentation_is_seeded():
    def run(seed, **kw):
        t = SphereMeshProjection(healpix(4), generator=torch.Generator().manual_seed(seed), **kw)
        return t(mesh_data()).x, t(mesh_data()).x
    a1, a2 = run(0, rotate='so3', translate=0.2)
    b1, b2 = run(0, rotate='so3', translate=0.2)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)  # same seed, same outputs
    assert not torch.allclose(a1, a2, atol=1e-3)  # each call its own pose
    c1, _ = run(1, rotate='so3', translate=0.2)
    assert not torch.allclose(a1, c1, atol=1e-3)  # another seed, another pose
    # the output is the projection in the pose that sample_pose draws
    t = SphereMeshProjection(healpix(4), rotate='so3', translate=0.2,
                             generator=torch.Generator().manual_seed(0))
    state = t.generator.get_state()
    R, shift = t.sample_pose()
    t.generator.set_state(state)
    data = mesh_data()
    assert torch.equal(t(data).x, project_mesh(data.pos, data.face.t(), healpix(4).pos,
                                               rotation=R, translation=shift))
    # without a generator: the global torch RNG
    torch.manual_seed(3)
    g1 = SphereMeshProjection(healpix(4), rotate='so3')(mesh_data()).x
    torch.manual_seed(3)
    assert torch.equal(SphereMeshProjection(healpix(4), rotate='so3')(mesh_data()).x, g1)
    t = SphereMeshProjection(healpix(4), rotate='z', translate=0.3,
                             generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        R, shift = t.sample_pose()
        assert np.allclose(R[2], [0, 0, 1]) and np.allclose(R @ R.T, np.eye(3))
        assert 0 < np.linalg.norm(shift) <= 0.3
    assert SphereMeshProjection(healpix(4)).sample_pose() == (None, None)


def test_transform_poses_are_uniform():
    # Haar-uniform rotations: E[R] = 0 and E[tr(R)^2] = 1 (a rotation biased
    # towards the identity has E[tr R] > 0); translations of uniform direction
    # and a length uniform in [0, 0.5]: mean length 0.25, mean vector 0.
    t = SphereMeshProjection(healpix(1), rotate='so3', translate=0.5,
                             generator=torch.Generator().manual_seed(0))
    poses = [t.sample_pose() for _ in range(2000)]
    R = np.stack([p[0] for p in poses])
    shift = np.stack([p[1] for p in poses])
    assert np.abs(R.mean(0)).max() < 0.06  # entries: std 1/sqrt(3 * 2000) = 0.013
    trace = np.trace(R, axis1=1, axis2=2)
    assert abs(trace.mean()) < 0.1 and abs((trace ** 2).mean() - 1) < 0.15
    length = np.linalg.norm(shift, axis=1)
    assert length.max() <= 0.5 and abs(length.mean() - 0.25) < 0.015  # std 0.0032
    assert np.abs(shift.mean(0)).max() < 0.02  # std 0.0032


@pytest.mark.parametrize('kwargs,match', [
    (dict(sampling=torch.zeros(4, 3)), "'sampling' to be a Data"),
    (dict(rotate='SO3'), "'rotate' to be one of"),
    (dict(translate=-0.1), "'translate' to be a finite number >= 0"),
    (dict(translate='0.1'), "'translate' to be a number"),
    (dict(center='centroid'), "'center' to be one of"),
    (dict(generator=0), "'generator' to be a torch.Generator"),
])
def test_transform_errors(kwargs, match):
    args = dict(sampling=healpix(1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SphereMeshProjection(**args)


def test_transform_rejects_data_without_a_mesh():
    t = SphereMeshProjection(healpix(1))
    with pytest.raises(ValueError, match="'pos' \\[V, 3\\] and 'face'"):
        t(Data(pos=torch.randn(5, 3)))
    with pytest.raises(ValueError, match="'data.face' to have shape"):
        t(Data(pos=torch.randn(5, 3), face=torch.zeros(4, 2, dtype=torch.long)))
