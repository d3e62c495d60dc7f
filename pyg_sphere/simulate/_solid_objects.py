"""The object-like solids of :func:`~pyg_sphere.simulate.generate_shape`
(letters, vessels, furniture, composites), each closed and outward oriented,
with random proportions drawn from the generator. Several come in
confusable pairs (see :obj:`~pyg_sphere.simulate.CONFUSABLE_PAIRS`)."""
from __future__ import annotations

import numpy as np

from ._mesh_parts import (Mesh, arc, box, extrude, merge, place, revolve, rod, rotation_to,
                          sphere, sweep)

Rng = np.random.Generator


def t_prism(rng: Rng) -> Mesh:
    """A T: a bar on a stem (off centre by up to 15 % of the bar), extruded."""
    w, h = rng.uniform(0.8, 1.4), rng.uniform(0.6, 1.2)
    t1, t2 = rng.uniform(0.15, 0.35, size=2)
    c = w * rng.uniform(-0.15, 0.15)
    depth = rng.uniform(0.2, 0.8)
    polygon = [(c - t2 / 2, 0), (c + t2 / 2, 0), (c + t2 / 2, h), (w / 2, h), (w / 2, h + t1),
               (-w / 2, h + t1), (-w / 2, h), (c - t2 / 2, h)]
    v, f = extrude(polygon, depth)
    return v - np.array([0.0, (h + t1) / 2, 0.0]), f


def u_prism(rng: Rng) -> Mesh:
    """A U (channel section): two arms on a base, extruded."""
    w, h = rng.uniform(0.7, 1.3), rng.uniform(0.6, 1.2)
    t = w * rng.uniform(0.12, 0.3)
    tb = h * rng.uniform(0.15, 0.3)
    depth = rng.uniform(0.2, 0.8)
    polygon = [(0, 0), (w, 0), (w, h), (w - t, h), (w - t, tb), (t, tb), (t, h), (0, h)]
    v, f = extrude(polygon, depth)
    return v - np.array([w / 2, h / 2, 0.0]), f


def cross_prism(rng: Rng) -> Mesh:
    """A plus sign: two crossing bars, extruded."""
    a, b = rng.uniform(0.4, 0.7, size=2)
    t = rng.uniform(0.15, 0.35)
    depth = rng.uniform(0.2, 0.8)
    s = t / 2
    polygon = [(-s, -b), (s, -b), (s, -s), (a, -s), (a, s), (s, s), (s, b), (-s, b), (-s, s),
               (-a, s), (-a, -s), (-s, -s)]
    return extrude(polygon, depth)


def _vessel(rng: Rng) -> Mesh:
    """An open-topped vessel of revolution (a cup): flat bottom, straight
    walls flaring by up to 25 %, wall 8-15 % of the radius."""
    radius = rng.uniform(0.35, 0.6)
    height = radius * rng.uniform(1.2, 2.5)
    top = radius * rng.uniform(1.0, 1.25)
    wall = radius * rng.uniform(0.08, 0.15)
    s = np.linspace(0.0, 1.0, 6)
    z_out = height * s
    r_out = radius + (top - radius) * s
    z_in = np.linspace(height, wall, 6)
    r_in = radius + (top - radius) * z_in / height - wall
    r = np.r_[0, radius / 2, r_out, r_in, r_in[-1] / 2, 0]
    z = np.r_[0, 0, z_out, z_in, wall, wall]
    return revolve(r, z)


def cup(rng: Rng) -> Mesh:
    """An open cup (hollow, flat bottom), no handle."""
    return _vessel(rng)


def mug(rng: Rng) -> Mesh:
    """A cup with a ring handle on its side (the local feature that tells it
    from ``'cup'``)."""
    v, f = _vessel(rng)
    height = v[:, 2].max()
    wall_r = np.hypot(v[:, 0], v[:, 1]).max()
    major = height * rng.uniform(0.22, 0.32)
    minor = wall_r * rng.uniform(0.08, 0.14)
    psi = 2 * np.pi * np.arange(8) / 8
    handle = sweep(major + minor * np.cos(psi), minor * np.sin(psi), segments=16)
    handle = place(handle, rotation_to('y'),
                   (0.95 * wall_r + major - minor, 0.0, height * rng.uniform(0.45, 0.6)))
    return merge((v, f), handle)


def bowl(rng: Rng) -> Mesh:
    """A hollow spherical cap (rim 60-100 degrees from the bottom), flattened
    or deepened by up to a factor 2."""
    rim = np.deg2rad(rng.uniform(60, 100))
    wall = rng.uniform(0.06, 0.12)
    ro, zo = arc(1.0, 0.0, 0.0, rim, 8)
    ri, zi = arc(1.0 - wall, 0.0, 0.0, rim, 8)
    r = np.r_[ro, ri[::-1]]
    z = np.r_[zo, zi[::-1]]
    r[0] = r[-1] = 0.0
    v, f = revolve(r, z)
    width = rng.uniform(0.5, 0.9)
    return v * np.array([width, width, width * rng.uniform(0.5, 1.0)]), f


def bottle(rng: Rng) -> Mesh:
    """A solid bottle: a cylindrical body, a rounded shoulder and a neck."""
    radius = rng.uniform(0.25, 0.45)
    body = radius * rng.uniform(1.5, 3.0)
    shoulder = radius * rng.uniform(0.4, 1.0)
    neck_r = radius * rng.uniform(0.3, 0.5)
    neck = radius * rng.uniform(0.5, 1.5)
    s = np.array([0.25, 0.5, 0.75, 1.0])
    top = body + shoulder + neck
    r = np.r_[0, radius / 2, radius, radius, radius, radius,
              neck_r + (radius - neck_r) * (1 + np.cos(np.pi * s)) / 2, neck_r, neck_r / 2, 0]
    z = np.r_[0, 0, 0, body / 3, 2 * body / 3, body, body + shoulder * s,
              body + shoulder + neck / 2, top, top]
    return revolve(r, z)


