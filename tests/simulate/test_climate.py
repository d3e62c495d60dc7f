import sys

import numpy as np
import pytest
import torch
from scipy.io import netcdf_file
from torch_geometric.data import Data

from pyg_sphere.datasets import (CLIMATE_CHANNELS, CLIMATE_CLASSES, TARGET_FRACTIONS,
                                 ClimateEvents, class_weights, generate_climate_fields,
                                 load_netcdf)
from pyg_sphere.datasets import climate as climate_module
from pyg_sphere.samplings import icosahedral, lonlat_to_xyz, xyz_to_lonlat

CH = {name: i for i, name in enumerate(CLIMATE_CHANNELS)}


@pytest.fixture(scope='module')
def ico5():
    return icosahedral(5)


@pytest.fixture(scope='module')
def maps(ico5):
    """20 raw maps at icosahedral level 5 (the sampling of the paper)."""
    dataset = ClimateEvents(ico5, n_maps=20, seed=0, standardize=False)
    X, y = dataset.tensors()
    return dataset, X, y


@pytest.fixture(scope='module')
def small():
    return icosahedral(2)


# -- generator ---------------------------------------------------------------------


def test_constants():
    assert len(CLIMATE_CHANNELS) == 16 and len(set(CLIMATE_CHANNELS)) == 16
    assert CLIMATE_CHANNELS[0] == 'TMQ' and CLIMATE_CHANNELS[-1] == 'ZBOT'
    assert len(CLIMATE_CLASSES) == 3
    assert sum(TARGET_FRACTIONS) == pytest.approx(1.0)


def test_class_fractions_match_paper(maps):
    # Paper: 0.1 % TC, 2.2 % AR. Accepted: TC 0.05-0.2 %, AR 1.5-3 % over 20 maps
    # (measured 0.10 % and 2.19 % over 100 maps).
    dataset, _, y = maps
    fractions = dataset.class_fractions()
    assert fractions.dtype == torch.float64
    assert 0.0005 <= float(fractions[1]) <= 0.002, fractions.tolist()
    assert 0.015 <= float(fractions[2]) <= 0.03, fractions.tolist()
    counts = torch.bincount(y.reshape(-1), minlength=3)
    assert counts.tolist() == (fractions * y.numel()).round().long().tolist()


def test_shapes_and_physical_ranges(maps, ico5):
    _, X, y = maps
    assert X.shape == (20, ico5.num_nodes, 16) and X.dtype == torch.float32
    assert y.shape == (20, ico5.num_nodes) and y.dtype == torch.long
    assert set(y.unique().tolist()) == {0, 1, 2}
    assert bool(torch.isfinite(X).all())
    for name, low, high in (('TMQ', 0, 150), ('PSL', 9e4, 1.08e5), ('TS', 220, 320),
                            ('T500', 220, 285), ('T200', 200, 235), ('QREFHT', 0, 0.04),
                            ('PRECT', 0, 1e-5), ('Z200', 1e4, 1.35e4), ('ZBOT', 40, 80)):
        values = X[..., CH[name]]
        assert low <= float(values.min()) and float(values.max()) <= high, name
    # Warm tropics, cold poles.
    _, lat = xyz_to_lonlat(ico5.pos)
    lat = torch.from_numpy(lat)
    ts = X[..., CH['TS']]
    assert float(ts[:, lat.abs() < 0.3].mean()) > float(ts[:, lat.abs() > 1.2].mean()) + 30


def _band_anomaly(X, lat, name, bins=5.0):
    """Channel minus its median over background-and-events pixels of the same
    latitude band, so that the latitude structure is removed."""
    values = X[..., CH[name]].double()
    band = torch.from_numpy(np.floor(np.degrees(lat) / bins).astype(np.int64))
    out = torch.empty_like(values)
    for b in band.unique():
        sel = band == b
        out[:, sel] = values[:, sel] - values[:, sel].median()
    return out


