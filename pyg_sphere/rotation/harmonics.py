r"""Real spherical harmonics and harmonic transforms of sampled maps.

Conventions (used by :mod:`pyg_sphere.metrics`, :mod:`pyg_sphere.rotation` and by
:class:`~pyg_sphere.transforms.RandomSphereRotation`):

* Real, orthonormal spherical harmonics without the Condon-Shortley phase,

  .. math::
      Y_{\ell m} = \begin{cases}
          \sqrt{2}\, \bar P_\ell^{m}(\cos\theta) \cos(m\phi) & m > 0 \\
          \bar P_\ell^{0}(\cos\theta) & m = 0 \\
          \sqrt{2}\, \bar P_\ell^{|m|}(\cos\theta) \sin(|m|\phi) & m < 0
      \end{cases}, \quad
      \bar P_\ell^m = \sqrt{\frac{2\ell + 1}{4\pi}\frac{(\ell - m)!}{(\ell + m)!}}\, P_\ell^m,

  so that :math:`Y_{1,-1}, Y_{1,0}, Y_{1,1} \propto y, z, x`.
* Coefficient vectors are degree-major: coefficient :math:`(\ell, m)` sits at
  index :math:`\ell^2 + \ell + m`, so degree :math:`\ell` is the slice
  ``[l * l, (l + 1) ** 2)`` and a band limit ``lmax`` has ``(lmax + 1) ** 2``
  coefficients.

Three ways to go from a sampled map to coefficients (``analysis``) and back
(``synthesis``), picked from the sampling (:obj:`BACKENDS`):

* ``'rings'`` (isolatitude grids whose rings all have more than
  ``2 * lmax`` points: equiangular and regular Gauss-Legendre grids): an FFT
  along each ring, then, for each order :math:`m`, a weighted least-squares
  fit of the ring coefficients by :math:`\bar P_\ell^m(\cos\theta_j)`.
  Exact (to rounding) for maps band-limited to ``lmax``.
* ``'rings_iter'`` (HEALPix, in RING order, and reduced Gauss-Legendre grids,
  whose short polar rings alias high orders): the quadrature
  :math:`c_{\ell m} \approx \sum_j w_j \bar P_\ell^m(\cos\theta_j)
  G_j(m)` with ring weights :math:`w_j` (sum of the pixel areas), i.e.
  :math:`c_0 = S^\top A f` (:func:`healpy.map2alm` with ``iter=0`` and no
  weights: the tests check both agree), refined by ``iter`` conjugate-gradient
  steps on the normal equations :math:`S^\top A S c = S^\top A f` (more
  accurate than healpy's Jacobi iterations for the same count). Synthesis is
  exact (aliased orders are folded onto the ring's frequencies); analysis is
  not exact on HEALPix, most visibly close to ``3 * nside - 1`` where the
  system is ill-conditioned (see the rotation floors in
  ``docs/equivariance.md``).
* ``'lstsq'`` (any other sampling): a dense weighted least-squares fit,
  :math:`c = (Y^\top A Y)^{-1} Y^\top A f` with :math:`A` the pixel areas.
  Exact for band-limited maps as long as :math:`Y` has full column rank; the
  design matrix is kept in memory (``n * (lmax + 1) ** 2`` floats).

All three run on NumPy / BLAS (healpy's own transforms spin OpenMP threads,
which is slow on busy machines).
"""
from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int
from ..samplings import SphereSampling

# Largest design matrix (entries) the 'lstsq' backend builds by default.
_LSTSQ_MAX_ENTRIES = 3 * 10 ** 7



def num_coefficients(lmax: int) -> int:
    return (lmax + 1) ** 2


def degree_slice(l: int) -> slice:
    return slice(l * l, (l + 1) * (l + 1))