def _legs(xs, ys, half_width: float, height: float) -> list:
    return [box((x, y, height / 2), (half_width, half_width, height / 2)) for x in xs for y in ys]


def table(rng: Rng) -> Mesh:
    """A rectangular top on four legs."""
    a = rng.uniform(0.5, 0.9)
    b = a * rng.uniform(0.5, 1.0)
    thick, height = rng.uniform(0.03, 0.07), rng.uniform(0.5, 1.0)
    lw = rng.uniform(0.03, 0.06)
    inset = a * rng.uniform(0.0, 0.1)
    x, y = a - lw - inset, b - lw - inset
    return merge(box((0, 0, height), (a, b, thick)), *_legs((-x, x), (-y, y), lw, height))


def stool(rng: Rng) -> Mesh:
    """A round seat on three legs (a round-topped, three-legged ``'table'``)."""
    radius, height = rng.uniform(0.25, 0.45), rng.uniform(0.5, 1.0)
    thick, leg = rng.uniform(0.03, 0.07), rng.uniform(0.025, 0.05)
    phase = rng.uniform(0, 2 * np.pi)
    parts = [rod(radius, height - thick, height + thick, segments=24)]
    for k in range(3):
        angle = phase + 2 * np.pi * k / 3
        parts.append(place(rod(leg, 0.0, height, segments=8), None,
                           (0.75 * radius * np.cos(angle), 0.75 * radius * np.sin(angle), 0.0)))
    return merge(*parts)


def _chair(rng: Rng, arms: bool) -> Mesh:
    a = rng.uniform(0.3, 0.45)
    b = a * rng.uniform(0.8, 1.2)
    thick, seat = rng.uniform(0.03, 0.06), rng.uniform(0.4, 0.6)
    lw = rng.uniform(0.025, 0.05)
    back, back_thick = rng.uniform(0.4, 0.8), rng.uniform(0.02, 0.05)
    parts = [box((0, 0, seat), (a, b, thick)),
             box((0, -b + back_thick, seat + back / 2), (a, back_thick, back / 2)),
             *_legs((-(a - lw), a - lw), (-(b - lw), b - lw), lw, seat)]
    if arms:
        rise, aw = rng.uniform(0.15, 0.3), rng.uniform(0.025, 0.05)
        for x in (-(a - aw), a - aw):
            parts.append(box((x, -0.05 * b, seat + rise), (aw, 0.95 * b, aw)))
            parts.append(box((x, 0.85 * b, seat + rise / 2), (aw, aw, rise / 2)))
    return merge(*parts)


def chair(rng: Rng) -> Mesh:
    """A seat on four legs with a back, no arms."""
    return _chair(rng, arms=False)


def armchair(rng: Rng) -> Mesh:
    """A ``'chair'`` with two arm rests on front posts."""
    return _chair(rng, arms=True)


def dumbbell(rng: Rng) -> Mesh:
    """Two balls joined by a bar 2-4 times thinner."""
    ball, half = rng.uniform(0.2, 0.35), rng.uniform(0.4, 0.8)
    bar = ball * rng.uniform(0.25, 0.5)
    return merge(sphere(ball, (0, 0, -half)), sphere(ball, (0, 0, half)),
                 rod(bar, -half, half, segments=16))


def mushroom(rng: Rng) -> Mesh:
    """A stem under a wider dome (one surface of revolution)."""
    stem, stem_h = rng.uniform(0.08, 0.2), rng.uniform(0.3, 0.8)
    cap = rng.uniform(0.3, 0.7)
    cap_h = cap * rng.uniform(0.3, 0.9)
    t = np.linspace(0, np.pi / 2, 7)
    r = np.r_[0, stem / 2, stem, stem, stem, cap * np.cos(t[:-1]), 0]
    z = np.r_[0, 0, 0, stem_h / 2, stem_h, stem_h + cap_h * np.sin(t[:-1]), stem_h + cap_h]
    return revolve(r, z)


def _ring(major: float, minor: float, shift=(0.0, 0.0, 0.0)) -> Mesh:
    psi = 2 * np.pi * np.arange(12) / 12
    return place(sweep(major + minor * np.cos(psi), minor * np.sin(psi), segments=24),
                 None, shift)


def double_torus(rng: Rng) -> Mesh:
    """Two overlapping rings side by side (genus 2, against the torus' 1)."""
    major = rng.uniform(0.4, 0.6)
    minor = major * rng.uniform(0.2, 0.4)
    d = major * rng.uniform(0.7, 0.95)
    return merge(_ring(major, minor, (-d, 0, 0)), _ring(major, minor, (d, 0, 0)))


def washer(rng: Rng) -> Mesh:
    """A ring of rectangular section (a torus with flat faces; a cylinder
    with a hole)."""
    outer = rng.uniform(0.5, 1.0)
    inner = outer * rng.uniform(0.2, 0.6)
    half = outer * rng.uniform(0.1, 0.4)
    return sweep([inner, outer, outer, inner], [-half, -half, half, half])


def bicone(rng: Rng) -> Mesh:
    """Two cones base to base, of heights 0.3-1 (a cone whose flat base is
    replaced by a second, inverted cone)."""
    radius = rng.uniform(0.3, 0.8)
    low, high = rng.uniform(0.3, 1.0, size=2)
    t = np.array([0.25, 0.5, 0.75])
    r = np.r_[0, radius * t, radius, radius * (1 - t), 0]
    z = np.r_[-low, -low * (1 - t), 0.0, high * t, high]
    return revolve(r, z)
