r"""Parametric solids with random proportions: closed, outward-oriented
triangle meshes (:func:`generate_shape`) of 24 classes, several of them in
confusable pairs (:obj:`CONFUSABLE_PAIRS`), the procedural stand-in for the
SHREC'17 meshes of the shapes task (deformed and noised by
:func:`~pyg_sphere.simulate.perturb_mesh`)."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Dict, Sequence, Tuple

import numpy as np

from .._validation import _got, check_choice
from . import _solid_objects as _objects
from ._mesh_parts import RINGS as _RINGS
from ._mesh_parts import arc, extrude, revolve, sweep

#: Classes of :func:`generate_shape`; the label of a class is its position here
#: (the first eight are the solids of earlier versions, in their order).
SHAPE_CLASSES: Tuple[str, ...] = (
    'box', 'ellipsoid', 'cylinder', 'cone', 'torus', 'capsule', 'pyramid', 'l_prism',
    't_prism', 'u_prism', 'cross_prism', 'cup', 'mug', 'bowl', 'bottle', 'table', 'stool',
    'chair', 'armchair', 'dumbbell', 'mushroom', 'double_torus', 'washer', 'bicone')
#: The eight plain solids of earlier versions (the data of runs made before the
#: 24 classes; :class:`~pyg_sphere.datasets.ProceduralShapes` with
#: ``classes=BASIC_SHAPE_CLASSES`` and no deformation reproduces them).
BASIC_SHAPE_CLASSES: Tuple[str, ...] = SHAPE_CLASSES[:8]
#: Pairs of classes told apart only by a local feature, by proportions or by
#: topology, and what tells them apart.
CONFUSABLE_PAIRS: Tuple[Tuple[str, str, str], ...] = (
    ('cup', 'mug', 'a handle (local feature)'),
    ('chair', 'armchair', 'arm rests (local feature)'),
    ('table', 'stool', 'round top and three legs (local feature)'),
    ('cylinder', 'capsule', 'flat or round caps (local feature)'),
    ('cylinder', 'bottle', 'a neck (local feature)'),
    ('cone', 'bicone', 'flat base or second cone (local feature)'),
    ('cone', 'pyramid', 'round or square base (local feature)'),
    ('cup', 'bowl', 'height to width, straight or round wall (proportions)'),
    ('capsule', 'dumbbell', 'a bar between the ends (proportions)'),
    ('l_prism', 't_prism', 'where the bars meet (proportions)'),
    ('t_prism', 'cross_prism', 'a fourth arm (local feature)'),
    ('u_prism', 'l_prism', 'a second arm (local feature)'),
    ('torus', 'double_torus', 'one hole or two (topology)'),
    ('torus', 'washer', 'round or rectangular section (proportions)'),
    ('cylinder', 'washer', 'a hole through the axis (topology)'),
)

def _box(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b, c = rng.uniform(0.3, 1.0, size=3)
    return extrude([(-a, -b), (a, -b), (a, b), (-a, b)], 2 * c, [(0, 1, 2), (0, 2, 3)])


def _ellipsoid(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b, c = rng.uniform(0.3, 1.0, size=3)
    r, z = arc(1.0, 0.0, 0.0, np.pi, _RINGS)
    r[0] = r[-1] = 0.0
    v, f = revolve(r, z)
    return v * np.array([a, b, c]), f


def _cylinder(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, half = rng.uniform(0.3, 0.8), rng.uniform(0.3, 1.0)
    side = np.linspace(-half, half, 5)
    r = np.r_[0, radius / 2, np.full(5, radius), radius / 2, 0]
    return revolve(r, np.r_[-half, -half, side, half, half])


def _cone(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, height = rng.uniform(0.3, 0.8), rng.uniform(0.6, 2.0)
    t = np.linspace(0.0, 1.0, 5)  # from the base rim to the apex
    r = np.r_[0, radius / 2, radius * (1 - t)]
    return revolve(r, np.r_[-height / 3, -height / 3, height * (t - 1 / 3)])


def _capsule(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radius, half = rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.0)
    steps = _RINGS // 2
    rb, zb = arc(radius, -half, 0.0, np.pi / 2, steps)
    rt, zt = arc(radius, half, np.pi / 2, np.pi, steps)
    r = np.concatenate([rb, np.full(3, radius), rt])
    z = np.concatenate([zb, [-half / 2, 0.0, half / 2], zt])
    r[0] = r[-1] = 0.0
    return revolve(r, z)


def _torus(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    major = rng.uniform(0.5, 1.0)
    minor = major * rng.uniform(0.15, 0.5)
    psi = 2 * np.pi * np.arange(_RINGS) / _RINGS
    return sweep(major + minor * np.cos(psi), minor * np.sin(psi))


def _pyramid(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    a, b = rng.uniform(0.3, 1.0, size=2)
    height = rng.uniform(0.5, 2.0)
    z0 = -height / 3
    vertices = np.array([(-a, -b, z0), (a, -b, z0), (a, b, z0), (-a, b, z0),
                         (0.0, 0.0, z0 + height)])
    faces = np.array([(0, 2, 1), (0, 3, 2), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)])
    return vertices, faces


def _l_prism(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    w, h = rng.uniform(0.6, 1.2, size=2)
    t = min(w, h) * rng.uniform(0.2, 0.45)
    depth = rng.uniform(0.2, 0.8)
    polygon = [(0, 0), (w, 0), (w, t), (t, t), (t, h), (0, h)]
    v, f = extrude(polygon, depth, [(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 5)])
    return v - np.array([w / 3, h / 3, 0.0]), f


_GENERATORS: Dict[str, Callable[[np.random.Generator], Tuple[np.ndarray, np.ndarray]]] = {
    'box': _box, 'ellipsoid': _ellipsoid, 'cylinder': _cylinder, 'cone': _cone,
    'torus': _torus, 'capsule': _capsule, 'pyramid': _pyramid, 'l_prism': _l_prism,
    **{name: getattr(_objects, name) for name in SHAPE_CLASSES[8:]},
}
assert tuple(_GENERATORS) == SHAPE_CLASSES


def _as_rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"Expected 'rng' to be a numpy Generator, an int or None (got {_got(rng)})")


def generate_shape(cls_name: str, rng: Any = None) -> Tuple[np.ndarray, np.ndarray]:
    r"""A closed triangle mesh of class ``cls_name`` with random proportions.

    Classes (:obj:`SHAPE_CLASSES`), axis-aligned (z up), lengths uniform in
    the ranges below:

    * ``'box'``: half sides in :math:`[0.3, 1]`, 12 triangles;
    * ``'ellipsoid'``: semi-axes in :math:`[0.3, 1]`;
    * ``'cylinder'``: radius in :math:`[0.3, 0.8]`, half height in
      :math:`[0.3, 1]`, flat caps;
    * ``'cone'``: base radius in :math:`[0.3, 0.8]`, height in :math:`[0.6, 2]`;
    * ``'torus'``: major radius :math:`R \in [0.5, 1]`, tube radius
      :math:`r \in [0.15, 0.5] R`;
    * ``'capsule'``: a cylinder of radius :math:`[0.2, 0.5]` and half length
      :math:`[0.3, 1]` closed by hemispheres;
    * ``'pyramid'``: rectangular base of half sides in :math:`[0.3, 1]`,
      height in :math:`[0.5, 2]`, 6 triangles;
    * ``'l_prism'``: an L-shaped polygon (legs :math:`[0.6, 1.2]`, thickness
      :math:`[0.2, 0.45]` of the shorter leg) extruded by :math:`[0.2, 0.8]`
      (non-convex: differs from its hull);
    * letters extruded by :math:`[0.2, 0.8]`: ``'t_prism'`` (a bar on an
      off-centre stem), ``'u_prism'`` (a channel), ``'cross_prism'`` (a plus
      sign);
    * vessels, hollow, open at the top: ``'cup'`` (straight flaring walls,
      height 1.2-2.5 radii), ``'mug'`` (a cup with a ring handle),
      ``'bowl'`` (a spherical cap, rim 60-100 degrees from the bottom,
      flattened up to 2 times); ``'bottle'`` (solid: body, rounded shoulder,
      neck of 0.3-0.5 body radii);
    * furniture: ``'table'`` (rectangular top on four legs), ``'stool'``
      (round seat on three legs), ``'chair'`` (seat, four legs, back),
      ``'armchair'`` (a chair with two arm rests);
    * composites: ``'dumbbell'`` (two balls, a bar 2-4 times thinner),
      ``'mushroom'`` (a stem under a wider dome), ``'double_torus'`` (two
      overlapping rings, genus 2), ``'washer'`` (a ring of rectangular
      section, inner radius 0.2-0.6 of the outer), ``'bicone'`` (two cones
      base to base).

    :obj:`CONFUSABLE_PAIRS` lists the pairs that differ only by a local
    feature, proportions or topology. Round solids have 32 vertices around
    their axis and 16 rings. Every mesh is closed (each edge in two
    triangles, in opposite directions; composites are unions of such parts,
    which may overlap) and its triangles are counter-clockwise seen from
    outside (positive volume).

    Args:
        cls_name (str): one of :obj:`SHAPE_CLASSES`.
        rng (numpy.random.Generator or int, optional): source of randomness
            or seed. (default: :obj:`None`, fresh entropy)

    Returns:
        ``(vertices [V, 3] float64, faces [F, 3] int64)``.

    Example:
        >>> v, f = generate_shape('box', 0)
        >>> v.shape, f.shape
        ((8, 3), (12, 3))
    """
    cls_name = check_choice('cls_name', cls_name, SHAPE_CLASSES)
    return _GENERATORS[cls_name](_as_rng(rng))


