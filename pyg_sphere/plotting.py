r"""Plots of maps on any spherical sampling, confusion matrices and training curves.

Maps are drawn in the `Mollweide projection
<https://en.wikipedia.org/wiki/Mollweide_projection>`_ on Matplotlib's
``'mollweide'`` axes, longitude increasing to the right (east), centred on
longitude 0. Any sampling works: the map is resampled by nearest pixel onto an
image that is regular in the projected plane, and image points farther than
:obj:`MASK_FACTOR` typical pixel spacings from every pixel are left blank, so a
partial sky shows as blank.

Matplotlib is an optional dependency (``pip install pyg-sphere[plot]``). This
module only builds :class:`matplotlib.figure.Figure` objects and never touches
``pyplot``'s global state or backend, so it is safe under the ``Agg`` backend
and in worker processes.

Example:
    >>> import torch
    >>> from pyg_sphere.samplings import healpix
    >>> from pyg_sphere.plotting import mollweide
    >>> data = healpix(8)
    >>> ax = mollweide(data.pos[:, 2], data, title='sin(lat)')
    >>> ax.name
    'mollweide'
"""
from __future__ import annotations

import math
import numbers
import os
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ._validation import _got

__all__ = [
    'mollweide',
    'plot_maps',
    'plot_confusion',
    'plot_training_curves',
    'MASK_FACTOR',
    'CURVE_PANELS',
]

#: Image points farther than ``MASK_FACTOR`` typical pixel spacings (the
#: median distance between a pixel and its nearest neighbour) from every pixel
#: are masked (drawn blank).
MASK_FACTOR = 2.0

#: Panels of :func:`plot_training_curves`: (y-axis label, keys plotted on it).
CURVE_PANELS = (
    ('loss', ('train_loss', 'val_loss')),
    ('accuracy', ('train_accuracy', 'val_accuracy')),
    ('score', ('val_score',)),
)

#: Default image width in pixels (the height is half of it) of :func:`mollweide`.
DEFAULT_RESOLUTION = 800

_SQRT2 = math.sqrt(2.0)
_UNSEEN = -1.6375e30  # healpy.UNSEEN: no value


# -- lazy import -----------------------------------------------------------------

def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.colors  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.image  # noqa: F401
    except ImportError as error:
        raise ImportError("pyg_sphere.plotting needs matplotlib: "
                          "pip install pyg-sphere[plot]") from error
    return matplotlib


# -- input checks ----------------------------------------------------------------

def _positions(data: Any) -> np.ndarray:
    """``data.pos`` as float64 unit vectors [n, 3] (numpy)."""
    pos = getattr(data, 'pos', None)
    if pos is None:
        raise ValueError(f"Expected 'data' to be a sampling with 'pos' [n, 3] (unit vectors), "
                         f"as made by pyg_sphere.samplings (got {type(data).__name__} "
                         f"without 'pos')")
    if isinstance(pos, torch.Tensor):
        pos = pos.detach().cpu().double().numpy()
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] == 0:
        raise ValueError(f"Expected 'data.pos' to have shape [n, 3] with n >= 1 "
                         f"(got {tuple(pos.shape)})")
    if not np.isfinite(pos).all():
        raise ValueError("Expected 'data.pos' to be finite (got non-finite positions)")
    norm = np.linalg.norm(pos, axis=1, keepdims=True)
    if (norm == 0).any():
        raise ValueError("Expected 'data.pos' to hold unit vectors (got a zero vector)")
    return pos / norm


