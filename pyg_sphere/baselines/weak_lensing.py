r"""The baselines a cosmologist compares a weak-lensing classifier with, all
fitted on the same (noisy) training maps, tuned on the validation maps and
scored once on the test maps (:func:`weak_lensing_baselines`):

* ``power_spectrum``: the binned power spectrum (the 2-point statistic);
  on NESTED patches the flat-sky estimate on the patch grid
  (:func:`~pyg_sphere.baselines.statistics.patch_power_spectrum_features`,
  tuned over bin counts and tapers), on full-sky maps the spherical one
  (:func:`~pyg_sphere.baselines.power_spectrum_features`, tuned over bin
  counts);
* ``histogram``: the pixel histogram (one-point statistic), tuned over bin
  counts;
* ``peak_counts``: the histogram of the heights of local maxima in units of
  the noise (:func:`~pyg_sphere.baselines.peaks.peak_count_features`), tuned
  over the smoothing scales (a full-sky map is counted as its 12 base pixels);
* ``combined``: the chosen features of all three side by side, in one
  classifier.

Every classifier is :class:`~pyg_sphere.baselines.LinearClassifier`, its L2
penalty tuned with the features (:func:`~pyg_sphere.baselines.tuned.tune_linear`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .peaks import peak_count_features
from .statistics import (as_numpy_2d, histogram_edges, histogram_features,
                         patch_power_spectrum_features, power_spectrum_features)
from .tuned import Features, TunedBaseline, combine, tune_linear

#: The printed names of the baselines, in order.
BASELINE_NAMES: Dict[str, str] = {
    'power_spectrum': 'power spectrum',
    'histogram': 'pixel histogram',
    'peak_counts': 'peak counts',
    'combined': 'PS + histogram + peaks',
}
#: Smoothing-scale options of the peak counts (NESTED levels).
PEAK_SCALES: Tuple[Tuple[int, ...], ...] = ((0,), (1,), (0, 1), (0, 1, 2))

Split = Tuple[Any, Any]


def _peaks_of(x: np.ndarray, sigma: float, scales: Sequence[int], full_sky: bool
              ) -> torch.Tensor:
    if not full_sky:
        return peak_count_features(x, sigma, scales)
    n = x.shape[1] // 12  # a NESTED full-sky map: 12 base pixels of nside^2 pixels
    f = peak_count_features(x.reshape(-1, n), sigma, scales)
    return f.view(x.shape[0], 12, -1).sum(1)


def weak_lensing_baselines(train: Split, val: Split, test: Split, noise_std: float,
                           nside: Optional[int] = None) -> Dict[str, TunedBaseline]:
    """Fit, tune and score the baselines of the module.

    Args:
        train, val, test: ``(x, y)`` with ``x`` the noisy maps [N, n] or
            [N, n, 1], NESTED (base-pixel patches, or full-sky maps when
            ``nside`` is given with ``12 nside^2 == n``), ``y`` the classes.
        noise_std (float): the pixel noise std (the unit of peak heights;
            with no noise, the training pixels' std).
        nside (int, optional): needed for full-sky maps. (default: :obj:`None`)

    Returns:
        ``{name: TunedBaseline}`` for every key of :obj:`BASELINE_NAMES`.
    """
    xs = [as_numpy_2d(s[0]) for s in (train, val, test)]
    ys = [torch.as_tensor(s[1]).long().view(-1) for s in (train, val, test)]
    n = xs[0].shape[1]
    full_sky = nside is not None and 12 * nside * nside == n
    side = int(round(n ** 0.5)) if not full_sky else 0

    def each(func: Any) -> Features:
        return tuple(func(x) for x in xs)  # type: ignore[return-value]

    ps: Dict[Any, Features] = {}
    if full_sky:
        for n_bins in (8, 16):
            ps[(n_bins, 'sphere')] = each(lambda x: power_spectrum_features(x, nside, None,
                                                                             n_bins))
    else:
        for n_bins in (8, 16, 32):
            if n_bins <= side // 2:
                for taper in ('tukey', 'hann'):
                    ps[(n_bins, taper)] = each(
                        lambda x: patch_power_spectrum_features(x, n_bins, taper))
    hist: Dict[Any, Features] = {}
    for n_bins in (16, 32, 64):
        edges = histogram_edges(xs[0], n_bins)
        hist[n_bins] = each(lambda x: histogram_features(x, edges))
    sigma = float(noise_std) if noise_std > 0 else float(xs[0].std())
    per_map = n // 12 if full_sky else n
    per_scale: Dict[int, Features] = {}
    peaks: Dict[Any, Features] = {}
    for scales in PEAK_SCALES:
        if 4 ** max(scales) * 16 <= per_map:
            for s in scales:
                if s not in per_scale:
                    per_scale[s] = each(lambda x: _peaks_of(x, sigma, (s,), full_sky))
            peaks[scales] = tuple(torch.cat([per_scale[s][i] for s in scales], dim=1)
                                  for i in range(3))  # type: ignore[assignment]
    out = {'power_spectrum': tune_linear(ps, *ys),
           'histogram': tune_linear(hist, *ys),
           'peak_counts': tune_linear(peaks, *ys)}
    chosen = {'power_spectrum': ps, 'histogram': hist, 'peak_counts': peaks}
    parts = {name: chosen[name][out[name].option] for name in chosen}
    out['combined'] = tune_linear({'all': combine(parts)}, *ys)
    return out
