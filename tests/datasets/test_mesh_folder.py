"""MeshFolder: a folder of mesh files (ModelNet or plain layout) projected
onto a sphere, split, posed, cached in root/raw."""
import pytest
import torch

import pyg_sphere.datasets.mesh_folder as mesh_folder
from pyg_sphere.datasets import MESH_SPLIT_FRACTIONS, SHAPE_SPLITS, MeshFolder, scan_mesh_folder
from pyg_sphere.io import load_mesh
from pyg_sphere.samplings import healpix
from pyg_sphere.simulate import generate_shape
from pyg_sphere.transforms import project_mesh


def write_off(path, v, f):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['OFF', f'{len(v)} {len(f)} 0'] + [' '.join(map(repr, map(float, p))) for p in v]
    path.write_text('\n'.join(lines + ['3 ' + ' '.join(map(str, t)) for t in f]) + '\n')


def pyramid(scale=1.0):
    v, f = generate_shape('pyramid', 0)
    return v * scale, f


def modelnet_tree(root):
    """Boxes of random proportions and one pyramid at several sizes, in
    ModelNet's class/train|test layout."""
    for k in range(4):
        write_off(root / 'box' / 'train' / f'box_{k}.off', *generate_shape('box', k))
        write_off(root / 'pyramid' / 'train' / f'pyramid_{k}.off', *pyramid(1 + k))
    write_off(root / 'box' / 'test' / 'box_9.off', *generate_shape('box', 9))
    write_off(root / 'pyramid' / 'test' / 'pyramid_9.off', *pyramid())
    (root / 'pyramid' / 'train' / 'notes.txt').write_text('not a mesh')
    (root / 'empty').mkdir()


def test_mesh_folder_modelnet_layout(tmp_path):
    pytest.importorskip('trimesh')
    data = tmp_path / 'data'
    modelnet_tree(data)
    sampling = healpix(2)
    parts = {s: MeshFolder(data, sampling, s, split_fractions=(0.5, 0.25, 0.25),
                           root=str(tmp_path / 'cache')) for s in SHAPE_SPLITS}
    test = parts['test']
    assert test.classes == ('box', 'pyramid') and len(test) == 2
    assert [p.name for p in test.files] == ['box_9.off', 'pyramid_9.off']
    # train / val split the train folders 2 : 1 (0.5 : 0.25)
    names = {s: [p.name for p in parts[s].files] for s in ('train', 'val')}
    assert len(names['train']) == 6 and len(names['val']) == 2
    assert sorted(names['train'] + names['val']) == sorted(
        [f'box_{k}.off' for k in range(4)] + [f'pyramid_{k}.off' for k in range(4)])
    X, y = test.tensors()
    assert X.shape == (2, 48, 6) and y.tolist() == [0, 1]
    assert torch.equal(X[1], project_mesh(*load_mesh(test.files[1]), sampling.pos).float())
    assert repr(test) == 'MeshFolder(2)' and test[1].y.tolist() == [1]
    # a pyramid of any size projects the same (normalized), a box differs
    Xt, yt = parts['train'].tensors()
    same = Xt[yt == 1]
    assert len(same) >= 2 and torch.allclose(same, X[1].expand_as(same), atol=1e-6)
    assert not torch.allclose(X[0], X[1], atol=1e-2)
    # scan_mesh_folder gives the same classes, files and labels
    classes, files, labels = scan_mesh_folder(data, 'train', (0.5, 0.25, 0.25), 0)
    assert classes == test.classes and files == parts['train'].files
    assert labels == parts['train'].tensors()[1].tolist()


