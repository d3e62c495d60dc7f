r"""A simulator of 16-channel atmospheric states with labelled extreme events,
the synthetic stand-in for the CAM5 data of the DeepSphere climate task
(`Defferrard et al. 2020 <https://openreview.net/forum?id=B1e3OlStPB>`_, after
`Jiang et al. 2019 <https://arxiv.org/abs/1901.02039>`_): every pixel is
background, tropical cyclone (TC) or atmospheric river (AR), with the class
imbalance of the paper (:obj:`TARGET_FRACTIONS`).

Longitudes and latitudes are in radians.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import _got, check_real
from ..samplings import sampling_positions
from ._climate_events import (_AR_RATE, _AR_SIGMA, _TC_CORE, _TC_LAT, _TC_RATE, _TC_RMW,
                              _State, _ar_path, _random_centre, _river, _tangent, _vortex)
from ._climate_frame import _DEG, _Frame, _smooth_fields

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

#: Version of the generator: part of cache keys, bump it when maps change.
GENERATOR_VERSION = 1

# Physical constants (SI).
_G = 9.80665
_RD = 287.04
_OMEGA = 7.292e-5

# Std of the white noise added to each channel (times ``noise``), physical units.
_NOISE = {'TMQ': 1.5, 'U850': 1.5, 'V850': 1.5, 'UBOT': 1.2, 'VBOT': 1.2, 'QREFHT': 4e-4,
          'PS': 80.0, 'PSL': 80.0, 'T200': 0.5, 'T500': 0.5, 'PRECT': 1e-8, 'TS': 0.3,
          'TREFHT': 0.4, 'Z1000': 8.0, 'Z200': 15.0, 'ZBOT': 0.3}


def _q_sat(temperature: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (kg/kg), Bolton's formula for e_s (Pa)."""
    e_s = 611.2 * np.exp(17.67 * (temperature - 273.15) / (temperature - 29.65))
    return 0.622 * e_s / (pressure - 0.378 * e_s)


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
    :obj:`TARGET_FRACTIONS` (see :class:`~pyg_sphere.datasets.ClimateEvents`).

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
    pos = sampling_positions(sampling)
    noise = check_real('noise', noise, 0.0)
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


def climate_maps(sampling: Union[Data, torch.Tensor], seeds: Sequence[Sequence[int]],
                 noise: float = 1.0, progress: Any = None) -> Tuple[np.ndarray, np.ndarray]:
    """Many states on one sampling: float32 ``[len(seeds), n, 16]`` fields and
    uint8 ``[len(seeds), n]`` labels, map ``i`` being
    :func:`generate_climate_fields` with seed ``seeds[i]`` (the pixel
    geometry is computed once). ``progress``: a bar with ``update()``."""
    pos = sampling_positions(sampling)
    noise = check_real('noise', noise, 0.0)
    frame = _Frame(pos)
    n = frame.xyz.shape[0]
    x = np.empty((len(seeds), n, len(CLIMATE_CHANNELS)), dtype=np.float32)
    y = np.empty((len(seeds), n), dtype=np.uint8)
    for i, seed in enumerate(seeds):
        x[i], y[i] = _generate(frame, np.random.default_rng(_seed_sequence(seed)), noise)
        if progress is not None:
            progress.update(1)
    return x, y