def test_labels_consistent_with_fields(maps, ico5):
    _, X, y = maps
    _, lat = xyz_to_lonlat(ico5.pos)
    tc, ar, bg = y == 1, y == 2, y == 0
    # Tropical cyclones: low pressure, warm core aloft, strong winds, moist.
    psl = _band_anomaly(X, lat, 'PSL')
    assert float(psl[tc].mean()) < float(psl[bg].mean()) - 1000
    t200 = _band_anomaly(X, lat, 'T200')
    assert float(t200[tc].mean()) > float(t200[bg].mean()) + 1.0
    speed = X[..., CH['UBOT']].hypot(X[..., CH['VBOT']])
    assert float(speed[tc].mean()) > 2 * float(speed[bg].mean())
    # Cyclones sit at low latitudes, rivers reach the mid-latitudes.
    lat_deg = torch.from_numpy(np.degrees(lat)).expand_as(y)
    assert float(lat_deg[tc].abs().max()) < 35
    assert float(lat_deg[ar].abs().mean()) > 20
    # Atmospheric rivers: moist filaments.
    tmq = _band_anomaly(X, lat, 'TMQ')
    assert float(tmq[ar].mean()) > float(tmq[bg].mean()) + 10
    q = _band_anomaly(X, lat, 'QREFHT')
    assert float(q[ar].mean()) > float(q[bg].mean())


def test_cyclones_rotate_cyclonically(maps, ico5):
    # Around the pressure minimum of each labelled cyclone, the angular
    # momentum of the surface wind is counterclockwise in the north.
    _, X, y = maps
    pos = ico5.pos.double()
    lon, lat = xyz_to_lonlat(pos)
    east = torch.from_numpy(np.stack([-np.sin(lon), np.cos(lon), 0 * lon], 1))
    north = torch.from_numpy(np.stack([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon),
                                       np.cos(lat)], 1))
    checked = 0
    for m in range(X.size(0)):
        remaining = (y[m] == 1).clone()
        while bool(remaining.any()):
            idx = remaining.nonzero().view(-1)
            centre_pix = idx[X[m, idx, CH['PSL']].argmin()]
            centre = pos[centre_pix]
            near = idx[(pos[idx] @ centre) > np.cos(np.radians(5))]
            remaining[near] = False
            wind = (X[m, near, CH['UBOT'], None].double() * east[near]
                    + X[m, near, CH['VBOT'], None].double() * north[near])
            spin = (torch.linalg.cross(pos[near] - centre, wind) @ centre).mean()
            assert float(spin) * float(torch.sign(centre[2])) > 0
            checked += 1
    assert checked >= 10


