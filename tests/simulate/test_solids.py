import sys

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

import pyg_sphere.datasets.shapes as shapes
from pyg_sphere.datasets import (MESH_FORMATS, SHAPE_CLASSES, SHAPE_SPLITS, MeshFolder,
                                 ProceduralShapes, generate_shape, load_mesh)
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import project_mesh


def volume(v, f):
    """Signed volume (divergence theorem): > 0 for outward triangles."""
    return np.einsum('ij,ij->i', v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6


def is_closed(f):
    """Each directed edge once, and its reverse present: a closed, consistently
    oriented surface."""
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    return len(directed) == len(edges) and all((b, a) in directed for a, b in directed)


def polygon_area(r, m=32):
    """Area of the regular m-gon inscribed in a circle of radius r."""
    return 0.5 * m * np.sin(2 * np.pi / m) * r * r


@pytest.mark.parametrize('name', SHAPE_CLASSES)
def test_shapes_are_closed_and_outward(name):
    for seed in range(3):
        v, f = generate_shape(name, seed)
        assert v.dtype == np.float64 and f.dtype == np.int64 and f.shape[1] == 3
        assert is_closed(f)
        assert volume(v, f) > 0
        assert np.isfinite(v).all() and f.min() == 0 and f.max() == len(v) - 1


def test_shape_volumes_closed_forms():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for name in SHAPE_CLASSES:
            v, f = generate_shape(name, rng)
            ext = v.max(0) - v.min(0)
            vol = volume(v, f)
            if name == 'box':
                assert np.isclose(vol, ext.prod(), rtol=1e-12)
            elif name == 'cylinder':
                assert np.isclose(vol, polygon_area(ext[0] / 2) * ext[2], rtol=1e-12)
            elif name == 'cone':
                assert np.isclose(vol, polygon_area(ext[0] / 2) * ext[2] / 3, rtol=1e-12)
            elif name == 'pyramid':
                assert np.isclose(vol, ext[0] * ext[1] * ext[2] / 3, rtol=1e-12)
            elif name == 'ellipsoid':  # inscribed polyhedron of 4/3 pi abc
                ref = 4 / 3 * np.pi * ext.prod() / 8
                assert 0.97 * ref < vol < ref
            elif name == 'torus':  # 2 pi^2 R r^2, polygonal tube and ring
                r = ext[2] / 2
                R = ext[0] / 2 - r
                assert 0.95 * 2 * np.pi ** 2 * R * r * r < vol < 2 * np.pi ** 2 * R * r * r
            elif name == 'capsule':
                r = ext[0] / 2
                ref = np.pi * r * r * (ext[2] - 2 * r) + 4 / 3 * np.pi * r ** 3
                assert 0.97 * ref < vol < ref
            elif name == 'l_prism':  # non-convex
                assert vol < 0.95 * ConvexHull(v).volume


def test_generate_shape_is_seeded_and_validated():
    v1, f1 = generate_shape('torus', 3)
    v2, f2 = generate_shape('torus', np.random.default_rng(3))
    assert np.array_equal(v1, v2) and np.array_equal(f1, f2)
    assert not np.allclose(generate_shape('torus', 4)[0], v1)
    with pytest.raises(ValueError, match="'cls_name' to be one of"):
        generate_shape('sphere', 0)
    with pytest.raises(ValueError, match="'rng' to be a numpy Generator"):
        generate_shape('box', 'seed')


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


def test_procedural_shapes_cache(tmp_path, monkeypatch):
    sampling = healpix(2)
    ds = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith('shapes_train_')
    assert files[0].endswith('.json') and files[1].endswith('.npz')

    def fail(*args, **kwargs):
        raise AssertionError('projected again')
    monkeypatch.setattr(shapes, 'project_mesh', fail)
    again = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    assert torch.equal(again.tensors()[0], ds.tensors()[0])
    with pytest.raises(AssertionError, match='projected again'):
        ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path), force_reload=True)
    with pytest.raises(AssertionError, match='projected again'):
        ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path), seed=1)
    monkeypatch.undo()
    npz = next(tmp_path.glob('*.npz'))
    npz.write_bytes(b'garbage')  # unreadable: rebuilt
    rebuilt = ProceduralShapes(sampling, n_per_class=1, root=str(tmp_path))
    assert torch.equal(rebuilt.tensors()[0], ds.tensors()[0])
    assert not list(tmp_path.glob('.*tmp-*'))


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
    (dict(sampling=torch.zeros(4, 3)), "'sampling' to be a Data"),
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


# -- mesh files -------------------------------------------------------------------

def write_off(path, v, f, quads=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['OFF', f'{len(v)} {len(f)} 0'] + [' '.join(map(repr, map(float, p))) for p in v]
    lines += [f'{len(t)} ' + ' '.join(map(str, t)) for t in f]
    path.write_text('\n'.join(lines) + '\n')


def cube_quads(scale=(1, 1, 1)):
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
             (1, 5, 7, 3)]
    return v * scale, quads


