r"""Dense segmentation of extreme weather events, the DeepSphere climate task
(`Defferrard et al. 2020 <https://openreview.net/forum?id=B1e3OlStPB>`_, after
`Jiang et al. 2019 <https://arxiv.org/abs/1901.02039>`_): label every pixel
of a 16-channel atmospheric state as background, tropical cyclone (TC) or
atmospheric river (AR).

The original data (CAM5 simulations labelled by TECA, > 1M maps) is not
redistributable here, so this module provides

* :func:`generate_climate_fields`, a generator of physically plausible
  synthetic states on any sampling, with the 16 CAM5 channels
  (:obj:`CLIMATE_CHANNELS`) and the class imbalance of the paper
  (:obj:`TARGET_FRACTIONS`),
* :class:`ClimateEvents`, a deterministic dataset of such maps,
* :func:`class_weights`, the inverse-frequency weights of the weighted
  cross-entropy,
* :func:`load_netcdf`, which interpolates the fields of a user's netCDF file
  (regular lon/lat grid) onto the pixels of a sampling.

Longitudes and latitudes are in radians in the code, in degrees in netCDF
files (the CF convention).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data, Dataset

from ._progress import progress as _progress
from .._validation import _got, check_choice, check_int, check_pos
from ..samplings import xyz_to_lonlat
from . import _cache

#: The 16 input channels, in order, as in the CAM5 data of the paper:
#: precipitable water, winds at 850 hPa and at the lowest model level,
#: reference-height humidity, surface and sea-level pressure, temperature at
#: 200 and 500 hPa, precipitation rate, surface and reference-height
#: temperature, geopotential height of 1000 and 200 hPa and of the lowest
#: model level.
CLIMATE_CHANNELS: Tuple[str, ...] = (
    'TMQ', 'U850', 'V850', 'UBOT', 'VBOT', 'QREFHT', 'PS', 'PSL', 'T200', 'T500', 'PRECT',
    'TS', 'TREFHT', 'Z1000', 'Z200', 'ZBOT')
#: Units of each channel (SI, as in CAM5).
CHANNEL_UNITS: Dict[str, str] = {
    'TMQ': 'kg m-2', 'U850': 'm s-1', 'V850': 'm s-1', 'UBOT': 'm s-1', 'VBOT': 'm s-1',
    'QREFHT': 'kg kg-1', 'PS': 'Pa', 'PSL': 'Pa', 'T200': 'K', 'T500': 'K', 'PRECT': 'm s-1',
    'TS': 'K', 'TREFHT': 'K', 'Z1000': 'm', 'Z200': 'm', 'ZBOT': 'm'}
#: Classes, label = position.
CLIMATE_CLASSES: Tuple[str, ...] = ('background', 'tropical_cyclone', 'atmospheric_river')
#: Average fraction of pixels of each class in the paper's data (97.7 %
#: background, 0.1 % tropical cyclones, 2.2 % atmospheric rivers).
TARGET_FRACTIONS: Tuple[float, float, float] = (0.977, 0.001, 0.022)
#: Dataset splits; each has its own maps.
CLIMATE_SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: Readers of :func:`load_netcdf`.
NETCDF_ENGINES: Tuple[str, ...] = ('auto', 'xarray', 'scipy')

# Version of the generator: part of the cache key, bump it when maps change.
_GENERATOR_VERSION = 1
_OROGRAPHY_SEED = 0x0E0
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}

# Physical constants (SI).
_G = 9.80665
_RD = 287.04
_OMEGA = 7.292e-5
_DEG = math.pi / 180

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

# Std of the white noise added to each channel (times ``noise``), physical units.
_NOISE = {'TMQ': 1.5, 'U850': 1.5, 'V850': 1.5, 'UBOT': 1.2, 'VBOT': 1.2, 'QREFHT': 4e-4,
          'PS': 80.0, 'PSL': 80.0, 'T200': 0.5, 'T500': 0.5, 'PRECT': 1e-8, 'TS': 0.3,
          'TREFHT': 0.4, 'Z1000': 8.0, 'Z200': 15.0, 'ZBOT': 0.3}


# -- generator -------------------------------------------------------------------


class _Frame:
    """Unit vectors and the local east / north basis of each pixel (float64)."""

    def __init__(self, pos: torch.Tensor) -> None:
        xyz = pos.detach().cpu().double().numpy()
        self.xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
        self.lon, self.lat = xyz_to_lonlat(self.xyz)
        sl, cl = np.sin(self.lon), np.cos(self.lon)
        sp, cp = np.sin(self.lat), np.cos(self.lat)
        self.east = np.stack([-sl, cl, np.zeros_like(sl)], axis=1)
        self.north = np.stack([-sp * cl, -sp * sl, cp], axis=1)
        self._orography: Optional[np.ndarray] = None

    @property
    def orography(self) -> np.ndarray:
        """Surface height in m, the same for every map (fixed seed)."""
        if self._orography is None:
            rng = np.random.default_rng(_OROGRAPHY_SEED)
            f, _ = _smooth_fields(rng, self.xyz, 1, (3.0, 9.0))
            self._orography = 2500.0 * np.maximum(f[:, 0] - 1.2, 0.0)
        return self._orography


def _smooth_fields(rng: np.random.Generator, xyz: np.ndarray, n_fields: int,
                   wavenumbers: Tuple[float, float], waves: int = 24,
                   gradient: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    r"""Isotropic smooth random fields of unit variance, the restriction to the
    sphere of random plane waves in 3D:

    .. math::
        f(\mathbf{p}) = \sqrt{2 / K} \sum_{k=1}^K a_k \cos(\mathbf{w}_k \cdot
        \mathbf{p} + \varphi_k),

    with :math:`a_k \sim \mathcal{N}(0, 1)`, uniform directions of
    :math:`\mathbf{w}_k`, :math:`|\mathbf{w}_k|` uniform in ``wavenumbers``
    (correlation length about :math:`1 / |\mathbf{w}|` radians). Returns the
    values [n, F] and, if asked, the 3D gradients [n, F, 3].
    """
    k = n_fields * waves
    direction = rng.standard_normal((k, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    w = direction * rng.uniform(*wavenumbers, size=(k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=k)
    amp = rng.standard_normal(k) * math.sqrt(2.0 / waves)
    # float32 trigonometry is an order of magnitude faster, and precise enough.
    arg = xyz.astype(np.float32) @ w.T.astype(np.float32) + phase.astype(np.float32)
    amp32 = amp.astype(np.float32)
    values = (np.cos(arg) * amp32).reshape(-1, n_fields, waves).sum(-1, dtype=np.float64)
    grad = None
    if gradient:
        s = (np.sin(arg) * -amp32).reshape(-1, n_fields, waves)
        grad = np.einsum('nfk,fkd->nfd', s, w.reshape(n_fields, waves, 3).astype(np.float32))
        grad = grad.astype(np.float64)
    return values, grad


def _q_sat(temperature: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (kg/kg), Bolton's formula for e_s (Pa)."""
    e_s = 611.2 * np.exp(17.67 * (temperature - 273.15) / (temperature - 29.65))
    return 0.622 * e_s / (pressure - 0.378 * e_s)


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


