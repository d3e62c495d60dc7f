"""Reading netCDF fields on lat-lon grids onto any sampling
(pyg_sphere.io.netcdf), against fields of known closed form."""
import sys

import numpy as np
import pytest
import torch
from scipy.io import netcdf_file

from pyg_sphere.io import NETCDF_ENGINES, NetCDFFields, load_netcdf
from pyg_sphere.samplings import icosahedral, lonlat_to_xyz, xyz_to_lonlat


@pytest.fixture(scope='module')
def small():
    return icosahedral(2)


# A 1-degree global grid, cell centres.
LAT = np.arange(-89.5, 90, 1.0)
LON = np.arange(0.5, 360, 1.0)


def field_a(lon, lat):
    """Degree-1 harmonic: smooth everywhere, poles included (radians)."""
    return np.cos(lat) * np.cos(lon - 0.3) + 0.5 * np.sin(lat)


def field_b(lon, lat):
    return 250.0 + 30.0 * np.sin(3 * lon) * np.cos(lat) ** 3


def labels_of(lon, lat):
    """1 north of 20N, 2 for longitudes in (100, 200) degrees elsewhere."""
    lon_deg = np.mod(np.degrees(lon), 360)
    return np.where(np.degrees(lat) > 20, 1, np.where((lon_deg > 100) & (lon_deg < 200), 2, 0))


def write_grid(path, lat=LAT, lon=LON, times=None, lon_first=False, extra=None):
    """Write fields on a lat/lon grid to a netCDF3 file with scipy."""
    f = netcdf_file(str(path), 'w')
    f.createDimension('lat', lat.size)
    f.createDimension('lon', lon.size)
    f.createVariable('lat', 'f8', ('lat',))[:] = lat
    f.createVariable('lon', 'f8', ('lon',))[:] = lon
    LONg, LATg = np.meshgrid(np.radians(lon), np.radians(lat))     # [lat, lon]
    dims = ('lat', 'lon')
    if times is not None:
        f.createDimension('time', times)
        f.createVariable('time', 'f8', ('time',))[:] = np.arange(times)
        dims = ('time',) + dims
    values = {'A': field_a(LONg, LATg), 'B': field_b(LONg, LATg),
              'LABELS': labels_of(LONg, LATg)}
    for name, value in values.items():
        kind = 'i4' if name == 'LABELS' else 'f8'
        if times is not None:
            value = np.stack([value + (0 if name == 'LABELS' else t) for t in range(times)])
        vdims = dims
        if lon_first:
            value = np.swapaxes(value, -1, -2)
            vdims = dims[:-2] + ('lon', 'lat')
        f.createVariable(name, kind, vdims)[:] = value
    for name, (kind, vdims, value, attrs) in (extra or {}).items():
        var = f.createVariable(name, kind, vdims)
        var[:] = value
        for key, attr in attrs.items():
            setattr(var, key, attr)
    f.close()
    return path


def pixel_lonlat(sampling):
    lon, lat = xyz_to_lonlat(sampling.pos)
    return lon, lat


def test_netcdf_bilinear_accuracy(tmp_path, small):
    sampling = icosahedral(4)
    path = write_grid(tmp_path / 'grid.nc')
    x, y, names = load_netcdf(path, sampling, variables=['A', 'B'], label_variable='LABELS',
                              engine='scipy')
    assert names == ('A', 'B')
    assert x.shape == (1, sampling.num_nodes, 2) and x.dtype == torch.float32
    assert y.shape == (1, sampling.num_nodes) and y.dtype == torch.long
    lon, lat = pixel_lonlat(sampling)
    inner = np.abs(np.degrees(lat)) < 89.5
    # Bilinear error <= h^2/8 (|f_lonlon| + |f_latlat|), h = 1 degree: 1e-4 for
    # A (second derivatives <= 1.1), 1.4e-2 for B (270 + 90).
    err_a = np.abs(x[0, :, 0].numpy() - field_a(lon, lat))
    err_b = np.abs(x[0, :, 1].numpy() - field_b(lon, lat))
    assert err_a[inner].max() < 1e-4
    assert err_b[inner].max() < 2e-2
    # Beyond the outermost rows the value is that of the row: error ~ 0.5 degree.
    assert err_a.max() < 1e-2
    # Nearest-node labels: exact away from the class borders.
    lon_deg, lat_deg = np.mod(np.degrees(lon), 360), np.degrees(lat)
    far = (np.abs(lat_deg - 20) > 1) & (np.abs(lon_deg - 100) > 1) & (np.abs(lon_deg - 200) > 1)
    assert (y[0].numpy()[far] == labels_of(lon, lat)[far]).all()
    assert set(y.unique().tolist()) == {0, 1, 2}
    # Default variables: everything on the grid but coordinates and labels.
    default = load_netcdf(path, sampling, label_variable='LABELS')
    assert isinstance(default, NetCDFFields)
    assert default.variables == ('A', 'B') and torch.equal(default.x, x)
    assert torch.equal(default.y, y)


