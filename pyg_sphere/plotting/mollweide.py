"""Mollweide maps of any sampling: nearest-pixel resampling onto a regular
image of the projected plane, drawn on Matplotlib's ``'mollweide'`` axes."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch

from .._validation import _got

from ._common import (_SQRT2, _check_resolution, _classes, _matplotlib, _positions,
                      _values)

#: Image points farther than ``MASK_FACTOR`` typical pixel spacings (the
#: median distance between a pixel and its nearest neighbour) from every pixel
#: are masked (drawn blank).
MASK_FACTOR = 2.0

#: Default image width in pixels (the height is half of it) of :func:`mollweide`.
DEFAULT_RESOLUTION = 800


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
          categorical: bool, labels: Optional[Sequence[str]], colorbar: bool,
          unit: Optional[str] = None) -> Any:
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
        if unit is not None:
            bar.set_label(str(unit))
    return ax


def mollweide(values: Any, data: Any, ax: Optional[Any] = None, title: Optional[str] = None,
              cmap: Optional[Any] = None, vmin: Optional[float] = None,
              vmax: Optional[float] = None, resolution: int = DEFAULT_RESOLUTION,
              categorical: bool = False, labels: Optional[Sequence[str]] = None,
              colorbar: bool = True, unit: Optional[str] = None) -> Any:
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
        unit (str, optional): label of the colorbar, e.g. the quantity and
            its unit. (default: :obj:`None`)

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
    return _draw(ax, image, title, cmap, vmin, vmax, values, categorical, labels, colorbar,
                 unit)