def _generate(frame: _Frame, rng: np.random.Generator, noise: float
              ) -> Tuple[np.ndarray, np.ndarray]:
    n = frame.xyz.shape[0]
    lat = frame.lat
    c2, s2 = np.cos(lat) ** 2, np.sin(lat) ** 2
    h = frame.orography
    z, _ = _smooth_fields(rng, frame.xyz, 5, (2.0, 6.0))
    z_t, z_q, z_c, z_r, z_200 = z.T
    z_p, grad_p = _smooth_fields(rng, frame.xyz, 1, (3.0, 7.0), gradient=True)
    z_w, _ = _smooth_fields(rng, frame.xyz, 2, (4.0, 9.0))

    state = _State(n)
    f = state.f
    # Temperatures: warm tropics, lapse rate over mountains, warm anomalies
    # reaching through the column.
    f['TS'] = 249.0 + 52.0 * c2 + 3.0 * z_t - 6.5e-3 * h
    f['T500'] = 232.0 + 36.0 * c2 + 2.0 * z_t
    f['T200'] = 223.0 - 7.0 * c2 + 1.0 * z_t + 1.0 * z_200
    # Sea-level pressure: equatorial trough, subtropical highs, subpolar lows,
    # polar highs (three-cell circulation) plus synoptic anomalies, which are
    # stronger at mid-latitudes.
    amp_p = 300.0 + 900.0 * s2
    f['PSL'] = 101325.0 - 700.0 * np.cos(6 * lat) + amp_p * z_p[:, 0]
    f['PS'] = f['PSL'].copy()
    # Winds: trades, westerlies, and the geostrophic wind of the pressure
    # anomalies, u = -dp/dy / (rho f), v = dp/dx / (rho f), faded out near the
    # equator where f vanishes.
    zonal = 9.0 * np.sin(2 * lat) ** 2 - 8.0 * np.exp(-(lat / (20 * _DEG)) ** 2)
    dpe, dpn = _tangent(grad_p[:, 0] * amp_p[:, None], frame)
    coriolis = 2 * _OMEGA * np.maximum(np.abs(np.sin(lat)), math.sin(15 * _DEG))
    geo = np.tanh(lat / (5 * _DEG)) / (1.2 * coriolis * 6.371e6)
    f['U850'] = zonal - geo * dpn + 1.5 * z_w[:, 0]
    f['V850'] = geo * dpe + 1.5 * z_w[:, 1]
    # Near the surface: weaker, and turned toward low pressure (friction).
    turn = 20 * _DEG * np.tanh(lat / (5 * _DEG))
    f['UBOT'] = 0.7 * (np.cos(turn) * f['U850'] - np.sin(turn) * f['V850'])
    f['VBOT'] = 0.7 * (np.sin(turn) * f['U850'] + np.cos(turn) * f['V850'])
    # Moisture: relative humidity, a column factor and a rain anomaly, filled
    # in by the events before the humidity channels are derived from them.
    f['RH'] = 0.62 + 0.16 * c2 + 0.08 * z_q
    f['COLUMN'] = np.zeros(n)
    f['RAIN'] = 0.5 * z_r

    # Tropical cyclones: labelled within _TC_CORE radii of maximum wind.
    for _ in range(rng.poisson(_TC_RATE)):
        centre = _random_centre(rng, _TC_LAT)
        rmw = rng.uniform(*_TC_RMW) * _DEG
        dp = rng.uniform(2000.0, 6000.0)
        vmax = math.sqrt(1.5 * dp / (1.15 * math.e))        # Holland's gradient wind
        _vortex(state, frame, centre, rmw, dp, vmax, warm=dp / 900.0, rh=0.25, column=15.0,
                rain=2.0, label_radius=_TC_CORE * rmw)
    # Look-alikes that are not labelled: large, cold-core extratropical lows and
    # weak tropical disturbances.
    for _ in range(rng.poisson(3.0)):
        centre = _random_centre(rng, (35.0, 65.0))
        dp = rng.uniform(1000.0, 3000.0)
        vmax = 0.6 * math.sqrt(1.5 * dp / (1.15 * math.e))
        _vortex(state, frame, centre, rng.uniform(4.0, 7.0) * _DEG, dp, vmax, warm=-2.0,
                rh=0.1, column=3.0, rain=0.8, label_radius=None)
    for _ in range(rng.poisson(1.0)):
        centre = _random_centre(rng, (5.0, 25.0))
        dp = rng.uniform(200.0, 700.0)
        _vortex(state, frame, centre, rng.uniform(1.5, 3.0) * _DEG, dp, 6.0, warm=0.0,
                rh=0.1, column=5.0, rain=0.8, label_radius=None)
    # Atmospheric rivers.
    for _ in range(rng.poisson(_AR_RATE)):
        path = _ar_path(rng)
        _river(state, frame, path, sigma=rng.uniform(*_AR_SIGMA) * _DEG,
               moisture=rng.uniform(15.0, 30.0), jet=rng.uniform(8.0, 18.0), rng=rng)

    # Derived channels, physically consistent with each other.
    f['PS'] = f['PS'] * np.exp(-_G * h / (_RD * f['TS']))
    f['TREFHT'] = f['TS'] - 0.8 - 6.5e-3 * 2.0
    rh = np.clip(f['RH'], 0.1, 0.98)
    q_sat = _q_sat(f['TREFHT'], f['PS'])
    # Precipitable water: surface humidity times an effective column depth
    # (vapour scale height ~2 km), plus the moisture brought by events (kg/m2),
    # half of which shows at the surface, which saturates at most.
    depth = f['PS'] / _G / 3.3
    f['TMQ'] = rh * q_sat * depth * np.exp(0.08 * z_c) + f['COLUMN']
    f['QREFHT'] = np.minimum(rh * q_sat + 0.5 * f['COLUMN'] / depth, 0.98 * q_sat)
    # Rain grows with moisture, capped at ~2e-6 m/s (~170 mm/day).
    f['PRECT'] = 5e-8 * np.exp(np.clip((f['TMQ'] - 50.0) / 8.0 + f['RAIN'], -10.0, 3.7)) \
        + 1e-9
    # Hypsometric equation for the geopotential heights.
    scale = _RD / _G
    f['Z1000'] = scale * f['TREFHT'] * np.log(f['PSL'] / 1e5)
    t_mean = (f['TREFHT'] + 2 * f['T500'] + f['T200']) / 4
    f['Z200'] = f['Z1000'] + scale * t_mean * math.log(1000 / 200)
    f['ZBOT'] = scale * f['TREFHT'] * -math.log(0.9925)

    out = np.empty((n, len(CLIMATE_CHANNELS)), dtype=np.float32)
    white = rng.standard_normal((n, len(CLIMATE_CHANNELS)))
    for c, name in enumerate(CLIMATE_CHANNELS):
        out[:, c] = f[name] + noise * _NOISE[name] * white[:, c]
    for name, low in (('PRECT', 0.0), ('TMQ', 0.0), ('QREFHT', 1e-6)):
        c = CLIMATE_CHANNELS.index(name)
        out[:, c] = np.maximum(out[:, c], low)
    return out, state.labels


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) \
            or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"Expected 'noise' to be a finite number >= 0 (got {_got(noise)})")
    return float(noise)


