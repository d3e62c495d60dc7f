"""ClimateEvents: the simulator's maps as a dataset (seeding per split and
index, standardization, samples, cache in root/raw)."""
import json

import pytest
import torch
from torch_geometric.data import Data

from pyg_sphere.datasets import CLIMATE_SPLITS, ClimateEvents
from pyg_sphere.samplings import icosahedral
from pyg_sphere.simulate import CLIMATE_CHANNELS, climate_maps
from pyg_sphere.simulate import climate as climate_module

CH = {name: i for i, name in enumerate(CLIMATE_CHANNELS)}


@pytest.fixture(scope='module')
def small():
    return icosahedral(2)


def test_maps_are_the_simulator_maps_seeded_by_seed_split_index(small):
    assert CLIMATE_SPLITS == ('train', 'val', 'test')
    for split, split_id in (('train', 0), ('test', 2)):
        X, y = ClimateEvents(small, split, n_maps=2, seed=4, standardize=False).tensors()
        Xs, ys = climate_maps(small, [[4, split_id, i] for i in range(2)])
        assert torch.equal(X, torch.from_numpy(Xs))
        assert torch.equal(y, torch.from_numpy(ys).long()) and y.dtype == torch.long


def test_dataset_deterministic_per_seed_split_index(small):
    a = ClimateEvents(small, n_maps=3, seed=1, standardize=False)
    b = ClimateEvents(small, n_maps=5, seed=1, standardize=False)
    Xa, ya = a.tensors()
    Xb, yb = b.tensors()
    assert torch.equal(Xa, Xb[:3]) and torch.equal(ya, yb[:3])
    assert not torch.allclose(Xb[0], Xb[1])
    other_seed, _ = ClimateEvents(small, n_maps=3, seed=2, standardize=False).tensors()
    other_split, _ = ClimateEvents(small, 'val', n_maps=3, seed=1, standardize=False).tensors()
    for X in (other_seed, other_split):
        assert not torch.allclose(X[0], Xa[0])


def test_class_fractions_count_the_selected_pixels(small):
    ds = ClimateEvents(small, n_maps=4, seed=0)
    _, y = ds.tensors()
    fractions = ds.class_fractions()
    assert fractions.dtype == torch.float64 and float(fractions.sum()) == pytest.approx(1.0)
    counts = torch.bincount(y.reshape(-1), minlength=3)
    assert counts.tolist() == (fractions * y.numel()).round().long().tolist()
    sub = ds[torch.tensor([2])]
    expected = torch.bincount(y[2], minlength=3).double() / y.size(1)
    assert torch.allclose(sub.class_fractions(), expected)


