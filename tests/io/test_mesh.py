"""Reading triangle meshes (pyg_sphere.io.mesh) in every format, against
closed-form volumes."""
import sys

import numpy as np
import pytest

from pyg_sphere.io import MESH_FORMATS, load_mesh
from pyg_sphere.simulate import generate_shape


def volume(v, f):
    """Signed volume (divergence theorem): > 0 for outward triangles."""
    return np.einsum('ij,ij->i', v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6


def write_off(path, v, f):
    """An OFF file of vertices ``v`` and polygons ``f`` (any number of corners)."""
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


def test_load_mesh_round_trips_a_solid(tmp_path):
    pytest.importorskip('trimesh')
    v, f = generate_shape('l_prism', 3)
    write_off(tmp_path / 'solid.off', v, f)
    w, g = load_mesh(tmp_path / 'solid.off')
    assert np.array_equal(w, v) and np.array_equal(g, f)  # no merging, no repair
