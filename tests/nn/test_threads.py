"""The kernel threads: the workers' CPUs (never the calling thread's, always within
its mask), and the threads of one large block."""
import os
import subprocess
import sys
import threading

import pytest
import torch

from pyg_sphere.nn import SphericalChebBlock, _threads, coarse_threads, kernel_threads
from pyg_sphere.nn._threads import num_participants, run_blocks
from pyg_sphere.samplings import healpix, icosahedral

from .test_models import small_deepsphere, small_unet

linux = pytest.mark.skipif(
    not hasattr(os, 'sched_getaffinity') or len(os.sched_getaffinity(0)) < 2
    or _threads._getcpu() < 0, reason='needs sched_getaffinity, sched_getcpu and 2 CPUs')


def _worker_mask():
    """The affinity of the first kernel worker after a 2-participant call."""
    run_blocks(lambda i, p: None, 4, participants=2)
    return frozenset(os.sched_getaffinity(_threads._workers[0].native_id))


@linux
def test_workers_keep_off_the_callers_cpu(monkeypatch):
    allowed = frozenset(os.sched_getaffinity(0))
    for cpu in (min(allowed), max(allowed), min(allowed)):  # and follows the caller
        monkeypatch.setattr(_threads, '_getcpu', lambda: cpu)
        assert _worker_mask() == allowed - {cpu}
    monkeypatch.undo()
    mask = _worker_mask()  # the real caller's CPU
    assert len(mask) == len(allowed) - 1 and mask < allowed


@linux
def test_workers_stay_in_the_callers_mask():
    allowed = frozenset(os.sched_getaffinity(0))
    one = min(allowed)
    seen = {}

    def caller():  # a thread the user pinned to one CPU
        os.sched_setaffinity(0, {one})
        seen['mask'] = _worker_mask()
        two = {one, max(allowed)}
        os.sched_setaffinity(0, two)
        seen['two'] = _worker_mask()

    t = threading.Thread(target=caller)
    t.start()
    t.join()
    assert seen['mask'] == {one}  # nowhere else to go: share it
    assert len(seen['two']) == 1 and seen['two'] < {one, max(allowed)}
    assert _worker_mask() < allowed  # the main thread's mask again, less its CPU


@linux
def test_separation_can_be_switched_off(monkeypatch):
    allowed = frozenset(os.sched_getaffinity(0))
    monkeypatch.setattr(_threads, 'SEPARATE_CPUS', False)
    assert _worker_mask() == allowed
    monkeypatch.setattr(_threads, 'SEPARATE_CPUS', True)
    assert len(_worker_mask()) == len(allowed) - 1


@pytest.mark.parametrize('value, expected', [('0', 'False'), ('1', 'True'), (None, 'True')])
def test_the_environment_switch(value, expected):
    env = {k: v for k, v in os.environ.items() if k != 'PYG_SPHERE_SEPARATE_CPUS'}
    if value is not None:
        env['PYG_SPHERE_SEPARATE_CPUS'] = value
    out = subprocess.run(
        [sys.executable, '-c', 'from pyg_sphere.nn import _threads; print(_threads.SEPARATE_CPUS)'],
        env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_bad_environment_value_is_named():
    env = dict(os.environ, PYG_SPHERE_SEPARATE_CPUS='yes please')
    out = subprocess.run(
        [sys.executable, '-c', 'from pyg_sphere.nn import _threads'],
        env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert 'PYG_SPHERE_SEPARATE_CPUS' in out.stderr and "'yes please'" in out.stderr


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_one_large_block_runs_on_all_threads_inside_coarse_threads(two_threads):
    seen = []
    record = lambda i, p: seen.append(torch.get_num_threads())  # noqa: E731
    with coarse_threads():
        run_blocks(record, 1, intra_op=True)
        assert torch.get_num_threads() == 1  # the small ops around it
        with kernel_threads(1):
            run_blocks(record, 1, intra_op=True)
    run_blocks(record, 1, intra_op=True)
    run_blocks(record, 2, participants=1, intra_op=True)
    assert seen == [2, 1, 2, 1, 1]
    assert torch.get_num_threads() == 2


def test_blocks_run_single_threaded_on_every_participant(two_threads):
    seen = []
    run_blocks(lambda i, p: seen.append((p, torch.get_num_threads())), 8)
    assert {t for _, t in seen} == {1} and torch.get_num_threads() == 2


@pytest.mark.parametrize('kind', ['deepsphere', 'unet'])
def test_models_run_pytorchs_small_ops_on_one_thread(two_threads, kind):
    model = small_deepsphere(healpix(4)) if kind == 'deepsphere' else small_unet(icosahedral(2))
    seen = []
    first = next(m for m in model.modules() if isinstance(m, SphericalChebBlock))
    first.register_forward_pre_hook(lambda *a: seen.append((torch.get_num_threads(),
                                                            num_participants())))
    x = torch.randn(3, model.num_nodes, 2)
    expected = model(x)
    assert seen == [(1, 2)]  # PyTorch's ops on one thread, the kernels on both
    assert torch.get_num_threads() == 2
    with kernel_threads(1):  # same result, whatever the threads
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
