r"""Reading fields on a regular longitude / latitude grid from netCDF files
(CF conventions, degrees) and interpolating them onto the pixels of any
sampling. netCDF4 / HDF5 files need xarray (``pip install pyg-sphere[climate]``);
netCDF3 is read with scipy."""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import _got, check_choice
from ..samplings import sampling_positions, xyz_to_lonlat

#: Readers of :func:`load_netcdf`.
NETCDF_ENGINES: Tuple[str, ...] = ('auto', 'xarray', 'scipy')


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
            order, e.g. :obj:`pyg_sphere.simulate.CLIMATE_CHANNELS`. (default: :obj:`None`, every
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
        >>> from pyg_sphere.simulate import CLIMATE_CHANNELS
        >>> x, y, names = load_netcdf('cam5.nc', icosahedral(5),
        ...                           CLIMATE_CHANNELS, 'LABELS')  # doctest: +SKIP
    """
    engine = check_choice('engine', engine, NETCDF_ENGINES)
    pos = sampling_positions(sampling)
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
