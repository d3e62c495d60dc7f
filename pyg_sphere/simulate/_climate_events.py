"""The extreme events of the climate simulator: tropical cyclones (Holland
vortices) and atmospheric rivers (moisture filaments along curved paths),
added to a state in physical units, with their labels."""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np

from ._climate_frame import _DEG, _Frame

# Expected number of events per map and their sizes, tuned so that maps at
# icosahedral level 5 match TARGET_FRACTIONS on average (see the tests).
_TC_RATE = 1.5             # Poisson mean of tropical cyclones per map
_TC_LAT = (5.0, 30.0)      # |latitude| of the centre, degrees
_TC_RMW = (1.0, 1.4)       # radius of maximum wind, degrees
_TC_CORE = 2.5             # labelled core radius / radius of maximum wind
_AR_RATE = 4.6             # Poisson mean of atmospheric rivers per map
_AR_START_LAT = (8.0, 22.0)
_AR_LENGTH = (25.0, 50.0)  # along-track length, degrees
_AR_SIGMA = (2.0, 3.5)     # Gaussian half-width of the moisture filament, degrees
_AR_TAPER = 6.0            # length over which the filament fades in / out, degrees
_AR_STEP = 2.5             # length of the polyline segments, degrees
_AR_LABEL = 0.5            # labelled where the filament reaches this fraction of its peak


def _tangent(vec: np.ndarray, frame: _Frame) -> Tuple[np.ndarray, np.ndarray]:
    """East and north components of 3D vectors [n, 3]."""
    return (vec * frame.east).sum(-1), (vec * frame.north).sum(-1)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _random_centre(rng: np.random.Generator, lat_range: Tuple[float, float]) -> np.ndarray:
    lat = rng.uniform(*lat_range) * _DEG * rng.choice([-1.0, 1.0])
    lon = rng.uniform(0, 2 * np.pi)
    return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon),
                     math.sin(lat)])


class _Sub:
    """A view of a frame's basis on a subset of pixels."""

    def __init__(self, frame: _Frame, idx: np.ndarray) -> None:
        self.east, self.north = frame.east[idx], frame.north[idx]


class _State:
    """Fields being built, in physical units, float64 [n] each."""

    def __init__(self, n: int) -> None:
        self.f: Dict[str, np.ndarray] = {}
        self.labels = np.zeros(n, dtype=np.int64)


def _vortex(state: _State, frame: _Frame, centre: np.ndarray, rmw: float, dp: float,
            vmax: float, warm: float, rh: float, column: float, rain: float,
            label_radius: Optional[float]) -> None:
    """Add a cyclonic vortex: pressure low, rotating winds (sign by hemisphere,
    with inflow), temperature anomaly of the core, moisture and rain."""
    f = state.f
    cosd = np.clip(frame.xyz @ centre, -1.0, 1.0)
    r = np.arccos(cosd)
    near = r < 12 * rmw
    if not near.any():
        return
    idx = np.nonzero(near)[0]
    r, p = r[idx], frame.xyz[idx]
    x = r / rmw
    # Holland (1980) pressure profile: deficit dp at the centre, ~ r^-B far away.
    deficit = dp * (1 - np.exp(-np.power(1 / np.maximum(x, 1e-6), 1.5)))
    f['PSL'][idx] -= deficit
    f['PS'][idx] -= deficit
    # Tangential wind, maximum vmax at r = rmw; cyclonic: counterclockwise in the
    # north (seen from above), clockwise in the south.
    speed = vmax * x * np.exp(1 - x)
    spin = np.sign(centre[2]) or 1.0
    tangent = _normalize(np.cross(centre, p)) * spin
    inward = _normalize(centre - cosd[idx, None] * p)
    for level, inflow, scale in (('850', 10.0, 1.0), ('BOT', 25.0, 0.8)):
        a = inflow * _DEG
        wind = (math.cos(a) * tangent + math.sin(a) * inward) * (scale * speed)[:, None]
        u, v = _tangent(wind, _Sub(frame, idx))
        f['U' + level][idx] += u
        f['V' + level][idx] += v
    core = np.exp(-(x / 2.0) ** 2)
    f['T500'][idx] += warm * core
    f['T200'][idx] += 1.4 * warm * core
    f['RH'][idx] += rh * np.exp(-(x / 3.0) ** 2)
    f['COLUMN'][idx] += column * np.exp(-(x / 2.5) ** 2)
    f['RAIN'][idx] += rain * np.exp(-(x / 1.5) ** 2)
    if label_radius is not None:
        state.labels[idx[r <= label_radius]] = 1