def _legendre_rows(z: np.ndarray, s: np.ndarray, lmax: int):
    r"""Yield ``(l, P)`` for ``l = 0 .. lmax`` with ``P`` [n, l + 1] the
    normalized :math:`\bar P_\ell^m(\cos\theta)` for ``m = 0 .. l``.

    Stable three-term recursion in :math:`\ell` at fixed :math:`m`, started
    from the sectoral values :math:`\bar P_m^m = \sqrt{(2m+1)/(2m)}\,\sin\theta\,
    \bar P_{m-1}^{m-1}` (values below ~1e-300 near the poles underflow to 0).
    """
    n = z.shape[0]
    diag = np.empty((n, lmax + 1))
    diag[:, 0] = 1.0 / math.sqrt(4 * math.pi)
    for m in range(1, lmax + 1):
        diag[:, m] = math.sqrt((2 * m + 1) / (2 * m)) * s * diag[:, m - 1]
    prev2 = np.zeros((n, lmax + 1))
    prev1 = np.zeros((n, lmax + 1))
    zc = z[:, None]
    for l in range(lmax + 1):
        cur = np.zeros((n, lmax + 1))
        if l > 0:
            m = np.arange(l, dtype=np.float64)
            a = np.sqrt((4.0 * l * l - 1) / (l * l - m * m))
            if l > 1:
                b = np.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1) ** 2 - 1))
                cur[:, :l] = a * (zc * prev1[:, :l] - b * prev2[:, :l])
            else:
                cur[:, :l] = a * zc * prev1[:, :l]
        cur[:, l] = diag[:, l]
        yield l, cur[:, :l + 1]
        prev2, prev1 = prev1, cur


def _angles(pos: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cos theta, sin theta, phi) of unit vectors [n, 3]."""
    x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
    s = np.hypot(x, y)
    r = np.hypot(s, z)
    return z / r, s / r, np.arctan2(y, x)


def real_sph_harm(lmax: int, pos: Any) -> np.ndarray:
    r"""Real orthonormal spherical harmonics at points, float64 [n, (lmax+1)^2].

    Column :math:`\ell^2 + \ell + m` holds :math:`Y_{\ell m}` (module docstring
    conventions) evaluated at the unit vectors ``pos`` [n, 3].
    """
    lmax = check_int('lmax', lmax, minimum=0)
    if isinstance(pos, torch.Tensor):
        pos = pos.detach().cpu().double().numpy()
    pos = np.asarray(pos, dtype=np.float64)
    z, s, phi = _angles(pos)
    m = np.arange(lmax + 1)
    cos_m = np.cos(np.outer(phi, m))
    sin_m = np.sin(np.outer(phi, m))
    out = np.empty((pos.shape[0], num_coefficients(lmax)))
    root2 = math.sqrt(2.0)
    for l, p in _legendre_rows(z, s, lmax):
        c = l * l + l
        out[:, c] = p[:, 0]
        if l:
            out[:, c + 1:c + l + 1] = root2 * p[:, 1:] * cos_m[:, 1:l + 1]
            out[:, c - l:c][:, ::-1] = root2 * p[:, 1:] * sin_m[:, 1:l + 1]
    return out


# ---------------------------------------------------------------------------
# healpy complex alm <-> real coefficients


def _alm_index(lmax: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays linking healpy's alm (m-major) and our real coefficients.

    Returns ``(alm_idx, pos_idx, neg_idx, sign)`` over all (l, m >= 0):
    the alm index, the real index of (l, m), of (l, -m), and (-1)^m.
    """
    ls, ms = [], []
    for m in range(lmax + 1):
        for l in range(m, lmax + 1):
            ls.append(l)
            ms.append(m)
    ls = np.array(ls, dtype=np.int64)
    ms = np.array(ms, dtype=np.int64)
    alm_idx = np.arange(ls.size)  # healpy: idx = m * (2 lmax + 1 - m) / 2 + l
    return alm_idx, ls * ls + ls + ms, ls * ls + ls - ms, np.where(ms % 2, -1.0, 1.0)


def real_to_alm(c: np.ndarray, lmax: int) -> np.ndarray:
    r"""Real coefficients [(lmax+1)^2, B] to healpy alm [B, nalm] (complex).

    :math:`a_{\ell m} = (-1)^m (c_{\ell m} - i c_{\ell,-m}) / \sqrt2` for
    :math:`m > 0` and :math:`a_{\ell 0} = c_{\ell 0}` (healpy's harmonics carry
    the Condon-Shortley phase).
    """
    _, pos, neg, sign = _alm_index(lmax)
    ms_zero = pos == neg
    alm = (c[pos] - 1j * c[neg]) * (sign / math.sqrt(2.0))[:, None]
    alm[ms_zero] = c[pos[ms_zero]]
    return np.ascontiguousarray(alm.T)


def alm_to_real(alm: np.ndarray, lmax: int) -> np.ndarray:
    """Inverse of :func:`real_to_alm`: healpy alm [B, nalm] to real [(lmax+1)^2, B]."""
    _, pos, neg, sign = _alm_index(lmax)
    alm = np.atleast_2d(alm).T
    out = np.zeros((num_coefficients(lmax), alm.shape[1]))
    zero = pos == neg
    scale = (sign * math.sqrt(2.0))[:, None]
    out[pos] = (alm.real * scale)
    out[neg[~zero]] = -(alm.imag * scale)[~zero]
    out[pos[zero]] = alm.real[zero]
    return out