def _values(values: Any, n: int, name: str = 'values') -> np.ndarray:
    """Per-pixel values as a float64 numpy array [n] (NaN = no value)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        values = values.double() if not values.is_complex() else values
        values = values.numpy()
    try:
        arr = np.asarray(values)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"Expected '{name}' to be a 1-D array of numbers "
                         f"(got {_got(values)})") from error
    if arr.ndim != 1:
        raise ValueError(f"Expected '{name}' to be 1-D, one value per pixel "
                         f"(got shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"Expected '{name}' to hold real numbers (got dtype {arr.dtype})")
    if arr.shape[0] != n:
        raise ValueError(f"Expected '{name}' to have {n} entries, one per pixel "
                         f"(got {arr.shape[0]})")
    arr = arr.astype(np.float64)
    arr[np.isclose(arr, _UNSEEN, rtol=1e-6, atol=0)] = np.nan  # also UNSEEN cast to float32
    if np.isinf(arr).any():
        bad = int(np.flatnonzero(np.isinf(arr))[0])
        raise ValueError(f"Expected '{name}' to be finite or NaN (no value), but "
                         f"{name}[{bad}] is {arr[bad]}")
    return arr


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral):
        raise ValueError(f"Expected 'resolution' to be an integer image width in pixels "
                         f"(got {_got(resolution)})")
    if not 16 <= int(resolution) <= 10000:
        raise ValueError(f"Expected 'resolution' in [16, 10000] pixels (got {int(resolution)})")
    return int(resolution)


def _classes(values: np.ndarray, labels: Optional[Sequence[str]]) -> List[str]:
    """Check that ``values`` are class indices; return the class names."""
    finite = values[np.isfinite(values)]
    if finite.size and not np.array_equal(finite, np.round(finite)):
        bad = finite[finite != np.round(finite)][0]
        raise ValueError(f"Expected 'values' to hold integer class indices when "
                         f"categorical=True (got {bad:g})")
    if labels is None:
        count = int(finite.max()) + 1 if finite.size else 1
        names = [str(i) for i in range(max(count, 1))]
    else:
        if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) == 0:
            raise ValueError(f"Expected 'labels' to be a non-empty sequence of class names "
                             f"(got {_got(labels)})")
        names = [str(label) for label in labels]
    if finite.size and (finite.min() < 0 or finite.max() >= len(names)):
        bad = finite.min() if finite.min() < 0 else finite.max()
        raise ValueError(f"Expected 'values' to hold class indices in [0, {len(names) - 1}] "
                         f"for {len(names)} classes (got {int(bad)})")
    return names


# -- resampling ------------------------------------------------------------------

def _mollweide_lonlat(width: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Longitude and latitude (radians) of the centres of a ``width`` x
    ``width // 2`` image that fills the Mollweide ellipse's bounding box.

    Row 0 is the south (``origin='lower'``). An image point at axes
    coordinates :math:`(u, v) \in [0, 1]^2` is the projected point
    :math:`x = 2\sqrt{2}\,(2u - 1)`, :math:`y = \sqrt{2}\,(2v - 1)`, and the
    inverse Mollweide projection gives

    .. math::
        \theta = \arcsin(y / \sqrt{2}), \quad
        \mathrm{lat} = \arcsin\frac{2\theta + \sin 2\theta}{\pi}, \quad
        \mathrm{lon} = \frac{\pi x}{2\sqrt{2}\cos\theta}.

    Returns:
        ``lon``, ``lat`` [height, width] (NaN outside the ellipse) and the
        boolean mask ``inside`` [height, width].
    """
    height = width // 2
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    x = (2 * u[None, :] - 1) * 2 * _SQRT2
    y = (2 * v[:, None] - 1) * _SQRT2
    inside = (x / (2 * _SQRT2)) ** 2 + (y / _SQRT2) ** 2 < 1
    theta = np.arcsin(np.clip(y / _SQRT2, -1, 1)) * np.ones_like(x)
    lat = np.arcsin(np.clip((2 * theta + np.sin(2 * theta)) / np.pi, -1, 1))
    with np.errstate(divide='ignore', invalid='ignore'):
        lon = np.pi * x / (2 * _SQRT2 * np.cos(theta))
    lon = np.where(inside, lon, np.nan)
    lat = np.where(inside, lat, np.nan)
    return lon, lat, inside


def _healpix_ipix(data: Any, pos: np.ndarray) -> Optional[Tuple[int, bool, np.ndarray]]:
    """``(nside, nest, ipix)`` when ``data`` is a HEALPix sampling whose ``pos``
    still are its pixel centres (not rotated, not permuted), else :obj:`None`."""
    sampling = getattr(data, 'sampling', None)
    if getattr(sampling, 'name', None) != 'healpix':
        return None
    try:
        nside, nest = int(sampling['nside']), bool(sampling['nest'])
    except (KeyError, TypeError, ValueError):
        return None
    import healpy as hp
    ipix = getattr(data, 'ipix', None)
    if ipix is None:
        if pos.shape[0] != 12 * nside * nside:
            return None
        ipix = np.arange(pos.shape[0], dtype=np.int64)
    else:
        ipix = np.asarray(ipix.detach().cpu().numpy() if isinstance(ipix, torch.Tensor)
                          else ipix, dtype=np.int64)
        if ipix.shape != (pos.shape[0],):
            return None
    if not np.array_equal(hp.vec2pix(nside, pos[:, 0], pos[:, 1], pos[:, 2], nest=nest), ipix):
        return None
    return nside, nest, ipix


