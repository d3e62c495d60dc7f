"""Smoke runs of the shapes and climate tasks on tiny settings, their predict
commands, and the command line under torchrun."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyg_sphere import cli


def climate_args(tmp_path, out='run', *extra):
    return ['train', 'climate', '--out', str(tmp_path / out), '--data-root',
            str(tmp_path / 'data'), '--subdivisions', '2', '--n-maps', '8', '--epochs', '2',
            '--batch-size', '4', '--no-progress', *extra]


def shapes_args(tmp_path, out='run', *extra):
    return ['train', 'shapes', '--out', str(tmp_path / out), '--data-root',
            str(tmp_path / 'data'), '--nside', '4', '--n-maps', '4', '--epochs', '2',
            '--batch-size', '8', '--no-progress', *extra]


def _write_netcdf(path, with_labels):
    from scipy.io import netcdf_file
    from pyg_sphere.simulate import CLIMATE_CHANNELS
    lat = np.linspace(-89, 89, 30)
    lon = np.arange(0, 360, 6.0)
    with netcdf_file(str(path), 'w') as f:
        f.createDimension('time', 2)
        f.createDimension('lat', lat.size)
        f.createDimension('lon', lon.size)
        f.createVariable('lat', 'f8', ('lat',))[:] = lat
        f.createVariable('lon', 'f8', ('lon',))[:] = lon
        rng = np.random.default_rng(0)
        for name in CLIMATE_CHANNELS:
            f.createVariable(name, 'f4', ('time', 'lat', 'lon'))[:] = \
                rng.standard_normal((2, lat.size, lon.size))
        if with_labels:
            labels = np.zeros((2, lat.size, lon.size), dtype=np.int32)
            labels[:, 10:12, 5:9] = 2
            labels[:, 14, 20] = 1
            f.createVariable('LABELS', 'i4', ('time', 'lat', 'lon'))[:] = labels


def test_climate_train_evaluate_predict(tmp_path, capsys):
    assert cli.main(climate_args(tmp_path)) == 0
    run = tmp_path / 'run'
    for name in ('config.json', 'metrics.jsonl', 'best.pt', 'last.pt', 'summary.json'):
        assert (run / name).exists(), name
    summary = json.loads((run / 'summary.json').read_text())
    for key in ('mean_ap', 'mean_accuracy', 'mean_iou', 'class_accuracy', 'confusion'):
        assert key in summary['test']
    assert np.asarray(summary['test']['confusion']).sum() == 4 * 162
    out = capsys.readouterr().out
    assert 'per-pixel linear baseline' in out and 'U-Net' in out
    assert cli.main(['evaluate', str(run)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated['test']['mean_ap'] == pytest.approx(summary['test']['mean_ap'])

    nc = tmp_path / 'fields.nc'
    _write_netcdf(nc, with_labels=False)
    assert cli.main(['predict', str(run), str(nc), '--output',
                     str(tmp_path / 'nowhere' / 'p.npz')]) == 2
    assert 'no such directory' in capsys.readouterr().err
    assert cli.main(['predict', str(run), str(nc), '--output', str(tmp_path / 'p.npz')]) == 0
    pred = np.load(tmp_path / 'p.npz')
    assert pred['labels'].shape == (2, 162)
    assert pred['probabilities'].shape == (2, 162, 3)
    np.testing.assert_allclose(pred['probabilities'].sum(-1), 1, rtol=1e-5)
    assert list(pred['files']) == [str(nc)] * 2


def test_climate_user_netcdf_data(tmp_path, capsys):
    folder = tmp_path / 'nc'
    folder.mkdir()
    for i in range(3):
        _write_netcdf(folder / f'part{i}.nc', with_labels=True)
    assert cli.main(climate_args(tmp_path, 'user', '--data-dir', str(folder))) == 0
    out = capsys.readouterr().out
    assert '4 train / 1 val / 1 test samples of 162 pixels x 16 channels' in out


def test_shapes_train_predict(tmp_path, capsys):
    assert cli.main(shapes_args(tmp_path)) == 0
    run = tmp_path / 'run'
    summary = json.loads((run / 'summary.json').read_text())
    assert 'test_rotated' in summary and 'accuracy' in summary['test_rotated']
    assert {'channel_statistics', 'channel_statistics_rotated', 'dense_readout',
            'dense_readout_rotated'} <= set(summary['baselines'])
    config = json.loads((run / 'config.json').read_text())
    assert len(config['classes']) == np.asarray(summary['test']['confusion']).shape[0]
    out = capsys.readouterr().out
    assert 'rotated' in out and 'DeepSphere' in out and "SHREC'17 F1 and mAP" in out
    for name in ('channel_statistics', 'dense_readout_rotated'):
        assert 0 <= summary['baselines']['retrieval'][name]['micro_map'] <= 1
    assert 0 <= summary['test_rotated']['retrieval']['macro_f1'] <= 1
    pytest.importorskip('trimesh')
    from pyg_sphere.simulate import generate_shape
    v, f = generate_shape('box', np.random.default_rng(0))
    off = tmp_path / 'box.off'
    off.write_text('OFF\n%d %d 0\n' % (len(v), len(f)) +
                   ''.join('%f %f %f\n' % tuple(p) for p in v) +
                   ''.join('3 %d %d %d\n' % tuple(t) for t in f))
    csv_path = tmp_path / 'pred.csv'
    assert cli.main(['predict', str(run), str(off), '--output', str(csv_path)]) == 0
    rows = [line.split(',') for line in csv_path.read_text().splitlines()]
    assert rows[0][:3] == ['file', 'class', 'name'] and len(rows) == 2
    assert rows[1][2] in config['classes']


def test_shapes_on_a_shrec17_folder(tmp_path, capsys):
    """--data-dir in the SHREC'17 layout: OBJ files by id and the challenge's CSV."""
    pytest.importorskip('trimesh')
    from tests.datasets.test_mesh_folder_shrec17 import shrec_tree
    shrec_tree(tmp_path / 'shrec')
    argv = ['train', 'shapes', '--out', str(tmp_path / 'run'), '--data-root',
            str(tmp_path / 'data'), '--nside', '4', '--epochs', '1', '--batch-size', '2',
            '--no-progress', '--data-dir', str(tmp_path / 'shrec')]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert '3 train / 1 val / 2 test samples of 192 pixels' in out
    config = json.loads((tmp_path / 'run' / 'config.json').read_text())
    assert config['classes'] == ['01', '02']  # the CSV's synset ids
    summary = json.loads((tmp_path / 'run' / 'summary.json').read_text())
    assert set(summary['test']['retrieval']) >= {'micro_f1', 'micro_map', 'macro_f1'}


def test_task_option_errors(tmp_path, capsys):
    cases = [
        (['train', 'climate', '--sampling', 'cubed'], 'supports icosahedral, healpix'),
        (['train', 'climate', '--patch-order', '2'], 'not an option of the climate task'),
        (['train', 'shapes', '--rotate', 'sideways'], "--rotate: expected one of"),
        (['train', 'shapes', '--nside', '12'], 'power of two'),
        (['train', 'shapes', '--data-dir', str(tmp_path / 'nowhere')], 'no such directory'),
        (['train', 'climate', '--k', '0'], '--k'),
        (['train', 'climate', '--device', 'tpu'], '--device'),
        (['predict', str(tmp_path), 'x.nc'], 'not a finished run'),
        (['train', 'cosmology', '--patch-order', '3'], '--patch-order'),
        (['train', 'cosmology', '--rotate', 'so3'], 'not an option of the cosmology task'),
        (['train', 'climate', '--subdivisions', '0'], 'coarsened at least once'),
        (['train', 'climate', '--nside', '0'], 'the icosahedral sampling takes --subdivisions'),
        (['train', 'shapes', '--sampling', 'equiangular', '--nside', '8'],
         'the equiangular sampling takes --nlat'),
        (['train', 'shapes', '--sampling', 'equiangular', '--nlat', '7'], '--nlat: expected'),
        (['train', 'cosmology', '--subdivisions', '3'], 'the healpix sampling takes --nside'),
        (['train', 'shapes', '--data-dir', str(tmp_path / 'empty'), '--data-root',
          str(tmp_path / 'cache')], "--data-dir: Expected 'folder' to hold class folders"),
        (['train', 'shapes', '--deform', '1.5'], "--deform: Expected 'deform' to be >= 0"),
        (['train', 'shapes', '--surface-noise', '0.5'], "--surface-noise: Expected 'noise'"),
        (['train', 'shapes', '--partial', '1'], "--partial: Expected 'partial' to be >= 0"),
        (['train', 'shapes', '--data-dir', str(tmp_path / 'empty'), '--partial', '0.2'],
         '--partial: perturbs the procedural shapes only'),
        (['train', 'climate', '--deform', '0.2'], 'not an option of the climate task'),
        (['train', 'cosmology', '--surface-noise', '0.01'],
         'not an option of the cosmology task'),
    ]
    (tmp_path / 'empty').mkdir()
    for argv, message in cases:
        assert cli.main(argv + ['--out', str(tmp_path / 'x')] if argv[0] == 'train'
                        else argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
    assert not (tmp_path / 'x').exists()


def test_torchrun_two_processes_match_one(tmp_path):
    """``torchrun --nproc_per_node=2 -m pyg_sphere train`` (gloo) ends with the
    weights of a single-process run with the same global batch."""
    assert cli.main(climate_args(tmp_path, 'single', '--k', '6')) == 0
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         '-m', 'pyg_sphere', *climate_args(tmp_path, 'ddp', '--k', '6')],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 processes' in proc.stdout
    single = torch.load(tmp_path / 'single' / 'last.pt', weights_only=False)['model']
    ddp = torch.load(tmp_path / 'ddp' / 'last.pt', weights_only=False)['model']
    for key, value in single.items():
        if key.endswith(('conv.bias', 'norm.running_mean')):
            continue  # see tests/training/test_distributed.py: rounding-driven under Adam
        torch.testing.assert_close(ddp[key], value, rtol=1e-3, atol=1e-4, msg=key)
    s1 = json.loads((tmp_path / 'single' / 'summary.json').read_text())
    s2 = json.loads((tmp_path / 'ddp' / 'summary.json').read_text())
    assert s2['processes'] == 2
    assert s2['test']['mean_ap'] == pytest.approx(s1['test']['mean_ap'], abs=1e-3)
    assert not list((tmp_path / 'ddp').glob('.*.tmp'))


def test_climate_predict_healpix_fits_ring_nested_and_npy_agree(tmp_path, capsys):
    import healpy as hp
    from pyg_sphere.datasets import ClimateEvents
    from pyg_sphere.samplings import healpix
    args = ['train', 'climate', '--sampling', 'healpix', '--nside', '4', '--out',
            str(tmp_path / 'run'), '--data-root', str(tmp_path / 'data'), '--n-maps', '4',
            '--epochs', '1', '--batch-size', '4', '--no-progress']
    assert cli.main(args) == 0
    X, _ = ClimateEvents(healpix(4), 'test', n_maps=1, seed=7, standardize=False).tensors()
    fields = X[0].numpy().astype(np.float64)          # [192, 16], NESTED, physical units
    np.save(tmp_path / 'x.npy', fields)
    hp.write_map(str(tmp_path / 'nest.fits'), list(fields.T), nest=True, dtype=np.float64)
    hp.write_map(str(tmp_path / 'ring.fits'), [hp.reorder(f, n2r=True) for f in fields.T],
                 nest=False, dtype=np.float64)
    out = tmp_path / 'p.npz'
    assert cli.main(['predict', str(tmp_path / 'run'), str(tmp_path / 'x.npy'),
                     str(tmp_path / 'nest.fits'), str(tmp_path / 'ring.fits'),
                     '--output', str(out)]) == 0
    prob = np.load(out)['probabilities']
    assert prob.shape == (3, 192, 3)
    np.testing.assert_allclose(prob[1], prob[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prob[2], prob[0], rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    np.save(tmp_path / 'bad.npy', fields[:, :5])
    assert cli.main(['predict', str(tmp_path / 'run'), str(tmp_path / 'bad.npy')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'expected an array [192, 16]' in err
