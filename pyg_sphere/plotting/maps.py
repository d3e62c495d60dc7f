"""Grids of Mollweide maps saved to a file."""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .._validation import _got

from ._common import _check_path, _check_resolution, _matplotlib, _positions, _save, _values
from .mollweide import (DEFAULT_RESOLUTION, _draw, _mollweide_lonlat, _pixel_index,
                        _resample)


def plot_maps(maps: Any, data: Any, titles: Optional[Sequence[Optional[str]]], path: Any,
              ncols: int = 3, map_kwargs: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
              dpi: int = 100, **kwargs: Any) -> Path:
    r"""Save a grid of Mollweide maps to ``path`` (e.g. input, truth and
    prediction side by side).

    The file is written atomically (a temporary file in the same folder, then
    :func:`os.replace`), in the format named by its suffix (``.png``,
    ``.pdf``, ``.svg``, ...).

    Args:
        maps (sequence of arrays or array [m, n]): the maps, one value per
            pixel each.
        data (Data or sequence of Data): the sampling of every map, or one
            sampling per map.
        titles (sequence of str, optional): one title per map, or
            :obj:`None`.
        path (str or os.PathLike): the file to write; missing folders are
            made.
        ncols (int, optional): maps per row. (default: :obj:`3`)
        map_kwargs (sequence of dict, optional): per-map arguments of
            :func:`mollweide` that override ``**kwargs``, e.g.
            ``[{}, {'categorical': True}, {'categorical': True}]`` for an
            input map beside label maps. (default: :obj:`None`)
        dpi (int, optional): resolution of raster formats. (default: :obj:`100`)
        **kwargs: arguments of :func:`mollweide` shared by all maps
            (``cmap``, ``vmin``, ``vmax``, ``resolution``, ``categorical``,
            ``labels``, ``colorbar``).

    Returns:
        The :class:`pathlib.Path` written.

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> data = healpix(8)
        >>> z = data.pos[:, 2]
        >>> plot_maps([z, (z > 0).long()], data, ['input', 'truth'], '/tmp/maps.png',
        ...           map_kwargs=[{}, {'categorical': True}])  # doctest: +SKIP
    """
    mpl = _matplotlib()
    path, fmt = _check_path(path)
    if isinstance(maps, (torch.Tensor, np.ndarray)):
        if maps.ndim != 2:
            raise ValueError(f"Expected 'maps' to be a sequence of maps or an array [m, n] "
                             f"(got shape {tuple(maps.shape)})")
        maps = list(maps)
    elif not isinstance(maps, Sequence) or isinstance(maps, str):
        raise ValueError(f"Expected 'maps' to be a sequence of maps or an array [m, n] "
                         f"(got {_got(maps)})")
    count = len(maps)
    if count == 0:
        raise ValueError("Expected 'maps' to hold at least one map (got none)")
    datas = list(data) if isinstance(data, (list, tuple)) else [data] * count
    if len(datas) != count:
        raise ValueError(f"Expected 'data' to be one sampling or {count} samplings, one per "
                         f"map (got {len(datas)})")
    if titles is None:
        titles = [None] * count
    elif isinstance(titles, str) or len(titles) != count:
        got = repr(titles) if isinstance(titles, str) else len(titles)
        raise ValueError(f"Expected 'titles' to hold {count} titles, one per map (got {got})")
    if map_kwargs is None:
        map_kwargs = [None] * count
    elif len(map_kwargs) != count:
        raise ValueError(f"Expected 'map_kwargs' to hold {count} dicts, one per map "
                         f"(got {len(map_kwargs)})")
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"Expected 'ncols' to be a positive integer (got {_got(ncols)})")
    allowed = {'cmap', 'vmin', 'vmax', 'resolution', 'categorical', 'labels', 'colorbar',
               'unit'}
    for extra in [kwargs] + [kw for kw in map_kwargs if kw]:
        unknown = sorted(set(extra) - allowed)
        if unknown:
            raise ValueError(f"Expected map arguments among {sorted(allowed)} "
                             f"(got {unknown[0]!r})")
    options = [{**kwargs, **(kw or {})} for kw in map_kwargs]
    # Check every input before drawing anything.
    positions = [_positions(d) for d in datas]
    values = [_values(m, p.shape[0], name=f'maps[{i}]')
              for i, (m, p) in enumerate(zip(maps, positions))]
    for opt in options:
        opt['resolution'] = _check_resolution(opt.get('resolution', DEFAULT_RESOLUTION))

    ncols = min(int(ncols), count)
    nrows = math.ceil(count / ncols)
    fig = mpl.figure.Figure(figsize=(4.4 * ncols, 2.9 * nrows), layout='constrained')
    index_cache: Dict[Tuple[int, int], np.ndarray] = {}
    for i in range(count):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection='mollweide')
        opt = options[i]
        key = (id(datas[i]), opt['resolution'])
        if key not in index_cache:  # one nearest-pixel search per sampling
            lon, lat, _ = _mollweide_lonlat(opt['resolution'])
            index_cache[key] = _pixel_index(datas[i], lon, lat)
        _draw(ax, _resample(values[i], index_cache[key]), titles[i], opt.get('cmap'),
              opt.get('vmin'), opt.get('vmax'), values[i], bool(opt.get('categorical', False)),
              opt.get('labels'), bool(opt.get('colorbar', True)), opt.get('unit'))
    return _save(fig, path, fmt, dpi)
