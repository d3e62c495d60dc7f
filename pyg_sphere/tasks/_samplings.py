"""The samplings a task runs on, from ``--sampling`` and the one resolution
option that belongs to it (``--nside``, ``--subdivisions`` or ``--nlat``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from torch_geometric.data import Data

from .._catalog import RESOLUTION_HELP, RESOLUTION_OPTIONS  # noqa: F401 (re-exported)
from .._validation import is_power_of_two
from ._base import TaskError

def check_sampling(task: str, name: str, allowed: Sequence[str]) -> str:
    """``name`` if the task supports it, else a :class:`TaskError`."""
    if name not in allowed:
        raise TaskError(f"--sampling: the {task} task supports {', '.join(allowed)} "
                        f"(got '{name}')")
    return name


def resolution_option(args: Any, sampling: str, default: int) -> int:
    """The resolution given with the option of ``sampling`` (or ``default``);
    the option of another sampling is refused, naming the right one."""
    own = RESOLUTION_OPTIONS[sampling]
    for option in RESOLUTION_OPTIONS.values():
        value = getattr(args, option, None)
        if option != own and value is not None:
            raise TaskError(f'--{option}: sets the resolution of '
                            f'{[s for s, o in RESOLUTION_OPTIONS.items() if o == option][0]} '
                            f'samplings; the {sampling} sampling takes --{own} (got --{option} '
                            f'{value})')
    value = getattr(args, own, None)
    return default if value is None else value


def build_sampling(name: str, resolution: int) -> Data:
    """The sampling ``name`` at ``resolution`` (HEALPix nside, NESTED;
    icosahedral subdivisions; equiangular nlat with nlon = 2 nlat); a bad
    resolution is a :class:`TaskError` naming the option."""
    from ..samplings import equiangular, healpix, icosahedral
    option = RESOLUTION_OPTIONS[name]
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise TaskError(f'--{option}: expected an integer (got {resolution!r})')
    if name == 'healpix':
        if not is_power_of_two(resolution):
            raise TaskError(f'--nside: expected a power of two for HEALPix (got {resolution})')
        return healpix(resolution)
    if name == 'icosahedral':
        if not 0 <= resolution <= 8:
            raise TaskError(f'--subdivisions: expected icosahedral subdivisions in 0..8 (got '
                            f'{resolution})')
        return icosahedral(resolution)
    if resolution < 4 or resolution % 2:
        raise TaskError(f'--nlat: expected an even equiangular nlat >= 4 (got {resolution})')
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


def describe(name: str, resolution: int) -> str:
    """``'healpix nside 16'`` and the like."""
    return f'{name} {RESOLUTION_OPTIONS[name]} {resolution}'


def optional_path(path: Optional[str]) -> Optional[str]:
    """A folder given on the command line as an absolute path (so that a run
    evaluated from elsewhere finds the same data); :obj:`None` stays."""
    from pathlib import Path
    return None if path is None else str(Path(path).expanduser().resolve())