def test_mesh_folder_plain_layout_and_poses(tmp_path):
    pytest.importorskip('trimesh')
    data = tmp_path / 'data'
    for k in range(5):
        write_off(data / 'a' / f'{k}.off', *generate_shape('box', k))
        write_off(data / 'b' / f'{k}.off', *pyramid())
    sampling = healpix(1)

    def make(split, **kw):
        return MeshFolder(data, sampling, split, split_fractions=(0.6, 0.2, 0.2), seed=3,
                          root=str(tmp_path / 'cache'), **kw)
    parts = {s: make(s) for s in SHAPE_SPLITS}
    files = [str(p) for s in SHAPE_SPLITS for p in parts[s].files]
    assert len(files) == len(set(files)) == 10
    assert [len(parts[s]) for s in SHAPE_SPLITS] == [6, 2, 2]
    assert make('train').files == parts['train'].files
    rotated = make('train', rotate='so3', translate=0.2)
    assert rotated.files == parts['train'].files
    assert not torch.allclose(rotated.tensors()[0], parts['train'].tensors()[0], atol=1e-3)
    same = make('train', rotate='so3', translate=0.2, force_reload=True)
    assert torch.equal(same.tensors()[0], rotated.tensors()[0])
    assert MESH_SPLIT_FRACTIONS == (0.7, 0.1, 0.2)


def test_mesh_folder_cache(tmp_path, private_cache, monkeypatch):
    pytest.importorskip('trimesh')
    data, cache = tmp_path / 'data', tmp_path / 'cache'
    modelnet_tree(data)
    first = MeshFolder(data, healpix(1), 'test', root=str(cache))
    assert len(list((cache / 'raw').glob('meshes_test-*.npz'))) == 1

    def fail(*args, **kwargs):
        raise AssertionError('read again')
    monkeypatch.setattr(mesh_folder, 'load_mesh', fail)
    again = MeshFolder(data, healpix(1), 'test', root=str(cache))
    assert torch.equal(again.tensors()[0], first.tensors()[0])
    write_off(data / 'pyramid' / 'test' / 'pyramid_9.off', *pyramid(3.0))  # changed file
    with pytest.raises(AssertionError, match='read again'):
        MeshFolder(data, healpix(1), 'test', root=str(cache))
    monkeypatch.setattr(mesh_folder, 'load_mesh', load_mesh)
    # the default root is the shapes cache
    MeshFolder(data, healpix(1), 'test')
    assert len(list((private_cache / 'shapes' / 'raw').glob('meshes_test-*.npz'))) == 1


def test_mesh_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="'folder' to be an existing directory"):
        MeshFolder(tmp_path / 'nope', healpix(1))
    with pytest.raises(ValueError, match="'folder' to be a str"):
        MeshFolder(None, healpix(1))
    with pytest.raises(ValueError, match='class folders with mesh files'):
        MeshFolder(tmp_path, healpix(1))  # no class folders
    (tmp_path / 'cube').mkdir()
    (tmp_path / 'cube' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match=r'class folders with mesh files \(\*\.off'):
        MeshFolder(tmp_path, healpix(1))  # no mesh files
    write_off(tmp_path / 'cube' / 'only.off', *generate_shape('box', 0))
    with pytest.raises(ValueError, match="split 'val' of .* at least one mesh file"):
        MeshFolder(tmp_path, healpix(1), 'val')  # one file: train gets it
    for bad in ((0.5, 0.5), (0.5, 0.6, 0.1), (1.0, -0.5, 0.5), 'abc'):
        with pytest.raises(ValueError, match="'split_fractions' to be 3 numbers"):
            MeshFolder(tmp_path, healpix(1), split_fractions=bad)
    with pytest.raises(ValueError, match="'split' to be one of"):
        MeshFolder(tmp_path, healpix(1), 'all')
    with pytest.raises(ValueError, match="'rotate' to be one of"):
        MeshFolder(tmp_path, healpix(1), rotate='x')
    with pytest.raises(ValueError, match="'sampling' to be a Data"):
        MeshFolder(tmp_path, healpix(1).pos)


def test_mesh_folder_reports_bad_meshes(tmp_path):
    pytest.importorskip('trimesh')
    (tmp_path / 'c').mkdir()
    (tmp_path / 'c' / 'flat.off').write_text('OFF\n3 1 0\n0 0 0\n0 0 0\n0 0 0\n3 0 1 2\n')
    with pytest.raises(ValueError, match="Could not project the mesh .*flat.off.*non-zero area"):
        MeshFolder(tmp_path, healpix(1), split_fractions=(1, 0, 0))
