"""Weak-lensing convergence maps with CAMB + GLASS (the recipe of GLASS's
lensing example), split into two stages so that the expensive one is cached:

1. :func:`compute_spectra` (once per cosmology, CAMB, ~30-100 s at nside 64):
   matter angular power spectra of the shells, solved for the Gaussian spectra
   of the lognormal fields, and the lensing weight of each shell for the
   source redshift distribution. Everything stage 2 needs is a plain array.
2. :func:`simulate_map` (once per map, GLASS + healpy, ~0.2 s at nside 64):
   correlated lognormal matter shells, summed with their lensing weights into
   a convergence map, smoothed, returned in NESTED order.

Nothing here downloads anything: healpy's pixel-window tables are replaced by
:func:`pixel_window`, computed from the pixel geometry.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Dict, Sequence

import numpy as np

EXTRA = 'cosmo'

# camb.sources / glass.ext.camb's convention: windows are ramped linearly
# from z = 0 to z = 0.1, where CAMB's source integrals are ill-conditioned.
_CAMB_RAMP_Z = 0.1
# Gaussian n(z): shells cover z in [0, z_source + _NZ_SIGMAS * sigma_z].
_NZ_SIGMAS = 5.0


def require(module: str, package: str | None = None) -> Any:
    """Import an optional dependency or raise an ImportError naming it and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = package or module.split('.')[0]
        raise ImportError(f"The cosmology dataset needs the optional package '{package}' "
                          f"(import of '{module}' failed: {err}). Install it with "
                          f"`pip install {package}` or `pip install pyg-sphere[{EXTRA}]`"
                          ) from err


