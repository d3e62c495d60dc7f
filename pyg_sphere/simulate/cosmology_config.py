r"""Every parameter of the simulated weak-lensing convergence maps of the
cosmology task (:class:`CosmologyConfig`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

from .._validation import check_choice, check_int, check_real, is_power_of_two

#: The two models of the paper, (Omega_m, sigma_8); class label = position.
COSMOLOGIES: Tuple[Tuple[float, float], ...] = ((0.31, 0.82), (0.26, 0.9002557))
#: Halofit versions accepted (CAMB's names).
HALOFIT_VERSIONS: Tuple[str, ...] = ('takahashi', 'original', 'mead2020')


@dataclasses.dataclass(frozen=True)
class CosmologyConfig:
    r"""Every parameter of the simulated convergence maps (hashable, frozen).

    Flat :math:`\Lambda`CDM with massless neutrinos; the matter power is CAMB's
    with non-linear halofit and :math:`A_s` tuned so that the linear
    :math:`\sigma_8(z=0)` is the requested one. Matter is simulated in
    lognormal shells of ``shell_spacing`` comoving Mpc (``ncorr`` neighbouring
    shells correlated), lensed onto sources with a Gaussian redshift
    distribution, and the convergence maps are smoothed by a Gaussian beam.

    Args:
        cosmologies (tuple of (float, float), optional): one
            :math:`(\Omega_m, \sigma_8)` per class. (default: :obj:`COSMOLOGIES`)
        n_maps (int, optional): maps per class. (default: :obj:`128`)
        seed (int, optional): master seed; map ``i`` of class ``c`` uses a seed
            derived from ``(seed, c, i)``. (default: :obj:`0`)
        nside (int, optional): HEALPix resolution, a power of two (maps are
            NESTED). (default: :obj:`64`)
        lmax (int, optional): band limit of the spectra and maps.
            (default: :obj:`3 * nside - 1`)
        h (float, optional): :math:`H_0 / (100` km/s/Mpc). (default: :obj:`0.7`)
        omega_b (float, optional): baryon density :math:`\Omega_b`.
            (default: :obj:`0.05`)
        n_s (float, optional): scalar spectral index. (default: :obj:`0.96`)
        halofit_version (str, optional): CAMB's halofit, one of
            :obj:`HALOFIT_VERSIONS`. (default: :obj:`'takahashi'`)
        shell_spacing (float, optional): comoving distance between shell edges,
            in Mpc. (default: :obj:`200.0`)
        ncorr (int, optional): number of neighbouring shells correlated.
            (default: :obj:`3`)
        z_source (float, optional): mean source redshift. (default: :obj:`1.0`)
        sigma_z (float, optional): std of the Gaussian source n(z).
            (default: :obj:`0.05`)
        smoothing_arcmin (float, optional): FWHM of the Gaussian smoothing in
            arcmin, 0 for none. (default: :obj:`3.0`)
        limber_lmin (int, optional): CAMB uses the Limber approximation for the
            shell spectra from this multipole on (:obj:`None`: never; ~4x
            slower). (default: :obj:`100`)
        pixel_window (bool, optional): apply the HEALPix pixel window to the
            shell spectra (computed, not downloaded). (default: :obj:`True`)

    Example:
        >>> config = CosmologyConfig(nside=32, n_maps=8)
        >>> config.lmax
        95
    """
    cosmologies: Tuple[Tuple[float, float], ...] = COSMOLOGIES
    n_maps: int = 128
    seed: int = 0
    nside: int = 64
    lmax: Optional[int] = None
    h: float = 0.7
    omega_b: float = 0.05
    n_s: float = 0.96
    halofit_version: str = 'takahashi'
    shell_spacing: float = 200.0
    ncorr: int = 3
    z_source: float = 1.0
    sigma_z: float = 0.05
    smoothing_arcmin: float = 3.0
    limber_lmin: Optional[int] = 100
    pixel_window: bool = True

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        cosmologies = self.cosmologies
        if (isinstance(cosmologies, (str, bytes)) or not isinstance(cosmologies, Sequence)
                or len(cosmologies) < 2):
            raise ValueError(f"Expected 'cosmologies' to be a sequence of at least two "
                             f"(Omega_m, sigma_8) pairs (got {cosmologies!r})")
        pairs = []
        for pair in cosmologies:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"Expected 'cosmologies' to hold (Omega_m, sigma_8) pairs "
                                 f"(got {pair!r})")
            pairs.append((check_real('cosmologies', pair[0], 0.0, strict=True),
                          check_real('cosmologies', pair[1], 0.0, strict=True)))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"Expected 'cosmologies' to be distinct (got {pairs})")
        put('cosmologies', tuple(pairs))
        put('n_maps', check_int('n_maps', self.n_maps, minimum=1))
        put('seed', check_int('seed', self.seed, minimum=0))
        nside = check_int('nside', self.nside, minimum=1)
        if not is_power_of_two(nside):
            raise ValueError(f"Expected 'nside' to be a power of two (maps are NESTED) "
                             f"(got {nside})")
        put('nside', nside)
        lmax = 3 * nside - 1 if self.lmax is None else check_int('lmax', self.lmax, minimum=2)
        if lmax > 3 * nside - 1:
            raise ValueError(f"Expected 'lmax' <= 3 * nside - 1 = {3 * nside - 1} "
                             f"(got {lmax})")
        put('lmax', lmax)
        put('h', check_real('h', self.h, 0.0, strict=True))
        omega_b = check_real('omega_b', self.omega_b, 0.0)
        if any(om <= omega_b for om, _ in pairs):
            raise ValueError(f"Expected 'omega_b' to be below every Omega_m in "
                             f"'cosmologies' (got {omega_b})")
        put('omega_b', omega_b)
        put('n_s', check_real('n_s', self.n_s, 0.0, strict=True))
        check_choice('halofit_version', self.halofit_version, HALOFIT_VERSIONS)
        put('shell_spacing', check_real('shell_spacing', self.shell_spacing, 0.0,
                                         strict=True))
        put('ncorr', check_int('ncorr', self.ncorr, minimum=1))
        put('z_source', check_real('z_source', self.z_source, 0.0, strict=True))
        put('sigma_z', check_real('sigma_z', self.sigma_z, 0.0, strict=True))
        put('smoothing_arcmin', check_real('smoothing_arcmin', self.smoothing_arcmin, 0.0))
        if self.limber_lmin is not None:
            put('limber_lmin', check_int('limber_lmin', self.limber_lmin, minimum=1))
        if not isinstance(self.pixel_window, bool):
            raise ValueError(f"Expected 'pixel_window' to be a bool (got {self.pixel_window!r})")

    @property
    def num_classes(self) -> int:
        return len(self.cosmologies)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able parameters (what the manifest records)."""
        out = dataclasses.asdict(self)
        out['cosmologies'] = [list(pair) for pair in self.cosmologies]
        return out