def _spacing(tree: Any, pos: np.ndarray) -> float:
    """Typical pixel spacing (chord): median distance to the nearest other pixel."""
    if pos.shape[0] < 2:
        return 2.0
    dist, _ = tree.query(pos, k=2)
    dist = dist[:, 1]
    dist = dist[dist > 1e-12]  # coincident points (e.g. grid rows at the poles)
    return float(np.median(dist)) if dist.size else 2.0


def _pixel_index(data: Any, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Index of the pixel of ``data`` that each point (lon, lat in radians)
    falls in, or -1 where no pixel is near (and where lon / lat are NaN).

    Full- and partial-sky HEALPix samplings use :func:`healpy.ang2pix` (the
    pixel that contains the point; outside a partial sky -1). Every other
    sampling uses the nearest pixel (:class:`scipy.spatial.cKDTree` on
    ``data.pos``), and -1 where it is farther than :obj:`MASK_FACTOR` typical
    pixel spacings.
    """
    pos = _positions(data)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    index = np.full(lon.shape, -1, dtype=np.int64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon_ok, lat_ok = lon[ok], lat[ok]
    hpx = _healpix_ipix(data, pos)
    if hpx is not None:
        import healpy as hp
        nside, nest, ipix = hpx
        lookup = np.full(12 * nside * nside, -1, dtype=np.int64)
        lookup[ipix] = np.arange(ipix.shape[0])
        pix = hp.ang2pix(nside, np.pi / 2 - lat_ok, np.mod(lon_ok, 2 * np.pi), nest=nest)
        index[ok] = lookup[pix]
        return index
    from scipy.spatial import cKDTree
    tree = cKDTree(pos)
    reach = MASK_FACTOR * _spacing(tree, pos)
    cl = np.cos(lat_ok)
    xyz = np.stack([cl * np.cos(lon_ok), cl * np.sin(lon_ok), np.sin(lat_ok)], axis=1)
    _, nearest = tree.query(xyz, k=1, distance_upper_bound=reach)
    nearest[nearest >= pos.shape[0]] = -1  # nothing within reach
    index[ok] = nearest
    return index


def _resample(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Image of ``values`` picked by ``index`` (NaN where index is -1)."""
    image = np.full(index.shape, np.nan)
    hit = index >= 0
    image[hit] = values[index[hit]]
    return image


# -- drawing ---------------------------------------------------------------------

def _new_mollweide_axes(figsize: Tuple[float, float] = (8.0, 4.8)) -> Any:
    mpl = _matplotlib()
    fig = mpl.figure.Figure(figsize=figsize, layout='constrained')
    return fig.add_subplot(projection='mollweide')


def _check_ax(ax: Any) -> None:
    name = getattr(ax, 'name', None)
    if name != 'mollweide':
        got = f'{name!r} axes' if isinstance(name, str) else _got(ax)
        raise ValueError(f"Expected 'ax' to be Matplotlib Axes made with "
                         f"projection='mollweide' (got {got})")


def _draw(ax: Any, image: np.ndarray, title: Optional[str], cmap: Optional[Any],
          vmin: Optional[float], vmax: Optional[float], values: np.ndarray,
          categorical: bool, labels: Optional[Sequence[str]], colorbar: bool) -> Any:
    mpl = _matplotlib()
    if categorical:
        names = _classes(values, labels)
        count = len(names)
        if cmap is None:
            cmap = 'tab10' if count <= 10 else 'tab20'
        base = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
        colors = base(np.arange(count) % base.N) if getattr(base, 'N', 256) < 256 \
            else base(np.linspace(0, 1, count))
        cmap = mpl.colors.ListedColormap(colors)
        norm = mpl.colors.BoundaryNorm(np.arange(count + 1) - 0.5, count)
    else:
        if labels is not None:
            raise ValueError("Expected categorical=True when 'labels' (class names) "
                             "are given (got categorical=False)")
        cmap = mpl.colormaps['viridis' if cmap is None else cmap] if \
            isinstance(cmap, str) or cmap is None else cmap
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if vmin is None and finite.size else vmin
        hi = float(finite.max()) if vmax is None and finite.size else vmax
        lo = 0.0 if lo is None else lo
        hi = lo + 1.0 if hi is None else hi
        if lo > hi:
            raise ValueError(f"Expected 'vmin' <= 'vmax' (got vmin={lo:g}, vmax={hi:g})")
        norm = mpl.colors.Normalize(lo, hi)
    cmap = cmap.with_extremes(bad=(0, 0, 0, 0))
    # The image lives in axes coordinates, which span the ellipse's bounding
    # box; GeoAxes refuse limit changes, so the image is added without imshow.
    image_artist = mpl.image.AxesImage(ax, cmap=cmap, norm=norm, interpolation='nearest',
                                       origin='lower', extent=(0, 1, 0, 1))
    image_artist.set_transform(ax.transAxes)
    image_artist.set_data(np.ma.masked_invalid(image))
    image_artist.set_clip_path(ax.patch)
    ax.add_image(image_artist)
    ax.grid(True, color='0.6', linewidth=0.4, alpha=0.6)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    if title is not None:
        ax.set_title(str(title))
    if colorbar:
        bar = ax.figure.colorbar(image_artist, ax=ax, orientation='horizontal',
                                 shrink=0.6, pad=0.04, aspect=30)
        if categorical:
            bar.set_ticks(np.arange(count))
            bar.set_ticklabels(names, rotation=0 if count <= 6 else 45)
    return ax


def mollweide(values: Any, data: Any, ax: Optional[Any] = None, title: Optional[str] = None,
              cmap: Optional[Any] = None, vmin: Optional[float] = None,
              vmax: Optional[float] = None, resolution: int = DEFAULT_RESOLUTION,
              categorical: bool = False, labels: Optional[Sequence[str]] = None,
              colorbar: bool = True) -> Any:
    r"""Draw a map of one value per pixel of any sampling in the Mollweide
    projection.

    The map is resampled by nearest pixel onto an image of ``resolution`` x
    ``resolution // 2`` points, regular in the projected plane: for a HEALPix
    sampling (full or partial sky, RING or NESTED) each image point takes the
    value of the HEALPix pixel that contains it, for any other sampling that
    of the nearest pixel of ``data.pos``. Image points farther than
    :obj:`MASK_FACTOR` typical pixel spacings from every pixel (or outside a
    partial HEALPix sky) and pixels whose value is NaN (or
    :obj:`healpy.UNSEEN`) are blank. Longitude grows to the right (east),
    longitude 0 is in the centre.

    Args:
        values (numpy.ndarray or torch.Tensor): one value per pixel, shape
            [n], in the pixel order of ``data``.
        data (torch_geometric.data.Data): the sampling, with ``pos`` [n, 3]
            (unit vectors), as made by :mod:`pyg_sphere.samplings`.
        ax (matplotlib.axes.Axes, optional): axes made with
            ``projection='mollweide'`` to draw into. (default: :obj:`None`, a
            new :class:`matplotlib.figure.Figure`, not managed by ``pyplot``:
            save it with ``ax.figure.savefig``)
        title (str, optional): axes title. (default: :obj:`None`)
        cmap (str or matplotlib.colors.Colormap, optional): colormap.
            (default: :obj:`None`, ``'viridis'``, or ``'tab10'`` / ``'tab20'``
            when ``categorical=True``)
        vmin (float, optional): value at the bottom of the colormap
            (continuous maps only). (default: :obj:`None`, the minimum)
        vmax (float, optional): value at the top of the colormap
            (continuous maps only). (default: :obj:`None`, the maximum)
        resolution (int, optional): image width in points (the height is
            half). (default: :obj:`800`)
        categorical (bool, optional): :obj:`True` for label maps (integer
            class indices): a discrete colormap with one color per class.
            (default: :obj:`False`)
        labels (sequence of str, optional): class names, shown on the
            colorbar when ``categorical=True``. (default: :obj:`None`, the
            class indices ``0 ... max(values)``)
        colorbar (bool, optional): draw a horizontal colorbar under the map.
            (default: :obj:`True`)

    Returns:
        The :class:`matplotlib.axes.Axes` drawn into.

    Example:
        >>> from pyg_sphere.samplings import icosahedral
        >>> data = icosahedral(3)
        >>> ax = mollweide((data.pos[:, 2] > 0).long(), data, categorical=True,
        ...                labels=['south', 'north'])
        >>> ax.figure.savefig('/tmp/labels.png')  # doctest: +SKIP
    """
    _matplotlib()
    pos = _positions(data)
    values = _values(values, pos.shape[0])
    resolution = _check_resolution(resolution)
    if ax is None:
        ax = _new_mollweide_axes()
    else:
        _check_ax(ax)
    lon, lat, _ = _mollweide_lonlat(resolution)
    image = _resample(values, _pixel_index(data, lon, lat))
    return _draw(ax, image, title, cmap, vmin, vmax, values, categorical, labels, colorbar)


# -- saving ----------------------------------------------------------------------

def _check_path(path: Any) -> Tuple[Path, str]:
    """Return ``(path, format)``; the format comes from the file suffix."""
    mpl = _matplotlib()
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Expected 'path' to be a file path (got {_got(path)})")
    path = Path(path)
    supported = mpl.figure.Figure().canvas.get_supported_filetypes()
    fmt = path.suffix[1:].lower()
    if fmt not in supported:
        raise ValueError(f"Expected 'path' to end in one of "
                         f"{tuple('.' + s for s in sorted(supported))} (got {path.name!r})")
    return path, fmt


def _save(fig: Any, path: Path, fmt: str, dpi: int) -> Path:
    """Save ``fig`` to ``path`` atomically: a temporary file in the same
    folder, then :func:`os.replace`; the temporary file never outlives a
    failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name opened with 'x' (not mkstemp, whose 0600 mode would stick
    # to the result): the file gets the permissions the umask gives.
    tmp = path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp'
    try:
        with open(tmp, 'xb') as handle:
            fig.savefig(handle, format=fmt, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


# -- grids of maps ---------------------------------------------------------------

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
    allowed = {'cmap', 'vmin', 'vmax', 'resolution', 'categorical', 'labels', 'colorbar'}
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
              opt.get('labels'), bool(opt.get('colorbar', True)))
    return _save(fig, path, fmt, dpi)


# -- confusion matrix ------------------------------------------------------------

def plot_confusion(confusion: Any, class_names: Sequence[str], path_or_ax: Any,
                   title: Optional[str] = 'confusion', normalize: bool = False,
                   dpi: int = 100) -> Any:
    r"""Plot a confusion matrix, true classes in rows and predicted classes in
    columns, each cell annotated with its count.

    Args:
        confusion (array-like [C, C]): ``confusion[i, j]`` counts the samples
            of true class ``i`` predicted as class ``j``.
        class_names (sequence of str): the ``C`` class names.
        path_or_ax (str, os.PathLike or matplotlib.axes.Axes): a file to write
            atomically (format from its suffix), or axes to draw into.
        title (str, optional): axes title. (default: :obj:`'confusion'`)
        normalize (bool, optional): color each cell by its fraction of its
            row (the recall on the diagonal) and annotate fractions instead of
            counts. (default: :obj:`False`)
        dpi (int, optional): resolution of raster formats. (default: :obj:`100`)

    Returns:
        The :class:`pathlib.Path` written, or the Axes drawn into.
    """
    mpl = _matplotlib()
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"Expected 'confusion' to be a square matrix [C, C] "
                         f"(got shape {cm.shape})")
    if not (np.issubdtype(cm.dtype, np.integer) or np.issubdtype(cm.dtype, np.floating)) \
            or not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("Expected 'confusion' to hold finite non-negative counts")
    if isinstance(class_names, str) or len(class_names) != cm.shape[0]:
        got = repr(class_names) if isinstance(class_names, str) else len(class_names)
        raise ValueError(f"Expected 'class_names' to hold {cm.shape[0]} names, one per class "
                         f"(got {got})")
    if _is_path(path_or_ax):
        path, fmt = _check_path(path_or_ax)
        size = 1.2 + 0.55 * cm.shape[0]
        fig = mpl.figure.Figure(figsize=(size + 1.2, size), layout='constrained')
        ax = fig.add_subplot()
    elif hasattr(path_or_ax, 'imshow'):
        path, ax = None, path_or_ax
    else:
        raise ValueError(f"Expected 'path_or_ax' to be a file path or Matplotlib Axes "
                         f"(got {_got(path_or_ax)})")
    rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
    fraction = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    shown = fraction if normalize else cm
    im = ax.imshow(shown, cmap='Blues', vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    threshold = (1 if normalize else max(cm.max(), 1)) / 2
    for (i, j), value in np.ndenumerate(shown):
        text = f'{value:.2f}' if normalize else \
            (f'{int(value)}' if float(value).is_integer() else f'{value:.3g}')
        ax.text(j, i, text, ha='center', va='center', fontsize=8,
                color='white' if value > threshold else 'black')
    ticks = np.arange(cm.shape[0])
    names = [str(name) for name in class_names]
    ax.set_xticks(ticks, names, rotation=45 if cm.shape[0] > 4 else 0, ha='right'
                  if cm.shape[0] > 4 else 'center')
    ax.set_yticks(ticks, names)
    ax.set(xlabel='predicted', ylabel='true')
    if title is not None:
        ax.set_title(str(title))
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    return ax if path is None else _save(ax.figure, path, fmt, dpi)


# -- training curves -------------------------------------------------------------

def _series(rows: Sequence[Mapping[str, Any]], key: str) -> Tuple[List[float], List[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"Expected rows[...]['{key}'] to be a number or None "
                             f"(got {_got(value)} at epoch {row['epoch']})")
        xs.append(float(row['epoch']))
        ys.append(float(value))
    return xs, ys


def plot_training_curves(rows: Sequence[Mapping[str, Any]], path_or_ax: Any,
                         dpi: int = 100) -> Any:
    r"""Plot per-epoch training metrics: the panels of :obj:`CURVE_PANELS`
    (loss, accuracy, score) that have data.

    Args:
        rows (sequence of dict): one dict per epoch with ``'epoch'`` and any of
            ``'train_loss'``, ``'val_loss'``, ``'train_accuracy'``,
            ``'val_accuracy'``, ``'val_score'`` (missing or :obj:`None` entries
            are skipped, e.g. validation every few epochs), as in a run's
            ``metrics.jsonl``.
        path_or_ax (str, os.PathLike, Axes or sequence of Axes): a file to
            write atomically (format from its suffix), one Axes per panel, or
            a single Axes (losses on its left y-axis, accuracies and score on
            a twin right y-axis, dashed).
        dpi (int, optional): resolution of raster formats. (default: :obj:`100`)

    Returns:
        The :class:`pathlib.Path` written, or the list of Axes drawn into.
    """
    mpl = _matplotlib()
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError(f"Expected 'rows' to be a non-empty sequence of dicts, one per epoch "
                         f"(got {_got(rows)})")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or 'epoch' not in row:
            raise ValueError(f"Expected every row to be a dict with an 'epoch' key "
                             f"(got {_got(row)} at rows[{i}])")
    panels = []
    for label, keys in CURVE_PANELS:
        series = [(key, *_series(rows, key)) for key in keys]
        series = [s for s in series if s[1]]
        if series:
            panels.append((label, series))
    if not panels:
        known = [key for _, keys in CURVE_PANELS for key in keys]
        raise ValueError(f"Expected the rows to hold at least one of {known} "
                         f"(got keys {sorted(set().union(*(row.keys() for row in rows)))})")

    path, twin = None, False
    if _is_path(path_or_ax):
        path, fmt = _check_path(path_or_ax)
        fig = mpl.figure.Figure(figsize=(4.2 * len(panels), 3.4), layout='constrained')
        axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    elif hasattr(path_or_ax, 'plot'):
        # One Axes: losses on the left, accuracies and score on a twin right axis.
        twin = len(panels) > 1
        axes = [path_or_ax] + [path_or_ax.twinx()] * (len(panels) > 1)
    elif isinstance(path_or_ax, Sequence) and all(hasattr(a, 'plot') for a in path_or_ax):
        if len(path_or_ax) != len(panels):
            raise ValueError(f"Expected 'path_or_ax' to hold {len(panels)} Axes, one per panel "
                             f"{tuple(label for label, _ in panels)} (got {len(path_or_ax)})")
        axes = list(path_or_ax)
    else:
        raise ValueError(f"Expected 'path_or_ax' to be a file path, Matplotlib Axes or a "
                         f"sequence of Axes (got {_got(path_or_ax)})")

    groups = [panels[:1], panels[1:]] if twin else [[panel] for panel in panels]
    styles = ['-', '--'] if twin else ['-'] * len(axes)
    color = 0  # one color per curve, across twin axes too
    for ax, group, style in zip(axes, groups, styles):
        for _, series in group:
            for key, xs, ys in series:
                ax.plot(xs, ys, linestyle=style, color=f'C{color % 10}',
                        marker='.' if len(xs) < 30 else None, label=key.replace('_', ' '))
                color += 1
        ax.set_ylabel(' / '.join(label for label, _ in group))
        if ax is axes[0] or not twin:
            ax.grid(True, alpha=0.3)
    axes[0].set_xlabel('epoch')
    if twin:
        handles, names = axes[0].get_legend_handles_labels()
        more_handles, more_names = axes[1].get_legend_handles_labels()
        axes[0].legend(handles + more_handles, names + more_names, fontsize=8)
    else:
        for ax in axes:
            ax.set_xlabel('epoch')
            ax.legend(fontsize=8)
    if path is not None:
        return _save(axes[0].figure, path, fmt, dpi)
    return axes
