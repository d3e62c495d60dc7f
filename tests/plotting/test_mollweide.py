"""Maps in the Mollweide projection (pyg_sphere.plotting.mollweide): the image
grid against Matplotlib's projection and the exact one, nearest-pixel
resampling, masking, drawing, errors."""
import math
import sys

import healpy as hp
import numpy as np
import pytest
import torch

pytest.importorskip('matplotlib')

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pyg_sphere.plotting import MASK_FACTOR, mollweide  # noqa: E402
from pyg_sphere.plotting._common import _matplotlib  # noqa: E402
from pyg_sphere.plotting.mollweide import (_mollweide_lonlat, _pixel_index,  # noqa: E402
                                           _resample)
from pyg_sphere.samplings import (equiangular, healpix, icosahedral,  # noqa: E402
                                  lonlat_to_xyz, points)


def f_linear(xyz):
    # f = y + z = cos(lat) sin(lon) + sin(lat): depends on lon and lat, and
    # |f(a) - f(b)| <= sqrt(2) |a - b| <= sqrt(2) * angle(a, b).
    return xyz[..., 1] + xyz[..., 2]


def angle(a, b):
    return np.arccos(np.clip((a * b).sum(-1), -1, 1))


# -- the image grid -------------------------------------------------------------

def test_image_grid_is_matplotlib_mollweide():
    # Independent oracle: Matplotlib's own forward projection must send the
    # (lon, lat) of every image point back to that point's axes coordinates.
    width = 64
    lon, lat, inside = _mollweide_lonlat(width)
    assert lon.shape == lat.shape == inside.shape == (32, 64)
    assert np.isnan(lon[~inside]).all() and np.isfinite(lon[inside]).all()
    # the ellipse covers pi / 4 of its bounding box
    assert abs(inside.mean() - math.pi / 4) < 0.02
    ax = Figure().add_subplot(projection='mollweide')
    ll = np.stack([lon[inside], lat[inside]], axis=1)
    uv = ax.transAxes.inverted().transform(ax.transData.transform(ll))
    v, u = np.nonzero(inside)
    expected = np.stack([(u + 0.5) / width, (v + 0.5) / (width // 2)], axis=1)
    # Matplotlib's Newton solve stops early (errors up to ~2e-4 here); a pixel is 1 / 64.
    assert np.allclose(uv, expected, atol=1e-3, rtol=0)
    # Exact forward projection: solve 2 theta + sin(2 theta) = pi sin(lat) by bisection.
    target = np.pi * np.sin(lat[inside])
    lo, hi = np.full_like(target, -np.pi / 2), np.full_like(target, np.pi / 2)
    for _ in range(60):
        mid = (lo + hi) / 2
        low = 2 * mid + np.sin(2 * mid) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    theta = (lo + hi) / 2
    x = 2 * math.sqrt(2) / np.pi * lon[inside] * np.cos(theta)
    y = math.sqrt(2) * np.sin(theta)
    exact = np.stack([0.5 + x / (4 * math.sqrt(2)), 0.5 + y / (2 * math.sqrt(2))], axis=1)
    assert np.allclose(exact, expected, atol=1e-12, rtol=0)
    assert np.abs(lon[inside]).max() <= math.pi and np.abs(lat[inside]).max() <= math.pi / 2


# -- resampling ------------------------------------------------------------------

def cover_radius(pos):
    """Largest angle from a dense set of test points to the nearest pixel (brute force)."""
    rng = np.random.default_rng(0)
    test = rng.normal(size=(4000, 3))
    test /= np.linalg.norm(test, axis=1, keepdims=True)
    return angle(test, pos[np.argmax(test @ pos.T, axis=1)]).max()


@pytest.mark.parametrize('make,kind', [
    (lambda: healpix(8), 'healpix'),
    (lambda: healpix(8, nest=False), 'healpix'),
    (lambda: icosahedral(3), 'kdtree'),
    (lambda: equiangular(24), 'kdtree'),
])
def test_resample_matches_function(make, kind):
    data = make()
    pos = data.pos.double().numpy()
    lon, lat, inside = _mollweide_lonlat(120)
    index = _pixel_index(data, lon, lat)
    assert (index[~inside] == -1).all()
    assert (index[inside] >= 0).all()  # full sky: nothing masked inside the ellipse
    image = _resample(f_linear(pos), index)
    xyz = lonlat_to_xyz(lon[inside], lat[inside])
    picked = pos[index[inside]]
    if kind == 'healpix':
        # the picked pixel is the one containing the point
        tol = hp.max_pixrad(data.sampling['nside'])
    else:
        # the picked pixel is the nearest one (brute force oracle, up to ties)
        nearest = pos[np.argmax(xyz @ pos.T, axis=1)]
        assert np.allclose(angle(xyz, picked), angle(xyz, nearest), atol=1e-9, rtol=0)
        tol = cover_radius(pos) * 1.01
    assert angle(xyz, picked).max() <= tol
    error = np.abs(image[inside] - f_linear(xyz))
    assert error.max() <= math.sqrt(2) * tol
    # and the errors are those of a nearest-pixel map, not of a mirrored one
    assert np.abs(image[inside] - f_linear(xyz * [1, -1, 1])).max() > 0.5


def test_resample_healpix_with_moved_pixels_falls_back_to_positions():
    # A HEALPix descriptor whose pos no longer are the pixel centres (here
    # permuted) must not be resampled through ang2pix.
    data = healpix(4)
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(0))
    data.pos = data.pos[perm]
    pos = data.pos.double().numpy()
    lon, lat, inside = _mollweide_lonlat(60)
    image = _resample(f_linear(pos), _pixel_index(data, lon, lat))
    xyz = lonlat_to_xyz(lon[inside], lat[inside])
    assert np.abs(image[inside] - f_linear(xyz)).max() <= math.sqrt(2) * hp.max_pixrad(4)


def test_partial_healpix_sky_is_masked():
    nside = 8
    full = healpix(nside)
    z = full.pos[:, 2].double()
    cap = torch.nonzero(z > 0.5).flatten()
    data = healpix(nside, indexes=cap)
    lon, lat, inside = _mollweide_lonlat(160)
    index = _pixel_index(data, lon, lat)
    image = _resample(np.ones(data.num_nodes), index)
    margin = hp.max_pixrad(nside)
    zimg = np.sin(lat)
    far_in = inside & (zimg > 0.5 + 2 * margin)
    far_out = inside & (zimg < 0.5 - 2 * margin)
    assert far_in.any() and far_out.any()
    assert (image[far_in] == 1).all()
    assert np.isnan(image[far_out]).all()
    assert np.isnan(image[~inside]).all()
    # the picked entry is the HEALPix pixel data.ipix[index] containing the point
    hit = index >= 0
    pix = hp.ang2pix(nside, np.pi / 2 - lat[hit], np.mod(lon[hit], 2 * np.pi), nest=True)
    assert np.array_equal(data.ipix.numpy()[index[hit]], pix)


def test_sparse_points_are_masked_beyond_reach():
    # Points only in a northern cap: the south stays blank, the cap is filled.
    ico = icosahedral(3).pos.double()
    cap = ico[ico[:, 2] > 0.6]
    data = points(torch.atan2(cap[:, 1], cap[:, 0]), torch.asin(cap[:, 2]), dtype=torch.float64)
    glon, glat, inside = _mollweide_lonlat(160)
    index = _pixel_index(data, glon, glat)
    assert (index[inside & (np.sin(glat) < 0.2)] == -1).all()  # > 2.5 spacings away
    assert (index[inside & (np.sin(glat) > 0.7)] >= 0).all()
    # every kept image point is within MASK_FACTOR spacings (chord) of its pixel
    pos = data.pos.numpy()
    tree_spacing = np.sort(np.linalg.norm(pos[:, None] - pos[None], axis=-1), axis=1)[:, 1]
    reach = MASK_FACTOR * np.median(tree_spacing)
    hit = index >= 0
    xyz = lonlat_to_xyz(glon[hit], glat[hit])
    assert np.linalg.norm(xyz - pos[index[hit]], axis=1).max() <= reach + 1e-12


# -- drawing ---------------------------------------------------------------------

def rendered_rgb(ax, lon, lat):
    """RGB of the rendered figure at (lon, lat) in radians."""
    fig = ax.figure
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    buffer = np.asarray(canvas.buffer_rgba())
    x, y = ax.transData.transform((lon, lat))
    return buffer[buffer.shape[0] - 1 - int(round(y)), int(round(x)), :3]


def test_mollweide_orientation_and_colors():
    # Quadrants: class 2 * north + east. East (y > 0) is drawn right of the
    # centre, north on top, each class in its own tab10 color.
    data = healpix(8)
    values = 2 * (data.pos[:, 2] > 0).long() + (data.pos[:, 1] > 0).long()
    ax = mollweide(values, data, categorical=True, labels=['SW', 'SE', 'NW', 'NE'],
                   cmap='tab10', resolution=200, colorbar=False)
    assert ax.name == 'mollweide'
    tab10 = _matplotlib().colormaps['tab10']
    for k, (lon, lat) in enumerate([(-1.2, -0.5), (1.2, -0.5), (-1.2, 0.5), (1.2, 0.5)]):
        expected = np.round(np.array(tab10(k)[:3]) * 255)
        assert np.abs(rendered_rgb(ax, lon, lat) - expected).max() <= 2, k


def test_mollweide_partial_sky_is_blank_when_drawn():
    data = healpix(8, indexes=torch.arange(64))  # the first base pixel (NESTED)
    ax = mollweide(torch.ones(64), data, resolution=200, colorbar=False)
    image = ax.images[0].get_array()
    assert ax.images[0].origin == 'lower'
    assert image.mask.mean() > 0.8 and (~image.mask).any()
    # far from base pixel 0 (centred on lon 45 deg, lat 41.8 deg) the axes stay white
    assert (rendered_rgb(ax, -2.0, -0.8) == 255).all()


def test_mollweide_categorical_colorbar_and_accepts_numpy_and_ax():
    data = icosahedral(2)
    labels = ['sea', 'land', 'ice']
    values = np.arange(data.num_nodes) % 3
    fig = Figure()
    ax = fig.add_subplot(projection='mollweide')
    out = mollweide(values, data, ax=ax, title='classes', categorical=True, labels=labels,
                    resolution=100)
    assert out is ax
    assert ax.get_title() == 'classes'
    bar_ax = [a for a in fig.axes if a is not ax][0]
    assert [t.get_text() for t in bar_ax.get_xticklabels()] == labels
    assert np.array_equal(np.unique(ax.images[0].get_array().compressed()), [0, 1, 2])


def test_mollweide_vmin_vmax_and_nan_values():
    data = healpix(4)
    values = data.pos[:, 2].clone()
    values[:10] = float('nan')
    values[10:20] = hp.UNSEEN
    ax = mollweide(values, data, vmin=-2.0, vmax=3.0, resolution=64)
    norm = ax.images[0].norm
    assert (norm.vmin, norm.vmax) == (-2.0, 3.0)
    ax = mollweide(values, data, resolution=64)
    norm = ax.images[0].norm
    finite = values[torch.isfinite(values) & (values != hp.UNSEEN)]
    assert math.isclose(norm.vmin, float(finite.min()), rel_tol=1e-6)
    assert math.isclose(norm.vmax, float(finite.max()), rel_tol=1e-6)


# -- bad input -------------------------------------------------------------------

def test_mollweide_errors():
    data = icosahedral(5)
    assert data.num_nodes == 10242
    with pytest.raises(ValueError, match=r"Expected 'values' to have 10242 entries, one per "
                                         r"pixel \(got 100\)"):
        mollweide(np.zeros(100), data)
    small = healpix(1)
    with pytest.raises(ValueError, match=r"Expected 'values' to be 1-D, one value per pixel "
                                         r"\(got shape \(12, 2\)\)"):
        mollweide(np.zeros((12, 2)), small)
    with pytest.raises(ValueError, match=r"Expected 'values' to hold real numbers"):
        mollweide(np.array(['a'] * 12), small)
    with pytest.raises(ValueError, match=r"Expected 'values' to be finite or NaN .* "
                                         r"values\[3\] is inf"):
        mollweide(np.where(np.arange(12) == 3, np.inf, 0.0), small)
    with pytest.raises(ValueError, match=r"Expected 'data' to be a sampling with 'pos'"):
        mollweide(np.zeros(12), object())
    from torch_geometric.data import Data
    with pytest.raises(ValueError, match=r"Expected 'data' to be a sampling with 'pos'"):
        mollweide(np.zeros(12), Data(num_nodes=12))
    with pytest.raises(ValueError, match=r"Expected 'data.pos' to have shape \[n, 3\]"):
        mollweide(np.zeros(12), Data(pos=torch.zeros(12, 2)))
    with pytest.raises(ValueError, match=r"Expected 'ax' to be Matplotlib Axes made with "
                                         r"projection='mollweide' \(got 'rectilinear' axes\)"):
        mollweide(np.zeros(12), small, ax=Figure().add_subplot())
    with pytest.raises(ValueError, match=r"Expected 'resolution' in \[16, 10000\] pixels "
                                         r"\(got 4\)"):
        mollweide(np.zeros(12), small, resolution=4)
    with pytest.raises(ValueError, match=r"Expected 'resolution' to be an integer"):
        mollweide(np.zeros(12), small, resolution=100.0)
    with pytest.raises(ValueError, match=r"Expected 'values' to hold integer class indices "
                                         r"when categorical=True \(got 0.5\)"):
        mollweide(np.full(12, 0.5), small, categorical=True, resolution=16)
    with pytest.raises(ValueError, match=r"Expected 'values' to hold class indices in \[0, 1\] "
                                         r"for 2 classes \(got 2\)"):
        mollweide(np.arange(12) % 3, small, categorical=True, labels=['a', 'b'],
                  resolution=16)
    with pytest.raises(ValueError, match=r"\(got -1\)"):
        mollweide(np.arange(12) - 1, small, categorical=True, resolution=16)
    with pytest.raises(ValueError, match=r"Expected 'labels' to be a non-empty sequence"):
        mollweide(np.zeros(12), small, categorical=True, labels='ab', resolution=16)
    with pytest.raises(ValueError, match=r"Expected categorical=True when 'labels'"):
        mollweide(np.zeros(12), small, labels=['a'], resolution=16)
    with pytest.raises(ValueError, match=r"Expected 'vmin' <= 'vmax' \(got vmin=2, vmax=1\)"):
        mollweide(np.zeros(12), small, vmin=2.0, vmax=1.0, resolution=16)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    with pytest.raises(ImportError, match=r"pip install pyg-sphere\[plot\]"):
        mollweide(np.zeros(12), healpix(1))
