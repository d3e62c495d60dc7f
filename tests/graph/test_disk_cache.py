"""The on-disk cache of graphs and pyramids (tests/graph/conftest.py gives
every test its own $PYG_SPHERE_CACHE)."""
import gc
import importlib
import os
import warnings
from pathlib import Path

import pytest
import torch

from pyg_sphere.graph import disk_cache
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import SphereKNNGraph, SpherePyramid
from pyg_sphere.utils import default_cache_dir

knn_module = importlib.import_module('pyg_sphere.transforms.sphere_knn_graph')
pyramid_module = importlib.import_module('pyg_sphere.transforms.sphere_pyramid')


pytestmark = pytest.mark.usefixtures('cache_small_graphs')  # tests/conftest.py


@pytest.fixture
def builds(monkeypatch):
    """Count the graph builds of SphereKNNGraph and SpherePyramid."""
    calls = []
    for module in (knn_module, pyramid_module):
        real = module.sphere_knn_graph
        monkeypatch.setattr(module, 'sphere_knn_graph',
                            lambda *a, _real=real, **kw: calls.append(1) or _real(*a, **kw))
    return calls


def _files(folder):
    return sorted(p.name for p in Path(folder).glob('*') if p.name != '.lock')


def _tensors(data):
    return {key: value.clone() for key, value in data if isinstance(value, torch.Tensor)}


def test_knn_graph_cache_is_bit_identical(builds):
    data = healpix(8)
    first = SphereKNNGraph(k=8)(data.clone())
    assert len(builds) == 1
    folder = default_cache_dir('graphs')
    assert any(name.endswith('.npy') for name in _files(folder))
    second = SphereKNNGraph(k=8)(data.clone())
    assert len(builds) == 1  # loaded, not built
    for key in ('edge_index', 'edge_weight'):
        assert second[key].dtype == first[key].dtype
        assert torch.equal(second[key], first[key])
    assert second.kernel_width == first.kernel_width
    # the loaded tensors are writable and private (copy-on-write maps)
    second.edge_weight.zero_()
    third = SphereKNNGraph(k=8)(data.clone())
    assert torch.equal(third.edge_weight, first.edge_weight)


def test_every_graph_argument_is_in_the_key(builds):
    data = healpix(8)
    SphereKNNGraph(k=8)(data.clone())
    SphereKNNGraph(k=6)(data.clone())
    SphereKNNGraph(k=8, kernel_width=0.01)(data.clone())
    SphereKNNGraph(k=8, distance='chordal')(data.clone())
    rotated = data.clone()
    rotated.pos = rotated.pos[:, [1, 2, 0]]  # same descriptor, other points
    SphereKNNGraph(k=8)(rotated)
    SphereKNNGraph(k=8)(healpix(8, dtype=torch.float64))
    assert len(builds) == 6
    for _ in range(2):  # all of them are now cached
        for t, d in ((SphereKNNGraph(k=6), data), (SphereKNNGraph(k=8), rotated)):
            t(d.clone())
    assert len(builds) == 6


def test_version_and_format_change_rebuild(builds, monkeypatch):
    import pyg_sphere
    data = healpix(8)
    SphereKNNGraph()(data.clone())
    monkeypatch.setattr(pyg_sphere, '__version__', pyg_sphere.__version__ + '+other')
    SphereKNNGraph()(data.clone())
    monkeypatch.setattr(disk_cache, 'GRAPH_FORMAT', disk_cache.GRAPH_FORMAT + 1)
    SphereKNNGraph()(data.clone())
    assert len(builds) == 3


def test_cache_argument_and_environment(builds, tmp_path):
    data = healpix(8)
    SphereKNNGraph(cache=False)(data.clone())
    assert not default_cache_dir('graphs').exists()
    SphereKNNGraph(cache=tmp_path / 'mine')(data.clone())
    SphereKNNGraph(cache=str(tmp_path / 'mine'))(data.clone())
    assert len(builds) == 2 and _files(tmp_path / 'mine')
    assert not default_cache_dir('graphs').exists()
    assert str(default_cache_dir('graphs')).startswith(os.environ['PYG_SPHERE_CACHE'])
    with pytest.raises(ValueError, match="'cache' to be True, False or a folder"):
        SphereKNNGraph(cache='')


