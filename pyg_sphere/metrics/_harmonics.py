r"""Real spherical harmonics and harmonic transforms of sampled maps.

Conventions (used by every module of :mod:`pyg_sphere.metrics` and by
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
from collections import OrderedDict
from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_int
from ..samplings import SphereSampling, pixel_area

#: The harmonic transforms (see the module docstring).
BACKENDS = ('rings', 'rings_iter', 'lstsq')

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


# ---------------------------------------------------------------------------
# transforms


def _healpix_ring_order(data: Data) -> Optional[np.ndarray]:
    """For a NESTED HEALPix sampling: the pixel index of each RING position."""
    sampling = data.sampling
    if not sampling['nest']:
        return None
    import healpy as hp
    return hp.ring2nest(sampling['nside'], np.arange(int(data.num_nodes)))


class HarmonicTransform:
    """Analysis / synthesis of real maps [n, B] sampled on ``data``'s pixels.

    Args:
        data (Data): a full-sky sampling made by :mod:`pyg_sphere.samplings`.
        lmax (int): band limit.
        iter (int): conjugate-gradient iterations of the quadrature analysis
            (backend ``'rings_iter'``).
        backend (str, optional): force one of :obj:`BACKENDS`.
    """
    def __init__(self, data: Data, lmax: int, iter: int = 3,
                 backend: Optional[str] = None) -> None:
        self.lmax = check_int('lmax', lmax, minimum=0)
        self.iter = check_int('iter', iter, minimum=0)
        self.n = int(data.num_nodes)
        sampling = getattr(data, 'sampling', None)
        name = getattr(sampling, 'name', None)
        if name == 'healpix' and getattr(data, 'ipix', None) is not None:
            raise ValueError("Expected a full-sky HEALPix sampling: rotations of partial "
                             "maps (data.ipix set) are not defined")
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"Expected 'backend' to be one of {BACKENDS} (got {backend!r})")
        self._perm = _healpix_ring_order(data) if name == 'healpix' else None
        pos = positions_float64(data)
        if self._perm is not None:
            pos = pos[self._perm]
        rings = _rings(pos)
        if backend is None:
            if rings is not None and _ring_lmax(rings) >= self.lmax:
                backend = 'rings'
            elif rings is not None and name in ('healpix', 'gauss_legendre'):
                backend = 'rings_iter'
            else:
                backend = 'lstsq'
        self.backend = backend
        if backend in ('rings', 'rings_iter'):
            if rings is None:
                raise ValueError(f"Expected an isolatitude sampling for backend={backend!r}")
            if backend == 'rings' and _ring_lmax(rings) < self.lmax:
                raise ValueError(f"Expected rings of more than 2 * lmax = {2 * self.lmax} "
                                 f"points for backend='rings' (use 'rings_iter')")
            area = pixel_area(data).numpy()
            if self._perm is not None:
                area = area[self._perm]
            self._setup_rings(rings, area)
        else:
            self._setup_lstsq(data, pos)

    # -- rings -------------------------------------------------------------
    def _setup_rings(self, rings, area: np.ndarray) -> None:
        lmax = self.lmax
        z = np.array([r[0] for r in rings])
        s = np.sqrt(np.clip((1 - z) * (1 + z), 0.0, None))
        self._weight = np.array([area[r[1]:r[1] + r[2]].sum() for r in rings])
        # per order m: P[j, l - m] = Pbar_l^m(z_j), l = m .. lmax
        tables = [np.empty((len(rings), lmax - m + 1)) for m in range(lmax + 1)]
        for l, p in _legendre_rows(z, s, lmax):
            for m in range(l + 1):
                tables[m][:, l - m] = p[:, m]
        self._tables = tables
        self._rings_list = rings
        if self.backend == 'rings':
            sw = np.sqrt(self._weight)
            self._pinv = [np.linalg.pinv(t * sw[:, None], rcond=1e-13) * sw[None, :]
                          for t in tables]
        groups = OrderedDict()
        for j, (_, start, count, phi0) in enumerate(rings):
            groups.setdefault((count, phi0), []).append(j)
        self._groups = []
        for (count, phi0), js in groups.items():
            js = np.array(js)
            starts = np.array([rings[j][1] for j in js])
            self._groups.append((count, phi0, js, starts[:, None] + np.arange(count)[None, :]))

    def _ring_coefficients(self, x: np.ndarray) -> np.ndarray:
        r"""G[j, m, B] = (1 / n_j) sum_k x_jk exp(-i m phi_jk), m = 0 .. lmax
        (periodic in m beyond the ring's Nyquist frequency)."""
        lmax = self.lmax
        out = np.empty((len(self._rings_list), lmax + 1, x.shape[1]), dtype=np.complex128)
        ms = np.arange(lmax + 1)
        for count, phi0, js, idx in self._groups:
            spec = np.fft.rfft(x[idx], axis=1) / count  # [r, count // 2 + 1, B]
            if lmax <= count // 2:
                coef = spec[:, :lmax + 1]
            else:
                q = ms % count
                upper = q > count // 2
                coef = spec[:, np.where(upper, count - q, q)]
                coef[:, upper] = np.conj(coef[:, upper])
            if phi0:
                coef = coef * np.exp(-1j * phi0 * ms)[None, :, None]
            out[js] = coef
        return out

    def _from_ring_coefficients(self, g: np.ndarray, solve: bool) -> np.ndarray:
        """Real coefficients from G[j, m, B]: least squares per m (``solve``)
        or the quadrature sum_j w_j Pbar_lm(z_j) G_j(m)."""
        nb = g.shape[2]
        c = np.zeros((num_coefficients(self.lmax), nb))
        root2 = math.sqrt(2.0)
        if not solve:
            g = g * self._weight[:, None, None]
        for m in range(self.lmax + 1):
            gm = g[:, m]
            both = np.concatenate([gm.real, gm.imag], axis=1)  # real BLAS on [r, 2B]
            sol = (self._pinv[m] if solve else self._tables[m].T) @ both
            ls = np.arange(m, self.lmax + 1)
            if m == 0:
                c[ls * ls + ls] = sol[:, :nb]
            else:
                c[ls * ls + ls + m] = root2 * sol[:, :nb]
                c[ls * ls + ls - m] = -root2 * sol[:, nb:]
        return c

    def _rings_synthesis(self, c: np.ndarray) -> np.ndarray:
        lmax = self.lmax
        nb = c.shape[1]
        g = np.empty((len(self._rings_list), lmax + 1, nb), dtype=np.complex128)
        r2 = 1 / math.sqrt(2.0)
        for m in range(lmax + 1):
            ls = np.arange(m, lmax + 1)
            base = ls * ls + ls
            if m == 0:
                g[:, 0] = self._tables[0] @ c[base]
            else:
                both = self._tables[m] @ np.concatenate([c[base + m], c[base - m]], axis=1)
                g[:, m] = (both[:, :nb] - 1j * both[:, nb:]) * r2
        out = np.empty((self.n, nb))
        ms = np.arange(lmax + 1)
        for count, phi0, js, idx in self._groups:
            block = g[js]  # [r, lmax + 1, B]
            if phi0:
                block = block * np.exp(1j * phi0 * ms)[None, :, None]
            half = count // 2
            if lmax < half or (count % 2 and lmax <= half):
                spec = np.zeros((len(js), half + 1, nb), dtype=np.complex128)
                spec[:, :lmax + 1] = block
            else:
                # fold the frequencies m and -m onto the ring's DFT bins 0 .. count - 1
                reps = -(-(lmax + 1) // count)
                full = np.zeros((len(js), reps * count, nb), dtype=np.complex128)
                full[:, :lmax + 1] = block
                folded = full.reshape(len(js), reps, count, nb).sum(axis=1)
                full[:] = 0
                full[:, 1:lmax + 1] = np.conj(block[:, 1:])  # frequency -m at bin -m
                neg = full.reshape(len(js), reps, count, nb).sum(axis=1)
                folded = folded + np.roll(neg[:, ::-1], 1, axis=1)
                spec = folded[:, :half + 1]  # Hermitian: the Nyquist bin is real
            out[idx] = np.fft.irfft(spec, n=count, axis=1) * count
        return out

    # -- lstsq -------------------------------------------------------------
    def _setup_lstsq(self, data: Data, pos: np.ndarray) -> None:
        from scipy.linalg import cho_factor
        p = num_coefficients(self.lmax)
        if p > self.n:
            raise ValueError(f"Expected (lmax + 1)**2 <= n = {self.n} for a least-squares "
                             f"fit (got lmax={self.lmax}, {p} coefficients)")
        self._Y = real_sph_harm(self.lmax, pos)
        self._w = pixel_area(data).numpy()
        gram = self._Y.T @ (self._w[:, None] * self._Y)
        try:
            self._cho = cho_factor(gram)
        except np.linalg.LinAlgError as error:
            raise ValueError(f"The least-squares harmonic fit is singular at lmax={self.lmax} "
                             f"on this sampling: pass a smaller 'lmax'") from error

    # -- public ------------------------------------------------------------
    def analysis(self, x: np.ndarray) -> np.ndarray:
        """Maps [n, B] (float64) to real coefficients [(lmax+1)^2, B]."""
        x = np.asarray(x, dtype=np.float64)
        if self.backend == 'lstsq':
            from scipy.linalg import cho_solve
            return cho_solve(self._cho, self._Y.T @ (self._w[:, None] * x))
        if self._perm is not None:
            x = x[self._perm]
        if self.backend == 'rings':
            return self._from_ring_coefficients(self._ring_coefficients(x), solve=True)
        return self._cg(x)

    def _quadrature(self, x: np.ndarray) -> np.ndarray:
        """S^T A x: the quadrature analysis (A = pixel areas), ring order."""
        return self._from_ring_coefficients(self._ring_coefficients(x), solve=False)

    def _cg(self, x: np.ndarray) -> np.ndarray:
        r"""Least squares :math:`\min_c \lVert A^{1/2}(S c - x)\rVert` by ``iter``
        conjugate-gradient steps on :math:`S^\top A S c = S^\top A x`, started
        from the quadrature :math:`c_0 = S^\top A x` (``iter = 0``: healpy's
        ``map2alm(iter=0)``). Every column converges on its own."""
        c = self._quadrature(x)
        if self.iter == 0:
            return c
        r = c - self._quadrature(self._rings_synthesis(c))
        p = r.copy()
        rs = (r * r).sum(axis=0)
        for _ in range(self.iter):
            ap = self._quadrature(self._rings_synthesis(p))
            den = (p * ap).sum(axis=0)
            alpha = np.divide(rs, den, out=np.zeros_like(rs), where=den > 0)
            c += alpha * p
            r -= alpha * ap
            rs_new = (r * r).sum(axis=0)
            beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
            p = r + beta * p
            rs = rs_new
        return c

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Real coefficients [(lmax+1)^2, B] to maps [n, B] (float64)."""
        c = np.asarray(c, dtype=np.float64)
        if self.backend == 'lstsq':
            return self._Y @ c
        out = self._rings_synthesis(c)
        if self._perm is not None:
            res = np.empty_like(out)
            res[self._perm] = out
            out = res
        return out


_CACHE: 'OrderedDict[tuple, HarmonicTransform]' = OrderedDict()
_CACHE_SIZE = 3


def harmonic_transform(data: Data, lmax: int, iter: int = 3) -> HarmonicTransform:
    """A (cached) :class:`HarmonicTransform` for ``data``.

    Cached per (sampling descriptor, lmax, iter) for samplings that can be
    rebuilt from their descriptor (not for ``points`` or partial skies).
    """
    sampling = getattr(data, 'sampling', None)
    cacheable = (isinstance(sampling, SphereSampling) and sampling.name != 'points'
                 and getattr(data, 'ipix', None) is None)
    key = (sampling, int(lmax), int(iter))
    if cacheable and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    sht = HarmonicTransform(data, lmax, iter=iter)
    if cacheable:
        _CACHE[key] = sht
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return sht