def package_versions() -> Dict[str, str | None]:
    """Versions of the packages that shape the maps (:obj:`None`: not installed)."""
    from importlib import metadata

    out: Dict[str, str | None] = {}
    for name in ('glass', 'camb', 'cosmology.compat.camb', 'healpy', 'numpy'):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def map_seed(seed: int, label: int, index: int) -> int:
    """The 64-bit seed of map ``index`` of class ``label``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, label,
    index)`` alone, so each map is reproducible on its own, whatever the order
    or the process that makes it.
    """
    state = np.random.SeedSequence([seed, label, index]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


# ----------------------------------------------------------------------------
# HEALPix pixel window
# ----------------------------------------------------------------------------

def _pixel_window_squared(nside: int, ipix: np.ndarray, lmax: int,
                          subdivisions: int) -> np.ndarray:
    """w_l^2 of each pixel in ``ipix`` (NESTED), shape [len(ipix), lmax + 1].

    w_l^2(p) = mean over pairs (x, y) of points of p of P_l(x . y), the points
    being the centres of the 4**subdivisions NESTED sub-pixels of p.
    """
    import healpy as hp

    sub = 4 ** subdivisions
    children = (ipix[:, None] * sub + np.arange(sub)).ravel()
    xyz = np.stack(hp.pix2vec(nside << subdivisions, children, nest=True), axis=-1)
    xyz = xyz.reshape(len(ipix), sub, 3)
    cos = np.clip(np.einsum('bik,bjk->bij', xyz, xyz), -1.0, 1.0)
    out = np.empty((len(ipix), lmax + 1))
    out[:, 0] = 1.0
    if lmax == 0:
        return out
    p_prev, p_cur = np.ones_like(cos), cos.copy()
    out[:, 1] = p_cur.mean(axis=(1, 2))
    for ell in range(1, lmax):  # Bonnet: (l+1) P_{l+1} = (2l+1) x P_l - l P_{l-1}
        p_prev, p_cur = p_cur, ((2 * ell + 1) * cos * p_cur - ell * p_prev) / (ell + 1)
        out[:, ell + 1] = p_cur.mean(axis=(1, 2))
    return out


def pixel_window(nside: int, lmax: int, subdivisions: int = 3,
                 max_pixels_per_face: int = 512) -> np.ndarray:
    r"""HEALPix pixel window :math:`w_\ell`, computed (no download).

    .. math::
        w_\ell^2 = \frac{1}{N_{pix}} \sum_p \frac{1}{\Omega_p^2}
        \int_p \int_p P_\ell(\hat x \cdot \hat y)\, d\hat x\, d\hat y,

    the power that averaging a field over a pixel keeps (Gorski et al. 2005),
    what healpy's ``pixwin`` tabulates. The double integral is a mean over
    pairs of sub-pixel centres, at two sub-pixel levels combined by
    Richardson extrapolation (the midpoint error falls as 4**-k). The mean
    over pixels uses the symmetries of the 12 base pixels: the 4 northern
    faces are rotations of face 0, the 4 southern faces mirror them, the 4
    equatorial faces are rotations of face 4. Within a face, at most
    ``max_pixels_per_face`` pixels are used, one child drawn (seeded) from
    each NESTED parent of the right level: a stratified sample, all pixels
    for nside <= 16, ~2e-4 from the full mean at nside 32 and 64.
    """
    npface = nside * nside
    step = 1
    while npface // step > max_pixels_per_face:
        step *= 4
    sel = np.arange(0, npface, step, dtype=np.int64)
    if step > 1:
        sel += np.random.default_rng(0).integers(0, step, size=sel.size)
    levels = []
    for k in (subdivisions - 1, subdivisions):
        polar = _pixel_window_squared(nside, sel, lmax, k).mean(axis=0)
        equatorial = _pixel_window_squared(nside, 4 * npface + sel, lmax, k).mean(axis=0)
        levels.append((2.0 * polar + equatorial) / 3.0)
    w2 = (4.0 * levels[1] - levels[0]) / 3.0
    return np.sqrt(np.clip(w2, 0.0, None))


# ----------------------------------------------------------------------------
# Stage 1: CAMB spectra of the shells
# ----------------------------------------------------------------------------

def _camb_params(camb: Any, omega_m: float, sigma8: float, config: Any) -> Any:
    """CAMB parameters with the linear sigma_8(z=0) set to ``sigma8``.

    One linear transfer run at a trial A_s measures sigma_8; A_s is then
    rescaled by (sigma8 / measured)^2, exact since linear sigma_8 is
    proportional to sqrt(A_s).
    """
    h = config.h
    kwargs = dict(H0=100.0 * h, ombh2=config.omega_b * h * h,
                  omch2=(omega_m - config.omega_b) * h * h, mnu=0.0,
                  num_massive_neutrinos=0, ns=config.n_s)
    as_trial = 2.1e-9
    trial = camb.set_params(As=as_trial, WantTransfer=True,
                            NonLinear=camb.model.NonLinear_none, **kwargs)
    trial.set_matter_power(redshifts=[0.0], kmax=2.0)
    sigma8_trial = float(camb.get_results(trial).get_sigma8_0())
    return camb.set_params(As=as_trial * (sigma8 / sigma8_trial) ** 2,
                           NonLinear=camb.model.NonLinear_both,
                           halofit_version=config.halofit_version, **kwargs)


def _shell_cls(camb: Any, pars: Any, shells: Sequence[Any], lmax: int,
               limber_lmin: int | None) -> list:
    """Angular matter spectra of the shells, in GLASS order (i, i - j)."""
    pars = pars.copy()
    pars.WantTransfer = False
    pars.WantCls = True
    pars.Want_CMB = False
    pars.min_l = 1
    pars.set_for_lmax(lmax)
    terms = pars.SourceTerms
    terms.limber_windows = limber_lmin is not None
    if limber_lmin is not None:
        terms.limber_phi_lmin = int(limber_lmin)
    terms.counts_density = True
    for name in ('counts_redshift', 'counts_lensing', 'counts_velocity', 'counts_radial',
                 'counts_timedelay', 'counts_ISW', 'counts_potential', 'counts_evolve'):
        setattr(terms, name, False)
    pars.SourceWindows = [camb.sources.SplinedSourceWindow(z=np.asarray(w.za),
                                                           W=np.asarray(w.wa))
                          for w in shells]
    cls = camb.get_results(pars).get_source_cls_dict(lmax=lmax, raw_cl=True)
    n = len(shells)
    return [np.asarray(cls[f'W{i + 1}xW{i + 1 - j}'], dtype=np.float64)
            for i in range(n) for j in range(i + 1)]


def shell_spectra(config: Any, omega_m: float, sigma8: float,
                  limber_lmin: Any = 'config') -> Dict[str, np.ndarray]:
    """The CAMB part of stage 1 for one cosmology: the matter spectra of the
    shells and their lensing weights (no pixel window, no Gaussian solve).

    Returns a dict of arrays: ``cls`` [n_spectra, lmax + 1] (every pair of
    shells, GLASS order (i, i - j)), ``zb`` (shell edges), ``zeff``,
    ``lensing_weights`` [n_shells] and the scalar ``As``. ``limber_lmin``
    overrides ``config.limber_lmin`` (``'config'``: keep it).
    """
    camb = require('camb')
    glass = require('glass')
    compat = require('cosmology.compat.camb')

    limber = config.limber_lmin if limber_lmin == 'config' else limber_lmin
    lmax = config.lmax
    pars = _camb_params(camb, omega_m, sigma8, config)
    cosmo = compat.Cosmology(camb.get_background(pars))

    zmax = config.z_source + _NZ_SIGMAS * config.sigma_z
    zb = np.asarray(glass.distance_grid(cosmo, 0.0, zmax, dx=config.shell_spacing))
    shells = glass.tophat_windows(zb, weight=lambda z: np.clip(z / _CAMB_RAMP_Z, None, 1.0))
    cls = _shell_cls(camb, pars, shells, lmax, limber)

    z = np.linspace(0.0, zmax, 1001)
    dndz = np.exp(-0.5 * ((z - config.z_source) / config.sigma_z) ** 2)
    nz_weights = np.asarray(glass.partition(z, dndz, shells))
    lensing_weights = np.asarray(glass.multi_plane_weights(nz_weights, shells, cosmo))
    return {
        'cls': np.stack([cl[:lmax + 1] for cl in cls]),
        'zb': zb.astype(np.float64),
        'zeff': np.asarray([w.zeff for w in shells], dtype=np.float64),
        'lensing_weights': lensing_weights.astype(np.float64),
        'As': np.float64(pars.InitPower.As),
    }


def solve_gaussian(cls: np.ndarray, n_shells: int, ncorr: int,
                   pixwin: np.ndarray | None) -> Dict[str, np.ndarray]:
    r"""The Gaussian spectra of lognormal shells whose spectra are ``cls``
    (GLASS order; truncated to ``ncorr`` neighbours and multiplied by
    :math:`w_\ell^2` when ``pixwin`` is given), solved pair by pair with
    GLASS's solver (``glass.grf.solve``, as ``glass.solve_gaussian_spectra``).

    GLASS judges convergence by :math:`\max_\ell |\Delta C_\ell / C_\ell|`,
    which cannot be met by a cross-spectrum of two shells that crosses zero
    (the tophat shells barely overlap: such spectra are ~1e-15 of the auto
    spectra and change sign at high :math:`\ell`), hence its "did not
    converge" warnings. What matters for the maps is the error against the
    power of the two fields, :math:`\max_\ell |\Delta C^{ij}_\ell| /
    \sqrt{C^{ii}_\ell C^{jj}_\ell}`, returned as ``gls_error`` per pair
    (``solver_error`` its maximum); GLASS's own flag is ``gls_glass_converged``.

    Returns ``gls`` [n_spectra, lmax + 1] (rows dropped by ``ncorr`` are zero
    with ``gls_present`` False), ``gls_present``, ``gls_error``,
    ``gls_glass_converged`` and ``solver_error``.
    """
    glass = require('glass')
    from glass.fields import enumerate_spectra

    lmax = cls.shape[1] - 1
    gls_in = glass.discretized_cls(list(cls), lmax=lmax, ncorr=ncorr)
    if pixwin is not None:
        gls_in = [cl * pixwin[:cl.shape[0]] ** 2 if cl.shape[0] else cl for cl in gls_in]
    if len(gls_in) != n_shells * (n_shells + 1) // 2:
        raise ValueError(f"Expected {n_shells * (n_shells + 1) // 2} shell spectra for "
                         f"{n_shells} shells (got {len(gls_in)})")
    auto = {i: np.asarray(cl) for i, j, cl in enumerate_spectra(gls_in) if i == j}
    field = glass.grf.Lognormal()
    n_spectra = len(gls_in)
    gls = np.zeros((n_spectra, lmax + 1))
    present = np.zeros(n_spectra, dtype=bool)
    error = np.zeros(n_spectra)
    converged = np.ones(n_spectra, dtype=bool)
    for k, (i, j, cl) in enumerate(enumerate_spectra(gls_in)):
        cl = np.asarray(cl, dtype=np.float64)
        if not cl.shape[0]:
            continue
        with np.errstate(divide='ignore', invalid='ignore'):  # inside GLASS's solver
            gl, realised, info = glass.grf.solve(cl, field, field, pad=2 * cl.shape[0],
                                                 monopole=0.0 if cl[0] == 0 else None)
        n = cl.shape[0]
        gls[k, :min(n, lmax + 1)] = np.asarray(gl)[:lmax + 1]
        present[k] = True
        converged[k] = info != 0
        scale = np.sqrt(np.abs(auto[i][1:n] * auto[j][1:n]))
        diff = np.abs(np.asarray(realised)[1:n] - cl[1:])
        error[k] = float(np.max(np.divide(diff, scale, out=np.zeros_like(diff),
                                          where=scale > 0), initial=0.0))
    return {'gls': gls, 'gls_present': present, 'gls_error': error,
            'gls_glass_converged': converged, 'solver_error': np.float64(error.max(initial=0.0))}


def compute_spectra(config: Any, label: int, pixwin: np.ndarray | None) -> Dict[str, np.ndarray]:
    """Everything :func:`simulate_map` needs for class ``label`` of ``config``.

    Returns a dict of arrays: ``gls`` [n_spectra, lmax + 1] (Gaussian spectra
    of the lognormal shells, GLASS order; rows of spectra dropped by ``ncorr``
    are zero with ``gls_present`` False), the solver's errors (see
    :func:`solve_gaussian`), ``cls`` (the CAMB shell spectra), ``zb`` (shell
    edges), ``zeff``, ``lensing_weights`` [n_shells], ``pixwin`` [lmax + 1],
    and the scalars ``omega_m``, ``sigma8`` (the target) and ``As`` (that
    gives it).
    """
    omega_m, sigma8 = config.cosmologies[label]
    out = shell_spectra(config, omega_m, sigma8)
    out.update(solve_gaussian(out['cls'], len(out['zeff']), config.ncorr, pixwin))
    out.update({
        'pixwin': (np.ones(config.lmax + 1) if pixwin is None
                   else np.asarray(pixwin, np.float64)),
        'omega_m': np.float64(omega_m),
        'sigma8': np.float64(sigma8),
    })
    return out


# ----------------------------------------------------------------------------
# Stage 2: one convergence map
# ----------------------------------------------------------------------------

def simulate_map(spectra: Dict[str, np.ndarray], nside: int, lmax: int, ncorr: int,
                 smoothing_arcmin: float, seed: int) -> np.ndarray:
    """One convergence map, float32 [12 nside^2], NESTED, from stage-1 ``spectra``."""
    glass = require('glass')
    import healpy as hp

    gls = [row if present else row[:0]
           for row, present in zip(spectra['gls'], spectra['gls_present'])]
    weights = spectra['lensing_weights']
    fields = [glass.grf.Lognormal() for _ in range(len(weights))]
    rng = np.random.default_rng(seed)
    kappa = np.zeros(12 * nside * nside)
    for delta, weight in zip(glass.generate(fields, gls, nside, ncorr=ncorr, rng=rng),
                             weights):
        kappa += weight * delta
    if smoothing_arcmin > 0:
        kappa = hp.smoothing(kappa, fwhm=math.radians(smoothing_arcmin / 60.0), lmax=lmax,
                             use_weights=False, use_pixel_weights=False)
    return hp.reorder(kappa, r2n=True).astype(np.float32)