def test_netcdf_exact_at_grid_nodes(tmp_path):
    lat = np.array([-60.0, -20.0, 10.0, 45.0])
    lon = np.arange(0.0, 360.0, 30.0)
    path = write_grid(tmp_path / 'coarse.nc', lat=lat, lon=lon)
    LONg, LATg = np.meshgrid(np.radians(lon), np.radians(lat))
    nodes = torch.from_numpy(lonlat_to_xyz(LONg.ravel(), LATg.ravel()))
    x, y, _ = load_netcdf(path, nodes, ['A'], 'LABELS', engine='scipy')
    assert np.allclose(x[0, :, 0].numpy(), field_a(LONg, LATg).ravel(), atol=1e-6)
    assert y[0].tolist() == labels_of(LONg, LATg).ravel().tolist()
    # Midway between two longitudes, across the 330 -> 360 = 0 wrap.
    mid = torch.from_numpy(lonlat_to_xyz(np.radians([345.0]), np.radians([10.0])))
    x, _, _ = load_netcdf(path, mid, ['A'], engine='scipy')
    expected = 0.5 * (field_a(np.radians(330), np.radians(10)) + field_a(0.0, np.radians(10)))
    assert float(x[0, 0, 0]) == pytest.approx(expected, abs=1e-6)


def test_netcdf_layouts_agree(tmp_path, small):
    reference = load_netcdf(write_grid(tmp_path / 'ref.nc'), small, ['A', 'B'], 'LABELS')
    # Longitudes in [-180, 180), descending latitudes, (lon, lat) dim order.
    shifted = np.where(LON >= 180, LON - 360, LON)
    for name, kwargs in (('shift.nc', dict(lon=shifted)), ('desc.nc', dict(lat=LAT[::-1])),
                         ('swap.nc', dict(lon_first=True))):
        path = tmp_path / name
        f_lat, f_lon = kwargs.get('lat', LAT), kwargs.get('lon', LON)
        f = netcdf_file(str(path), 'w')
        f.createDimension('lat', f_lat.size)
        f.createDimension('lon', f_lon.size)
        f.createVariable('lat', 'f8', ('lat',))[:] = f_lat
        f.createVariable('lon', 'f8', ('lon',))[:] = f_lon
        LONg, LATg = np.meshgrid(np.radians(f_lon), np.radians(f_lat))
        for var, fn, kind in (('A', field_a, 'f8'), ('B', field_b, 'f4'),
                              ('LABELS', labels_of, 'i2')):
            value = fn(LONg, LATg)
            dims = ('lat', 'lon')
            if kwargs.get('lon_first'):
                value, dims = value.T, ('lon', 'lat')
            f.createVariable(var, kind, dims)[:] = value
        f.close()
        got = load_netcdf(path, small, ['A', 'B'], 'LABELS')
        assert torch.allclose(got.x, reference.x, atol=2e-5), name
        assert torch.equal(got.y, reference.y), name


def test_netcdf_time(tmp_path, small):
    path = write_grid(tmp_path / 'time.nc', times=3)
    x, y, _ = load_netcdf(path, small, ['A'], 'LABELS')
    assert x.shape == (3, small.num_nodes, 1) and y.shape == (3, small.num_nodes)
    assert torch.allclose(x[2] - x[0], torch.full_like(x[0], 2.0), atol=1e-5)
    one, _, _ = load_netcdf(path, small, ['A'], time=1)
    assert one.shape == (1, small.num_nodes, 1) and torch.equal(one[0], x[1])
    picked, _, _ = load_netcdf(path, small, ['A'], time=[2, 0])
    assert torch.equal(picked, x[[2, 0]])
    sliced, _, _ = load_netcdf(path, small, ['A'], time=slice(1, None))
    assert torch.equal(sliced, x[1:])


