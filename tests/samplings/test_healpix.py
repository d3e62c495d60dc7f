import math

import healpy as hp
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pyg_sphere.samplings import SphereSampling, healpix, pixel_area


@pytest.mark.parametrize('nside', [1, 2, 4])
@pytest.mark.parametrize('nest', [True, False])
def test_matches_healpy(nside, nest):
    data = healpix(nside, nest=nest, dtype=torch.float64)
    assert data.num_nodes == 12 * nside**2
    assert data.pos.shape == (12 * nside**2, 3)
    expected = np.stack(hp.pix2vec(nside, np.arange(12 * nside**2), nest=nest), axis=1)
    assert np.allclose(data.pos.numpy(), expected, atol=1e-14, rtol=0)
    assert 'ipix' not in data


def test_orderings_are_permutations_of_each_other():
    nside = 4
    ring = healpix(nside, nest=False, dtype=torch.float64).pos
    nest = healpix(nside, nest=True, dtype=torch.float64).pos
    order = torch.from_numpy(hp.nest2ring(nside, np.arange(12 * nside**2)))
    assert torch.allclose(nest, ring[order], atol=1e-14, rtol=0)


def test_ring_allows_any_nside():
    assert healpix(3, nest=False).num_nodes == 108


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_unit_norm_and_dtype(dtype, tol):
    data = healpix(4, dtype=dtype)
    assert data.pos.dtype == dtype
    assert float((data.pos.double().norm(dim=1) - 1).abs().max()) < tol


def test_default_dtype():
    assert healpix(1).pos.dtype == torch.get_default_dtype()


@pytest.mark.parametrize('nest', [True, False])
def test_partial_sky(nest):
    nside = 4
    ipix = np.array([5, 0, 17, 191, 64])
    data = healpix(nside, nest=nest, indexes=ipix, dtype=torch.float64)
    assert data.num_nodes == 5
    assert data.ipix.tolist() == ipix.tolist()
    assert data.ipix.dtype == torch.long
    expected = np.stack(hp.pix2vec(nside, ipix, nest=nest), axis=1)
    assert np.allclose(data.pos.numpy(), expected, atol=1e-14, rtol=0)
    # tensor indexes work the same
    again = healpix(nside, nest=nest, indexes=torch.from_numpy(ipix), dtype=torch.float64)
    assert torch.equal(again.pos, data.pos)


def test_area():
    area = pixel_area(healpix(2))
    assert area.dtype == torch.float64
    assert area.shape == (48,)
    assert torch.allclose(area.sum(), torch.tensor(4 * math.pi, dtype=torch.float64),
                          rtol=1e-12)
    part = pixel_area(healpix(2, indexes=[1, 2, 3]))
    assert torch.allclose(part, torch.full((3,), 4 * math.pi / 48, dtype=torch.float64))


@pytest.mark.parametrize('nest', [True, False])
def test_rebuild_round_trip(nest):
    data = healpix(2, nest=nest)
    assert data.sampling == SphereSampling('healpix', {'nside': 2, 'nest': nest})
    for _, value in data.sampling.params:
        assert type(value) in (int, bool)
    again = data.sampling.rebuild()
    assert again.sampling == data.sampling
    assert torch.equal(again.pos, data.pos)
    # a partial sky rebuilds the full sky
    part = healpix(2, nest=nest, indexes=[3, 4])
    assert part.sampling.rebuild().num_nodes == 48


def test_numpy_integer_nside_is_stored_as_int():
    data = healpix(np.int64(2))
    assert type(data.sampling['nside']) is int
    assert torch.equal(data.sampling.rebuild().pos, data.pos)


def test_batch():
    single = healpix(1, indexes=[0, 5, 7])
    batch = Batch.from_data_list([single, single])
    assert batch.num_nodes == 6
    assert torch.equal(batch.pos, torch.cat([single.pos, single.pos]))
    assert batch.ipix.tolist() == [0, 5, 7, 0, 5, 7]  # pixel ids, not offset
    assert batch.batch.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.sampling == [single.sampling, single.sampling]


@pytest.mark.parametrize('kwargs,match', [
    ({'nside': 12, 'nest': True}, r"'nside'.*power of two.*got 12"),
    ({'nside': 0}, r"'nside' to be >= 1 \(got 0\)"),
    ({'nside': 2.0}, r"'nside' to be an integer"),
    ({'nside': True}, r"'nside' to be an integer"),
    ({'nside': 2**30, 'nest': False}, r"'nside' to be <= 2\*\*29"),
    ({'nside': 2, 'nest': 1}, r"'nest' to be a bool"),
    ({'nside': 2, 'indexes': [0, 48]}, r"'indexes' in \[0, 47\].*got 48"),
    ({'nside': 2, 'indexes': [-1, 3]}, r"'indexes' in \[0, 47\].*got -1"),
    ({'nside': 2, 'indexes': [3, 4, 3]}, r"'indexes' to hold distinct"),
    ({'nside': 2, 'indexes': []}, r"'indexes' to hold at least one"),
    ({'nside': 2, 'indexes': [[0, 1]]}, r"'indexes' to be a 1-D"),
    ({'nside': 2, 'indexes': [0.0, 1.0]}, r"'indexes' to hold integers"),
    ({'nside': 2, 'indexes': [True, False]}, r"'indexes' to hold integers"),
    ({'nside': 2, 'dtype': torch.int64}, r"'dtype' to be a floating point"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        healpix(**kwargs)


def test_sampling_descriptor_loads_with_weights_only(tmp_path):
    data = healpix(4, nest=False)
    torch.save({'sampling': data.sampling}, tmp_path / 's.pt')
    loaded = torch.load(tmp_path / 's.pt', weights_only=True)['sampling']
    assert loaded == data.sampling
    torch.testing.assert_close(loaded.rebuild().pos, data.pos)