def _corrupt(folder, how):
    # the largest array file: the level-0 edge_index
    path = max((p for p in Path(folder).glob('*.npy')), key=lambda p: p.stat().st_size)
    raw = bytearray(path.read_bytes())
    if how == 'truncate':
        raw = raw[:len(raw) // 2]
    elif how == 'edit':
        raw[-3] ^= 0xFF  # same size, one byte changed
    elif how == 'delete':
        path.unlink()
        return
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize('how', ['truncate', 'edit', 'delete'])
def test_damaged_entry_is_detected_and_rebuilt(builds, how):
    t = SpherePyramid(levels=2)
    reference = _tensors(t(healpix(8)))
    built = len(builds)
    SpherePyramid.clear_cache()
    gc.collect()  # no live map of the files we damage
    _corrupt(default_cache_dir('graphs'), how)
    again = t(healpix(8))
    assert len(builds) == 2 * built  # rebuilt
    for key, value in reference.items():
        assert torch.equal(again[key], value), key
    del again
    SpherePyramid.clear_cache()
    t(healpix(8))
    assert len(builds) == 2 * built  # and the repaired entry is used


def test_pyramid_cache_is_bit_identical(builds):
    data = healpix(8)
    t = SpherePyramid(levels=3, k=8)
    first = t(data)
    built = len(builds)
    assert built == 4
    SpherePyramid.clear_cache()  # a new process: only the disk cache is left
    second = SpherePyramid(levels=3, k=8)(data)
    assert len(builds) == built
    assert sorted(first.keys()) == sorted(second.keys())
    for key, value in first:
        got = second[key]
        if isinstance(value, torch.Tensor):
            assert got.dtype == value.dtype and torch.equal(got, value), key
        else:
            assert type(got) is type(value) and got == value, key
    # in-process hits after a disk hit give fresh tensors too
    second.edge_index_1.zero_()
    third = SpherePyramid(levels=3, k=8)(data)
    assert torch.equal(third.edge_index_1, first.edge_index_1)
    # another lambda_max method is another entry
    SpherePyramid(levels=3, k=8, lambda_max_method='eigsh')(data)
    assert len(builds) == 2 * built


@pytest.mark.parametrize('where', ['writer', 'builder'])
def test_interrupted_build_leaves_no_partial_entry(builds, monkeypatch, where):
    import pyg_sphere.utils.cache as cache_module
    real_save, real_knn = cache_module.save_npy_sha256, pyramid_module.sphere_knn_graph
    written = []

    def save(path, array, **kwargs):  # a partial write of the 4th file, then Ctrl-C
        if len(written) == 3:
            real_save(path, array[:1] if array.ndim else array, **kwargs)
            raise KeyboardInterrupt
        written.append(path)
        return real_save(path, array, **kwargs)

    def knn(*args, **kwargs):  # Ctrl-C while building level 2
        if len(builds) == 3:
            raise KeyboardInterrupt
        return real_knn(*args, **kwargs)

    if where == 'writer':
        monkeypatch.setattr(cache_module, 'save_npy_sha256', save)
    else:
        monkeypatch.setattr(pyramid_module, 'sphere_knn_graph', knn)
    with pytest.raises(KeyboardInterrupt):
        SpherePyramid(levels=3)(healpix(8))
    folder = default_cache_dir('graphs')
    names = _files(folder)
    assert names  # some arrays were written
    assert not any('.tmp-' in name for name in names)  # atomic writes
    assert not any('.meta-' in name for name in names)  # no complete entry claimed
    monkeypatch.setattr(cache_module, 'save_npy_sha256', real_save)
    monkeypatch.setattr(pyramid_module, 'sphere_knn_graph', real_knn)
    reference = _tensors(SpherePyramid(levels=3, cache=False)(healpix(8)))
    SpherePyramid.clear_cache()
    got = SpherePyramid(levels=3)(healpix(8))  # rebuilds over the partial files
    for key, value in reference.items():
        assert torch.equal(got[key], value), key
    calls = []
    monkeypatch.setattr(pyramid_module, 'sphere_knn_graph',
                        lambda *a, **kw: calls.append(1) or real_knn(*a, **kw))
    SpherePyramid.clear_cache()
    SpherePyramid(levels=3)(healpix(8))
    assert not calls  # now complete


def test_unwritable_cache_warns_and_still_builds(builds, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        data = SphereKNNGraph(cache=blocker / 'graphs')(healpix(8))
    assert data.edge_index.size(1) > 0
    assert any('could not write the graph cache' in str(w.message) for w in caught)


def test_model_builds_once_then_loads(builds):
    from pyg_sphere.nn import DeepSphere
    torch.manual_seed(0)
    a = DeepSphere(healpix(8), 1, channels=(4, 4), out_channels=2, K=3)
    built = len(builds)
    SpherePyramid.clear_cache()
    torch.manual_seed(0)
    b = DeepSphere(healpix(8), 1, channels=(4, 4), out_channels=2, K=3)
    assert len(builds) == built
    x = torch.randn(2, 768, 1)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_digest_depends_on_dtype_shape_and_values():
    x = torch.arange(6, dtype=torch.float32)
    assert disk_cache.digest(x) == disk_cache.digest(x.clone())
    assert disk_cache.digest(x) != disk_cache.digest(x.view(2, 3))
    assert disk_cache.digest(x) != disk_cache.digest(x.double())
    y = x.clone()
    y[3] = torch.nextafter(y[3], torch.tensor(4.0))  # one ulp
    assert disk_cache.digest(x) != disk_cache.digest(y)
    assert disk_cache.digest(None) is None


def test_grouped_edge_lists_are_stored_packed(builds):
    data = SphereKNNGraph(k=8)(healpix(8).clone())
    names = _files(default_cache_dir('graphs'))
    assert any('edge_index.ptr' in name for name in names)
    assert any('edge_index.col' in name for name in names)
    assert not any(name.startswith('knn_graph.edge_index-') for name in names)
    ptr, col = disk_cache.pack_edges(data.edge_index)
    assert ptr.dtype == torch.int64 and col.dtype == torch.int32
    assert ptr.numel() == data.num_nodes + 1
    assert torch.equal(disk_cache.unpack_edges(ptr, col), data.edge_index)


@pytest.mark.parametrize('expand', ['aten', 'numpy', 'kernel'])
def test_pack_edges_round_trip_and_refusals(monkeypatch, expand):
    if expand != 'aten':
        monkeypatch.setattr(disk_cache, '_CSR_TO_COO', None)
    if expand == 'kernel':
        monkeypatch.setattr(disk_cache, 'UNPACK_KERNEL_EDGES', 0)
    ei = torch.tensor([[0, 0, 2, 2, 2, 5], [1, 7, 0, 3, 3, -4]])
    ptr, col = disk_cache.pack_edges(ei)
    assert ptr.tolist() == [0, 2, 2, 5, 5, 5, 6]  # rows 1, 3 and 4 have no edge
    assert torch.equal(disk_cache.unpack_edges(ptr, col), ei)
    for bad in (ei.flip(1),  # not grouped
                torch.tensor([[-1, 0], [1, 1]]),  # a negative row
                torch.tensor([[0, 1], [1, 2**31]]),  # a column beyond int32
                ei.int(),  # not int64
                torch.empty(2, 0, dtype=torch.long)):
        assert disk_cache.pack_edges(bad) is None
    with pytest.raises(ValueError, match="row pointers from 0 to the 6 columns"):
        disk_cache.unpack_edges(torch.tensor([0, 3, 2, 6]), col)


def test_writer_keeps_other_edge_lists_as_they_are(tmp_path):
    cache = disk_cache.resolve_cache(tmp_path)
    ei = torch.tensor([[3, 1, 2], [0, 0, 1]])  # not grouped by source
    entry = disk_cache.store(cache, 'g', {'a': 1}, {'edge_index': ei, 'empty': ei[:, :0]},
                             {}, edges=('edge_index', 'empty'))
    assert entry.meta['packed'] == []
    got = disk_cache.load(cache, 'g', {'a': 1}).open()
    assert torch.equal(got['edge_index'], ei) and got['empty'].shape == (2, 0)
