import json
import multiprocessing

import numpy as np
import pytest

from pyg_sphere.utils import ArrayCache, params_key


def _build_counter(calls):
    def build():
        calls.append(1)
        return {'x': np.arange(5.0), 'y': np.arange(5) % 2}
    return build


def test_params_key_ignores_key_order():
    assert params_key({'a': 1, 'b': [1, 2]}) == params_key({'b': (1, 2), 'a': 1})
    assert params_key({'a': 1}) != params_key({'a': 2})


def test_get_or_build_reuses_a_valid_entry(tmp_path):
    cache, calls = ArrayCache(tmp_path), []
    a = cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    b = cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    assert len(calls) == 1
    assert b['x'].tolist() == a['x'].tolist()
    # another setting is another entry, side by side
    cache.get_or_build('e', {'n': 6}, _build_counter(calls))
    assert len(calls) == 2
    assert len(list(tmp_path.glob('e-*.npz'))) == 2


@pytest.mark.parametrize('damage', ['truncate', 'empty', 'garbage', 'flip', 'delete',
                                    'manifest'])
def test_damaged_entries_are_rebuilt(tmp_path, damage):
    cache, calls = ArrayCache(tmp_path), []
    cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    data, manifest = cache.paths('e', {'n': 5}, single=False)
    raw = data.read_bytes()
    if damage == 'truncate':
        data.write_bytes(raw[:len(raw) // 2])
    elif damage == 'empty':
        data.write_bytes(b'')
    elif damage == 'garbage':
        data.write_bytes(b'x' * len(raw))
    elif damage == 'flip':  # same size, one byte changed: only the checksum sees it
        data.write_bytes(raw[:-10] + bytes([raw[-10] ^ 1]) + raw[-9:])
    elif damage == 'delete':
        data.unlink()
    else:
        manifest.write_text('{not json')
    assert cache.load('e', {'n': 5}, single=False) is None
    out = cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    assert len(calls) == 2
    assert out['x'].tolist() == [0, 1, 2, 3, 4]
    assert cache.load('e', {'n': 5}, single=False) is not None


def test_check_refuses_a_wrong_shape(tmp_path):
    cache, calls = ArrayCache(tmp_path), []
    cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    ok = cache.load('e', {'n': 5}, single=False, check=lambda a: a['x'].shape == (5,))
    assert ok is not None
    assert cache.load('e', {'n': 5}, single=False,
                      check=lambda a: a['x'].shape == (6,)) is None


def test_manifest_records_params_and_checksum(tmp_path):
    cache = ArrayCache(tmp_path)
    cache.get_or_build('single', {'n': (1, 2)}, lambda: np.zeros(3), info={'seconds': 1})
    data, manifest = cache.paths('single', {'n': (1, 2)})
    m = json.loads(manifest.read_text())
    assert m['params'] == {'n': [1, 2]} and m['bytes'] == data.stat().st_size
    assert m['info'] == {'seconds': 1} and len(m['sha256']) == 64
    assert cache.load('single', {'n': [1, 2]}, mmap=True).tolist() == [0.0, 0.0, 0.0]


def test_interrupted_build_leaves_nothing(tmp_path):
    cache = ArrayCache(tmp_path)

    def build():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build('e', {'n': 1}, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.lock']


def _child(root, queue):
    cache = ArrayCache(root)
    calls = []
    cache.get_or_build('e', {'n': 5}, _build_counter(calls))
    queue.put(len(calls))


def test_two_processes_build_once(tmp_path):
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(queue.get(timeout=5) for _ in procs) == [0, 1]