def test_generator_deterministic(small):
    x1, y1 = generate_climate_fields(small, seed=3)
    x2, y2 = generate_climate_fields(small.pos, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = generate_climate_fields(small, seed=4)
    assert not torch.allclose(x1, x3)
    clean, _ = generate_climate_fields(small, seed=3, noise=0.0)
    assert float((x1[:, CH['PSL']] - clean[:, CH['PSL']]).std()) == pytest.approx(80, rel=0.2)


# -- dataset -----------------------------------------------------------------------


def test_dataset_deterministic_per_seed_split_index(small):
    a = ClimateEvents(small, n_maps=3, seed=1, standardize=False)
    b = ClimateEvents(small, n_maps=5, seed=1, standardize=False)
    Xa, ya = a.tensors()
    Xb, yb = b.tensors()
    assert torch.equal(Xa, Xb[:3]) and torch.equal(ya, yb[:3])
    assert not torch.allclose(Xb[0], Xb[1])
    other_seed, _ = ClimateEvents(small, n_maps=3, seed=2, standardize=False).tensors()
    other_split, _ = ClimateEvents(small, 'val', n_maps=3, seed=1, standardize=False).tensors()
    for X in (other_seed, other_split):
        assert not torch.allclose(X[0], Xa[0])


def test_standardization_and_samples(small):
    train = ClimateEvents(small, n_maps=6, seed=0)
    X, y = train.tensors()
    assert X.shape == (6, small.num_nodes, 16) and X.dtype == torch.float32
    flat = X.view(-1, 16).double()
    assert torch.allclose(flat.mean(0), torch.zeros(16, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(flat.std(0), torch.ones(16, dtype=torch.float64), atol=1e-3)
    mean, std = train.channel_stats()
    assert mean.shape == (16,) and std.dtype == torch.float32
    raw, _ = ClimateEvents(small, n_maps=6, seed=0, standardize=False).tensors()
    assert torch.allclose(X, (raw - mean) / std, atol=1e-5)
    assert float(mean[CH['PSL']]) == pytest.approx(1.01e5, rel=0.01)
    # Validation / test use the stats of the training set.
    test = ClimateEvents(small, 'test', n_maps=2, stats=(mean, std))
    assert torch.equal(test.channel_stats()[0], mean)
    Xt, _ = test.tensors()
    Xt_raw, _ = ClimateEvents(small, 'test', n_maps=2, standardize=False).tensors()
    assert torch.allclose(Xt, (Xt_raw - mean) / std, atol=1e-5)
    # Samples are Data objects with the same values; subsets keep them.
    data = train[4]
    assert isinstance(data, Data)
    assert torch.equal(data.x, X[4]) and torch.equal(data.y, y[4])
    assert torch.equal(data.pos, small.pos)
    subset = train[torch.tensor([4, 1])]
    Xs, ys = subset.tensors()
    assert torch.equal(Xs, X[[4, 1]]) and torch.equal(ys, y[[4, 1]])
    assert repr(train) == 'ClimateEvents(6)'


def test_transform_applied(small):
    def double(data):
        data.x = data.x * 2
        return data
    plain = ClimateEvents(small, n_maps=2)
    transformed = ClimateEvents(small, n_maps=2, transform=double)
    assert torch.equal(transformed[1].x, 2 * plain[1].x)


def test_cache(small, tmp_path, monkeypatch):
    first = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    files = list(tmp_path.glob('climate_train_*.npz'))
    assert files == [first.cache_path]
    X1, y1 = first.tensors()

    def fail(*args, **kwargs):
        raise AssertionError('regenerated instead of reading the cache')
    monkeypatch.setattr(climate_module, '_generate', fail)
    second = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    X2, y2 = second.tensors()
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    monkeypatch.undo()
    # Another seed is another file; a corrupt file is regenerated.
    other = ClimateEvents(small, n_maps=3, seed=6, root=str(tmp_path))
    assert other.cache_path != first.cache_path
    first.cache_path.write_bytes(b'garbage')
    again = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    assert torch.equal(again.tensors()[0], X1)


def test_progress_bar(small, capsys):
    ClimateEvents(small, n_maps=2, progress=True)
    assert 'climate maps' in capsys.readouterr().err


@pytest.mark.parametrize('kwargs, match', [
    (dict(sampling=[[1.0, 0.0, 0.0]]), "'sampling' to be a torch_geometric Data"),
    (dict(sampling=Data(num_nodes=3)), "'sampling' to have a 'pos'"),
    (dict(sampling=torch.ones(4, 3)), "unit vectors"),
    (dict(split='training'), r"'split' to be one of \('train', 'val', 'test'\)"),
    (dict(n_maps=0), "'n_maps' to be >= 1 \\(got 0\\)"),
    (dict(seed=-1), "'seed' to be >= 0"),
    (dict(noise=-0.5), "'noise' to be a finite number >= 0"),
    (dict(standardize='yes'), "'standardize' to be a bool"),
    (dict(stats=(torch.zeros(16),)), "'stats' to be a pair"),
    (dict(stats=(torch.zeros(16), torch.zeros(16))), "positive finite stds"),
])
def test_dataset_errors(small, kwargs, match):
    kwargs = {'sampling': small, 'n_maps': 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        ClimateEvents(**kwargs)


def test_generator_errors(small):
    with pytest.raises(ValueError, match="'seed' to be an integer >= 0 or a non-empty"):
        generate_climate_fields(small, seed=[1, -2])
    with pytest.raises(ValueError, match="'seed'"):
        generate_climate_fields(small, seed=1.5)
    with pytest.raises(ValueError, match="'noise'"):
        generate_climate_fields(small, noise=float('nan'))


# -- class weights -----------------------------------------------------------------


def test_class_weights_closed_form():
    y = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 2, 2, 2]])
    # f = (0.6, 0.1, 0.3); 1/f = (5/3, 10, 10/3), sum 15.
    w = class_weights(y)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([1 / 9, 2 / 3, 2 / 9])
    # The paper's fractions give the weights of the published code.
    counts = [round(f * 100000) for f in TARGET_FRACTIONS]
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    assert class_weights(y).tolist() == pytest.approx([0.00102, 0.955, 0.0434], abs=2e-3)
    assert class_weights(torch.tensor([0, 0, 2]), 4).tolist() == pytest.approx(
        [1 / 3, 0, 2 / 3, 0])


def test_class_weights_errors():
    with pytest.raises(ValueError, match="'y' to hold integer labels"):
        class_weights(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"'y' to hold labels in \[0, 2\] \(got 3\)"):
        class_weights(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="at least one label"):
        class_weights(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="'y' to be a torch.Tensor"):
        class_weights([0, 1])
    with pytest.raises(ValueError, match="'num_classes' to be >= 1"):
        class_weights(torch.tensor([0]), 0)


# -- netCDF loader -----------------------------------------------------------------

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
    assert default.variables == ('A', 'B') and torch.equal(default.x, x)


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
