r"""Summary statistics of maps, the features of the classical baselines (fed
to :class:`~pyg_sphere.baselines.LinearClassifier`).

* Power spectrum: :math:`\hat C_\ell` binned in ``n_bins`` equal-width bins
  of :math:`\ell \in [2, \ell_{max}]`, log10. Full-sky maps use the plain
  estimate :math:`\hat C_\ell = \sum_m |a_{\ell m}|^2 / (2\ell + 1)`; a
  patch uses the pseudo-:math:`C_\ell` of the zero-filled sky divided by the
  sky fraction :math:`f_{sky}` (no mode-coupling deconvolution: the coupling
  is the same for every sample of a patch, so a linear classifier absorbs it).
  The :math:`a_{\ell m}` come from ``healpy.map2alm`` with ``iter=0`` and no
  weight files.
* Power spectrum of a NESTED patch on its grid (:func:`patch_power_spectrum_features`,
  fast: no spherical harmonic transform): the patch seen as its :math:`s \times s`
  grid (:mod:`pyg_sphere.samplings.nested_patch`), mean removed, optionally
  tapered, 2-D FFT, :math:`|\hat x_k|^2` averaged in ``n_bins`` equal-width bins
  of :math:`|k|` from 1 to :math:`s / 2` (:math:`\ell \approx 2\pi |k| / L`
  for a patch of side :math:`L`), log10.
* Pixel histogram: fraction of the pixels in each of ``n_bins`` fixed bins,
  equal-width between the 0.1 % and 99.9 % quantiles of the training pixels;
  values outside fall in the outer bins.

A power-spectrum classifier sees only two-point statistics, which the two
models share almost exactly; its accuracy is the bar a spherical CNN must
clear (Perraudin et al. 2019).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from .._validation import check_int

_MAX_BATCH = 64


def as_numpy_2d(x: Any) -> np.ndarray:
    """``x`` [N, n] or [N, n, 1] as a float64 numpy array [N, n]."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 2:
        raise ValueError(f"Expected 'x' of shape [N, n] or [N, n, 1] (got {x.shape})")
    return x


def power_spectrum_features(x: Any, nside: int, patches: Optional[Any] = None,
                            n_bins: int = 16, lmax: Optional[int] = None) -> torch.Tensor:
    r"""Binned log10 power spectra of NESTED samples, float32 [N, n_bins].

    Args:
        x (Tensor): samples [N, n] or [N, n, 1], NESTED; full maps
            (:math:`n = 12 N_{side}^2`) or patches.
        nside (int): HEALPix resolution.
        patches (Tensor, optional): for patches, the patch index of each
            sample; patch ``p`` covers the NESTED pixels ``[p n, (p + 1) n)``.
        n_bins (int, optional): number of :math:`\ell` bins. (default: 16)
        lmax (int, optional): largest multipole. (default: :obj:`3 nside - 1`)
    """
    import healpy as hp

    x = as_numpy_2d(x)
    n_bins = check_int('n_bins', n_bins, minimum=1)
    npix = 12 * nside * nside
    lmax = 3 * nside - 1 if lmax is None else check_int('lmax', lmax, minimum=n_bins + 1)
    n_samples, n = x.shape
    if npix % n:
        raise ValueError(f"Expected samples of a divisor of 12 * nside**2 = {npix} pixels "
                         f"(got {n})")
    if n != npix:
        if patches is None:
            raise ValueError("Expected 'patches' (the patch index of each sample) for "
                             "partial-sky samples")
        patches = np.asarray(patches.cpu() if isinstance(patches, torch.Tensor) else patches)
        if patches.shape != (n_samples,):
            raise ValueError(f"Expected 'patches' of shape [{n_samples}] (got "
                             f"{patches.shape})")
    ell, m = hp.Alm.getlm(lmax)
    mult = np.where(m == 0, 1.0, 2.0)
    edges = np.linspace(2, lmax + 1, n_bins + 1).round().astype(np.int64)
    which = np.digitize(np.arange(lmax + 1), edges) - 1  # bin of each l, -1: l < 2
    counts = np.bincount(which[which >= 0], minlength=n_bins)[:n_bins]
    nest_to_ring = hp.nest2ring(nside, np.arange(npix))
    fsky = n / npix
    out = np.empty((n_samples, n_bins))
    for start in range(0, n_samples, _MAX_BATCH):
        chunk = x[start:start + _MAX_BATCH]
        sky = np.zeros((len(chunk), npix))
        if n == npix:
            sky[:, nest_to_ring] = chunk
        else:
            p = patches[start:start + _MAX_BATCH]
            cols = p[:, None] * n + np.arange(n)
            sky[np.arange(len(chunk))[:, None], nest_to_ring[cols]] = chunk
        alm = np.atleast_2d(hp.map2alm(sky, lmax=lmax, iter=0, pol=False))
        power = np.abs(alm) ** 2 * mult
        cl = np.stack([np.bincount(ell, weights=row, minlength=lmax + 1) for row in power])
        cl /= (2 * np.arange(lmax + 1) + 1) * fsky
        binned = np.stack([np.bincount(which[which >= 0], weights=row[which >= 0],
                                       minlength=n_bins)[:n_bins] for row in cl]) / counts
        out[start:start + len(chunk)] = np.log10(np.maximum(binned, 1e-300))
    return torch.from_numpy(out).float()