# ---------------------------------------------------------------------------
# geometry helpers


def positions_float64(data: Data) -> np.ndarray:
    """Pixel centres in float64: rebuilt from the sampling descriptor when
    possible (``pos`` may be float32), else ``data.pos`` cast to float64."""
    sampling = getattr(data, 'sampling', None)
    n = int(data.num_nodes)
    if (isinstance(sampling, SphereSampling) and sampling.name != 'points'
            and getattr(data, 'ipix', None) is None):
        try:
            pos = sampling.rebuild(dtype=torch.float64).pos
        except ValueError:
            pos = None
        if pos is not None and pos.size(0) == n:
            return pos.numpy()
    pos = getattr(data, 'pos', None)
    if pos is None:
        raise ValueError("Expected 'data.pos' to hold the [n, 3] unit vectors of a sampling "
                         "(got None)")
    pos = pos.detach().cpu().double().numpy()
    return pos / np.linalg.norm(pos, axis=1, keepdims=True)


def _rings(pos: np.ndarray):
    """Isolatitude structure of ``pos``, or None.

    Returns a list of ``(z, start, count, phi0)``: each ring is a contiguous
    run of pixels at the same height ``z`` with longitudes ``phi0 + 2 pi k /
    count`` in pixel order (rings of coincident pole points have ``phi0 = 0``).
    """
    n = pos.shape[0]
    z = pos[:, 2]
    cut = np.flatnonzero(np.abs(z[1:] - z[:-1]) > 1e-12) + 1
    starts = np.concatenate([[0], cut])
    counts = np.diff(np.concatenate([starts, [n]]))
    if starts.size > max(4, int(4 * math.sqrt(n))):
        return None
    heights = np.array([z[a:a + c].mean() for a, c in zip(starts, counts)])
    if np.abs(np.diff(np.sort(heights))).min(initial=1.0) <= 1e-12:
        return None  # a height visited twice: not contiguous rings
    rings = []
    for start, count, height in zip(starts, counts, heights):
        p = pos[start:start + count]
        s = np.hypot(p[:, 0], p[:, 1])
        if s.max() < 1e-12:  # a pole row: coincident points
            rings.append((float(np.sign(height)), int(start), int(count), 0.0))
            continue
        phi = np.arctan2(p[:, 1], p[:, 0])
        expected = phi[0] + 2 * np.pi * np.arange(count) / count
        if np.abs(np.angle(np.exp(1j * (phi - expected)))).max() > 1e-9:
            return None
        rings.append((float(height), int(start), int(count), float(phi[0])))
    return rings


def _ring_lmax(rings) -> int:
    """Largest band limit the 'rings' backend resolves exactly."""
    ordinary = [count for z, _, count, _ in rings if abs(z) < 1.0 - 1e-15]
    if not ordinary:
        return 0
    return max(0, min(len(rings) - 1, (min(ordinary) - 1) // 2))


def default_lmax(data: Data) -> int:
    """Band limit used when none is given.

    ``3 * nside - 1`` for HEALPix; ``nlat - 1`` for reduced Gauss-Legendre
    grids; the largest band limit an isolatitude grid resolves exactly
    (``nlat / 2 - 1`` for the ``2b x 2b`` equiangular grids, ``nlat - 1`` for
    regular Gauss-Legendre grids); otherwise the largest
    :math:`L` with :math:`(L+1)^2 \\le n / 4`, capped so that the design
    matrix has at most 3e7 entries.
    """
    sampling = getattr(data, 'sampling', None)
    if getattr(sampling, 'name', None) == 'healpix':
        return 3 * sampling['nside'] - 1
    if getattr(sampling, 'name', None) == 'gauss_legendre' and sampling['reduced']:
        return sampling['nlat'] - 1
    pos = positions_float64(data)
    rings = _rings(pos)
    if rings is not None and _ring_lmax(rings) >= 1:
        return _ring_lmax(rings)
    n = pos.shape[0]
    lmax = max(0, int(math.isqrt(max(n // 4, 1))) - 1)
    while lmax > 0 and n * num_coefficients(lmax) > _LSTSQ_MAX_ENTRIES:
        lmax -= 1
    return lmax
