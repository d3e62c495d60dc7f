"""Parametric solids (pyg_sphere.simulate.solids): closed, outward,
volumes of closed form, seeded."""
import numpy as np
import pytest
from scipy.spatial import ConvexHull

from pyg_sphere.simulate import (BASIC_SHAPE_CLASSES, CONFUSABLE_PAIRS, SHAPE_CLASSES,
                                  generate_shape)


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
    # the labels of the solids of earlier versions are kept (their runs still load)
    assert SHAPE_CLASSES[:8] == BASIC_SHAPE_CLASSES == (
        'box', 'ellipsoid', 'cylinder', 'cone', 'torus', 'capsule', 'pyramid', 'l_prism')
    assert len(SHAPE_CLASSES) >= 20 and len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)
    for a, b, _ in CONFUSABLE_PAIRS:
        assert a in SHAPE_CLASSES and b in SHAPE_CLASSES and a != b
