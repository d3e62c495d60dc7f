"""Harmonic transforms of sampled maps: analysis (map to real coefficients)
and synthesis (back), with the backends of :obj:`BACKENDS` (see
:mod:`pyg_sphere.rotation.harmonics` for the conventions)."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional

import numpy as np
from torch_geometric.data import Data

from .._validation import check_int
from ..samplings import SphereSampling, pixel_area
from .harmonics import (_legendre_rows, _ring_lmax, _rings, num_coefficients,
                        positions_float64, real_sph_harm)

#: The harmonic transforms (see the module docstring).
BACKENDS = ('rings', 'rings_iter', 'lstsq')


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
