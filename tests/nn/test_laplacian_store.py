"""The models' rescaled Laplacians in the on-disk graph cache (every test has
its own $PYG_SPHERE_CACHE, see tests/conftest.py)."""
import gc
import importlib
from pathlib import Path

import pytest
import torch

from pyg_sphere.nn import DeepSphere, SphericalUNet
from pyg_sphere.samplings import healpix
from pyg_sphere.transforms import SpherePyramid
from pyg_sphere.utils import default_cache_dir

conv_module = importlib.import_module('pyg_sphere.nn.conv.spherical_cheb_conv')


pytestmark = pytest.mark.usefixtures('cache_small_graphs')  # tests/conftest.py


@pytest.fixture
def assemblies(monkeypatch):
    """Count the operator builds."""
    calls = []
    real = conv_module.build_scaled_laplacian
    monkeypatch.setattr(conv_module, 'build_scaled_laplacian',
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def _model(**kwargs):
    torch.manual_seed(0)
    return DeepSphere(healpix(8), 1, channels=(4, 4, 4), out_channels=2, K=3, **kwargs).eval()


def _operators(model):
    return {name: conv._cached_laplacian for name, conv in model.named_modules()
            if getattr(conv, '_cached_laplacian', None) is not None}


def _laplacian_files():
    return [p for p in Path(default_cache_dir('graphs')).glob('laplacian.*.npy')]


def _same(a, b):
    assert a.symmetric == b.symmetric and a.num_nodes == b.num_nodes
    for x, y in zip(a[:6], b[:6]):
        assert x.dtype == y.dtype and torch.equal(x, y)


def test_second_model_loads_bit_identical_operators(assemblies):
    a = _model()
    built = len(assemblies)
    assert built == 3  # one per level
    assert _laplacian_files()
    SpherePyramid.clear_cache()  # as in a new process
    b = _model()
    assert len(assemblies) == built  # loaded, not assembled
    ops_a, ops_b = _operators(a), _operators(b)
    assert ops_a.keys() == ops_b.keys()
    for name in ops_a:
        _same(ops_a[name], ops_b[name])
    x = torch.randn(2, 768, 1)
    assert torch.equal(a(x), b(x))
    # loaded operators are private (copy-on-write): training a model does not touch the files
    next(iter(ops_b.values())).value.zero_()
    SpherePyramid.clear_cache()
    c = _model()
    assert torch.equal(a(x), c(x))


def test_normalization_and_dtype_are_in_the_key(assemblies):
    _model()
    built = len(assemblies)
    SpherePyramid.clear_cache()
    torch.set_default_dtype(torch.float64)
    try:
        _model()
    finally:
        torch.set_default_dtype(torch.float32)
    assert len(assemblies) == 2 * built  # float64 operators are other entries
    counts = []
    for _ in range(2):  # the U-Net uses the cache too
        SpherePyramid.clear_cache()
        SphericalUNet(healpix(8), 1, (4, 4, 4), 2, K=3)
        counts.append(len(assemblies))
    assert counts[0] > 2 * built and counts[1] == counts[0]


@pytest.mark.parametrize('how', ['truncate', 'edit', 'delete'])
def test_damaged_operator_is_rebuilt(assemblies, how):
    x = torch.randn(2, 768, 1)
    reference = _model()(x)
    built = len(assemblies)
    SpherePyramid.clear_cache()
    gc.collect()  # no live map of the file we damage
    path = max(_laplacian_files(), key=lambda p: p.stat().st_size)
    raw = bytearray(path.read_bytes())
    if how == 'truncate':
        path.write_bytes(bytes(raw[:len(raw) // 2]))
    elif how == 'edit':
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.unlink()
    assert torch.equal(_model()(x), reference)
    assert len(assemblies) == built + 1  # that level only
    SpherePyramid.clear_cache()
    _model()
    assert len(assemblies) == built + 1  # and the repaired entry is used


def test_caller_pyramid_stays_off_disk(assemblies):
    pyramid = SpherePyramid(levels=3)(healpix(8))  # cached pyramid, but the caller's
    pyramid.edge_weight_1 = pyramid.edge_weight_1 * 2  # ... which they may edit
    torch.manual_seed(0)
    DeepSphere(pyramid, 1, channels=(4, 4, 4), out_channels=2, K=3)
    assert not _laplacian_files()
    off = SpherePyramid(levels=3, cache=False)(healpix(8))
    DeepSphere(off, 1, channels=(4, 4, 4), out_channels=2, K=3)
    assert not _laplacian_files()
