"""Summary statistics of maps (pyg_sphere.baselines.statistics), against
closed forms and, on faked cosmology maps, as features of the baselines."""
import math

import numpy as np
import pytest
import torch

from pyg_sphere.baselines import (LinearClassifier, channel_statistics, histogram_edges,
                                  histogram_features, power_spectrum_features)
from pyg_sphere.datasets import CosmologyMaps
from pyg_sphere.simulate import CosmologyConfig


def test_power_spectrum_features_of_white_noise():
    # white noise of std s: C_l = 4 pi s^2 / npix at every l; 3 bins of l,
    # averaged over 8 maps: ~2000 modes per bin, ~3 % scatter (0.013 dex)
    rng = np.random.default_rng(0)
    sky = rng.standard_normal((8, 12 * 16 ** 2)) * 2.0
    expected = math.log10(4 * math.pi * 4.0 / sky.shape[1])
    full = power_spectrum_features(torch.from_numpy(sky), 16, n_bins=3)
    assert full.shape == (8, 3) and full.dtype == torch.float32
    np.testing.assert_allclose(full.mean(0).numpy(), expected, atol=0.04)
    # pseudo-C_l of a patch (1/4 of the sky), divided by f_sky: unbiased for
    # white noise (without the division it would be off by log10(4) = 0.6)
    patch = power_spectrum_features(torch.from_numpy(sky[:, :768]).unsqueeze(-1), 16,
                                    patches=torch.zeros(8, dtype=torch.long), n_bins=3)
    np.testing.assert_allclose(patch.mean(0).numpy(), expected, atol=0.04)
    # the patch index places the pixels: patch 1 of the same values, same power
    moved = power_spectrum_features(torch.from_numpy(sky[:, :768]), 16,
                                    patches=torch.ones(8, dtype=torch.long), n_bins=3)
    np.testing.assert_allclose(moved.mean(0).numpy(), expected, atol=0.04)
    with pytest.raises(ValueError, match="'patches'"):
        power_spectrum_features(torch.from_numpy(sky[:, :768]), 16)


def test_power_spectrum_features_bad_input():
    with pytest.raises(ValueError, match=r"divisor of 12 \* nside\*\*2 = 3072"):
        power_spectrum_features(torch.zeros(2, 1000), 16)
    with pytest.raises(ValueError, match=r"'patches' of shape \[2\]"):
        power_spectrum_features(torch.zeros(2, 768), 16, patches=torch.zeros(3))
    with pytest.raises(ValueError, match=r"'x' of shape \[N, n\]"):
        power_spectrum_features(torch.zeros(3072), 16)


def test_histogram_features():
    x = torch.tensor([[0.0, 0.1, 0.9, 5.0], [-3.0, 0.5, 0.5, 0.5]])
    edges = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    h = histogram_features(x, edges)
    assert h.tolist() == [[0.5, 0.0, 0.0, 0.5], [0.25, 0.0, 0.75, 0.0]]
    # bins [e_k, e_k+1) as numpy.histogram, for values within the edges
    inner = torch.tensor([[0.1, 0.3, 0.3, 0.6, 0.8, 0.99]])
    np.testing.assert_array_equal(histogram_features(inner, edges)[0].numpy(),
                                  (np.histogram(inner.numpy(), edges.numpy())[0] / 6)
                                  .astype(np.float32))
    e = histogram_edges(torch.linspace(0, 1, 10001).view(1, -1), n_bins=4, tail=0.1)
    np.testing.assert_allclose(e.numpy(), [0.1, 0.3, 0.5, 0.7, 0.9], atol=1e-9)


def test_channel_statistics_closed_form():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 2)
    x[1, :, 1] *= -2
    s = channel_statistics(x)
    assert s.shape == (2, 22) and s.dtype == torch.float32
    # layout: means [C], stds [C], then the 9 deciles of each channel
    assert s[0, :2].tolist() == [4.5, 4.5] and s[1, :2].tolist() == [4.5, -9.0]
    assert s[0, 2:4].tolist() == pytest.approx([math.sqrt(55 / 6)] * 2)
    deciles = np.quantile(np.arange(10.0), np.linspace(0.1, 0.9, 9))
    np.testing.assert_allclose(s[0, 4:].view(9, 2)[:, 0].numpy(), deciles, rtol=1e-6)
    np.testing.assert_allclose(s[1, 4:].view(9, 2)[:, 1].numpy(), -2 * deciles[::-1],
                               rtol=1e-6)
    # invariant to any permutation of the pixels (e.g. a rotation of the sphere)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(channel_statistics(x[:, perm]), s)
    with pytest.raises(ValueError, match=r"'x' to be a tensor \[N, n, C\]"):
        channel_statistics(x[0])


def baseline_accuracies(train, test, n_ps_bins, n_hist_bins):
    """What the cosmology task reports: linear classifiers on power spectra
    and on pixel histograms, fitted on ``train``, scored on ``test``."""
    nside = train.config.nside
    x_train, y_train = train.tensors()
    x_test, y_test = test.tensors()
    ps = LinearClassifier().fit(power_spectrum_features(x_train, nside, train.patches,
                                                        n_ps_bins), y_train)
    edges = histogram_edges(x_train, n_hist_bins)
    hist = LinearClassifier().fit(histogram_features(x_train, edges), y_train)
    return {'power_spectrum': ps.score(power_spectrum_features(x_test, nside, test.patches,
                                                               n_ps_bins), y_test),
            'histogram': hist.score(histogram_features(x_test, edges), y_test)}


def test_baselines_tell_apart_different_amplitudes(tmp_path, fakes):
    # fake maps: white noise of std sigma_8 / 100 -> both statistics see it
    config = CosmologyConfig(nside=8, n_maps=10)

    def split(name, noise_std):
        return CosmologyMaps(str(tmp_path), name, config=config, patch_order=None,
                             noise_std=noise_std, log=False)
    acc = baseline_accuracies(split('train', 0.0), split('test', 0.0), 4, 8)
    assert acc == {'power_spectrum': 1.0, 'histogram': 1.0}
    # drowned in noise 100x the signal, they fall towards chance
    acc = baseline_accuracies(split('train', 1.0), split('test', 1.0), 4, 8)
    assert acc['power_spectrum'] < 0.9 and acc['histogram'] < 0.9
