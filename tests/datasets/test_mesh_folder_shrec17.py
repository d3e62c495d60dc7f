"""MeshFolder in the SHREC'17 layout: mesh files named by id, a CSV of ids,
classes and (optionally) splits."""
import pytest
import torch

from pyg_sphere.datasets import SHAPE_SPLITS, MeshFolder, scan_mesh_folder
from pyg_sphere.io import load_mesh, read_shrec17, shrec17_csvs
from pyg_sphere.samplings import healpix
from pyg_sphere.simulate import generate_shape
from pyg_sphere.transforms import project_mesh

HEADER = 'id,synsetId,subSynsetId,modelId,split\n'


def write_obj(path, v, f):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join('v %r %r %r\n' % tuple(map(float, p)) for p in v) +
                    ''.join('f %d %d %d\n' % tuple(t + 1) for t in f))


def shrec_tree(root, with_split=True):
    """Boxes (synset 02) and tori (synset 01) as model_<id>.obj in
    <split>_normal/ folders, listed in one CSV; id 9 has no file."""
    rows = []
    for k, (cls, shape, split) in enumerate([
            ('02', 'box', 'train'), ('01', 'torus', 'train'), ('02', 'box', 'train'),
            ('01', 'torus', 'val'), ('02', 'box', 'test'), ('01', 'torus', 'test')]):
        write_obj(root / f'{split}_normal' / f'model_{k:06d}.obj', *generate_shape(shape, k))
        rows.append(f'{k:06d},{cls},{cls},m{k},{split if with_split else ""}\n')
    rows.append('000009,01,01,m9,test\n')
    (root / 'all.csv').write_text(HEADER + ''.join(rows))
    (root / 'notes.csv').write_text('a,b\n1,2\n')  # not a SHREC'17 CSV


def test_shrec17_layout_with_splits(tmp_path):
    pytest.importorskip('trimesh')
    root = tmp_path / 'shrec'
    shrec_tree(root)
    assert shrec17_csvs(root) == [root / 'all.csv']
    entries = read_shrec17(root)
    assert [(p.name, c, s) for p, c, s in entries] == [
        ('model_000004.obj', '02', 'test'), ('model_000005.obj', '01', 'test'),
        ('model_000000.obj', '02', 'train'), ('model_000001.obj', '01', 'train'),
        ('model_000002.obj', '02', 'train'), ('model_000003.obj', '01', 'val')]
    sampling = healpix(2)
    parts = {s: MeshFolder(root, sampling, s, root=str(tmp_path / 'cache')) for s in SHAPE_SPLITS}
    # classes sorted by name: '01' (tori) is label 0; files sorted by class, then path
    assert all(p.classes == ('01', '02') for p in parts.values())
    assert [f.name for f in parts['train'].files] == ['model_000001.obj', 'model_000000.obj',
                                                      'model_000002.obj']
    assert parts['train'].tensors()[1].tolist() == [0, 1, 1]
    assert [f.name for f in parts['val'].files] == ['model_000003.obj']
    X, y = parts['test'].tensors()
    assert y.tolist() == [0, 1] and X.shape == (2, 48, 6)
    assert torch.equal(X[1], project_mesh(*load_mesh(parts['test'].files[1]), sampling.pos).float())
    # the <split>_normal folders are not taken for class folders
    assert scan_mesh_folder(root, 'test', (0.7, 0.1, 0.2), 0)[0] == ('01', '02')


def test_shrec17_layout_without_splits_draws_them(tmp_path):
    pytest.importorskip('trimesh')
    root = tmp_path / 'flat'
    shrec_tree(root, with_split=False)
    for p in list(root.rglob('*.obj')):  # one flat folder, ids without the model_ prefix
        p.rename(root / (p.stem[len('model_'):].lstrip('0').rjust(1, '0') + '.obj'))
    fractions = (0.4, 0.3, 0.3)
    files = {s: scan_mesh_folder(root, s, fractions, seed=1)[1] for s in SHAPE_SPLITS}
    names = sorted(p.name for s in SHAPE_SPLITS for p in files[s])
    assert names == ['0.obj', '1.obj', '2.obj', '3.obj', '4.obj', '5.obj']
    # each class of 3 files: 1 each to val and test, 1 to train
    assert [len(files[s]) for s in SHAPE_SPLITS] == [2, 2, 2]
    again = scan_mesh_folder(root, 'val', fractions, seed=1)[1]
    assert again == files['val']


def test_shrec17_layout_errors(tmp_path):
    pytest.importorskip('trimesh')
    root = tmp_path / 'bad'
    shrec_tree(root)
    with pytest.raises(ValueError, match="split of 'model_000001.obj' to be one of"):
        (root / 'all.csv').write_text(HEADER + '000001,01,01,m,training\n')
        MeshFolder(root, healpix(1))
    with pytest.raises(ValueError, match='every row .* to have a split, or none'):
        (root / 'all.csv').write_text(HEADER + '000001,01,01,m,train\n000002,02,02,m,\n')
        MeshFolder(root, healpix(1))
    with pytest.raises(ValueError, match="id 000001 to have one class"):
        (root / 'all.csv').write_text(HEADER + '000001,01,01,m,train\n000001,02,02,m,train\n')
        MeshFolder(root, healpix(1))
    with pytest.raises(ValueError, match="an id and a class in 'all.csv' line 2"):
        (root / 'all.csv').write_text(HEADER + ',01,01,m,train\n')
        MeshFolder(root, healpix(1))
    with pytest.raises(ValueError, match="some ids of .* to have a mesh file"):
        (root / 'all.csv').write_text(HEADER + '000077,01,01,m,train\n')
        MeshFolder(root, healpix(1))
    write_obj(root / 'train_perturbed' / 'model_000001.obj', *generate_shape('box', 0))
    with pytest.raises(ValueError, match="one mesh file per id .* keep one set"):
        (root / 'all.csv').write_text(HEADER + '000001,01,01,m,train\n')
        MeshFolder(root, healpix(1))
