"""CosmologyMaps: splits by map, full-sky samples and NESTED patches, seeded
noise, dense tensors, pre_transform and the processed file (with the
simulator faked by the ``fakes`` fixture)."""
import functools
import re

import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.datasets import SPLITS, CosmologyMaps, split_maps
from pyg_sphere.datasets.cosmology_maps import patch_noise
from pyg_sphere.simulate import CosmologyConfig

NSIDE = 8
NPIX = 12 * NSIDE ** 2
tiny = functools.partial(CosmologyConfig, nside=NSIDE, n_maps=5)  # a tiny setting


def make(root, split='train', **kwargs):
    kwargs.setdefault('config', tiny())
    kwargs.setdefault('noise_std', 0.0)
    kwargs.setdefault('log', False)
    return CosmologyMaps(str(root), split, **kwargs)


def raw_maps(root):
    """The raw maps of the only configuration in ``root/raw``, [2, n_maps, npix]."""
    out = []
    for c in range(2):
        files = [p for p in (root / 'raw').iterdir()
                 if re.fullmatch(rf'maps_c{c}-[0-9a-f]{{16}}\.npy', p.name)]
        assert len(files) == 1
        out.append(np.load(files[0]))
    return np.stack(out)


@pytest.mark.parametrize('kwargs,name', [
    ({'noise_std': -0.1}, 'noise_std'),
    ({'noise_std': float('nan')}, 'noise_std'),
    ({'patch_order': 3}, 'patch_order'),
    ({'patch_order': 16}, 'patch_order'),  # 16 does not divide nside = 8
    ({'patch_order': 0}, 'patch_order'),
    ({'split': 'training'}, 'split'),
    ({'split_fractions': (0.5, 0.5, 0.5)}, 'split_fractions'),
    ({'split_fractions': (0.0, 0.5, 0.5)}, 'split_fractions'),
    ({'config': {'nside': 8}}, 'config'),
    ({'workers': 0}, 'workers'),
])
def test_bad_dataset_arguments_fail_before_generating(tmp_path, fakes, kwargs, name):
    kwargs = {'config': tiny(), **kwargs}
    with pytest.raises(ValueError, match=f"'{name}'"):
        CosmologyMaps(str(tmp_path), **kwargs)
    assert fakes[0].calls == [] and fakes[1].calls == []


def test_split_is_disjoint_deterministic_and_by_map(tmp_path, fakes):
    parts = split_maps(10, seed=3)
    assert [len(parts[s]) for s in SPLITS] == [6, 2, 2]
    assert sorted(np.concatenate([parts[s] for s in SPLITS]).tolist()) == list(range(10))
    again = split_maps(10, seed=3)
    assert all(np.array_equal(parts[s], again[s]) for s in SPLITS)
    assert any(not np.array_equal(parts[s], split_maps(10, seed=4)[s]) for s in SPLITS)

    sets = {}
    for split in SPLITS:
        ds = make(tmp_path, split, patch_order=1)
        sets[split] = {(int(c), int(i)) for c, i in zip(ds.labels, ds.map_indices)}
        assert {c for c, _ in sets[split]} == {0, 1}
        # every patch of a map is in the split of the map
        assert len(ds) == len(sets[split]) * 12
        assert {i for _, i in sets[split]} == set(split_maps(5, 0)[split].tolist())
    assert not sets['train'] & sets['val'] and not sets['train'] & sets['test']
    assert not sets['val'] & sets['test']
    assert len(sets['train'] | sets['val'] | sets['test']) == 10
    assert len(fakes[1].calls) == 10  # generated once for the three splits


def test_default_root_is_the_cosmology_cache(private_cache, fakes):
    ds = CosmologyMaps(config=tiny(n_maps=3), noise_std=0.0, log=False)
    assert ds.root == str(private_cache / 'cosmology')
    assert list((private_cache / 'cosmology' / 'raw').glob('maps_c0-*.npy'))
    assert [p.name for p in (private_cache / 'cosmology' / 'processed').glob('train-*.pt')]


def test_full_sky_samples(tmp_path, fakes):
    ds = make(tmp_path, 'test', patch_order=None)
    assert ds.num_patches == 1 and ds.patch_size == NPIX
    data = ds[0]
    assert data.x.shape == (NPIX, 1) and data.x.dtype == torch.float32
    assert data.y.tolist() == [0]
    assert 'ipix' not in data
    assert data.sampling.name == 'healpix' and data.sampling['nside'] == NSIDE
    assert data.sampling['nest'] is True
    expected = np.stack(hp.pix2vec(NSIDE, np.arange(NPIX), nest=True), axis=1)
    np.testing.assert_allclose(data.pos.double().numpy(), expected, atol=1e-6)
    raw = raw_maps(tmp_path)
    np.testing.assert_array_equal(data.x[:, 0].numpy(), raw[0, int(data.map_index)])
    assert repr(ds) == f'CosmologyMaps({len(ds)})' and len(ds) == 2  # 1 test map per class


