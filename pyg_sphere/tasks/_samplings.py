"""Samplings a task can run on, built from ``--sampling`` and ``--nside``."""
from __future__ import annotations

from typing import Sequence

from torch_geometric.data import Data

from .._validation import is_power_of_two
from ._base import TaskError

#: what ``--nside`` means for each sampling
RESOLUTION_NAMES = {'healpix': 'nside', 'icosahedral': 'subdivisions', 'equiangular': 'nlat'}


def build_sampling(name: str, resolution: int) -> Data:
    """The sampling ``name`` at ``resolution`` (HEALPix nside, NESTED;
    icosahedral subdivisions; equiangular nlat with nlon = 2 nlat)."""
    from ..samplings import equiangular, healpix, icosahedral
    what = RESOLUTION_NAMES[name]
    if name == 'healpix':
        if not is_power_of_two(resolution):
            raise TaskError(f'--nside: expected a power of two for HEALPix (got {resolution})')
        return healpix(resolution)
    if name == 'icosahedral':
        if not 0 <= resolution <= 8:
            raise TaskError(f'--nside: expected icosahedral {what} in 0..8 (got {resolution})')
        return icosahedral(resolution)
    if resolution < 4 or resolution % 2:
        raise TaskError(f'--nside: expected an even equiangular {what} >= 4 (got {resolution})')
    return equiangular(resolution, 2 * resolution)


def pooling_levels(name: str, resolution: int, most: int) -> int:
    """How many times the sampling can be coarsened by 2 (pixels / 4), at
    most ``most``."""
    levels = 0
    if name == 'healpix':
        while resolution > 1 and levels < most:
            resolution //= 2
            levels += 1
    elif name == 'icosahedral':
        levels = min(resolution, most)
    else:
        while resolution % 2 == 0 and resolution // 2 >= 2 and levels < most:
            resolution //= 2
            levels += 1
    return levels


def check_resolution_sampling(task: str, name: str, allowed: Sequence[str]) -> None:
    if name not in allowed:
        raise TaskError(f"--sampling: the {task} task supports {', '.join(allowed)} "
                        f"(got '{name}')")