def _sampling_pos(sampling: Any) -> torch.Tensor:
    if isinstance(sampling, Data):
        if getattr(sampling, 'pos', None) is None:
            raise ValueError("Expected 'sampling' to have a 'pos' attribute [n, 3] (got a Data "
                             "without pos)")
        return check_pos(sampling.pos, 'sampling.pos')
    if isinstance(sampling, torch.Tensor):
        return check_pos(sampling, 'sampling')
    raise ValueError(f"Expected 'sampling' to be a torch_geometric Data with 'pos' [n, 3] or "
                     f"a tensor [n, 3] of unit vectors (got {_got(sampling)})")


def generate_climate_fields(sampling: Union[Data, torch.Tensor],
                            seed: Union[int, Sequence[int]] = 0, noise: float = 1.0
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""One synthetic atmospheric state with its extreme-event labels.

    The large-scale background has the structure of the real atmosphere:
    warm tropics, the three-cell pattern of sea-level pressure (equatorial
    trough, subtropical highs, subpolar lows), trade winds and westerlies,
    isotropic smooth random anomalies (random plane waves, correlation length
    ~10-30 degrees), a fixed orography (the same in every map), geostrophic
    winds of the pressure anomalies and humidity from the Clausius-Clapeyron
    relation. Geopotential heights follow the hypsometric equation
    :math:`Z_2 - Z_1 = (R_d \bar T / g) \ln(p_1 / p_2)`.

    Events (label 1, tropical cyclones; label 2, atmospheric rivers):

    * tropical cyclones, :math:`\mathrm{Poisson}(1.5)` per map, centred at
      :math:`5^\circ \le |\text{lat}| \le 30^\circ`: a Holland pressure
      profile :math:`p(r) = p_c + \Delta p\, e^{-(R_m/r)^{1.5}}` (PS, PSL and
      Z1000 low), cyclonic winds peaking at the radius of maximum wind
      :math:`R_m` (counterclockwise in the north) with inflow, a warm core
      (T500, T200), moist air (QREFHT, TMQ) and rain (PRECT); labelled within
      :math:`2.5 R_m` (2.5 to 3.5 degrees) of the centre;
    * atmospheric rivers, :math:`\mathrm{Poisson}(4.6)` per map: curved paths
      25 to 50 degrees long from the tropics (8-22 degrees) pole-ward and
      eastward, along which the column moisture (TMQ, QREFHT) rises by a
      Gaussian profile of half-width 2 to 3.5 degrees with a low-level jet
      along the path; labelled where the profile is above half its peak.

    Unlabelled look-alikes make the task non-trivial: large cold-core
    extratropical lows and weak tropical disturbances. White noise of std
    ``noise`` times a per-channel scale (e.g. 80 Pa, 0.5 K, 1.5 m/s) is added.
    On icosahedral level 5 (10,242 pixels) the class fractions average about
    :obj:`TARGET_FRACTIONS` (see :class:`ClimateEvents`).

    Args:
        sampling (Data or torch.Tensor): the pixels, a ``Data`` with ``pos``
            [n, 3] or the unit vectors [n, 3] themselves.
        seed (int or sequence of int, optional): seed of
            :class:`numpy.random.SeedSequence`; the same seed and pixels give
            the same map. (default: :obj:`0`)
        noise (float, optional): scale of the white noise. (default: :obj:`1.0`)

    Returns:
        (torch.Tensor, torch.Tensor): the fields, float32 [n, 16] in the
        physical units :obj:`CHANNEL_UNITS`, channels
        :obj:`CLIMATE_CHANNELS`; the labels, long [n] in {0, 1, 2}.

    Example:
        >>> from pyg_sphere.samplings import icosahedral
        >>> x, y = generate_climate_fields(icosahedral(3), seed=1)
        >>> x.shape, y.shape, x.dtype, y.dtype
        (torch.Size([642, 16]), torch.Size([642]), torch.float32, torch.int64)
    """
    pos = _sampling_pos(sampling)
    noise = _check_noise(noise)
    rng = np.random.default_rng(_seed_sequence(seed))
    x, y = _generate(_Frame(pos), rng, noise)
    return torch.from_numpy(x), torch.from_numpy(y)


def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        seed = [int(seed)]
    if isinstance(seed, (str, bytes)) or not isinstance(seed, Sequence) or not seed or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seed):
        raise ValueError(f"Expected 'seed' to be an integer >= 0 or a non-empty sequence of "
                         f"them (got {_got(seed)})")
    return np.random.SeedSequence([int(s) for s in seed])


# -- dataset ---------------------------------------------------------------------


def _check_stats(stats: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    c = len(CLIMATE_CHANNELS)
    ok = isinstance(stats, (tuple, list)) and len(stats) == 2 and all(
        isinstance(s, torch.Tensor) and s.shape == (c,) and s.is_floating_point()
        for s in stats)
    if not ok:
        raise ValueError(f"Expected 'stats' to be a pair (mean, std) of float tensors of shape "
                         f"[{c}], as returned by channel_stats() (got {_got(stats)})")
    mean, std = (s.detach().cpu().float() for s in stats)
    if not bool(torch.isfinite(mean).all()) or not bool((std > 0).all()) \
            or not bool(torch.isfinite(std).all()):
        raise ValueError(f"Expected 'stats' to hold finite means and positive finite stds "
                         f"(got mean={mean.tolist()}, std={std.tolist()})")
    return mean, std


class ClimateEvents(Dataset):
    r"""Synthetic maps of the DeepSphere climate task (`Defferrard et al. 2020
    <https://openreview.net/forum?id=B1e3OlStPB>`_): 16 channels
    (:obj:`CLIMATE_CHANNELS`), 3 classes (:obj:`CLIMATE_CLASSES`: background,
    tropical cyclone, atmospheric river) with the imbalance of the paper,
    made by :func:`generate_climate_fields` on the pixels of ``sampling``.

    Map :math:`i` of a split is seeded by ``(seed, split, i)``: the same for
    any ``n_maps`` (the first maps of a larger dataset are the same maps),
    different between splits. Each sample is a
    :class:`~torch_geometric.data.Data` with ``x`` [n, 16] (float32,
    standardized per channel when ``standardize``), ``y`` [n] (long) and
    ``pos`` [n, 3]; :meth:`tensors` gives the whole split as dense tensors.

    Standardization uses, per channel, the mean and std over every pixel of
    every map of the dataset (:meth:`channel_stats`, unweighted by pixel
    area), or the ``stats`` given: pass ``train.channel_stats()`` to the
    validation and test sets.

    Generation is fast (about 30 ms per map of 10,242 pixels on one CPU
    core); with ``root`` the raw maps are also cached in
    ``root/climate_{split}_{key}.npz``, the key hashing the pixels and every
    argument that changes the maps.

    Args:
        sampling (Data or torch.Tensor): the pixels, a ``Data`` with ``pos``
            [n, 3] (e.g. :func:`~pyg_sphere.samplings.icosahedral` (5), the
            sampling of the paper) or the unit vectors themselves.
        split (str, optional): one of :obj:`CLIMATE_SPLITS`.
            (default: :obj:`'train'`)
        n_maps (int, optional): number of maps. (default: :obj:`100`)
        seed (int, optional): master seed. (default: :obj:`0`)
        root (str, optional): cache directory, or :obj:`None` to generate in
            memory. (default: :obj:`None`)
        standardize (bool, optional): standardize the channels of ``x``.
            (default: :obj:`True`)
        stats (tuple, optional): ``(mean, std)``, float tensors [16] in
            physical units, used to standardize. (default: :obj:`None`, this
            dataset's :meth:`channel_stats`)
        noise (float, optional): scale of the white noise of the fields.
            (default: :obj:`1.0`)
        transform (callable, optional): applied to each ``Data`` when read.
            (default: :obj:`None`)
        progress (bool, optional): show a tqdm progress bar while generating.
            (default: :obj:`False`)

    Example:
        >>> from pyg_sphere.samplings import icosahedral
        >>> train = ClimateEvents(icosahedral(3), n_maps=4)
        >>> X, y = train.tensors()
        >>> X.shape, y.shape
        (torch.Size([4, 642, 16]), torch.Size([4, 642]))
        >>> test = ClimateEvents(icosahedral(3), 'test', n_maps=2,
        ...                      stats=train.channel_stats())
        >>> test
        ClimateEvents(2)
    """
    def __init__(self, sampling: Union[Data, torch.Tensor], split: str = 'train',
                 n_maps: int = 100, seed: int = 0, root: Optional[str] = None,
                 standardize: bool = True,
                 stats: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                 noise: float = 1.0, transform: Optional[Callable] = None,
                 progress: bool = False) -> None:
        pos = _sampling_pos(sampling)
        self.split = check_choice('split', split, CLIMATE_SPLITS)
        self.n_maps = check_int('n_maps', n_maps, minimum=1)
        self.seed = check_int('seed', seed, minimum=0)
        self.noise = _check_noise(noise)
        if not isinstance(standardize, bool):
            raise ValueError(f"Expected 'standardize' to be a bool (got {standardize!r})")
        self.standardize = standardize
        self._given_stats = None if stats is None else _check_stats(stats)
        self.pos = pos.detach().cpu().clone()
        self.cache_path: Optional[Path] = None
        super().__init__(None, transform, log=False)
        if root is not None:
            self.cache_path = Path(os.path.expanduser(str(root))) / \
                f'climate_{self.split}_{self._key()}.npz'
        self._x, self._y = self._load_or_generate(progress)
        self._stats: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def _key(self) -> str:
        pos = self.pos.double().numpy()
        payload = {'version': _GENERATOR_VERSION, 'split': self.split, 'n_maps': self.n_maps,
                   'seed': self.seed, 'noise': self.noise,
                   'pos': hashlib.sha256(np.ascontiguousarray(pos).tobytes()).hexdigest()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def _generate_all(self, progress: bool) -> Tuple[np.ndarray, np.ndarray]:
        frame = _Frame(self.pos)
        n = frame.xyz.shape[0]
        x = np.empty((self.n_maps, n, len(CLIMATE_CHANNELS)), dtype=np.float32)
        y = np.empty((self.n_maps, n), dtype=np.uint8)
        bar = _progress(self.n_maps, f'climate maps ({self.split})', progress)
        try:
            for i in range(self.n_maps):
                rng = np.random.default_rng(
                    np.random.SeedSequence([self.seed, _SPLIT_IDS[self.split], i]))
                x[i], y[i] = _generate(frame, rng, self.noise)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return x, y

    def _load_or_generate(self, progress: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        path = self.cache_path
        if path is None:
            x, y = self._generate_all(progress)
        else:
            with _cache.locked(path.parent):
                _cache.remove_stale_temporaries(path.parent)
                loaded = None
                if path.is_file():
                    try:
                        with np.load(path, allow_pickle=False) as npz:
                            loaded = npz['x'], npz['y']
                    except (OSError, ValueError, KeyError):
                        loaded = None
                expected = (self.n_maps, self.pos.size(0))
                if loaded is None or loaded[1].shape != expected:
                    loaded = self._generate_all(progress)
                    _cache.save_npz(path, x=loaded[0], y=loaded[1])
                x, y = loaded
        return torch.from_numpy(np.ascontiguousarray(x)), \
            torch.from_numpy(np.ascontiguousarray(y)).long()

    def len(self) -> int:
        return self.n_maps

    def channel_stats(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, float32 [16]: the stats used to standardize, the
        ``stats`` given or else the mean and std of each channel over every
        pixel of this dataset (physical units)."""
        if self._given_stats is not None:
            mean, std = self._given_stats
        else:
            if self._stats is None:
                flat = self._x.view(-1, self._x.size(-1)).double()
                mean = flat.mean(0)
                std = flat.std(0)
                std = torch.where(std > 0, std, torch.ones_like(std))  # constant channel
                self._stats = (mean.float(), std.float())
            mean, std = self._stats
        return mean.clone(), std.clone()

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.standardize:
            return x.clone()
        mean, std = self.channel_stats()
        return (x - mean) / std

    def get(self, idx: int) -> Data:
        return Data(x=self._features(self._x[idx]), y=self._y[idx].clone(),
                    pos=self.pos.clone())

    def tensors(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The selected maps as dense tensors ``(X [N, n, 16] float32,
        y [N, n] long)``, the same values as ``dataset[i].x`` and
        ``dataset[i].y`` (``transform`` not applied)."""
        x, y = self._x, self._y
        if self._indices is not None:
            sel = torch.as_tensor(list(self.indices()), dtype=torch.long)
            x, y = x[sel], y[sel]
        return self._features(x), y.clone()

    def class_fractions(self) -> torch.Tensor:
        """Fraction of pixels of each class over the selected maps, float64 [3]."""
        _, y = self.tensors()
        counts = torch.bincount(y.reshape(-1), minlength=len(CLIMATE_CLASSES)).double()
        return counts / counts.sum()


def class_weights(y: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    r"""Inverse-frequency class weights for a weighted cross-entropy, as in
    the climate experiments of `Jiang et al. 2019
    <https://arxiv.org/abs/1901.02039>`_ and DeepSphere:

    .. math::
        w_c = \frac{1 / f_c}{\sum_{k : f_k > 0} 1 / f_k},

    with :math:`f_c` the fraction of pixels of class :math:`c` in ``y``. The
    weights sum to 1; a class absent from ``y`` gets weight 0. With the
    paper's fractions (97.7 %, 0.1 %, 2.2 %) this gives about
    (0.001, 0.955, 0.044).

    Args:
        y (torch.Tensor): labels, integer, any shape, values in
            ``[0, num_classes)``.
        num_classes (int, optional): number of classes. (default: :obj:`3`)

    Returns:
        torch.Tensor: float32 [num_classes], for
        :class:`torch.nn.CrossEntropyLoss` ``(weight=...)``.

    Example:
        >>> class_weights(torch.tensor([0, 0, 0, 1]))
        tensor([0.2500, 0.7500, 0.0000])
    """
    num_classes = check_int('num_classes', num_classes, minimum=1)
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"Expected 'y' to be a torch.Tensor of labels (got {_got(y)})")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"Expected 'y' to hold integer labels (got {y.dtype})")
    if y.numel() == 0:
        raise ValueError("Expected 'y' to hold at least one label (got an empty tensor)")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"Expected 'y' to hold labels in [0, {num_classes - 1}] (got "
                         f"{low if low < 0 else high})")
    counts = torch.bincount(y.reshape(-1).long().cpu(), minlength=num_classes).double()
    inverse = torch.where(counts > 0, counts.sum() / counts.clamp(min=1),
                          torch.zeros_like(counts))
    return (inverse / inverse.sum()).float()


# -- netCDF ----------------------------------------------------------------------


class NetCDFFields(NamedTuple):
    """What :func:`load_netcdf` returns.

    Attributes:
        x (torch.Tensor): the variables on the pixels, float32 [T, n, V].
        y (torch.Tensor or None): the labels on the pixels, long [T, n].
        variables (tuple of str): the names of the V channels of ``x``.
    """
    x: torch.Tensor
    y: Optional[torch.Tensor]
    variables: Tuple[str, ...]


_LAT_NAMES = ('lat', 'latitude')
_LON_NAMES = ('lon', 'longitude')
_TIME_NAMES = ('time',)


def _read_scipy(path: Path) -> Tuple[Dict[str, Tuple[Tuple[str, ...], Any]], Any]:
    try:
        from scipy.io import netcdf_file
    except ImportError as error:  # pragma: no cover - scipy is a dependency
        raise ImportError("load_netcdf(engine='scipy') needs scipy: pip install scipy") \
            from error
    try:
        handle = netcdf_file(str(path), 'r', mmap=False, maskandscale=True)
    except (TypeError, ValueError, OSError) as error:
        raise ValueError(f"Could not read '{path}' as a netCDF3 file ({error}); netCDF4 / "
                         f"HDF5 files need xarray with a netCDF4 backend: pip install xarray "
                         f"netCDF4") from error
    variables = {name: (tuple(var.dimensions), var) for name, var in handle.variables.items()}
    return variables, handle


def _read_xarray(path: Path) -> Tuple[Dict[str, Tuple[Tuple[str, ...], Any]], Any]:
    try:
        import xarray
    except ImportError as error:
        raise ImportError("load_netcdf(engine='xarray') needs xarray: pip install xarray "
                          "netCDF4") from error
    try:
        handle = xarray.open_dataset(str(path), decode_times=False)
    except (TypeError, ValueError, OSError) as error:
        raise ValueError(f"Could not read '{path}' with xarray ({error})") from error
    variables = {str(name): (tuple(str(d) for d in var.dims), var)
                 for name, var in handle.variables.items()}
    return variables, handle


def _values(var: Any) -> np.ndarray:
    # scipy's netcdf_variable (has typecode()) or an xarray Variable.
    data = var[:] if hasattr(var, 'typecode') else var.values
    if np.ma.isMaskedArray(data):
        data = np.ma.filled(data.astype(np.float64), np.nan)
    return np.asarray(data)


def _find_dim(dims: Sequence[str], names: Tuple[str, ...]) -> Optional[str]:
    for dim in dims:
        if dim.lower() in names:
            return dim
    return None


def _interval(grid: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Index i and weight t of ``values`` in the ascending ``grid``, so that
    value = (1 - t) grid[i] + t grid[i + 1], clamped to the ends."""
    i = np.clip(np.searchsorted(grid, values, side='right') - 1, 0, grid.size - 2)
    t = (values - grid[i]) / (grid[i + 1] - grid[i])
    return i, np.clip(t, 0.0, 1.0)


def _check_time(time: Any, size: Optional[int]) -> Union[slice, np.ndarray, int]:
    if time is None:
        return slice(None)
    if size is None:
        raise ValueError(f"Expected 'time' to be None for a file without a time dimension "
                         f"(got {time!r})")
    if isinstance(time, slice):
        return time
    if isinstance(time, numbers.Integral) and not isinstance(time, bool):
        if not -size <= time < size:
            raise ValueError(f"Expected 'time' to be an index in [{-size}, {size - 1}] "
                             f"(got {time})")
        return np.array([int(time)])
    if isinstance(time, Sequence) and not isinstance(time, (str, bytes)) and all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in time):
        bad = [t for t in time if not -size <= t < size]
        if bad or not time:
            raise ValueError(f"Expected 'time' to be a non-empty list of indices in "
                             f"[{-size}, {size - 1}] (got {list(time)!r})")
        return np.array([int(t) for t in time])
    raise ValueError(f"Expected 'time' to be None, an int, a slice or a list of ints "
                     f"(got {time!r})")


def load_netcdf(path: Union[str, os.PathLike], sampling: Union[Data, torch.Tensor],
                variables: Optional[Sequence[str]] = None,
                label_variable: Optional[str] = None,
                time: Union[None, int, slice, Sequence[int]] = None,
                engine: str = 'auto') -> NetCDFFields:
    r"""Read fields on a regular longitude / latitude grid from a netCDF file
    and interpolate them onto the pixels of a sampling.

    The file must have latitude and longitude coordinates (1D variables named
    ``lat`` / ``latitude`` and ``lon`` / ``longitude``, in degrees, any order
    and range, e.g. [0, 360) or [-180, 180)) covering the whole globe in
    longitude, and optionally a ``time`` dimension. Each variable of dims
    ``(lat, lon)`` or ``(time, lat, lon)`` (in any order) is interpolated
    bilinearly in (lon, lat), longitude wrapping around; pixels nearer to a
    pole than the outermost latitude row take that row's value. The labels
    are taken from the nearest grid node instead (no mixing of classes).
    Missing values (``_FillValue``, ``missing_value``) and NaNs are errors:
    fill them first.

    .. math::
        f(\lambda, \phi) = \sum_{a, b \in \{0, 1\}} w^\lambda_a w^\phi_b
        f_{i + a, j + b}, \quad w^\lambda_1 = \frac{\lambda - \lambda_i}
        {\lambda_{i+1} - \lambda_i}, \ w^\lambda_0 = 1 - w^\lambda_1.

    Args:
        path (str): the netCDF file.
        sampling (Data or torch.Tensor): the pixels, a ``Data`` with ``pos``
            [n, 3] or the unit vectors themselves.
        variables (sequence of str, optional): the variables to read, in
            order, e.g. :obj:`CLIMATE_CHANNELS`. (default: :obj:`None`, every
            variable on the grid but the coordinates and ``label_variable``,
            in file order)
        label_variable (str, optional): an integer-valued variable of labels.
            (default: :obj:`None`)
        time (int, slice or list of int, optional): the time steps to read;
            :obj:`None` reads all (or the only one without a time dimension).
            (default: :obj:`None`)
        engine (str, optional): one of :obj:`NETCDF_ENGINES`: ``'xarray'``
            (any format xarray's backends read; ``pip install xarray
            netCDF4``), ``'scipy'`` (netCDF3 only, :class:`scipy.io.netcdf_file`)
            or ``'auto'``, xarray when installed, else scipy.
            (default: :obj:`'auto'`)

    Returns:
        NetCDFFields: ``(x, y, variables)``, with ``x`` float32 [T, n, V]
        (T = 1 without a time dimension or for an int ``time``), ``y`` long
        [T, n] or :obj:`None`, ``variables`` the names of the channels of
        ``x``.

    Example:
        >>> from pyg_sphere.samplings import icosahedral
        >>> x, y, names = load_netcdf('cam5.nc', icosahedral(5),
        ...                           CLIMATE_CHANNELS, 'LABELS')  # doctest: +SKIP
    """
    engine = check_choice('engine', engine, NETCDF_ENGINES)
    pos = _sampling_pos(sampling)
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a file path (got {_got(path)})")
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.is_file():
        raise FileNotFoundError(f"No netCDF file at '{path}'")
    if variables is not None:
        if isinstance(variables, (str, bytes)) or not isinstance(variables, Sequence) \
                or not variables or not all(isinstance(v, str) for v in variables):
            raise ValueError(f"Expected 'variables' to be a non-empty sequence of variable "
                             f"names (got {variables!r})")
    if label_variable is not None and not isinstance(label_variable, str):
        raise ValueError(f"Expected 'label_variable' to be a variable name (got "
                         f"{label_variable!r})")
    if engine == 'auto':
        try:
            import xarray  # noqa: F401
            engine = 'xarray'
        except ImportError:
            engine = 'scipy'
    contents, handle = (_read_xarray if engine == 'xarray' else _read_scipy)(path)
    try:
        return _load(path, contents, pos, variables, label_variable, time)
    finally:
        handle.close()


def _load(path: Path, contents: Dict[str, Tuple[Tuple[str, ...], Any]], pos: torch.Tensor,
          variables: Optional[Sequence[str]], label_variable: Optional[str],
          time: Any) -> NetCDFFields:
    listing = ', '.join(f'{name}{list(dims)}' for name, (dims, _) in contents.items())
    lat_name = _find_dim(list(contents), _LAT_NAMES)
    lon_name = _find_dim(list(contents), _LON_NAMES)
    if lat_name is None or lon_name is None:
        missing = 'latitude' if lat_name is None else 'longitude'
        names = _LAT_NAMES if lat_name is None else _LON_NAMES
        raise ValueError(f"Expected '{path.name}' to have a {missing} coordinate named one of "
                         f"{names} (found: {listing})")
    lat_dim = contents[lat_name][0]
    lon_dim = contents[lon_name][0]
    lat = _values(contents[lat_name][1]).astype(np.float64)
    lon = _values(contents[lon_name][1]).astype(np.float64)
    for name, dims, grid in ((lat_name, lat_dim, lat), (lon_name, lon_dim, lon)):
        if grid.ndim != 1 or len(dims) != 1 or grid.size < 2 or not np.isfinite(grid).all():
            raise ValueError(f"Expected coordinate '{name}' to be 1D, finite, with at least 2 "
                             f"values (got dims {list(dims)}, shape {grid.shape})")
    lat_dim, lon_dim = lat_dim[0], lon_dim[0]
    if np.abs(lat).max() > 90:
        raise ValueError(f"Expected '{lat_name}' in degrees within [-90, 90] (got values up "
                         f"to {np.abs(lat).max():g})")
    time_dim = next((d for name, (dims, _) in contents.items() for d in dims
                     if d.lower() in _TIME_NAMES), None)

    grid_dims = {lat_dim, lon_dim}
    coords = {lat_name, lon_name} | {name for name, (dims, _) in contents.items()
                                     if dims == (name,)}
    on_grid = [name for name, (dims, _) in contents.items()
               if name not in coords and grid_dims <= set(dims)]
    if variables is None:
        variables = [name for name in on_grid if name != label_variable]
        if not variables:
            raise ValueError(f"Expected '{path.name}' to have variables on the ({lat_dim}, "
                             f"{lon_dim}) grid (found: {listing})")
    for name in list(variables) + ([label_variable] if label_variable else []):
        if name not in contents:
            raise ValueError(f"Expected '{path.name}' to have a variable '{name}' (found: "
                             f"{listing})")
        dims = contents[name][0]
        allowed = {lat_dim, lon_dim} | ({time_dim} if time_dim else set())
        if not grid_dims <= set(dims) or not set(dims) <= allowed:
            raise ValueError(f"Expected variable '{name}' to have dims ({lat_dim}, {lon_dim}) "
                             f"or ({time_dim or 'time'}, {lat_dim}, {lon_dim}) (got "
                             f"{list(dims)})")
    has_time = time_dim is not None and any(
        time_dim in contents[name][0] for name in list(variables) + [label_variable] if name)
    n_time = None
    if has_time:
        sizes = {contents[name][1].shape[contents[name][0].index(time_dim)]
                 for name in list(variables) + [label_variable]
                 if name and time_dim in contents[name][0]}
        n_time = sizes.pop()
    index = _check_time(time, n_time)

    # Interpolation geometry: ascending latitude, longitude sorted in [0, 360)
    # with the first column repeated at +360 to wrap around.
    lat_order = np.argsort(lat)
    lat_sorted = lat[lat_order]
    lon_mod = np.mod(lon, 360.0)
    lon_order = np.argsort(lon_mod)
    lon_sorted = lon_mod[lon_order]
    if np.any(np.diff(lat_sorted) <= 0) or np.any(np.diff(lon_sorted) <= 0):
        raise ValueError(f"Expected '{lat_name}' and '{lon_name}' to have distinct values")
    gaps = np.diff(np.concatenate([lon_sorted, [lon_sorted[0] + 360.0]]))
    if gaps[-1] > 2.0 * gaps[:-1].max() + 1e-9:
        raise ValueError(f"Expected '{lon_name}' to cover all longitudes (a global grid), but "
                         f"it spans only [{lon_sorted[0]:g}, {lon_sorted[-1]:g}] degrees")
    lon_ext = np.concatenate([lon_sorted, [lon_sorted[0] + 360.0]])
    col_ext = np.concatenate([lon_order, lon_order[:1]])
    plon, plat = xyz_to_lonlat(pos)
    plon, plat = np.degrees(plon), np.degrees(plat)
    plon = np.where(plon < lon_sorted[0], plon + 360.0, plon)
    i, u = _interval(lon_ext, plon)
    j, v = _interval(lat_sorted, plat)
    cols = (col_ext[i], col_ext[i + 1])
    rows = (lat_order[j], lat_order[j + 1])

    def grid_values(name: str) -> np.ndarray:
        dims, var = contents[name]
        data = _values(var)
        order = [d for d in (time_dim, lat_dim, lon_dim) if d in dims]
        data = np.transpose(data, [dims.index(d) for d in order])
        if time_dim not in dims:
            data = data[None]
            if n_time is not None:
                data = np.repeat(data, n_time, axis=0)
        if n_time is not None:
            data = data[index]
        if data.dtype.kind not in 'fiub':
            raise ValueError(f"Expected variable '{name}' to be numeric (got {data.dtype})")
        data = data.astype(np.float64)
        bad = ~np.isfinite(data)
        if bad.any():
            raise ValueError(f"Expected variable '{name}' to be finite, but {int(bad.sum())} of "
                             f"its {bad.size} values are NaN, infinite or missing (fill them "
                             f"first)")
        return data                                            # [T, lat, lon]

    x = []
    for name in variables:
        data = grid_values(name)
        value = ((1 - v) * ((1 - u) * data[:, rows[0], cols[0]] + u * data[:, rows[0], cols[1]])
                 + v * ((1 - u) * data[:, rows[1], cols[0]] + u * data[:, rows[1], cols[1]]))
        x.append(value)
    x_t = torch.from_numpy(np.stack(x, axis=-1).astype(np.float32))
    y_t = None
    if label_variable is not None:
        data = grid_values(label_variable)
        if np.any(data != np.round(data)):
            raise ValueError(f"Expected label variable '{label_variable}' to hold integers "
                             f"(got non-integer values)")
        r = np.where(v < 0.5, rows[0], rows[1])
        c = np.where(u < 0.5, cols[0], cols[1])
        y_t = torch.from_numpy(data[:, r, c].astype(np.int64))
    return NetCDFFields(x_t, y_t, tuple(variables))