def _ar_path(rng: np.random.Generator) -> np.ndarray:
    """Vertices [S + 1, 3] of a curved path from the tropics toward the pole,
    heading north-east in the north, south-east in the south."""
    hemisphere = rng.choice([-1.0, 1.0])
    lat = rng.uniform(*_AR_START_LAT) * _DEG * hemisphere
    lon = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(*_AR_LENGTH)
    steps = max(2, int(round(length / _AR_STEP)))
    step = length / steps * _DEG
    bearing = rng.uniform(25.0, 65.0) * _DEG      # from the pole-ward direction, eastward
    turn = rng.normal(0.0, 0.6) * _DEG            # per degree along track
    p = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    points = [p]
    for _ in range(steps):
        lat = math.asin(max(-1.0, min(1.0, p[2])))
        lon = math.atan2(p[1], p[0])
        east = np.array([-math.sin(lon), math.cos(lon), 0.0])
        north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon),
                          math.cos(lat)])
        heading = math.sin(bearing) * east + math.cos(bearing) * north * hemisphere
        p = math.cos(step) * p + math.sin(step) * heading
        p /= np.linalg.norm(p)
        points.append(p)
        bearing += turn * _AR_STEP + rng.normal(0.0, 4.0) * _DEG
        bearing = min(max(bearing, 5 * _DEG), 85 * _DEG)
        if abs(p[2]) > math.sin(70 * _DEG):
            break
    return np.stack(points)


def _distance_to_path(xyz: np.ndarray, path: np.ndarray
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angular distance [m] of points to a polyline of great-circle arcs, the
    arc length [m] of the nearest point along it and the unit direction of
    travel [m, 3] there."""
    a, b = path[:-1], path[1:]
    normal = _normalize(np.cross(a, b))                        # [S, 3]
    seg_len = np.arccos(np.clip((a * b).sum(-1), -1, 1))       # [S]
    start = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
    ortho = np.cross(normal, a)                                # in-plane, 90 deg from a
    pa, po, pn = xyz @ a.T, xyz @ ortho.T, xyz @ normal.T      # [m, S]
    theta = np.arctan2(po, pa)                                 # angle from a along the arc
    inside = (theta >= 0) & (theta <= seg_len)
    d_arc = np.arcsin(np.clip(np.abs(pn), 0, 1))
    d_a = np.arccos(np.clip(pa, -1, 1))
    d_b = np.arccos(np.clip(xyz @ b.T, -1, 1))
    dist = np.where(inside, d_arc, np.minimum(d_a, d_b))
    along = np.where(inside, theta, np.where(d_a <= d_b, 0.0, seg_len))
    best = dist.argmin(axis=1)
    rows = np.arange(xyz.shape[0])
    s = start[best] + along[rows, best]
    direction = _normalize(np.cross(normal[best], xyz))
    return dist[rows, best], s, direction


def _river(state: _State, frame: _Frame, path: np.ndarray, sigma: float, moisture: float,
           jet: float, rng: np.random.Generator) -> None:
    """Add an atmospheric river along ``path``: a long, narrow moisture
    filament with a low-level jet along it; label it where the filament is
    above :obj:`_AR_LABEL` of its peak."""
    f = state.f
    reach = math.cos(min(math.pi, _AR_STEP * _DEG / 2 + 4 * sigma))
    near = (frame.xyz @ path.T).max(axis=1) > reach
    idx = np.nonzero(near)[0]
    if idx.size == 0:
        return
    d, s, direction = _distance_to_path(frame.xyz[idx], path)
    length = float(np.arccos(np.clip((path[:-1] * path[1:]).sum(-1), -1, 1)).sum())
    taper = np.clip(np.minimum(s, length - s) / (_AR_TAPER * _DEG), 0.0, 1.0)
    taper = taper * taper * (3 - 2 * taper)                  # smoothstep
    # The width varies slowly along the track.
    phase, wiggle = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3)
    width = sigma * (1 + wiggle * np.sin(s / (8 * _DEG) + phase))
    shape = taper * np.exp(-0.5 * (d / width) ** 2)
    f['COLUMN'][idx] += moisture * shape
    f['RH'][idx] += 0.15 * shape
    jet_shape = taper * np.exp(-0.5 * (d / (1.5 * width)) ** 2) * jet
    u, v = _tangent(direction * jet_shape[:, None], _Sub(frame, idx))
    f['U850'][idx] += u
    f['V850'][idx] += v
    f['UBOT'][idx] += 0.7 * u
    f['VBOT'][idx] += 0.7 * v
    f['T500'][idx] += 1.0 * shape
    labelled = idx[shape >= _AR_LABEL]
    keep = state.labels[labelled] == 0                       # cyclones win
    state.labels[labelled[keep]] = 2
