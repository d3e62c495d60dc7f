"""Every task, run twice with one seed, gives the same numbers; an interrupted
and resumed run ends where an uninterrupted one does; --resume checks."""
import json

import pytest
import torch

from pyg_sphere import cli
from pyg_sphere.training import loop

TASK_ARGS = {
    'cosmology': ['--nside', '64', '--n-maps', '5', '--patch-order', '1', '--noise-std',
                  '0.001', '--epochs', '3', '--batch-size', '8', '--workers', '1'],
    # (undeformed: no mesh refinement, so the 24 classes stay cheap; deformed runs in
    # test_shapes_climate_cli)
    'shapes': ['--nside', '4', '--n-maps', '4', '--epochs', '3', '--batch-size', '8',
               '--deform', '0', '--surface-noise', '0'],
    'climate': ['--subdivisions', '2', '--n-maps', '8', '--epochs', '3', '--batch-size', '4'],
}


def args(task, tmp_path, out, *extra):
    return ['train', task, '--out', str(tmp_path / out), '--data-root', str(tmp_path / 'data'),
            '--no-progress', *TASK_ARGS[task], *extra]


def numbers(run):
    """What a run reports, without wall times."""
    summary = json.loads((run / 'summary.json').read_text())
    for key in ('seconds', 'plots'):
        summary.pop(key, None)
    metrics = [{k: v for k, v in json.loads(line).items() if k != 'seconds'}
               for line in (run / 'metrics.jsonl').read_text().splitlines()]
    return summary, metrics


def assert_same_weights(a, b):
    wa = torch.load(a / 'last.pt', weights_only=False)['model']
    wb = torch.load(b / 'last.pt', weights_only=False)['model']
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize('task', list(TASK_ARGS))
def test_seeded_rerun_reports_the_same_numbers(task, tmp_path, fakes):
    assert cli.main(args(task, tmp_path, 'a')) == 0
    assert cli.main(args(task, tmp_path, 'b')) == 0  # data now from the cache
    a, b = numbers(tmp_path / 'a'), numbers(tmp_path / 'b')
    assert a == b
    assert len(a[1]) == 3 and a[0]['test']['loss'] > 0
    assert_same_weights(tmp_path / 'a', tmp_path / 'b')
    assert cli.main(args(task, tmp_path, 'c', '--seed', '1')) == 0
    assert numbers(tmp_path / 'c')[1] != a[1]  # the seed matters


@pytest.mark.parametrize('task', list(TASK_ARGS))
def test_resumed_run_equals_an_uninterrupted_one(task, tmp_path, fakes, monkeypatch):
    assert cli.main(args(task, tmp_path, 'full')) == 0
    real = loop._epoch_order

    def crash_at_third_epoch(n, seed, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(n, seed, epoch)

    monkeypatch.setattr(loop, '_epoch_order', crash_at_third_epoch)
    assert cli.main(args(task, tmp_path, 'cut')) == 130  # interrupted: one line, no traceback
    assert not (tmp_path / 'cut' / 'summary.json').exists()
    monkeypatch.setattr(loop, '_epoch_order', real)
    assert cli.main(args(task, tmp_path, 'cut', '--resume')) == 0
    assert_same_weights(tmp_path / 'full', tmp_path / 'cut')
    full, cut = numbers(tmp_path / 'full'), numbers(tmp_path / 'cut')
    assert cut[0]['test'] == full[0]['test']
    assert [m['epoch'] for m in cut[1]] == [1, 2, 3]


def test_resume_checks(tmp_path, fakes, capsys):
    assert cli.main(args('shapes', tmp_path, 'run')) == 0
    run = tmp_path / 'run'
    capsys.readouterr()
    # a finished run: nothing is retrained, re-scored or rewritten
    before = (run / 'summary.json').read_bytes(), (run / 'summary.json').stat().st_mtime_ns
    assert cli.main(args('shapes', tmp_path, 'run', '--resume')) == 0
    out = capsys.readouterr().out
    assert 'holds a finished run' in out and 'DeepSphere' in out
    assert ((run / 'summary.json').read_bytes(),
            (run / 'summary.json').stat().st_mtime_ns) == before
    # the option that differs is named, with both values
    assert cli.main(args('shapes', tmp_path, 'run', '--resume', '--lr', '0.1')) == 2
    err = capsys.readouterr().err
    assert 'train.lr (0.002 -> 0.1)' in err and len(err.strip().splitlines()) == 1
    # a run directory of another task
    assert cli.main(args('climate', tmp_path, 'run', '--resume')) == 2
    assert 'holds a run of the shapes task' in capsys.readouterr().err
    # without --resume, an existing run is never overwritten
    assert cli.main(args('shapes', tmp_path, 'run')) == 2
    assert '--resume' in capsys.readouterr().err


def test_the_run_is_a_python_function(tmp_path):
    from pyg_sphere.tasks import RunConfig, ShapesData, evaluate, train
    from pyg_sphere.training import TrainConfig
    config = RunConfig('shapes', TrainConfig(epochs=2, batch_size=8),
                       ShapesData('healpix', 4, n_per_class=4, classes=('box', 'cup', 'mug')),
                       data_root=str(tmp_path / 'd'))
    lines = []
    summary = train(config, tmp_path / 'run', log=lines.append)
    assert lines[0].startswith('[1/3] data: shapes')
    assert summary['baselines']['trained_networks'] == ['dense_readout']
    assert evaluate(tmp_path / 'run')['test']['accuracy'] == summary['test']['accuracy']
    # the cache layout is DATA_ROOT/TASK/{raw,processed}
    assert sorted(p.name for p in (tmp_path / 'd').iterdir()) == ['shapes']
    assert sorted(p.name for p in (tmp_path / 'd' / 'shapes').iterdir()) == ['processed',
                                                                            'raw']
