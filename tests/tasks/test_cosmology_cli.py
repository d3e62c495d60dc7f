import json
import subprocess
import sys

import healpy as hp
import numpy as np
import pytest
import torch

from pyg_sphere import cli
from pyg_sphere.simulate import lensing
from tests.conftest import fake_map, fake_spectra

NSIDE = 64


def train_args(tmp_path, out='run', *extra):
    return ['train', 'cosmology', '--out', str(tmp_path / out), '--data-root',
            str(tmp_path / 'data'), '--nside', str(NSIDE), '--n-maps', '5', '--patch-order',
            '1', '--noise-std', '0.001', '--epochs', '3', '--batch-size', '8', '--workers',
            '1', '--no-progress', *extra]


def test_train_evaluate_predict(tmp_path, fakes, capsys):
    assert cli.main(train_args(tmp_path)) == 0
    run = tmp_path / 'run'
    for name in ('config.json', 'metrics.jsonl', 'best.pt', 'last.pt', 'summary.json'):
        assert (run / name).exists(), name
    lines = (run / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(line)['epoch'] for line in lines] == [1, 2, 3]
    summary = json.loads((run / 'summary.json').read_text())
    assert set(summary['baselines']) == {'power_spectrum', 'histogram', 'peak_counts',
                                         'combined'}
    out = capsys.readouterr().out
    for name in ('DeepSphere (graph CNN)', 'power spectrum baseline', 'pixel histogram baseline',
                 'peak counts baseline', 'PS + histogram + peaks baseline'):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert line.rstrip().endswith('%'), line
    # the residual spectrum ratio of the fake classes: (0.9002557 / 0.82)^2 in every band
    ratio = summary['spectrum_ratio']['ratio']
    assert ratio == pytest.approx([(0.9002557 / 0.82) ** 2] * 8, rel=1e-9)
    assert 'C1/C0' in out and f'{ratio[0]:6.3f}' in out
    config = json.loads((run / 'config.json').read_text())
    assert config['data']['simulation']['cosmologies'] == [[0.31, 0.82], [0.26, 0.9002557]]
    assert config['data']['augment'] == 'symmetries'
    assert not list(run.glob('.*.tmp'))  # no half-written files left

    assert cli.main(['evaluate', str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics['test']['accuracy'] == pytest.approx(summary['test']['accuracy'])

    # the same map as NESTED .npy, NESTED FITS and RING FITS gives the same prediction
    rng = np.random.default_rng(0)
    nested = rng.standard_normal(12 * NSIDE ** 2) * 0.01
    np.save(tmp_path / 'map.npy', nested)
    hp.write_map(str(tmp_path / 'nest.fits'), nested, nest=True, dtype=np.float64)
    hp.write_map(str(tmp_path / 'ring.fits'), hp.reorder(nested, n2r=True), nest=False,
                 dtype=np.float64)
    csv_path = tmp_path / 'pred.csv'
    assert cli.main(['predict', str(run), str(tmp_path / 'map.npy'), str(tmp_path / 'nest.fits'),
                     str(tmp_path / 'ring.fits'), '--output', str(csv_path)]) == 0
    rows = [line.split(',') for line in csv_path.read_text().splitlines()]
    assert rows[0][:3] == ['file', 'patch', 'class']
    overall = [r for r in rows[1:] if r[1] == 'all']
    assert len(overall) == 3
    assert overall[0][2:] == overall[1][2:] == overall[2][2:]
    assert len(rows) == 1 + 3 * (1 + 12)


def test_resume_gives_the_same_weights(tmp_path, fakes, monkeypatch):
    assert cli.main(train_args(tmp_path, 'full')) == 0
    from pyg_sphere.training import loop as training
    real = training._epoch_order

    def crash_at_third_epoch(n, seed, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(n, seed, epoch)

    monkeypatch.setattr(training, '_epoch_order', crash_at_third_epoch)
    assert cli.main(train_args(tmp_path, 'cut')) == 130  # interrupted: one line, no traceback
    monkeypatch.setattr(training, '_epoch_order', real)
    assert cli.main(train_args(tmp_path, 'cut', '--resume')) == 0
    full = torch.load(tmp_path / 'full' / 'last.pt', weights_only=False)['model']
    cut = torch.load(tmp_path / 'cut' / 'last.pt', weights_only=False)['model']
    assert full.keys() == cut.keys()
    for key in full:
        torch.testing.assert_close(cut[key], full[key], rtol=0, atol=0)
    lines = (tmp_path / 'cut' / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(line)['epoch'] for line in lines] == [1, 2, 3]


def test_existing_run_needs_resume(tmp_path, fakes, capsys):
    assert cli.main(train_args(tmp_path)) == 0
    capsys.readouterr()
    assert cli.main(train_args(tmp_path)) == 2
    assert '--resume' in capsys.readouterr().err
    assert cli.main(train_args(tmp_path, 'run', '--resume', '--lr', '0.1')) == 2
    assert 'differ' in capsys.readouterr().err


@pytest.fixture
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('trained')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lensing, 'compute_spectra', fake_spectra)
        mp.setattr(lensing, 'simulate_map', fake_map)
        assert cli.main(train_args(tmp, 'run', '--epochs', '1')) == 0
    return tmp / 'run'


def test_bad_inputs_give_one_line_errors(tmp_path, trained, capsys):
    capsys.readouterr()
    cases = []
    cases.append((['train', 'weather'], 'unknown task'))
    cases.append((['predict', str(trained), str(tmp_path / 'missing.fits')], 'no such file'))
    wrong = tmp_path / 'wrong.fits'
    hp.write_map(str(wrong), np.zeros(12 * 16 ** 2), nest=True)
    cases.append((['predict', str(trained), str(wrong)], 'nside 16'))
    nan = np.zeros(12 * NSIDE ** 2)
    nan[7] = np.nan
    np.save(tmp_path / 'nan.npy', nan)
    cases.append((['predict', str(trained), str(tmp_path / 'nan.npy')], 'NaN'))
    cases.append((['evaluate', str(tmp_path)], 'not a finished run'))
    cases.append((['train', 'cosmology', '--epochs', '0', '--out', str(tmp_path / 'x')],
                  "'epochs'"))
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
    assert not (tmp_path / 'x' / 'last.pt').exists()


def test_module_entry_point():
    out = subprocess.run([sys.executable, '-m', 'pyg_sphere', 'train', 'weather'],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown task 'weather'" in out.stderr
