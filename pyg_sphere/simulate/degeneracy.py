r"""Pairs of cosmologies whose convergence maps have the same power spectrum
(the design of the DeepSphere cosmology experiment, `Perraudin et al. 2019
<https://arxiv.org/abs/1810.12186>`_: "Omega_m, sigma_8 chosen to get
identical power spectra").

The mean power spectrum of the simulated maps follows from the stage-1
spectra alone (:func:`~pyg_sphere.simulate.lensing.shell_spectra`): the map
is :math:`\kappa = \sum_i w_i \delta_i`, a weighted sum of lognormal shells
whose spectra GLASS reproduces, with only the pairs of shells at most
``ncorr`` apart correlated, then smoothed by a Gaussian beam :math:`b_\ell`
and averaged over pixels (window :math:`p_\ell`):

.. math::
    C^{\kappa\kappa}_\ell = b_\ell^2\, p_\ell^2 \sum_{|i - j| \le n_{corr}}
    w_i w_j\, C^{ij}_\ell .

:func:`degenerate_sigma8` finds the :math:`\sigma_8` of a model of given
:math:`\Omega_m` whose spectrum matches a reference model's over bands of
:math:`\ell`, weighting each band by the statistical error of the binned
spectrum of one patch (:func:`patch_band_errors`); :func:`spectrum_ratio`
tabulates the result.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._validation import check_int, check_real
from .cosmology_config import CosmologyConfig


def beam_window(lmax: int, fwhm_arcmin: float) -> np.ndarray:
    r"""Gaussian beam :math:`b_\ell = \exp(-\ell(\ell + 1)\sigma^2 / 2)`,
    :math:`\sigma = \mathrm{FWHM} / \sqrt{8 \ln 2}`, float64 [lmax + 1] (what
    ``healpy.smoothing`` multiplies the :math:`a_{\ell m}` by)."""
    ell = np.arange(check_int('lmax', lmax, minimum=0) + 1)
    sigma = math.radians(check_real('fwhm_arcmin', fwhm_arcmin, 0.0) / 60.0) / \
        math.sqrt(8.0 * math.log(2.0))
    return np.exp(-0.5 * ell * (ell + 1) * sigma ** 2)


def convergence_spectrum(spectra: Dict[str, np.ndarray], ncorr: int,
                         smoothing_arcmin: float = 0.0,
                         pixwin: Optional[np.ndarray] = None) -> np.ndarray:
    r"""Mean power spectrum :math:`C^{\kappa\kappa}_\ell` [lmax + 1] of the maps
    made from stage-1 ``spectra`` (``cls`` in GLASS order and
    ``lensing_weights``; the formula of the module). ``pixwin`` defaults to
    ``spectra['pixwin']`` when present (else 1)."""
    cls = np.asarray(spectra['cls'], dtype=np.float64)
    weights = np.asarray(spectra['lensing_weights'], dtype=np.float64)
    n = len(weights)
    if cls.shape[0] != n * (n + 1) // 2:
        raise ValueError(f"Expected 'cls' to hold the {n * (n + 1) // 2} spectra of {n} "
                         f"shells (got {cls.shape[0]})")
    ncorr = check_int('ncorr', ncorr, minimum=0)
    lmax = cls.shape[1] - 1
    total = np.zeros(lmax + 1)
    k = 0
    for i in range(n):
        for j in range(i + 1):  # row k is C^{i, i - j}
            if j <= ncorr:
                total += (1.0 if j == 0 else 2.0) * weights[i] * weights[i - j] * cls[k]
            k += 1
    if pixwin is None:
        pixwin = spectra.get('pixwin')
    if pixwin is not None:
        total *= np.asarray(pixwin, dtype=np.float64)[:lmax + 1] ** 2
    return total * beam_window(lmax, smoothing_arcmin) ** 2


def band_edges(lmax: int, n_bands: int = 16, lmin: int = 2) -> np.ndarray:
    r"""Edges [n_bands + 1] of ``n_bands`` equal-width bands of
    :math:`\ell \in [l_{min}, l_{max}]` (band ``b`` is ``edges[b] <= l <
    edges[b + 1]``), the bands of the power-spectrum baseline."""
    n_bands = check_int('n_bands', n_bands, minimum=1)
    return np.linspace(lmin, lmax + 1, n_bands + 1).round().astype(np.int64)


def binned(cl: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of ``cl`` over each band of ``edges``."""
    return np.array([cl[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])


def noise_spectrum(noise_std: float, nside: int) -> float:
    r"""Spectrum of white pixel noise of std :math:`\sigma_n`:
    :math:`N_\ell = \sigma_n^2\, 4\pi / (12 N_{side}^2)`."""
    return float(noise_std) ** 2 * 4.0 * math.pi / (12 * nside * nside)


def patch_band_errors(cl: np.ndarray, edges: np.ndarray, fsky: float,
                      noise_cl: float = 0.0) -> np.ndarray:
    r"""Relative standard deviation of the binned spectrum of one patch of sky
    fraction :math:`f_{sky}`, per band (Gaussian field, Knox formula):

    .. math::
        \frac{\sigma(\hat C_b)}{C_b} = \sqrt{\frac{2}{f_{sky} \sum_{\ell \in b}
        (2\ell + 1)}}\; \frac{C_b + N_b}{C_b}.
    """
    fsky = check_real('fsky', fsky, 0.0, strict=True)
    modes = np.array([(2 * np.arange(a, b) + 1).sum() for a, b in zip(edges[:-1], edges[1:])])
    c = binned(cl, edges)
    return np.sqrt(2.0 / (fsky * modes)) * (c + noise_cl) / c


@dataclasses.dataclass(frozen=True)
class SpectrumRatio:
    r"""The binned ratio of two mean convergence spectra.

    Attributes:
        edges: band edges [n_bands + 1].
        ratio: :math:`C^{(1)}_b / C^{(0)}_b` per band.
        error: relative error of one patch's binned spectrum per band
            (:func:`patch_band_errors`).
        chi2: :math:`\sum_b (\log r_b / \sigma_b)^2`, the squared separation
            of the mean spectra in units of one patch's errors (treating bands
            as independent); a linear classifier of one patch's spectrum
            reaches about :math:`\Phi(\sqrt{\chi^2} / 2)` accuracy.
    """
    edges: np.ndarray
    ratio: np.ndarray
    error: np.ndarray

    @property
    def chi2(self) -> float:
        return float(np.sum((np.log(self.ratio) / self.error) ** 2))

    @property
    def accuracy_bound(self) -> float:
        r""":math:`\Phi(\sqrt{\chi^2} / 2)`: the accuracy of the ideal classifier
        of one patch's binned spectrum (Gaussian bands) given these means."""
        return 0.5 * (1.0 + math.erf(math.sqrt(self.chi2) / (2.0 * math.sqrt(2.0))))

    def lines(self, indent: str = '  ') -> List[str]:
        """Rows ``l-band  ratio  (ratio - 1) / error`` for printing."""
        out = [f'{indent}{"l band":>11} {"C1/C0":>7} {"(C1/C0-1)/err":>14}']
        for a, b, r, e in zip(self.edges[:-1], self.edges[1:], self.ratio, self.error):
            out.append(f'{indent}{f"{a}-{b - 1}":>11} {r:7.3f} {(r - 1.0) / e:14.2f}')
        return out


def spectrum_ratio(cl0: np.ndarray, cl1: np.ndarray, edges: np.ndarray, fsky: float,
                   noise_cl: float = 0.0) -> SpectrumRatio:
    """The binned ratio ``cl1 / cl0`` over ``edges``, with one patch's errors
    of ``cl0`` (plus noise ``noise_cl``)."""
    return SpectrumRatio(np.asarray(edges), binned(cl1, edges) / binned(cl0, edges),
                         patch_band_errors(cl0, edges, fsky, noise_cl))


@dataclasses.dataclass(frozen=True)
class DegeneratePair:
    """The result of :func:`degenerate_sigma8`: ``cosmologies`` (the reference
    and the solved model), the binned ``ratio`` (:class:`SpectrumRatio`) and
    the ``evaluations`` ``(sigma8, weighted mean log ratio)`` of the solve."""
    cosmologies: Tuple[Tuple[float, float], Tuple[float, float]]
    ratio: SpectrumRatio
    evaluations: Tuple[Tuple[float, float], ...]


def _spectrum_of(config: CosmologyConfig, omega_m: float, sigma8: float,
                 pixwin: Optional[np.ndarray], limber_lmin: Any) -> np.ndarray:
    from . import lensing
    spectra = lensing.shell_spectra(config, omega_m, sigma8, limber_lmin=limber_lmin)
    return convergence_spectrum(spectra, config.ncorr, config.smoothing_arcmin, pixwin)


def degenerate_sigma8(config: CosmologyConfig, omega_m: float, fsky: float,
                      noise_std: float = 0.0, n_bands: int = 16, lmin: int = 2,
                      sigma8_guess: Optional[float] = None, tol: float = 1e-4,
                      max_evaluations: int = 8, limber_lmin: Any = 'config',
                      spectrum: Optional[Callable[[float, float], np.ndarray]] = None
                      ) -> DegeneratePair:
    r"""The :math:`\sigma_8` at which a model of matter density ``omega_m`` has
    the mean convergence spectrum of ``config.cosmologies[0]``, for the maps
    of ``config`` (source redshifts, shells, smoothing, pixel window, nside,
    :math:`\ell_{max}`).

    Solves :math:`\sum_b \log(C^{(1)}_b / C^{(0)}_b) / \sigma_b^2 = 0` over
    ``n_bands`` equal bands of :math:`\ell \in [l_{min}, l_{max}]`, with
    :math:`\sigma_b` one patch's relative error (:func:`patch_band_errors`,
    sky fraction ``fsky``, white noise ``noise_std``), by the secant method
    in :math:`\log \sigma_8` (the spectrum scales about as
    :math:`\sigma_8^{2 \dots 3}`), starting from :math:`S_8 = \sigma_8
    (\Omega_m / 0.3)^{0.5}` fixed unless ``sigma8_guess`` is given.

    Each evaluation is one CAMB run (:func:`~pyg_sphere.simulate.lensing.shell_spectra`,
    ``limber_lmin`` overriding ``config.limber_lmin``); ``spectrum(omega_m,
    sigma8)`` replaces it (e.g. a cached or approximate model).

    Example:
        >>> config = CosmologyConfig(nside=128)  # doctest: +SKIP
        >>> pair = degenerate_sigma8(config, 0.26, fsky=1 / 48)  # doctest: +SKIP
        >>> print('\n'.join(pair.ratio.lines()))  # doctest: +SKIP
    """
    if not isinstance(config, CosmologyConfig):
        raise ValueError(f"Expected 'config' to be a CosmologyConfig (got "
                         f"{type(config).__name__})")
    omega_m = check_real('omega_m', omega_m, config.omega_b, strict=True)
    max_evaluations = check_int('max_evaluations', max_evaluations, minimum=2)
    om0, s80 = config.cosmologies[0]
    if spectrum is None:
        from . import lensing
        pixwin = lensing.pixel_window(config.nside, config.lmax) if config.pixel_window \
            else None

        def spectrum(om: float, s8: float) -> np.ndarray:
            return _spectrum_of(config, om, s8, pixwin, limber_lmin)
    edges = band_edges(config.lmax, n_bands, lmin)
    cl0 = spectrum(om0, s80)
    noise_cl = noise_spectrum(noise_std, config.nside)
    errors = patch_band_errors(cl0, edges, fsky, noise_cl)
    weights = errors ** -2 / np.sum(errors ** -2)
    c0 = binned(cl0, edges)

    def mismatch(s8: float) -> Tuple[float, np.ndarray]:
        cl1 = spectrum(omega_m, s8)
        return float(np.sum(weights * np.log(binned(cl1, edges) / c0))), cl1

    x0 = math.log(sigma8_guess if sigma8_guess is not None
                  else s80 * math.sqrt(om0 / omega_m))
    f0, cl = mismatch(math.exp(x0))
    evaluations = [(math.exp(x0), f0)]
    x1 = x0 - f0 / 2.5  # first step: C ~ sigma_8^2.5
    best = (abs(f0), x0, cl)
    while len(evaluations) < max_evaluations and abs(best[0]) > tol:
        f1, cl = mismatch(math.exp(x1))
        evaluations.append((math.exp(x1), f1))
        if abs(f1) < best[0]:
            best = (abs(f1), x1, cl)
        if abs(f1) <= tol or f1 == f0:
            break
        x0, f0, x1 = x1, f1, x1 - f1 * (x1 - x0) / (f1 - f0)
    _, x, cl1 = best
    sigma8 = float(math.exp(x))
    return DegeneratePair(((float(om0), float(s80)), (float(omega_m), sigma8)),
                          spectrum_ratio(cl0, cl1, edges, fsky, noise_cl), tuple(evaluations))