def octahedron(scale=1.0):
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    # outward: (i, j, k) when the signs of the three axes multiply to +1
    f = [(i, j, k) if (-1) ** (i + j + k - 6) > 0 else (i, k, j)
         for i in (0, 1) for j in (2, 3) for k in (4, 5)]
    return v * scale, f


def test_load_mesh_formats(tmp_path):
    pytest.importorskip('trimesh')
    v, quads = cube_quads()
    write_off(tmp_path / 'cube.OFF', v, quads)
    w, f = load_mesh(tmp_path / 'cube.OFF')
    assert np.array_equal(w, v) and f.shape == (12, 3) and f.dtype == np.int64
    assert np.isclose(abs(volume(w, f)), 8.0)  # the quads are triangulated
    v, f = octahedron()
    obj = ['v ' + ' '.join(map(str, p)) for p in v] + \
        ['f ' + ' '.join(str(i + 1) for i in t) for t in f]
    (tmp_path / 'oct.obj').write_text('\n'.join(obj) + '\n')
    w, g = load_mesh(str(tmp_path / 'oct.obj'))
    assert np.isclose(volume(w, g), 4 / 3) and g.shape == (8, 3)
    ply = ['ply', 'format ascii 1.0', f'element vertex {len(v)}', 'property float x',
           'property float y', 'property float z', f'element face {len(f)}',
           'property list uchar int vertex_indices', 'end_header']
    ply += [' '.join(map(str, p)) for p in v] + ['3 ' + ' '.join(map(str, t)) for t in f]
    (tmp_path / 'oct.ply').write_text('\n'.join(ply) + '\n')
    w, g = load_mesh(tmp_path / 'oct.ply')
    assert np.isclose(volume(w, g), 4 / 3)
    stl = ['solid t']
    for t in f:
        stl += ['facet normal 0 0 0', 'outer loop'] + \
            ['vertex ' + ' '.join(map(str, v[i])) for i in t] + ['endloop', 'endfacet']
    (tmp_path / 'oct.stl').write_text('\n'.join(stl + ['endsolid t']) + '\n')
    w, g = load_mesh(tmp_path / 'oct.stl')
    assert np.isclose(volume(w, g), 4 / 3) and g.shape == (8, 3)
    assert MESH_FORMATS == ('off', 'obj', 'stl', 'ply')


def test_load_mesh_errors(tmp_path):
    with pytest.raises(ValueError, match="'path' to have one of the extensions"):
        load_mesh(tmp_path / 'mesh.glb')
    with pytest.raises(FileNotFoundError, match="existing mesh file"):
        load_mesh(tmp_path / 'missing.off')
    with pytest.raises(ValueError, match="'path' to be a str"):
        load_mesh(3)
    pytest.importorskip('trimesh')
    (tmp_path / 'bad.off').write_text('OFF\n3 1 0\n0 0 0\nnot a number\n')
    with pytest.raises(ValueError, match='Could not read a triangle mesh'):
        load_mesh(tmp_path / 'bad.off')
    (tmp_path / 'empty.off').write_text('OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n')
    with pytest.raises(ValueError, match='non-empty triangle mesh'):
        load_mesh(tmp_path / 'empty.off')


def test_load_mesh_without_trimesh(tmp_path, monkeypatch):
    write_off(tmp_path / 'o.off', *octahedron())
    monkeypatch.setitem(sys.modules, 'trimesh', None)  # import trimesh -> ImportError
    with pytest.raises(ImportError, match=r"'trimesh'.*pip install pyg-sphere\[shapes\]"):
        load_mesh(tmp_path / 'o.off')


def modelnet_tree(root):
    for k in range(4):
        write_off(root / 'cube' / 'train' / f'cube_{k}.off', *cube_quads((1, 1 + k / 4, 1)))
        write_off(root / 'octa' / 'train' / f'octa_{k}.off', *octahedron(1 + k))
    write_off(root / 'cube' / 'test' / 'cube_9.off', *cube_quads((2, 1, 1)))
    write_off(root / 'octa' / 'test' / 'octa_9.off', *octahedron())
    (root / 'octa' / 'train' / 'notes.txt').write_text('not a mesh')
    (root / 'empty').mkdir()


def test_mesh_folder_modelnet_layout(tmp_path):
    pytest.importorskip('trimesh')
    modelnet_tree(tmp_path)
    sampling = healpix(2)
    parts = {s: MeshFolder(tmp_path, sampling, s, split_fractions=(0.5, 0.25, 0.25))
             for s in SHAPE_SPLITS}
    test = parts['test']
    assert test.classes == ('cube', 'octa') and len(test) == 2
    assert [p.name for p in test.files] == ['cube_9.off', 'octa_9.off']
    # train / val split the train folders 2 : 1 (0.5 : 0.25)
    names = {s: [p.name for p in parts[s].files] for s in ('train', 'val')}
    assert len(names['train']) == 6 and len(names['val']) == 2
    assert sorted(names['train'] + names['val']) == sorted(
        [f'cube_{k}.off' for k in range(4)] + [f'octa_{k}.off' for k in range(4)])
    X, y = test.tensors()
    assert X.shape == (2, 48, 6) and y.tolist() == [0, 1]
    assert torch.equal(X[1], project_mesh(*load_mesh(test.files[1]), sampling.pos).float())
    # an octahedron of any size projects the same (normalized), a cube differs
    Xt, yt = parts['train'].tensors()
    octa = Xt[yt == 1]
    assert torch.allclose(octa, X[1].expand_as(octa), atol=1e-6)
    assert not torch.allclose(X[0], X[1], atol=1e-2)


