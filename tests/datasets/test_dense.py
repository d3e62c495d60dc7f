"""The base of every dataset (pyg_sphere.datasets._dense.DenseMapDataset),
through a minimal subclass: PyG layout, dense tensors, rebuilt files."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_sphere.datasets import DenseMapDataset
from pyg_sphere.samplings import healpix

BUILDS = []  # one entry per generation of raw data


class Toy(DenseMapDataset):
    """``n`` maps of 2 channels on healpix(1), seeded, class = index % 2."""
    cache_kind = 'toy'

    def __init__(self, root=None, n=4, split='train', transform=None, pre_transform=None,
                 pre_filter=None, force_reload=False):
        self.n, self.split = n, split
        self.sampling = healpix(1)
        super().__init__(root, transform, pre_transform, pre_filter, force_reload, False)

    def make_raw(self, log, force):
        params = {'n': self.n}

        def build():
            BUILDS.append(self.n)
            return np.random.default_rng(self.n).standard_normal((self.n, 12, 2)) \
                .astype(np.float32)
        x = self.raw_cache.get_or_build('toy', params, build, force=force,
                                        check=lambda a: a.shape == (self.n, 12, 2))
        return {'x': x, 'sha256': [self.raw_cache.info('toy', params)['sha256']]}

    def processing_params(self):
        return {'split': self.split}

    def samples(self, raw):
        return {'x': torch.from_numpy(np.array(raw['x'])), 'y': torch.arange(self.n) % 2,
                'map_index': torch.arange(self.n)}


def expected_x(n):
    return torch.from_numpy(np.random.default_rng(n).standard_normal((n, 12, 2))
                            .astype(np.float32))


@pytest.fixture(autouse=True)
def no_builds():
    BUILDS.clear()


def test_samples_tensors_repr_and_batch(tmp_path):
    ds = Toy(tmp_path)
    assert repr(ds) == 'Toy(4)' and len(ds) == 4
    X, y = ds.tensors()
    assert torch.equal(X, expected_x(4)) and y.tolist() == [0, 1, 0, 1]
    for i in range(4):
        d = ds.get(i)
        assert torch.equal(d.x, X[i]) and torch.equal(ds[i].x, X[i])
        assert d.y.tolist() == [i % 2] and d.map_index.tolist() == [i]
        assert torch.equal(d.pos, healpix(1).pos) and d.sampling == healpix(1).sampling
    batch = Batch.from_data_list([ds[1], ds[2]])
    assert batch.x.shape == (24, 2) and batch.y.tolist() == [1, 0]
    assert torch.equal(batch.x, X[[1, 2]].reshape(24, 2))
    assert batch.batch.tolist() == [0] * 12 + [1] * 12
    assert batch.map_index.tolist() == [1, 2]  # a per-sample field, not shifted by 12
    loader = DataLoader(ds, batch_size=4)
    assert next(iter(loader)).map_index.tolist() == [0, 1, 2, 3]
    sub = ds[torch.tensor([3, 0])]
    assert repr(sub) == 'Toy(2)' and torch.equal(sub.tensors()[0], X[[3, 0]])
    assert sub.field('map_index').tolist() == [3, 0]
    X[0] += 1  # tensors() is a copy
    assert torch.equal(ds.tensors()[0], expected_x(4))


def test_layout_and_default_root(tmp_path, private_cache):
    ds = Toy(tmp_path)
    assert ds.raw_dir == str(tmp_path / 'raw') and ds.processed_dir == str(tmp_path / 'processed')
    assert [p.name for p in (tmp_path / 'processed').glob('train-*.pt')] == \
        [ds.processed_file_names]
    default = Toy()
    assert default.root == str(private_cache / 'toy')
    assert list((private_cache / 'toy' / 'raw').glob('toy-*.npy'))
    with pytest.raises(ValueError, match="'root' to be a folder path"):
        Toy(root=5)


def test_second_dataset_reads_the_files(tmp_path):
    Toy(tmp_path)
    again = Toy(tmp_path)
    assert BUILDS == [4] and torch.equal(again.tensors()[0], expected_x(4))
    other = Toy(tmp_path, n=6)  # another parameter: its own raw entry, beside the first
    assert BUILDS == [4, 6] and len(other) == 6
    assert len(list((tmp_path / 'raw').glob('toy-*.npy'))) == 2
    assert len(list((tmp_path / 'processed').glob('train-*.pt'))) == 2


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'empty', 'other shape'])
def test_damaged_processed_file_is_rebuilt(tmp_path, damage):
    ds = Toy(tmp_path)
    path = tmp_path / 'processed' / ds.processed_file_names
    good = path.read_bytes()
    if damage == 'truncated':
        path.write_bytes(good[:len(good) // 2])
    elif damage == 'garbage':
        path.write_bytes(b'not a torch file' * 50)
    elif damage == 'empty':
        path.write_bytes(b'')
    else:  # a valid file of another dataset, copied over by hand
        small = Toy(tmp_path / 'small', n=2)
        path.write_bytes((tmp_path / 'small' / 'processed' /
                          small.processed_file_names).read_bytes())
    again = Toy(tmp_path)
    assert torch.equal(again.tensors()[0], expected_x(4)) and len(again) == 4
    assert BUILDS in ([4], [4, 2])  # the raw data were not generated again
    assert Toy(tmp_path).tensors()[0].shape == (4, 12, 2)  # and the file is whole again


def test_raw_entry_edited_by_hand_is_regenerated(tmp_path):
    Toy(tmp_path)
    raw = next((tmp_path / 'raw').glob('toy-*.npy'))
    edited = np.load(raw)
    edited[0, 0, 0] += 1.0  # same size, another checksum
    np.save(raw, edited)
    ds = Toy(tmp_path)
    assert BUILDS == [4, 4]
    assert torch.equal(ds.tensors()[0], expected_x(4))
    assert torch.equal(torch.from_numpy(np.load(raw)), expected_x(4))


def test_force_reload_regenerates_and_reprocesses(tmp_path):
    ds = Toy(tmp_path)
    path = tmp_path / 'processed' / ds.processed_file_names
    before = path.stat().st_mtime_ns
    Toy(tmp_path)
    assert BUILDS == [4] and path.stat().st_mtime_ns == before
    again = Toy(tmp_path, force_reload=True)
    assert BUILDS == [4, 4] and path.stat().st_mtime_ns != before
    assert torch.equal(again.tensors()[0], expected_x(4))


def test_transform_pre_transform_and_pre_filter(tmp_path):
    def negate(data):
        data.x = -data.x
        return data
    ds = Toy(tmp_path, transform=negate)
    assert torch.equal(ds[1].x, -expected_x(4)[1])
    assert torch.equal(ds.tensors()[0], expected_x(4))  # transform: on access only

    def add_z(data):
        data.z = data.pos[:, 2:].sum().view(1)  # sees the pixels
        return data
    pre = Toy(tmp_path / 'pre', pre_transform=add_z)
    assert torch.equal(pre.tensors()[0], expected_x(4))
    assert pre[2].z.item() == pytest.approx(float(healpix(1).pos[:, 2].sum()), abs=1e-6)

    kept = Toy(tmp_path / 'filter', pre_filter=lambda d: int(d.map_index) != 1)
    assert len(kept) == 3 and torch.equal(kept.tensors()[0], expected_x(4)[[0, 2, 3]])
    assert kept.field('map_index').tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="'pre_filter' to keep at least one of the 4 samples"):
        Toy(tmp_path / 'none', pre_filter=lambda d: False)


def test_tensors_needs_samples_of_equal_size(tmp_path):
    def crop_first(data):
        if int(data.map_index) == 0:
            data.x, data.pos = data.x[:6], data.pos[:6]
        return data
    ds = Toy(tmp_path, pre_transform=crop_first)
    assert ds[0].x.shape == (6, 2) and ds[1].x.shape == (12, 2)
    with pytest.raises(ValueError, match=r'tensors\(\) needs samples of equal size.*\[6, 12\]'):
        ds.tensors()
