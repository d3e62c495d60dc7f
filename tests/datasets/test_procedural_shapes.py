"""ProceduralShapes: parametric solids projected onto a sphere, seeded per
(seed, split, class, index), cached in root/raw."""
import numpy as np
import pytest
import torch

import pyg_sphere.datasets.procedural_shapes as procedural_shapes
from pyg_sphere.datasets import SHAPE_SPLITS, ProceduralShapes
from pyg_sphere.samplings import healpix
from pyg_sphere.simulate import SHAPE_CLASSES, generate_shape, perturb_mesh
from pyg_sphere.transforms import project_mesh, random_pose


def test_procedural_shapes_tensors_and_samples():
    sampling = healpix(2)
    ds = ProceduralShapes(sampling, n_per_class=2, classes=('box', 'torus', 'cone'))
    assert repr(ds) == 'ProceduralShapes(6)' and len(ds) == 6
    X, y = ds.tensors()
    assert X.shape == (6, 48, 6) and X.dtype == torch.float32 and y.dtype == torch.long
    assert y.tolist() == [0, 0, 1, 1, 2, 2] and ds.classes == ('box', 'torus', 'cone')
    d = ds[3]
    assert torch.equal(d.x, X[3]) and d.y.tolist() == [1] and d.pos is sampling.pos
    v, f, rotation, translation = ds.mesh(1, 1)
    assert rotation is None and translation is None
    assert torch.equal(X[3], project_mesh(v, f, sampling.pos).float())
    # the torus (a hole at the centre) misses some rays, the box none
    assert (X[2:4, :, 0] == 0).any() and (X[:2, :, 0] > 0).all()
    sub = ds[torch.tensor([5, 0])]
    Xs, ys = sub.tensors()
    assert torch.equal(Xs, X[[5, 0]]) and ys.tolist() == [2, 0]
    ds = ProceduralShapes(sampling, n_per_class=1, classes=('box',),
                          transform=lambda data: data.update({'x': data.x * 0}))
    assert (ds[0].x == 0).all() and (ds.tensors()[0] != 0).any()


def test_procedural_shapes_determinism():
    sampling = healpix(2)
    a = ProceduralShapes(sampling, n_per_class=3, seed=1, rotate='so3', translate=0.1)
    b = ProceduralShapes(sampling, n_per_class=3, seed=1, rotate='so3', translate=0.1)
    assert torch.equal(a.tensors()[0], b.tensors()[0])
    Xa = a.tensors()[0]
    # a sample depends on (seed, split, class, index) only
    c = ProceduralShapes(sampling, n_per_class=2, seed=1, rotate='so3', translate=0.1,
                         classes=('torus', 'box'))
    torus, box = SHAPE_CLASSES.index('torus'), SHAPE_CLASSES.index('box')
    assert torch.equal(c.tensors()[0][0], Xa[3 * torus])
    assert torch.equal(c.tensors()[0][3], Xa[3 * box + 1])
    for other in (dict(seed=2), dict(split='test'), dict(rotate='none'), dict(translate=0.0)):
        kw = dict(n_per_class=3, seed=1, rotate='so3', translate=0.1)
        kw.update(other)
        assert not torch.allclose(ProceduralShapes(sampling, **kw).tensors()[0], Xa, atol=1e-3)
    v, f, R, t = a.mesh(torus, 2)
    assert np.allclose(R @ R.T, np.eye(3)) and 0 < np.linalg.norm(t) <= 0.1
    assert torch.equal(Xa[3 * torus + 2],
                       project_mesh(v, f, sampling.pos, rotation=R, translation=t).float())
    z = ProceduralShapes(sampling, n_per_class=1, rotate='z', classes=('box',))
    assert np.allclose(z.mesh(0, 0)[2][2], [0, 0, 1])