def test_patches_are_contiguous_nested_ranges(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=2)
    assert ds.num_patches == 48 and ds.patch_size == 16
    raw = raw_maps(tmp_path)
    for idx in (0, 1, 47, 50, len(ds) - 1):
        data = ds[idx]
        p = int(data.patch)
        assert data.ipix.tolist() == list(range(16 * p, 16 * (p + 1)))
        expected = np.stack(hp.pix2vec(NSIDE, data.ipix.numpy(), nest=True), axis=1)
        np.testing.assert_allclose(data.pos.double().numpy(), expected, atol=1e-6)
        np.testing.assert_array_equal(data.x[:, 0].numpy(),
                                      raw[int(data.y), int(data.map_index), 16 * p:16 * (p + 1)])
        assert torch.equal(data.pos, ds.patch_data(p).pos)
    # the 48 patches of one map tile the sphere: together, all the pixels once
    first = torch.cat([ds[i].ipix for i in range(48)])
    assert sorted(first.tolist()) == list(range(NPIX))
    # order 1 = the 12 base pixels
    base = make(tmp_path, 'train', patch_order=1)
    assert base.num_patches == 12 and base[3].ipix.tolist() == list(range(3 * 64, 4 * 64))
    batch = Batch.from_data_list([ds[0], ds[60]])
    assert batch.x.shape == (32, 1) and batch.y.tolist() == [int(ds[0].y), int(ds[60].y)]
    assert batch.map_index.tolist() == [int(ds[0].map_index), int(ds[60].map_index)]
    assert batch.patch.tolist() == [0, 12] and batch.ipix.tolist() == list(range(16)) + \
        list(range(192, 208))
    with pytest.raises(ValueError, match="'patch' < 48"):
        ds.patch_data(48)


def test_noise_is_deterministic_per_sample(tmp_path, fakes):
    clean = make(tmp_path, 'test', patch_order=1)
    noisy = make(tmp_path, 'test', patch_order=1, noise_std=0.5)
    again = make(tmp_path, 'test', patch_order=1, noise_std=0.5)
    other = make(tmp_path, 'test', patch_order=1, noise_std=0.5, noise_seed=1)
    n = len(clean)
    for i in (0, 5, n - 1):
        assert torch.equal(noisy[i].x, noisy[i].x)  # reading twice: same noise
        assert torch.equal(noisy[i].x, again[i].x)  # a fresh dataset: same noise
        assert not torch.equal(noisy[i].x, other[i].x)
        assert not torch.equal(noisy[i].x, clean[i].x)
    noise = torch.stack([noisy[i].x - clean[i].x for i in range(n)])
    assert noise.std().item() == pytest.approx(0.5, rel=0.05)
    assert abs(noise.mean().item()) < 0.02
    assert not torch.equal(noise[0], noise[1])  # each sample its own noise
    # the noise of a sample does not depend on the split fractions or order
    shuffled = noisy[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    for k in range(3):
        d = shuffled[k]
        j = [i for i in range(n) if int(noisy[i].map_index) == int(d.map_index)
             and int(noisy[i].y) == int(d.y) and int(noisy[i].patch) == int(d.patch)]
        assert torch.equal(d.x, noisy[j[0]].x)
    data = noisy[2]
    expected = patch_noise(0, int(data.y), int(data.map_index), int(data.patch), 64, 0.5)
    np.testing.assert_allclose((data.x - clean[2].x)[:, 0].numpy(), expected, atol=1e-6)


def test_dense_tensors_match_samples(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=1, noise_std=0.1)
    X, y = ds.tensors()
    assert X.shape == (len(ds), 64, 1) and X.dtype == torch.float32
    assert y.shape == (len(ds),) and y.dtype == torch.long
    for i in (0, 7, len(ds) - 1):
        assert torch.equal(X[i], ds[i].x) and int(y[i]) == int(ds[i].y)
    sub = ds[torch.tensor([5, 2])]
    Xs, ys = sub.tensors()
    assert torch.equal(Xs, X[[5, 2]]) and torch.equal(ys, y[[5, 2]])
    assert torch.equal(sub.patches, ds.patches[[5, 2]])
    # tensors() of a clean dataset is a copy: editing it leaves the samples alone
    clean = make(tmp_path, 'train', patch_order=1)
    Xc, _ = clean.tensors()
    Xc.zero_()
    assert clean[0].x.abs().sum() > 0


class AddZMean:
    """A pre_transform that needs the pixel positions."""
    def __call__(self, data):
        data = data.clone()
        data.z_mean = data.pos[:, 2].mean().view(1)
        return data

    def __repr__(self):
        return 'AddZMean()'


def test_pre_transform_sees_clean_samples_with_pixels(tmp_path, fakes):
    seen = []

    def spy(data):
        seen.append(data.x.clone())
        return AddZMean()(data)
    ds = make(tmp_path, 'val', patch_order=1, noise_std=0.1, pre_transform=spy)
    plain = make(tmp_path / 'other', 'val', patch_order=1, noise_std=0.1)
    clean = make(tmp_path / 'other', 'val', patch_order=1)
    assert len(seen) == len(ds)
    assert torch.equal(torch.stack(seen), clean.tensors()[0])  # no noise yet
    for i in (0, len(ds) - 1):
        assert torch.equal(ds[i].x, plain[i].x)
        assert ds[i].z_mean.item() == pytest.approx(ds[i].pos[:, 2].mean().item(), abs=1e-6)
    X, _ = ds.tensors()
    assert torch.equal(X, plain.tensors()[0])


def test_processed_split_follows_the_raw_maps(tmp_path, fakes):
    ds = make(tmp_path, 'train', patch_order=None)
    x0 = ds[0].x.clone()
    ds2 = make(tmp_path, 'train', patch_order=None, config=tiny(seed=5))
    assert not torch.equal(ds2[0].x, x0)
    assert ds2.processed_paths[0] != ds.processed_paths[0]
    back = make(tmp_path, 'train', patch_order=None)
    assert torch.equal(back[0].x, x0)
    assert len(fakes[1].calls) == 20  # the first maps were kept, not made again
    names = sorted(p.name for p in (tmp_path / 'processed').glob('train-*.pt'))
    assert len(names) == 2 and all(re.fullmatch(r'train-[0-9a-f]{16}\.pt', n) for n in names)
    # the patch order is a processing parameter: its own file, the same raw maps
    make(tmp_path, 'train', patch_order=1)
    assert len(list((tmp_path / 'processed').glob('train-*.pt'))) == 3
    assert len(fakes[1].calls) == 20
