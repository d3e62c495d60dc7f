"""The bad-input table of the command line: each case gives one line naming the
option or file, what was expected and what was got, exit status 2, and leaves
no half-written file. (Library-level cases: tests/test_bad_inputs_api.py.)"""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import healpy as hp
import numpy as np
import pytest

from pyg_sphere import cli

COSMO = ['--nside', '64', '--n-maps', '5', '--patch-order', '1', '--epochs', '1',
         '--batch-size', '8', '--workers', '1', '--no-progress']
SHAPES = ['--nside', '4', '--n-maps', '4', '--epochs', '1', '--batch-size', '8',
          '--no-progress']
NPIX = 12 * 64 ** 2


def read_only(path):
    """Make ``path`` unwritable even for root (immutable flag), or skip."""
    if os.geteuid() != 0:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return lambda: path.chmod(stat.S_IRWXU)
    if subprocess.run(['chattr', '+i', str(path)], capture_output=True).returncode:
        pytest.skip('cannot make a folder read-only here (root without chattr)')
    return lambda: subprocess.run(['chattr', '-i', str(path)], check=True)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A finished cosmology run (fake CAMB / GLASS) and a finished shapes run."""
    from pyg_sphere.simulate import lensing
    from tests.conftest import fake_map, fake_spectra
    tmp = tmp_path_factory.mktemp('runs')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PYG_SPHERE_CACHE', str(tmp / 'cache'))
        mp.setattr(lensing, 'compute_spectra', fake_spectra)
        mp.setattr(lensing, 'simulate_map', fake_map)
        assert cli.main(['train', 'cosmology', '--out', str(tmp / 'cosmo'), *COSMO]) == 0
        assert cli.main(['train', 'shapes', '--out', str(tmp / 'shapes'), *SHAPES]) == 0
    return tmp


def files(tmp, runs):
    """Input files of the predict cases, made in ``tmp``."""
    good = np.random.default_rng(0).standard_normal(NPIX) * 0.01
    out = {}
    for name, values in (('nan', np.where(np.arange(NPIX) == 7, np.nan, good)),
                         ('unseen', np.where(np.arange(NPIX) < 3, hp.UNSEEN, good)),
                         ('complex', good + 1j)):
        out[name] = tmp / f'{name}.npy'
        np.save(out[name], values)
    out['wrong_nside'] = tmp / 'small.fits'
    hp.write_map(str(out['wrong_nside']), np.zeros(12 * 16 ** 2), nest=True)
    out['empty'] = tmp / 'empty.fits'
    out['empty'].write_bytes(b'')
    out['garbage'] = tmp / 'garbage.fits'
    out['garbage'].write_text('not a FITS file\n' * 20)
    full = tmp / 'full.fits'
    hp.write_map(str(full), good, nest=True, dtype=np.float64)
    out['truncated'] = tmp / 'truncated.fits'
    out['truncated'].write_bytes(full.read_bytes()[:5000])
    out['mesh'] = tmp / 'shape.xyz'
    out['mesh'].write_text('0 0 0\n')
    return out


def copy_run(runs, tmp, name, damage):
    run = tmp / f'{name}-{damage}'
    shutil.copytree(runs / name, run)
    best, config = run / 'best.pt', run / 'config.json'
    if damage == 'empty best.pt':
        best.write_bytes(b'')
    elif damage == 'truncated best.pt':
        best.write_bytes(best.read_bytes()[:300])
    elif damage == 'garbage best.pt':
        best.write_bytes(os.urandom(2000))
    elif damage == 'garbage config.json':
        config.write_text('{"task": "shapes", "tr')
    elif damage == 'format 9':
        config.write_text(json.dumps(dict(json.loads(config.read_text()), format=9)))
    elif damage == 'edited resolution':
        values = json.loads(config.read_text())
        values['data']['resolution'] = 8
        config.write_text(json.dumps(values))
    return run


#: (id, argv builder(tmp, runs, files) -> argv, regex the error line must match)
CASES = [
    ('unknown task', lambda t, r, f: ['train', 'weather'], r"unknown task 'weather'"),
    ('epochs 0', lambda t, r, f: ['train', 'shapes', '--epochs', '0'],
     r"'epochs' to be >= 1 \(got 0\)"),
    ('batch size 0', lambda t, r, f: ['train', 'shapes', '--batch-size', '0'],
     r"'batch_size' to be >= 1 \(got 0\)"),
    ('negative lr', lambda t, r, f: ['train', 'shapes', '--lr', '-1'],
     r"'lr' to be a positive finite number \(got -1.0\)"),
    ('nan lr', lambda t, r, f: ['train', 'shapes', '--lr', 'nan'],
     r"'lr' to be a positive finite number \(got nan\)"),
    ('k 0', lambda t, r, f: ['train', 'shapes', '--k', '0'], r'--k: expected .* >= 1 \(got 0\)'),
    ('k above the pixels', lambda t, r, f: ['train', 'shapes', *SHAPES, '--k', '5000'],
     r'--k: expected fewer neighbours than the 192 pixels .*\(got 5000\)'),
    ('workers 0', lambda t, r, f: ['train', 'shapes', '--workers', '0'],
     r'--workers: expected >= 1 \(got 0\)'),
    ('device tpu', lambda t, r, f: ['train', 'shapes', '--device', 'tpu'],
     r"--device: expected 'cpu', 'cuda' or 'cuda:N' \(got 'tpu'\)"),
    ('sampling of another task', lambda t, r, f: ['train', 'climate', '--sampling', 'cubed'],
     r"--sampling: the climate task supports icosahedral, healpix \(got 'cubed'\)"),
    ('nside not a power of two', lambda t, r, f: ['train', 'shapes', '--nside', '12'],
     r'--nside: expected a power of two for HEALPix \(got 12\)'),
    ('nside for icosahedral', lambda t, r, f: ['train', 'shapes', '--sampling', 'icosahedral',
                                               '--nside', '4'],
     r'--nside: .* the icosahedral sampling takes --subdivisions \(got --nside 4\)'),
    ('odd nlat', lambda t, r, f: ['train', 'shapes', '--sampling', 'equiangular', '--nlat', '7'],
     r'--nlat: expected an even equiangular nlat >= 4 \(got 7\)'),
    ('subdivisions 9', lambda t, r, f: ['train', 'climate', '--subdivisions', '9'],
     r'--subdivisions: expected icosahedral subdivisions in 0..8 \(got 9\)'),
    ('too few shapes', lambda t, r, f: ['train', 'shapes', '--n-maps', '2'],
     r'--n-maps: expected at least 4 shapes per class \(got 2\)'),
    ('no cosmology maps', lambda t, r, f: ['train', 'cosmology', '--n-maps', '0'],
     r"--n-maps to be >= 1 \(got 0\)"),
    ('patch order 3', lambda t, r, f: ['train', 'cosmology', '--patch-order', '3'],
     r'--patch-order: expected 0 \(full sky\) or a power of two dividing nside 128 \(got 3\)'),
    ('cosmology nside 16', lambda t, r, f: ['train', 'cosmology', '--nside', '16'],
     r'--nside 16 with --patch-order 2: .* needs nside / patch-order >= 64 .*smallest'),
    ('negative noise', lambda t, r, f: ['train', 'cosmology', '--noise-std', '-1'],
     r'--noise-std: expected a finite value >= 0 \(got -1.0\)'),
    ('infinite noise', lambda t, r, f: ['train', 'cosmology', '--noise-std', 'inf'],
     r'--noise-std: expected a finite value >= 0 \(got inf\)'),
    ('bad augmentation', lambda t, r, f: ['train', 'cosmology', '--augment', 'flip'],
     r"--augment: expected one of symmetries, none \(got 'flip'\)"),
    ('full-sky symmetries', lambda t, r, f: ['train', 'cosmology', '--patch-order', '0',
                                             '--augment', 'symmetries'],
     r'--augment symmetries: full-sky maps .* use --augment none'),
    ('augment shapes', lambda t, r, f: ['train', 'shapes', '--augment', 'none'],
     r'--augment: not an option of the shapes task'),
    ('bad rotation', lambda t, r, f: ['train', 'shapes', '--rotate', 'sideways'],
     r"--rotate: expected one of none, z, so3 \(got 'sideways'\)"),
    ('option of another task', lambda t, r, f: ['train', 'climate', '--patch-order', '2'],
     r'--patch-order: not an option of the climate task'),
    ('missing data dir', lambda t, r, f: ['train', 'shapes', '--data-dir', str(t / 'nowhere')],
     r'--data-dir: no such directory: .*nowhere'),
    ('empty data dir', lambda t, r, f: ['train', 'shapes', '--data-dir', str(t)],
     r"--data-dir: Expected 'folder' to hold class folders .*\(got none in"),
    ('out is a file', lambda t, r, f: ['train', 'shapes', *SHAPES, '--out', str(f['empty'])],
     r'--out: .*empty.fits is a file, not a folder'),
    ('out under a file', lambda t, r, f: ['train', 'shapes', *SHAPES, '--out',
                                          str(f['empty'] / 'run')],
     r'--out: .*empty.fits is a file, not a folder \(needed for'),
    ('data root is a file', lambda t, r, f: ['train', 'shapes', *SHAPES, '--data-root',
                                             str(f['empty'])],
     r'--data-root: .*empty.fits is a file, not a folder'),
    ('existing run', lambda t, r, f: ['train', 'shapes', *SHAPES, '--out', str(r / 'shapes')],
     r'already holds a run: pass --resume'),
    ('resume with other options', lambda t, r, f: ['train', 'shapes', *SHAPES, '--out',
                                                   str(r / 'shapes'), '--resume', '--k', '6'],
     r'--resume: the options differ .*: k \(8 -> 6\)'),
    ('resume of another task', lambda t, r, f: ['train', 'climate', '--out', str(r / 'shapes'),
                                                '--resume'],
     r'--resume: .* holds a run of the shapes task, not climate'),
    ('evaluate a non-run', lambda t, r, f: ['evaluate', str(t)],
     r'is not a finished run directory \(no config.json / best.pt\)'),
    ('missing map', lambda t, r, f: ['predict', str(r / 'cosmo'), str(t / 'missing.fits')],
     r'missing.fits: no such file'),
    ('empty FITS', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['empty'])],
     r'empty.fits: cannot read a HEALPix map'),
    ('truncated FITS', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['truncated'])],
     r'truncated.fits: cannot read a HEALPix map'),
    ('garbage FITS', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['garbage'])],
     r'garbage.fits: cannot read a HEALPix map'),
    ('wrong nside', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['wrong_nside'])],
     r'expected maps of nside 64 \(49152 pixels\), got 3072 pixels \(nside 16\)'),
    ('NaN pixel', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['nan'])],
     r'1 of 49152 pixels are NaN or healpy.UNSEEN \(first at NESTED pixel 7\)'),
    ('UNSEEN pixels', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['unseen'])],
     r'3 of 49152 pixels are NaN or healpy.UNSEEN .*--masked skip'),
    ('complex map', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['complex'])],
     r'complex.npy: expected real numbers \(got an array of dtype complex128\)'),
    ('output is a folder', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['nan']),
                                            '--output', str(t)],
     r'--output: .* is a directory; expected a file name'),
    ('output in a missing folder', lambda t, r, f: ['predict', str(r / 'cosmo'), str(f['nan']),
                                                    '--output', str(t / 'no' / 'p.csv')],
     r'--output: no such directory: .*no'),
    ('masked skip for shapes', lambda t, r, f: ['predict', str(r / 'shapes'), str(f['mesh']),
                                                '--masked', 'skip'],
     r'--masked skip: only the cosmology task scores partial skies'),
    ('unknown mesh format', lambda t, r, f: ['predict', str(r / 'shapes'), str(f['mesh'])],
     r"shape.xyz: Expected 'path' to have one of the extensions"),
]
DAMAGED = [
    ('empty best.pt', r'best.pt: not a readable checkpoint \(.*\); delete it'),
    ('truncated best.pt', r'best.pt: not a readable checkpoint'),
    ('garbage best.pt', r'best.pt: not a readable checkpoint'),
    ('garbage config.json', r'config.json: not a readable JSON run configuration'),
    ('format 9', r"config.json: a run configuration of format 9; .* reads formats 1 and 2"),
    ('edited resolution', r'best.pt: the weights do not fit the model of .*config.json'),
]


def check_error(capsys, argv, pattern):
    import re
    assert cli.main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith('pyg-sphere: error: ') and re.search(pattern, err), (argv, err)


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, runs, tmp_path, capsys):
    _, argv, pattern = case
    made = files(tmp_path, runs)
    before = sorted(p.relative_to(runs) for p in runs.rglob('*'))
    argv = argv(tmp_path / 'work', runs, made)
    (tmp_path / 'work').mkdir(exist_ok=True)
    if argv[0] == 'train' and '--out' not in argv:
        argv += ['--out', str(tmp_path / 'out')]
    capsys.readouterr()
    check_error(capsys, argv, pattern)
    assert not (tmp_path / 'out').exists()  # nothing made before the error
    assert sorted(p.relative_to(runs) for p in runs.rglob('*')) == before
    assert not [p for p in tmp_path.rglob('*') if '.tmp-' in p.name]


@pytest.mark.parametrize('damage,pattern', DAMAGED, ids=[d[0] for d in DAMAGED])
@pytest.mark.parametrize('command', ['evaluate', 'predict'])
def test_damaged_run_directory(damage, pattern, command, runs, tmp_path, capsys):
    run = copy_run(runs, tmp_path, 'shapes', damage)
    argv = [command, str(run)] + ([str(tmp_path / 'x.off')] if command == 'predict' else [])
    check_error(capsys, argv, pattern)


@pytest.mark.parametrize('where', ['--out', '--data-root', '--output'])
def test_read_only_folders(where, runs, tmp_path, capsys):
    folder = tmp_path / 'ro'
    folder.mkdir()
    undo = read_only(folder)
    try:
        if where == '--output':
            np.save(tmp_path / 'm.npy', np.zeros(NPIX))
            argv = ['predict', str(runs / 'cosmo'), str(tmp_path / 'm.npy'), '--output',
                    str(folder / 'p.csv')]
        else:
            argv = ['train', 'shapes', *SHAPES, '--out', str(tmp_path / 'out'),
                    where, str(folder / 'x')]
        check_error(capsys, argv, rf'{where}: cannot write in .*ro')
        assert list(folder.iterdir()) == []
    finally:
        undo()


def _default_sigint():
    # A shell starting a job in the background (``cmd &``, nohup, some CI runners)
    # leaves SIGINT ignored, and a Python started so never raises KeyboardInterrupt:
    # give the child the disposition of a terminal's foreground job.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(argv, marker, env):
    """Start ``pyg-sphere ARGV``, send SIGINT once ``marker`` is printed; returns the exit
    code and everything the process printed."""
    proc = subprocess.Popen([sys.executable, '-m', 'pyg_sphere', *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)
    seen = ''
    deadline = time.time() + 300
    for line in proc.stdout:
        seen += line
        if marker in line:
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            break
        assert time.time() < deadline, seen
    seen += proc.communicate(timeout=120)[0] or ''
    assert marker in seen, seen
    return proc.returncode, seen


@pytest.mark.slow
@pytest.mark.parametrize('marker', ['[1/3] data', 'epoch   1:'])
def test_interrupted_then_rerun(marker, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               PYG_SPHERE_CACHE=str(tmp_path / 'cache'))
    argv = ['train', 'climate', '--subdivisions', '3', '--n-maps', '40', '--epochs', '3',
            '--batch-size', '4', '--no-progress', '--out', str(tmp_path / 'run')]
    code, seen = _interrupt(argv, marker, env)
    assert code == 130, seen[-4000:]  # the traceback, if it ended in another exception
    assert not [p for p in tmp_path.rglob('*') if '.tmp-' in p.name]
    again = subprocess.run([sys.executable, '-m', 'pyg_sphere', *argv,
                            *(['--resume'] if (tmp_path / 'run' / 'last.pt').exists() else [])],
                           env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['test']['loss'] > 0
    assert not [p for p in tmp_path.rglob('*') if '.tmp-' in p.name]
