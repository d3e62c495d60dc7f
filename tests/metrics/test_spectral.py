import numpy as np
import pytest
import torch

from pyg_sphere.metrics import laplacian_spectrum_alignment
from pyg_sphere.samplings import healpix, icosahedral
from pyg_sphere.transforms import SphereKNNGraph


@pytest.mark.parametrize('normalization', [None, 'sym', 'rw'])
def test_healpix_spectrum_groups_like_the_sphere(normalization):
    data = SphereKNNGraph(k=8)(healpix(8))
    res = laplacian_spectrum_alignment(data, lmax=2, normalization=normalization)
    assert res.group_sizes == [1, 3, 5] == res.expected_sizes
    assert min(res.alignment) > 0.9
    assert res.eigenvalues[0][0] == pytest.approx(0, abs=1e-8)
    # eigenvalues of the groups grow like l (l + 1): ratio of group means ~ 3
    means = [np.mean(v) for v in res.eigenvalues]
    assert means[2] / means[1] == pytest.approx(3, rel=0.1)


def test_icosahedral_higher_degrees_and_explicit_graph():
    data = SphereKNNGraph(k=6)(icosahedral(3))
    res = laplacian_spectrum_alignment(icosahedral(3), data.edge_index, data.edge_weight, lmax=4)
    assert res.group_sizes == [1, 3, 5, 7, 9]
    assert min(res.alignment) > 0.95


def test_scrambled_graph_is_detected():
    # a random regular-ish graph has no sphere-like spectrum
    data = healpix(4)
    n = data.num_nodes
    g = torch.Generator().manual_seed(0)
    src = torch.arange(n).repeat_interleave(4)
    dst = torch.randint(0, n, (4 * n,), generator=g)
    keep = src != dst
    ei = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    res = laplacian_spectrum_alignment(data, ei, lmax=2)
    assert res.group_sizes != [1, 3, 5] or min(res.alignment[1:]) < 0.5


def test_bad_inputs():
    data = SphereKNNGraph(k=8)(healpix(2))
    with pytest.raises(ValueError, match="'lmax'"):
        laplacian_spectrum_alignment(data, lmax=6)
    with pytest.raises(ValueError, match="'edge_index'"):
        laplacian_spectrum_alignment(healpix(2), lmax=1)
    with pytest.raises(ValueError, match="'edge_weight'"):
        laplacian_spectrum_alignment(data, data.edge_index, torch.ones(3), lmax=1)
    with pytest.raises(ValueError, match="'normalization'"):
        laplacian_spectrum_alignment(data, lmax=1, normalization='foo')
