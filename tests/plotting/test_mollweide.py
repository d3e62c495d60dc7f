import math
import os
import struct
import sys

import healpy as hp
import numpy as np
import pytest
import torch

pytest.importorskip('matplotlib')

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pyg_sphere import plotting  # noqa: E402
from pyg_sphere.plotting import (CURVE_PANELS, MASK_FACTOR, mollweide,  # noqa: E402
                                 plot_confusion, plot_maps, plot_training_curves)
from pyg_sphere.samplings import (equiangular, healpix, icosahedral,  # noqa: E402
                                  lonlat_to_xyz, points)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file, checking its signature."""
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE
    assert raw[12:16] == b'IHDR'
    assert raw[-8:-4] == b'IEND'
    return struct.unpack('>II', raw[16:24])


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
    lon, lat, inside = plotting._mollweide_lonlat(width)
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
    lon, lat, inside = plotting._mollweide_lonlat(120)
    index = plotting._pixel_index(data, lon, lat)
    assert (index[~inside] == -1).all()
    assert (index[inside] >= 0).all()  # full sky: nothing masked inside the ellipse
    image = plotting._resample(f_linear(pos), index)
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
    lon, lat, inside = plotting._mollweide_lonlat(60)
    image = plotting._resample(f_linear(pos), plotting._pixel_index(data, lon, lat))
    xyz = lonlat_to_xyz(lon[inside], lat[inside])
    assert np.abs(image[inside] - f_linear(xyz)).max() <= math.sqrt(2) * hp.max_pixrad(4)


def test_partial_healpix_sky_is_masked():
    nside = 8
    full = healpix(nside)
    z = full.pos[:, 2].double()
    cap = torch.nonzero(z > 0.5).flatten()
    data = healpix(nside, indexes=cap)
    lon, lat, inside = plotting._mollweide_lonlat(160)
    index = plotting._pixel_index(data, lon, lat)
    image = plotting._resample(np.ones(data.num_nodes), index)
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
    glon, glat, inside = plotting._mollweide_lonlat(160)
    index = plotting._pixel_index(data, glon, glat)
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
    tab10 = plotting._matplotlib().colormaps['tab10']
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


# -- files -----------------------------------------------------------------------

def test_plot_maps_writes_png(tmp_path):
    data = icosahedral(2)
    z = data.pos[:, 2]
    labels = (z > 0).long()
    path = tmp_path / 'out' / 'maps.png'  # missing folder is made
    got = plot_maps([z, labels, 1 - labels], data, ['input', 'truth', 'prediction'], path,
                    ncols=2, resolution=80, dpi=50,
                    map_kwargs=[{}, {'categorical': True}, {'categorical': True}])
    assert got == path
    width, height = png_size(path)
    assert width > height > 0  # two columns, two rows of 2:1 maps
    assert sorted(os.listdir(path.parent)) == ['maps.png']
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not a private temp file's 0600
    # an array [m, n] works too, and pdf is chosen by the suffix
    pdf = tmp_path / 'maps.pdf'
    plot_maps(torch.stack([z, -z]), data, None, pdf, resolution=40)
    assert pdf.read_bytes()[:5] == b'%PDF-'


def test_plot_confusion_and_curves_write_png(tmp_path):
    cm = np.array([[5, 1], [2, 7]])
    assert png_size(plot_confusion(cm, ['a', 'b'], tmp_path / 'cm.png'))[0] > 0
    rows = [{'epoch': i, 'train_loss': 1.0 / (i + 1), 'val_loss': 1.1 / (i + 1)}
            for i in range(3)]
    assert png_size(plot_training_curves(rows, str(tmp_path / 'curves.png')))[0] > 0
    assert sorted(os.listdir(tmp_path)) == ['cm.png', 'curves.png']


def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'maps.png'
    path.write_bytes(b'old')

    def broken_savefig(self, fname, **kwargs):
        fname.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(Figure, 'savefig', broken_savefig)
    data = healpix(2)
    with pytest.raises(OSError, match='disk full'):
        plot_maps([data.pos[:, 0]], data, ['x'], path, resolution=32)
    with pytest.raises(OSError, match='disk full'):
        plot_confusion(np.eye(2), ['a', 'b'], path)
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['maps.png']


def test_invalid_format_and_unwritable_folder_leave_nothing(tmp_path):
    data = healpix(2)
    with pytest.raises(ValueError, match=r"Expected 'path' to end in one of .*'\.png'.* "
                                         r"\(got 'maps\.xyz'\)"):
        plot_maps([data.pos[:, 0]], data, None, tmp_path / 'maps.xyz')
    with pytest.raises(ValueError, match=r"Expected 'path' to end in one of"):
        plot_training_curves([{'epoch': 0, 'val_loss': 1.0}], tmp_path / 'noformat')
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    with pytest.raises(OSError):
        plot_maps([data.pos[:, 0]], data, None, blocker / 'maps.png', resolution=32)
    assert os.listdir(tmp_path) == ['file']


# -- confusion and curves into given axes ----------------------------------------

def test_plot_confusion_into_axes():
    ax = Figure().add_subplot()
    cm = torch.tensor([[3, 0, 1], [0, 4, 0], [2, 0, 5]])
    assert plot_confusion(cm, ['a', 'b', 'c'], ax, title='test') is ax
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.flatten().tolist()]
    assert [t.get_text() for t in ax.get_yticklabels()] == ['a', 'b', 'c']
    assert ax.get_title() == 'test'
    ax = Figure().add_subplot()
    plot_confusion(cm, ['a', 'b', 'c'], ax, normalize=True)
    assert [t.get_text() for t in ax.texts][:3] == ['0.75', '0.00', '0.25']


def test_plot_training_curves_plots_what_is_present():
    rows = [{'epoch': e, 'train_loss': 2.0 - e, 'val_loss': 2.5 - e,
             'train_accuracy': 0.5 + e / 10, 'val_accuracy': 0.4 + e / 10,
             'val_score': None if e % 2 else 0.1 * e} for e in range(4)]
    fig = Figure()
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    assert plot_training_curves(rows, axes) == axes
    assert [[line.get_label() for line in ax.lines] for ax in axes] == [
        ['train loss', 'val loss'], ['train accuracy', 'val accuracy'], ['val score']]
    assert axes[2].lines[0].get_xdata().tolist() == [0.0, 2.0]  # None skipped
    assert axes[2].lines[0].get_ydata().tolist() == [0.0, 0.2]
    assert [ax.get_ylabel() for ax in axes] == [label for label, _ in CURVE_PANELS]
    # only losses: one panel; a single Axes with several panels gets a twin axis
    only_loss = [{'epoch': r['epoch'], 'val_loss': r['val_loss']} for r in rows]
    ax = Figure().add_subplot()
    assert plot_training_curves(only_loss, ax) == [ax]
    assert ax.lines[0].get_ydata().tolist() == [2.5, 1.5, 0.5, -0.5]
    ax = Figure().add_subplot()
    left, right = plot_training_curves(rows, ax)
    assert left is ax and len(left.lines) == 2 and len(right.lines) == 3
    assert right.get_ylabel() == 'accuracy / score'


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


def test_plot_maps_errors(tmp_path):
    data = healpix(1)
    z = data.pos[:, 2]
    path = tmp_path / 'm.png'
    with pytest.raises(ValueError, match=r"Expected 'maps' to hold at least one map"):
        plot_maps([], data, None, path)
    with pytest.raises(ValueError, match=r"Expected 'maps' to be a sequence of maps or an "
                                         r"array \[m, n\] \(got shape \(12,\)\)"):
        plot_maps(z, data, None, path)
    with pytest.raises(ValueError, match=r"Expected 'maps\[1\]' to have 12 entries, one per "
                                         r"pixel \(got 5\)"):
        plot_maps([z, z[:5]], data, None, path)
    with pytest.raises(ValueError, match=r"Expected 'titles' to hold 2 titles, one per map "
                                         r"\(got 1\)"):
        plot_maps([z, z], data, ['a'], path)
    with pytest.raises(ValueError, match=r"Expected 'data' to be one sampling or 2 samplings"):
        plot_maps([z, z], [data, data, data], None, path)
    with pytest.raises(ValueError, match=r"Expected 'map_kwargs' to hold 2 dicts"):
        plot_maps([z, z], data, None, path, map_kwargs=[{}])
    with pytest.raises(ValueError, match=r"Expected 'ncols' to be a positive integer"):
        plot_maps([z], data, None, path, ncols=0)
    with pytest.raises(ValueError, match=r"Expected map arguments among .* \(got 'colour'\)"):
        plot_maps([z], data, None, path, colour='red')
    with pytest.raises(ValueError, match=r"Expected 'path' to be a file path"):
        plot_maps([z], data, None, 3)
    assert os.listdir(tmp_path) == []


def test_plot_confusion_and_curves_errors(tmp_path):
    with pytest.raises(ValueError, match=r"Expected 'confusion' to be a square matrix \[C, C\] "
                                         r"\(got shape \(2, 3\)\)"):
        plot_confusion(np.zeros((2, 3)), ['a', 'b'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'confusion' to hold finite non-negative"):
        plot_confusion(-np.eye(2), ['a', 'b'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'class_names' to hold 2 names, one per "
                                         r"class \(got 3\)"):
        plot_confusion(np.eye(2), ['a', 'b', 'c'], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to be a file path or "
                                         r"Matplotlib Axes"):
        plot_confusion(np.eye(2), ['a', 'b'], 5)
    rows = [{'epoch': 0, 'train_loss': 1.0, 'train_accuracy': 0.5}]
    with pytest.raises(ValueError, match=r"Expected 'rows' to be a non-empty sequence"):
        plot_training_curves([], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected every row to be a dict with an 'epoch' "
                                         r"key .* at rows\[0\]"):
        plot_training_curves([{'loss': 1.0}], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected the rows to hold at least one of "
                                         r"\['train_loss'.*\(got keys \['epoch', 'lr'\]\)"):
        plot_training_curves([{'epoch': 0, 'lr': 0.1}], tmp_path / 'c.png')
    with pytest.raises(ValueError, match=r"Expected rows\[...\]\['val_loss'\] to be a number "
                                         r"or None \(got 'x' at epoch 0\)"):
        plot_training_curves([{'epoch': 0, 'val_loss': 'x'}], tmp_path / 'c.png')
    fig = Figure()
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to hold 2 Axes, one per "
                                         r"panel \('loss', 'accuracy'\) \(got 3\)"):
        plot_training_curves(rows, [fig.add_subplot(1, 3, i + 1) for i in range(3)])
    with pytest.raises(ValueError, match=r"Expected 'path_or_ax' to be a file path, "
                                         r"Matplotlib Axes or a sequence of Axes"):
        plot_training_curves(rows, None)
    assert os.listdir(tmp_path) == []


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    data = healpix(1)
    with pytest.raises(ImportError, match=r"pip install pyg-sphere\[plot\]"):
        mollweide(np.zeros(12), data)
    with pytest.raises(ImportError, match=r"pip install pyg-sphere\[plot\]"):
        plot_training_curves([{'epoch': 0, 'val_loss': 1.0}], 'x.png')