def test_standardization_and_samples(small):
    train = ClimateEvents(small, n_maps=6, seed=0)
    X, y = train.tensors()
    assert X.shape == (6, small.num_nodes, 16) and X.dtype == torch.float32
    flat = X.view(-1, 16).double()
    assert torch.allclose(flat.mean(0), torch.zeros(16, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(flat.std(0), torch.ones(16, dtype=torch.float64), atol=1e-3)
    mean, std = train.channel_stats()
    assert mean.shape == (16,) and std.dtype == torch.float32
    raw, _ = ClimateEvents(small, n_maps=6, seed=0, standardize=False).tensors()
    assert torch.allclose(X, (raw - mean) / std, atol=1e-5)
    assert float(mean[CH['PSL']]) == pytest.approx(1.01e5, rel=0.01)
    # Validation / test use the stats of the training set.
    test = ClimateEvents(small, 'test', n_maps=2, stats=(mean, std))
    assert torch.equal(test.channel_stats()[0], mean)
    Xt, _ = test.tensors()
    Xt_raw, _ = ClimateEvents(small, 'test', n_maps=2, standardize=False).tensors()
    assert torch.allclose(Xt, (Xt_raw - mean) / std, atol=1e-5)
    # Samples are Data objects with the same values; subsets keep them.
    data = train[4]
    assert isinstance(data, Data)
    assert torch.equal(data.x, X[4]) and torch.equal(data.y, y[4])
    assert torch.equal(data.pos, small.pos) and torch.equal(train.pos, small.pos)
    subset = train[torch.tensor([4, 1])]
    Xs, ys = subset.tensors()
    assert torch.equal(Xs, X[[4, 1]]) and torch.equal(ys, y[[4, 1]])
    assert repr(train) == 'ClimateEvents(6)'
    # the stats of a subset are those of the whole dataset
    assert torch.equal(subset.channel_stats()[1], std)


def test_sampling_as_positions(small):
    a = ClimateEvents(small, n_maps=1, standardize=False)
    b = ClimateEvents(small.pos, n_maps=1, standardize=False)
    assert torch.equal(a.tensors()[0], b.tensors()[0])
    assert torch.equal(b[0].pos, small.pos)


def test_transform_applied(small):
    def double(data):
        data.x = data.x * 2
        return data
    plain = ClimateEvents(small, n_maps=2)
    transformed = ClimateEvents(small, n_maps=2, transform=double)
    assert torch.equal(transformed[1].x, 2 * plain[1].x)
    assert torch.equal(transformed.tensors()[0], plain.tensors()[0])  # not by tensors()


def test_cache(small, tmp_path, private_cache, monkeypatch):
    first = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    files = sorted(p.name for p in (tmp_path / 'raw').glob('climate_train-*'))
    assert len(files) == 2 and files[0].endswith('.json') and files[1].endswith('.npz')
    manifest = json.loads((tmp_path / 'raw' / files[0]).read_text())
    assert manifest['params']['seed'] == 5 and manifest['params']['n_maps'] == 3
    X1, y1 = first.tensors()

    def fail(*args, **kwargs):
        raise AssertionError('regenerated instead of reading the cache')
    real = climate_module._generate
    monkeypatch.setattr(climate_module, '_generate', fail)
    second = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    X2, y2 = second.tensors()
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    # force_reload regenerates
    with pytest.raises(AssertionError, match='regenerated'):
        ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), force_reload=True)
    monkeypatch.setattr(climate_module, '_generate', real)  # (undo() would drop the
    # private cache too)
    # Another seed is another file; a corrupt file is regenerated.
    ClimateEvents(small, n_maps=3, seed=6, root=str(tmp_path))
    assert len(list((tmp_path / 'raw').glob('climate_train-*.npz'))) == 2
    (tmp_path / 'raw' / files[1]).write_bytes(b'garbage')
    again = ClimateEvents(small, n_maps=3, seed=5, root=str(tmp_path), standardize=False)
    assert torch.equal(again.tensors()[0], X1)
    # the default root is the climate cache
    ClimateEvents(small, n_maps=1)
    assert len(list((private_cache / 'climate' / 'raw').glob('climate_train-*.npz'))) == 1


def test_progress_bar(small, capsys):
    ClimateEvents(small, n_maps=2, log=True)
    assert 'climate maps (train)' in capsys.readouterr().err
    ClimateEvents(small, n_maps=3)
    assert 'climate maps' not in capsys.readouterr().err


@pytest.mark.parametrize('kwargs, match', [
    (dict(sampling=[[1.0, 0.0, 0.0]]), "'sampling' to be a Data with 'pos'"),
    (dict(sampling=Data(num_nodes=3)), "'sampling' to have a 'pos'"),
    (dict(sampling=torch.ones(4, 3)), "unit vectors"),
    (dict(split='training'), r"'split' to be one of \('train', 'val', 'test'\)"),
    (dict(n_maps=0), "'n_maps' to be >= 1 \\(got 0\\)"),
    (dict(seed=-1), "'seed' to be >= 0"),
    (dict(noise=-0.5), r"'noise' to be >= 0.0 \(got -0.5\)"),
    (dict(standardize='yes'), "'standardize' to be a bool"),
    (dict(stats=(torch.zeros(16),)), "'stats' to be a pair"),
    (dict(stats=(torch.zeros(16), torch.zeros(16))), "positive finite stds"),
    (dict(root=3), "'root' to be a folder path"),
])
def test_dataset_errors(small, kwargs, match):
    kwargs = {'sampling': small, 'n_maps': 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        ClimateEvents(**kwargs)