def test_netcdf_xarray_engine_agrees(tmp_path, small):
    pytest.importorskip('xarray')
    path = write_grid(tmp_path / 'grid.nc', times=2)
    a = load_netcdf(path, small, ['A', 'B'], 'LABELS', engine='scipy')
    b = load_netcdf(path, small, ['A', 'B'], 'LABELS', engine='xarray')
    assert torch.allclose(a.x, b.x) and torch.equal(a.y, b.y)


def test_netcdf_errors(tmp_path, small, monkeypatch):
    assert NETCDF_ENGINES == ('auto', 'xarray', 'scipy')
    path = write_grid(tmp_path / 'grid.nc', extra={
        'HOLES': ('f4', ('lat', 'lon'), np.zeros((LAT.size, LON.size)),
                  {'_FillValue': np.float32(0.0)}),
        'FRACTIONAL': ('f4', ('lat', 'lon'), np.full((LAT.size, LON.size), 0.5), {}),
    })
    with pytest.raises(FileNotFoundError, match='No netCDF file'):
        load_netcdf(tmp_path / 'missing.nc', small)
    with pytest.raises(ValueError, match=r"variable 'TMQ' \(found: .*A\['lat', 'lon'\]"):
        load_netcdf(path, small, ['A', 'TMQ'])
    with pytest.raises(ValueError, match="'HOLES' to be finite, but 64800 of"):
        load_netcdf(path, small, ['HOLES'])
    with pytest.raises(ValueError, match="label variable 'FRACTIONAL' to hold integers"):
        load_netcdf(path, small, ['A'], 'FRACTIONAL')
    with pytest.raises(ValueError, match="'time' to be None for a file without a time"):
        load_netcdf(path, small, ['A'], time=0)
    with pytest.raises(ValueError, match=r"'engine' to be one of \('auto', 'xarray', 'scipy'\)"):
        load_netcdf(path, small, engine='netcdf4')
    with pytest.raises(ValueError, match="'variables' to be a non-empty sequence"):
        load_netcdf(path, small, 'A')
    with pytest.raises(ValueError, match="'sampling'"):
        load_netcdf(path, 'ico5')
    timed = write_grid(tmp_path / 'time.nc', times=2)
    with pytest.raises(ValueError, match=r"'time' to be an index in \[-2, 1\] \(got 5\)"):
        load_netcdf(timed, small, ['A'], time=5)
    with pytest.raises(ValueError, match="'time' to be a non-empty list"):
        load_netcdf(timed, small, ['A'], time=[0, 7])
    # No latitude coordinate.
    nolat = tmp_path / 'nolat.nc'
    f = netcdf_file(str(nolat), 'w')
    f.createDimension('y', 3)
    f.createDimension('lon', 4)
    f.createVariable('lon', 'f8', ('lon',))[:] = [0, 90, 180, 270]
    f.createVariable('A', 'f8', ('y', 'lon'))[:] = np.zeros((3, 4))
    f.close()
    with pytest.raises(ValueError, match="latitude coordinate named one of"):
        load_netcdf(nolat, small)
    # A variable with an extra dimension (levels), and a regional grid.
    levels = tmp_path / 'levels.nc'
    f = netcdf_file(str(levels), 'w')
    for dim, size in (('lev', 2), ('lat', 3), ('lon', 4)):
        f.createDimension(dim, size)
    f.createVariable('lat', 'f8', ('lat',))[:] = [-45, 0, 45]
    f.createVariable('lon', 'f8', ('lon',))[:] = [0, 10, 20, 30]
    f.createVariable('T', 'f8', ('lev', 'lat', 'lon'))[:] = np.zeros((2, 3, 4))
    f.createVariable('S', 'f8', ('lat', 'lon'))[:] = np.zeros((3, 4))
    f.close()
    with pytest.raises(ValueError, match=r"variable 'T' to have dims \(lat, lon\)"):
        load_netcdf(levels, small, ['T'])
    with pytest.raises(ValueError, match="to cover all longitudes"):
        load_netcdf(levels, small, ['S'])
    # Not a netCDF3 file.
    junk = tmp_path / 'junk.nc'
    junk.write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0' * 64)
    with pytest.raises(ValueError, match="pip install xarray netCDF4"):
        load_netcdf(junk, small, engine='scipy')
    # xarray asked for but not installed.
    monkeypatch.setitem(sys.modules, 'xarray', None)
    with pytest.raises(ImportError, match="needs xarray: pip install xarray"):
        load_netcdf(path, small, ['A'], engine='xarray')
    assert load_netcdf(path, small, ['A']).x.shape == (1, small.num_nodes, 1)   # auto: scipy
