import os
import stat

import numpy as np
import pytest
import torch

from pyg_sphere.utils import (atomic_save, atomic_write, atomic_write_text,
                              remove_stale_temporaries, save_npz)


def test_write_replaces_content(tmp_path):
    path = tmp_path / 'a.txt'
    atomic_write_text(path, 'one')
    atomic_write_text(path, 'two')
    assert path.read_text() == 'two'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt']


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'a.bin'
    atomic_write_text(path, 'old')

    def boom(f):
        f.write(b'half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, boom)
    assert path.read_text() == 'old'
    assert [p.name for p in tmp_path.iterdir()] == ['a.bin']


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / 't.txt', 'x')
        atomic_save({'a': torch.ones(2)}, tmp_path / 'c.pt')
    finally:
        os.umask(old)
    for name in ('t.txt', 'c.pt'):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_remove_stale_temporaries(tmp_path):
    (tmp_path / '.x.npz.tmp-123-abcd').write_bytes(b'')
    (tmp_path / 'keep.npz').write_bytes(b'')
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ['keep.npz']


def test_save_npz_roundtrip(tmp_path):
    save_npz(tmp_path / 'a.npz', x=np.arange(3), y=np.ones(2))
    with np.load(tmp_path / 'a.npz') as f:
        assert f['x'].tolist() == [0, 1, 2] and f['y'].tolist() == [1.0, 1.0]


def test_durable_writes_fsync_and_cache_writes_do_not(tmp_path, monkeypatch):
    import pyg_sphere.utils.atomic as atomic_module
    from pyg_sphere.utils import ArrayCache
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic_module.os, 'fsync', lambda fd: calls.append(fd) or real(fd))
    atomic_module.atomic_write_text(tmp_path / 'a.txt', 'x')  # e.g. checkpoints: durable
    assert len(calls) == 2  # the file, then its folder
    atomic_module.atomic_write_text(tmp_path / 'b.txt', 'x', durable=False)
    assert len(calls) == 2 and (tmp_path / 'b.txt').read_text() == 'x'
    cache = ArrayCache(tmp_path / 'cache')  # checksummed on load: no fsync needed
    with cache.lock():
        cache.store('a', {'k': 1}, np.arange(5))
    assert len(calls) == 2
    assert np.array_equal(cache.load('a', {'k': 1}), np.arange(5))


@pytest.mark.parametrize('array', [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    np.arange(24, dtype=np.int64).reshape(4, 6)[:, ::2],  # not contiguous
    np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    np.array(3.5), np.empty((0, 3), dtype=np.int32), np.zeros(5, dtype=np.float16),
    np.array([(1, 2.0)], dtype=[('a', 'i4'), ('b', 'f8')]),
])
def test_save_npy_sha256_hashes_the_file_it_writes(tmp_path, array):
    from pyg_sphere.utils import sha256_file
    from pyg_sphere.utils.atomic import save_npy_sha256
    path = tmp_path / 'a.npy'
    digest = save_npy_sha256(path, array, durable=False)
    assert digest == sha256_file(path)
    back = np.load(path, allow_pickle=False)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    assert [p.name for p in tmp_path.iterdir()] == ['a.npy']


def test_save_npy_sha256_refuses_objects_and_keeps_the_old_file(tmp_path):
    from pyg_sphere.utils.atomic import save_npy_sha256
    path = tmp_path / 'a.npy'
    save_npy_sha256(path, np.ones(3))
    with pytest.raises(ValueError, match="'array' to hold no Python objects"):
        save_npy_sha256(path, np.array([object()]))
    assert np.array_equal(np.load(path), np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['a.npy']
