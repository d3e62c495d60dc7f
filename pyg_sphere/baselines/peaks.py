r"""Peak counts, the standard non-Gaussian statistic of weak-lensing maps
(e.g. Kratochvil et al. 2010, Fluri et al. 2018): the local maxima of the
noisy, smoothed convergence map, histogrammed by height in units of the
noise standard deviation.

On a NESTED base-pixel patch (:mod:`pyg_sphere.samplings.nested_patch`) a
peak is a pixel larger than all 8 of its HEALPix neighbours; pixels on the
patch border, whose neighbours are not all in the patch, are never peaks.
Smoothing at ``scale`` :math:`s` is the NESTED mean over the :math:`4^s`
children of each pixel of :math:`N_{side} / 2^s` (a top-hat of the coarser
pixel), which divides white noise by :math:`2^s`; heights are then in units
of ``sigma / 2**s``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .._validation import check_int, check_real
from ..samplings.nested_patch import nested_patch_grid, patch_side
from .statistics import as_numpy_2d

#: Default peak-height bin edges, in units of the noise std: -2 to 6.
PEAK_EDGES = tuple(np.linspace(-2.0, 6.0, 17).tolist())


def smooth_nested(x: np.ndarray, scale: int) -> np.ndarray:
    """Mean over the :math:`4^s` NESTED children: [N, n] -> [N, n / 4**scale]."""
    scale = check_int('scale', scale, minimum=0)
    if scale == 0:
        return x
    group = 4 ** scale
    if x.shape[1] % group:
        raise ValueError(f"Expected 'scale' with 4**scale dividing the {x.shape[1]} pixels "
                         f"(got {scale})")
    return x.reshape(x.shape[0], -1, group).mean(axis=2)


def find_peaks(x: Any) -> np.ndarray:
    """Mask of the peaks of NESTED patches ``x`` [N, n] (or [N, n, 1]): bool
    [N, n], True where a pixel is larger than its 8 grid neighbours, all in
    the patch (compared on the patch grid, shifted slices of the image)."""
    x = as_numpy_2d(x)
    n = x.shape[1]
    side = patch_side(n)
    peaks = np.zeros(x.shape, dtype=bool)
    if side < 3:
        return peaks
    grid = nested_patch_grid(n)
    inner = grid[1:-1, 1:-1].ravel()
    for start in range(0, x.shape[0], 512):
        img = x[start:start + 512][:, grid]                       # [B, s, s]
        centre = img[:, 1:-1, 1:-1]
        higher = np.ones(centre.shape, dtype=bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dx or dy:
                    higher &= centre > img[:, 1 + dy:side - 1 + dy, 1 + dx:side - 1 + dx]
        peaks[start:start + len(img), inner] = higher.reshape(len(img), -1)
    return peaks


def peak_count_features(x: Any, sigma: float, scales: Sequence[int] = (0,),
                        edges: Sequence[float] = PEAK_EDGES) -> torch.Tensor:
    r"""Peak counts of NESTED patches, float32 [N, len(scales) * (len(edges) - 1)].

    For each smoothing ``scale`` :math:`s` (see the module), the number of
    peaks whose height :math:`\kappa / (\sigma / 2^s)` falls in each bin of
    ``edges`` (heights beyond the edges count in the outer bins).

    Args:
        x (array or Tensor): noisy patches [N, n] or [N, n, 1], NESTED.
        sigma (float): the noise std of a pixel (use the map std when there
            is no noise).
        scales (sequence of int, optional): smoothing scales. (default: ``(0,)``)
        edges (sequence of float, optional): bin edges in units of the
            smoothed noise std. (default: :obj:`PEAK_EDGES`, -2 to 6 in 16 bins)
    """
    x = as_numpy_2d(x)
    sigma = check_real('sigma', sigma, 0.0, strict=True)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
        raise ValueError(f"Expected 'edges' to be increasing, at least two values (got "
                         f"{edges.tolist()})")
    if not len(scales):
        raise ValueError("Expected at least one smoothing scale in 'scales' (got none)")
    n_bins = edges.size - 1
    out = []
    for scale in scales:
        xs = smooth_nested(x, scale)
        height = xs / (sigma / 2 ** int(scale))
        mask = find_peaks(xs)
        index = np.clip(np.searchsorted(edges, height, side='right') - 1, 0, n_bins - 1)
        counts = np.zeros((x.shape[0], n_bins))
        rows = np.broadcast_to(np.arange(x.shape[0])[:, None], mask.shape)
        np.add.at(counts, (rows[mask], index[mask]), 1.0)
        out.append(counts)
    return torch.from_numpy(np.concatenate(out, axis=1)).float()