def test_perturbed_shapes_and_workers(monkeypatch):
    sampling = healpix(2)
    kw = dict(n_per_class=2, seed=3, rotate='so3', classes=('mug', 'cup'), deform=0.8,
              noise=0.02, partial=0.3)
    a = ProceduralShapes(sampling, **kw)
    Xa = a.tensors()[0]
    # the perturbed mesh and its pose, drawn from the sample's generator in that order
    v, f, R, t = a.mesh(1, 1)
    rng = np.random.default_rng([3, 0, SHAPE_CLASSES.index('cup'), 1])
    v0, f0 = generate_shape('cup', rng)
    v1, f1 = perturb_mesh(v0, f0, rng, 0.8, 0.02, 0.3)
    assert np.array_equal(v, v1) and np.array_equal(f, f1) and len(f) != len(f0)
    assert np.allclose(R, random_pose(rng, 'so3', 0.0)[0])
    assert torch.equal(Xa[3], project_mesh(v, f, sampling.pos, rotation=R).float())
    # each perturbation changes the maps (and the cache key)
    for off in ('deform', 'noise', 'partial'):
        other = ProceduralShapes(sampling, **dict(kw, **{off: 0.0}))
        assert not torch.allclose(other.tensors()[0], Xa, atol=1e-3)
    # worker processes, in chunks, give the same values
    monkeypatch.setattr(procedural_shapes, '_CHUNK', 3)
    b = ProceduralShapes(sampling, **kw, workers=2, force_reload=True)
    assert torch.equal(b.tensors()[0], Xa)
    with pytest.raises(ValueError, match="'deform' to be >= 0 and <= 1.0"):
        ProceduralShapes(sampling, deform=2.0)


def test_procedural_shapes_cache(tmp_path, private_cache, monkeypatch):
    sampling = healpix(2)
    ds = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    files = sorted(p.name for p in (tmp_path / 'raw').iterdir() if not p.name.startswith('.'))
    assert len(files) == 2 and files[0].startswith('shapes_train-')
    assert files[0].endswith('.json') and files[1].endswith('.npz')

    def fail(*args, **kwargs):
        raise AssertionError('projected again')
    real = procedural_shapes.project_mesh
    monkeypatch.setattr(procedural_shapes, 'project_mesh', fail)
    again = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    assert torch.equal(again.tensors()[0], ds.tensors()[0])
    with pytest.raises(AssertionError, match='projected again'):
        ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path), force_reload=True)
    with pytest.raises(AssertionError, match='projected again'):
        ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path), seed=1)
    monkeypatch.setattr(procedural_shapes, 'project_mesh', real)
    npz = next((tmp_path / 'raw').glob('*.npz'))
    npz.write_bytes(b'garbage')  # unreadable: rebuilt
    rebuilt = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    assert torch.equal(rebuilt.tensors()[0], ds.tensors()[0])
    assert not list((tmp_path / 'raw').glob('.*tmp-*'))
    # the default root is the shapes cache
    ProceduralShapes(sampling, n_per_class=1, classes=('box',))
    assert len(list((private_cache / 'shapes' / 'raw').glob('shapes_train-*.npz'))) == 1


def test_classes_are_separable_by_rotation_invariant_statistics():
    sampling = healpix(4)

    def features(split, n):
        X, y = ProceduralShapes(sampling, split, n_per_class=n, rotate='so3',
                                translate=0.05).tensors()
        return torch.cat([X.mean(1), X.std(1)], 1).double(), y
    Xtr, ytr = features('train', 6)
    Xte, yte = features('test', 3)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-9
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    means = torch.stack([Xtr[ytr == c].mean(0) for c in range(len(SHAPE_CLASSES))])
    pred = torch.cdist(Xte, means).argmin(1)
    accuracy = (pred == yte).double().mean().item()
    assert accuracy > 0.6  # chance: 1 / 8


@pytest.mark.parametrize('kwargs,match', [
    (dict(sampling=healpix(1).pos), "'sampling' to be a Data"),
    (dict(sampling=torch.zeros(4, 3)), "'sampling' to hold unit vectors"),
    (dict(split='valid'), "'split' to be one of"),
    (dict(n_per_class=0), "'n_per_class' to be >= 1"),
    (dict(seed=-1), "'seed' to be >= 0"),
    (dict(rotate='SO3'), "'rotate' to be one of"),
    (dict(translate=-1.0), "'translate' to be a finite number >= 0"),
    (dict(center='origin'), "'center' to be one of"),
    (dict(classes=()), "'classes' to be a non-empty sequence"),
    (dict(classes='box'), "'classes' to be a non-empty sequence"),
    (dict(classes=('box', 'blob')), "'classes' to be one of"),
    (dict(classes=('box', 'box')), 'no duplicates'),
])
def test_procedural_shapes_errors(kwargs, match):
    args = dict(sampling=healpix(1), n_per_class=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ProceduralShapes(**args)
    assert SHAPE_SPLITS == ('train', 'val', 'test')
