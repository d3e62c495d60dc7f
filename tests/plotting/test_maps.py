"""Figures of several maps saved to files (pyg_sphere.plotting.maps), written
atomically through pyg_sphere.utils.atomic_write."""
import os
import struct

import pytest
import torch

pytest.importorskip('matplotlib')

from pyg_sphere.plotting import plot_maps  # noqa: E402
from pyg_sphere.samplings import healpix, icosahedral  # noqa: E402

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file, checking its signature."""
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE
    assert raw[12:16] == b'IHDR'
    assert raw[-8:-4] == b'IEND'
    return struct.unpack('>II', raw[16:24])


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