#: Tapers of :func:`patch_power_spectrum_features`.
TAPERS = ('none', 'tukey', 'hann')


def _taper(side: int, kind: str) -> np.ndarray:
    if kind == 'none':
        return np.ones(side)
    t = np.arange(side) + 0.5
    if kind == 'hann':
        return np.sin(np.pi * t / side) ** 2
    # Tukey, 25 %: cosine ramps over the outer eighth on each side
    w = np.ones(side)
    ramp = side // 8
    if ramp:
        r = 0.5 * (1 - np.cos(np.pi * t[:ramp] / ramp))
        w[:ramp], w[side - ramp:] = r, r[::-1]
    return w


def patch_power_spectrum_features(x: Any, n_bins: int = 16, taper: str = 'tukey'
                                  ) -> torch.Tensor:
    r"""Binned log10 power spectra of NESTED base-pixel patches on their grid,
    float32 [N, n_bins] (see the module; the flat-sky estimate, a few
    microseconds per patch where a spherical transform takes tens of ms).

    Args:
        x (Tensor): patches [N, n] or [N, n, 1], NESTED, :math:`n` a power of four.
        n_bins (int, optional): number of :math:`|k|` bins. (default: 16)
        taper (str, optional): one of :obj:`TAPERS`, the window applied along
            each grid axis before the FFT. (default: ``'tukey'``)
    """
    from ..samplings.nested_patch import nested_patch_grid
    x = as_numpy_2d(x)
    n_bins = check_int('n_bins', n_bins, minimum=1)
    if taper not in TAPERS:
        raise ValueError(f"Expected 'taper' to be one of {TAPERS} (got {taper!r})")
    grid = nested_patch_grid(x.shape[1])
    side = grid.shape[0]
    if n_bins > side // 2:
        raise ValueError(f"Expected 'n_bins' <= {side // 2} for patches of side {side} "
                         f"(got {n_bins})")
    w = _taper(side, taper)
    window = np.outer(w, w)
    k = np.fft.fftfreq(side) * side
    kk = np.hypot(k[:, None], k[None, :])
    edges = np.linspace(1.0, side / 2 + 1e-9, n_bins + 1)
    which = np.digitize(kk.ravel(), edges) - 1
    ok = (which >= 0) & (which < n_bins)
    counts = np.bincount(which[ok], minlength=n_bins)
    out = np.empty((x.shape[0], n_bins))
    for start in range(0, x.shape[0], 256):
        img = x[start:start + 256][:, grid]
        img = (img - img.mean(axis=(1, 2), keepdims=True)) * window
        power = np.abs(np.fft.fft2(img)) ** 2
        flat = power.reshape(len(img), -1)[:, ok]
        binned = np.stack([np.bincount(which[ok], weights=row, minlength=n_bins)
                           for row in flat]) / counts
        out[start:start + len(img)] = np.log10(np.maximum(binned, 1e-300))
    return torch.from_numpy(out).float()


def histogram_edges(x_train: Any, n_bins: int = 32, tail: float = 1e-3) -> torch.Tensor:
    """Fixed histogram bin edges [n_bins + 1] from the training pixels:
    equal width between the ``tail`` and ``1 - tail`` quantiles."""
    n_bins = check_int('n_bins', n_bins, minimum=1)
    values = as_numpy_2d(x_train).ravel()
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return torch.linspace(float(lo), float(hi), n_bins + 1, dtype=torch.float64)


def histogram_features(x: Any, edges: torch.Tensor) -> torch.Tensor:
    """Fraction of each sample's pixels in each bin, float32 [N, len(edges) - 1];
    values beyond the edges count in the outer bins."""
    x = torch.as_tensor(as_numpy_2d(x))
    n_bins = edges.numel() - 1
    # bins [e_k, e_k+1), as numpy.histogram; 0 .. n_bins - 1
    index = torch.bucketize(x, edges[1:-1].to(x.dtype), right=True)
    counts = torch.zeros(x.size(0), n_bins, dtype=torch.float64)
    counts.scatter_add_(1, index, torch.ones_like(x))
    return (counts / x.size(1)).float()


def channel_statistics(x: torch.Tensor) -> torch.Tensor:
    """Rotation-invariant statistics of each channel over the pixels: mean,
    std and the nine deciles, float32 [N, 11 C] for maps ``x`` [N, n, C]
    (pixels weighted equally)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"Expected 'x' to be a tensor [N, n, C] (got "
                         f"{getattr(x, 'shape', type(x).__name__)})")
    xd = x.double()
    q = torch.quantile(xd, torch.linspace(0.1, 0.9, 9, dtype=torch.float64), dim=1)
    q = q.permute(1, 0, 2).reshape(x.size(0), -1)
    return torch.cat([xd.mean(1), xd.std(1), q], dim=1).float()