def test_mesh_folder_plain_layout_and_poses(tmp_path):
    pytest.importorskip('trimesh')
    for k in range(5):
        write_off(tmp_path / 'a' / f'{k}.off', *cube_quads((1, 1 + k / 5, 1)))
        write_off(tmp_path / 'b' / f'{k}.off', *octahedron())
    sampling = healpix(1)
    parts = {s: MeshFolder(tmp_path, sampling, s, split_fractions=(0.6, 0.2, 0.2), seed=3)
             for s in SHAPE_SPLITS}
    files = [str(p) for s in SHAPE_SPLITS for p in parts[s].files]
    assert len(files) == len(set(files)) == 10
    assert [len(parts[s]) for s in SHAPE_SPLITS] == [6, 2, 2]
    again = MeshFolder(tmp_path, sampling, 'train', split_fractions=(0.6, 0.2, 0.2), seed=3)
    assert again.files == parts['train'].files
    rotated = MeshFolder(tmp_path, sampling, 'train', split_fractions=(0.6, 0.2, 0.2), seed=3,
                         rotate='so3', translate=0.2)
    assert rotated.files == parts['train'].files
    assert not torch.allclose(rotated.tensors()[0], parts['train'].tensors()[0], atol=1e-3)
    same = MeshFolder(tmp_path, sampling, 'train', split_fractions=(0.6, 0.2, 0.2), seed=3,
                      rotate='so3', translate=0.2)
    assert torch.equal(same.tensors()[0], rotated.tensors()[0])


def test_mesh_folder_cache(tmp_path, monkeypatch):
    pytest.importorskip('trimesh')
    data, cache = tmp_path / 'data', tmp_path / 'cache'
    modelnet_tree(data)
    first = MeshFolder(data, healpix(1), 'test', cache_dir=str(cache))
    assert len(list(cache.glob('meshes_test_*.npz'))) == 1

    def fail(*args, **kwargs):
        raise AssertionError('read again')
    monkeypatch.setattr(shapes, 'load_mesh', fail)
    again = MeshFolder(data, healpix(1), 'test', cache_dir=str(cache))
    assert torch.equal(again.tensors()[0], first.tensors()[0])
    write_off(data / 'octa' / 'test' / 'octa_9.off', *cube_quads((3, 1, 1)))  # changed file
    with pytest.raises(AssertionError, match='read again'):
        MeshFolder(data, healpix(1), 'test', cache_dir=str(cache))


def test_mesh_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="'root' to be an existing directory"):
        MeshFolder(tmp_path / 'nope', healpix(1))
    with pytest.raises(ValueError, match="'root' to be a str"):
        MeshFolder(None, healpix(1))
    with pytest.raises(ValueError, match='class folders with mesh files'):
        MeshFolder(tmp_path, healpix(1))  # no class folders
    (tmp_path / 'cube').mkdir()
    (tmp_path / 'cube' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match=r'class folders with mesh files \(\*\.off'):
        MeshFolder(tmp_path, healpix(1))  # no mesh files
    write_off(tmp_path / 'cube' / 'only.off', *cube_quads())
    with pytest.raises(ValueError, match="split 'val' of .* at least one mesh file"):
        MeshFolder(tmp_path, healpix(1), 'val')  # one file: train gets it
    for bad in ((0.5, 0.5), (0.5, 0.6, 0.1), (1.0, -0.5, 0.5), 'abc'):
        with pytest.raises(ValueError, match="'split_fractions' to be 3 numbers"):
            MeshFolder(tmp_path, healpix(1), split_fractions=bad)
    with pytest.raises(ValueError, match="'split' to be one of"):
        MeshFolder(tmp_path, healpix(1), 'all')
    with pytest.raises(ValueError, match="'rotate' to be one of"):
        MeshFolder(tmp_path, healpix(1), rotate='x')


def test_mesh_folder_reports_bad_meshes(tmp_path):
    pytest.importorskip('trimesh')
    (tmp_path / 'c').mkdir()
    (tmp_path / 'c' / 'flat.off').write_text('OFF\n3 1 0\n0 0 0\n0 0 0\n0 0 0\n3 0 1 2\n')
    with pytest.raises(ValueError, match="Could not project the mesh .*flat.off.*non-zero area"):
        MeshFolder(tmp_path, healpix(1), split_fractions=(1, 0, 0))
