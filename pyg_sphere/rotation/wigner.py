r"""Rotations of the sphere and of maps sampled on it.

A rotation :math:`R \in SO(3)` acts on a function by
:math:`(\mathcal{R} f)(x) = f(R^{-1} x)`: the pattern moves with :math:`R`.
On the real spherical-harmonic coefficients of :mod:`pyg_sphere.rotation.harmonics`
(degree-major, see :func:`real_sph_harm`) it acts degree by degree,
:math:`c_\ell \mapsto D^\ell(R)\, c_\ell`, with the real Wigner matrices
:math:`D^\ell(R)` (:func:`wigner_d_real`). :math:`D^1(R)` is :math:`R`
itself in the :math:`(y, z, x)` order of :math:`(Y_{1,-1}, Y_{1,0}, Y_{1,1})`.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Union

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int
from .harmonic_transform import harmonic_transform
from .harmonics import degree_slice, num_coefficients
from .matrices import check_rotation, euler_zyz


def _wigner_small_d(beta: float, lmax: int):
    r"""Yield ``(l, d)`` with ``d`` [l+1, 2l+1] the Wigner
    :math:`d^\ell_{m'm}(\beta)` for rows :math:`m' = 0 .. \ell` and
    columns :math:`m = -\ell .. \ell` (the other rows follow by symmetry).

    Three-term recursion in :math:`\ell` at fixed :math:`(m', m)` (stable, as
    in `Kostelec & Rockmore (2008) <https://doi.org/10.1007/s00041-008-9013-5>`_),

    .. math::
        \frac{\sqrt{((\ell+1)^2 - m^2)((\ell+1)^2 - m'^2)}}{\ell + 1} d^{\ell+1}
        = (2\ell + 1)\left(\cos\beta - \frac{m m'}{\ell(\ell+1)}\right) d^\ell
        - \frac{\sqrt{(\ell^2 - m^2)(\ell^2 - m'^2)}}{\ell} d^{\ell-1},

    started at :math:`\ell_0 = \max(|m|, |m'|)` (the border of the block)
    from the closed forms :math:`\pm\sqrt{\binom{2\ell_0}{\ell_0 + k}}
    \cos^{a}(\beta/2) \sin^{b}(\beta/2)`, evaluated in log space.
    """
    from scipy.special import gammaln
    log_c = math.log(math.cos(beta / 2)) if math.cos(beta / 2) > 0 else -np.inf
    log_s = math.log(math.sin(beta / 2)) if math.sin(beta / 2) > 0 else -np.inf
    cosb = math.cos(beta)

    def border(l: int) -> np.ndarray:
        """d^l on the border of the block (|m'| = l or |m| = l), zero inside."""
        k = np.arange(-l, l + 1, dtype=np.float64)
        log_binom = 0.5 * (gammaln(2 * l + 1) - gammaln(l + k + 1) - gammaln(l - k + 1))

        def term(a, b):
            with np.errstate(invalid='ignore'):
                return np.exp(log_binom + np.where(a > 0, a * log_c, 0.0)
                              + np.where(b > 0, b * log_s, 0.0))
        out = np.zeros((2 * l + 1, 2 * l + 1))
        par = np.where((l - k) % 2, -1.0, 1.0)  # (-1)^(l - k)
        out[:, -1] = term(l + k, l - k)            # m = l (column), k = m'
        out[:, 0] = par * term(l - k, l + k)       # m = -l: (-1)^(m - m') = (-1)^(l + k)
        out[-1, :] = par * term(l + k, l - k)      # m' = l: (-1)^(m' - m) = (-1)^(l - k)
        out[0, :] = term(l - k, l + k)             # m' = -l
        return out

    prev = np.zeros((0, 0))
    cur = np.zeros((0, 0))
    for l in range(lmax + 1):
        new = border(l)[l:]  # rows m' = 0 .. l
        if l > 1:
            jj = float(l - 1)
            mp = np.arange(0, l, dtype=np.float64)[:, None]
            m = np.arange(-(l - 1), l, dtype=np.float64)[None, :]
            lhs = np.sqrt(((jj + 1) ** 2 - m * m) * ((jj + 1) ** 2 - mp * mp)) / (jj + 1)
            back = np.sqrt(np.clip((jj * jj - m * m) * (jj * jj - mp * mp), 0, None)) / jj
            padded = np.zeros((l, 2 * l - 1))
            padded[:l - 1, 1:-1] = prev
            new[:-1, 1:-1] = ((2 * jj + 1) * (cosb - m * mp / (jj * (jj + 1))) * cur
                              - back * padded) / lhs
        elif l == 1:
            new[0, 1] = cosb  # d^1_00
        prev, cur = cur, new
        yield l, cur


def _y_block(d: np.ndarray) -> np.ndarray:
    r"""Real-basis matrix of a rotation about y from its Wigner d (one degree).

    With :math:`s_p = (-1)^p` and :math:`p, q > 0` (using the symmetries of
    :math:`d`): :math:`D_{pq} = s_p (s_q d_{pq} + d_{p,-q})`,
    :math:`D_{-p,-q} = s_p (s_q d_{pq} - d_{p,-q})`,
    :math:`D_{p0} = \sqrt2 s_p d_{p0}`, :math:`D_{0q} = \sqrt2 s_q d_{0q}`,
    :math:`D_{00} = d_{00}`; the cos (m >= 0) and sin (m < 0) harmonics do
    not mix.
    """
    l = d.shape[0] - 1  # d holds the rows m' = 0 .. l
    out = np.zeros((2 * l + 1, 2 * l + 1))
    out[l, l] = d[0, l]
    if l == 0:
        return out
    s = np.where(np.arange(1, l + 1) % 2, -1.0, 1.0)
    a = d[1:, l + 1:] * s[:, None] * s[None, :]
    b = d[1:, l - 1::-1] * s[:, None]
    out[l + 1:, l + 1:] = a + b
    out[l - 1::-1, l - 1::-1] = a - b
    out[l + 1:, l] = math.sqrt(2.0) * s * d[1:, l]
    out[l, l + 1:] = math.sqrt(2.0) * s * d[0, l + 1:]
    return out


def _z_left(mat: np.ndarray, angle: float) -> np.ndarray:
    """Z(angle) @ mat for the real z-rotation Z of one degree."""
    ms = np.arange(-(mat.shape[0] // 2), mat.shape[0] // 2 + 1)
    return np.cos(ms * angle)[:, None] * mat - np.sin(ms * angle)[:, None] * mat[::-1]


def _z_right(mat: np.ndarray, angle: float) -> np.ndarray:
    """mat @ Z(angle) for the real z-rotation Z of one degree."""
    ms = np.arange(-(mat.shape[1] // 2), mat.shape[1] // 2 + 1)
    return mat * np.cos(ms * angle)[None, :] + mat[:, ::-1] * np.sin(ms * angle)[None, :]


class WignerRotation:
    r"""A rotation acting on real coefficients up to degree ``lmax``.

    Holds the factorization :math:`D^\ell = Z^\ell(\alpha)\, Y^\ell(\beta)\,
    Z^\ell(\gamma)` (Euler angles ZYZ, :math:`Y^\ell` the real-basis matrix
    of the rotation about y, :math:`Z^\ell` the real z-rotations), which is
    cheaper to build and apply than the full matrices.
    """
    def __init__(self, rotation: Any, lmax: int) -> None:
        self.rotation = check_rotation(rotation)
        self.lmax = check_int('lmax', lmax, minimum=0)
        self.alpha, self.beta, self.gamma = euler_zyz(self.rotation)
        self.y_blocks = [_y_block(d) for _, d in _wigner_small_d(self.beta, self.lmax)]

    @staticmethod
    def _z(c: np.ndarray, l: int, angle: float) -> np.ndarray:
        ms = np.arange(-l, l + 1)
        return np.cos(ms * angle)[:, None] * c - np.sin(ms * angle)[:, None] * c[::-1]

    def apply(self, c: np.ndarray) -> np.ndarray:
        """Rotate coefficients [(L+1)^2, B] with L <= lmax."""
        lmax = int(round(math.sqrt(c.shape[0]))) - 1
        if lmax > self.lmax:
            raise ValueError(f"Expected coefficients up to degree {self.lmax} (got {lmax})")
        out = np.empty_like(c)
        for l in range(lmax + 1):
            s = degree_slice(l)
            v = self._z(c[s], l, self.gamma)
            out[s] = self._z(self.y_blocks[l] @ v, l, self.alpha)
        return out

    def matrices(self) -> List[np.ndarray]:
        return [_z_right(_z_left(y, self.alpha), self.gamma) for y in self.y_blocks]


def wigner_d_real(rotation: Any, lmax: int) -> List[np.ndarray]:
    r"""Real Wigner matrices :math:`D^\ell(R)`, ``l = 0 .. lmax``.

    ``D[l]`` is [2l+1, 2l+1] (rows and columns :math:`m = -\ell .. \ell`); the
    coefficients of :math:`f(R^{-1} x)` are ``D[l] @ c[l]`` when ``c[l]``
    are those of :math:`f` (see the module docstring).

    Built from the Euler angles :math:`R = R_z(\alpha) R_y(\beta) R_z(\gamma)`
    as :math:`D^\ell = Z^\ell(\alpha)\, \bar U d^\ell(\beta) U^\top\,
    Z^\ell(\gamma)`, with :math:`d^\ell` the Wigner small-d matrix, :math:`U`
    the unitary map from complex (Condon-Shortley) to our real harmonics and
    :math:`Z^\ell` the real rotations about z. Orthogonal to ~1e-12 up to
    l ~ 500 (1e-13 below 200).
    """
    return WignerRotation(rotation, lmax).matrices()


def rotate_coefficients(c: np.ndarray, rotation: Any,
                        wigner: Optional[WignerRotation] = None) -> np.ndarray:
    """Rotate real coefficients [(lmax+1)^2, B] (or [(lmax+1)^2]) by ``rotation``.

    ``wigner`` may be a precomputed :class:`WignerRotation` of the same
    rotation (with at least the band limit of ``c``).
    """
    c = np.asarray(c, dtype=np.float64)
    squeeze = c.ndim == 1
    if squeeze:
        c = c[:, None]
    lmax = int(round(math.sqrt(c.shape[0]))) - 1
    if num_coefficients(lmax) != c.shape[0]:
        raise ValueError(f"Expected 'c' to hold (lmax + 1)**2 coefficients (got {c.shape[0]})")
    if wigner is None:
        wigner = WignerRotation(rotation, lmax)
    out = wigner.apply(c)
    return out[:, 0] if squeeze else out


def rotate_signal(data: Data, x: Any, rotation: Any, lmax: Optional[int] = None,
                  iter: int = 3) -> Union[np.ndarray, torch.Tensor]:
    r"""Rotate a map sampled on ``data``: :math:`x \mapsto \mathcal{R} x`.

    The map is expanded in real spherical harmonics up to ``lmax``
    (:class:`~pyg_sphere.rotation.HarmonicTransform`: quadrature +
    conjugate gradient on HEALPix, ring FFTs + Legendre least squares on equiangular and regular
    Gauss-Legendre grids, a dense least-squares fit otherwise), the
    coefficients are rotated with the real Wigner matrices, and the result is
    synthesized on the same pixels. Exact for maps band-limited to ``lmax`` on
    equiangular / Gauss-Legendre grids and (for ``lmax`` small enough) the
    least-squares samplings; on HEALPix the analysis is approximate (see
    :func:`rotation_floor`). Content above ``lmax`` is dropped.

    Args:
        data (Data): full-sky sampling (``data.sampling``).
        x (numpy.ndarray or torch.Tensor): map [n] or [n, F].
        rotation: 3 x 3 rotation matrix.
        lmax (int, optional): band limit. (default: the sampling's
            :func:`default_lmax`)
        iter (int): conjugate-gradient iterations of the HEALPix / reduced
            Gauss-Legendre analysis. (default: 3)

    Returns:
        The rotated map, same shape (and, for a tensor, dtype and device).
    """
    from .harmonics import default_lmax
    is_tensor = isinstance(x, torch.Tensor)
    arr = x.detach().cpu().double().numpy() if is_tensor else np.asarray(x, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != data.num_nodes:
        raise ValueError(f"Expected 'x' to have shape [n] or [n, F] with n = {data.num_nodes} "
                         f"pixels (got {tuple(arr.shape)})")
    lmax = default_lmax(data) if lmax is None else check_int('lmax', lmax, minimum=0)
    sht = harmonic_transform(data, lmax, iter=iter)
    flat = arr.reshape(arr.shape[0], -1)
    out = sht.synthesis(rotate_coefficients(sht.analysis(flat), rotation)).reshape(arr.shape)
    if is_tensor:
        return torch.from_numpy(out).to(dtype=x.dtype, device=x.device)
    return out


def ring_structure(data: Data):
    """``(perm, groups, exact_lmax)`` of an isolatitude sampling, or :obj:`None`.

    ``perm`` maps ring order to pixel index (HEALPix NESTED) or is
    :obj:`None`; ``groups`` lists ``(count, index [r, count])`` of the rings
    with ``count`` pixels (ring-order positions, longitudes increasing);
    ``exact_lmax`` is the largest band limit every ring resolves.
    """
    from .harmonic_transform import _healpix_ring_order
    from .harmonics import _ring_lmax, _rings, positions_float64
    sampling = getattr(data, 'sampling', None)
    if getattr(sampling, 'name', None) == 'healpix' and getattr(data, 'ipix', None) is not None:
        return None
    perm = _healpix_ring_order(data) if getattr(sampling, 'name', None) == 'healpix' else None
    pos = positions_float64(data)
    if perm is not None:
        pos = pos[perm]
    rings = _rings(pos)
    if rings is None:
        return None
    groups = {}
    for _, start, count, _ in rings:
        groups.setdefault(count, []).append(start)
    out = [(count, np.array(starts)[:, None] + np.arange(count)[None, :])
           for count, starts in groups.items()]
    return perm, out, _ring_lmax(rings)


def rotate_rings_z(x: np.ndarray, structure, angle: float) -> np.ndarray:
    r"""Rotate maps [n, B] about the z axis by ``angle`` with an FFT along
    each ring: the ring's Fourier coefficient of signed frequency :math:`q` is
    multiplied by :math:`e^{-iq\alpha}` (trigonometric interpolation; the
    Nyquist term of even rings keeps its cosine part only). Exact for maps
    whose restriction to every ring is band-limited below the ring's Nyquist
    frequency, e.g. band-limited maps on equiangular and Gauss-Legendre grids.
    """
    perm, groups = structure[0], structure[1]
    xr = x[perm] if perm is not None else x
    out = np.empty_like(xr)
    for count, idx in groups:
        spec = np.fft.rfft(xr[idx], axis=1)
        q = np.arange(spec.shape[1])
        phase = np.exp(-1j * q * angle)
        out[idx] = np.fft.irfft(spec * phase[None, :, None], n=count, axis=1)
    if perm is not None:
        res = np.empty_like(out)
        res[perm] = out
        out = res
    return out
