"""The kernel workers' CPUs: never the calling thread's, always within its mask."""
import os
import subprocess
import sys
import threading

import pytest

from pyg_sphere.nn import _threads
from pyg_sphere.nn._threads import run_blocks

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
