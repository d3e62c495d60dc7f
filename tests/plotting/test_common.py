"""What every plot shares (pyg_sphere.plotting._common): the file format from
the suffix, and saving through pyg_sphere.utils.atomic_write, seen through
the three functions that save."""
import os

import numpy as np
import pytest

pytest.importorskip('matplotlib')

from matplotlib.figure import Figure  # noqa: E402

from pyg_sphere.plotting import plot_confusion, plot_maps, plot_training_curves  # noqa: E402
from pyg_sphere.samplings import healpix  # noqa: E402
from pyg_sphere.utils.atomic import TMP_MARK  # noqa: E402

ROWS = [{'epoch': 0, 'train_loss': 1.0, 'val_loss': 1.2}]


def savers(data):
    """The three saving plots, each as a function of the path."""
    return {'maps': lambda p: plot_maps([data.pos[:, 0]], data, ['x'], p, resolution=32),
            'confusion': lambda p: plot_confusion(np.eye(2), ['a', 'b'], p),
            'curves': lambda p: plot_training_curves(ROWS, p)}


@pytest.mark.parametrize('name', ['maps', 'confusion', 'curves'])
def test_save_writes_a_temporary_beside_the_file_then_replaces_it(tmp_path, monkeypatch, name):
    path = tmp_path / 'plot.png'
    path.write_bytes(b'old')
    real = Figure.savefig
    seen = []

    def spy(self, fname, **kwargs):
        # while the figure is written, the destination still holds the old file
        seen.append((os.path.dirname(fname.name), os.path.basename(fname.name),
                     path.read_bytes()))
        return real(self, fname, **kwargs)
    monkeypatch.setattr(Figure, 'savefig', spy)
    assert savers(healpix(2))[name](path) == path
    [(folder, temp, during)] = seen
    assert folder == str(tmp_path) and temp.startswith('.plot.png' + TMP_MARK)
    assert during == b'old'
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert os.listdir(tmp_path) == ['plot.png']


@pytest.mark.parametrize('error', [OSError('disk full'), KeyboardInterrupt()])
def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch, error):
    path = tmp_path / 'maps.png'
    path.write_bytes(b'old')

    def broken_savefig(self, fname, **kwargs):
        fname.write(b'partial')
        raise error

    monkeypatch.setattr(Figure, 'savefig', broken_savefig)
    for name, save in savers(healpix(2)).items():
        with pytest.raises(type(error)):
            save(path)
        assert path.read_bytes() == b'old', name
        assert os.listdir(tmp_path) == ['maps.png'], name
    # a new file that fails is not left half-written either
    with pytest.raises(type(error)):
        plot_confusion(np.eye(2), ['a', 'b'], tmp_path / 'new.png')
    assert os.listdir(tmp_path) == ['maps.png']


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        for name, save in savers(healpix(2)).items():
            save(tmp_path / f'{name}.png')
    finally:
        os.umask(old)
    for name in ('maps', 'confusion', 'curves'):
        assert (tmp_path / f'{name}.png').stat().st_mode & 0o777 == 0o640, name


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


