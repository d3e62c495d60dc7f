"""Pixel geometry and smooth random fields for the climate simulator."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch

from ..samplings import xyz_to_lonlat

_OROGRAPHY_SEED = 0x0E0
_DEG = math.pi / 180


class _Frame:
    """Unit vectors and the local east / north basis of each pixel (float64)."""

    def __init__(self, pos: torch.Tensor) -> None:
        xyz = pos.detach().cpu().double().numpy()
        self.xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
        self.lon, self.lat = xyz_to_lonlat(self.xyz)
        sl, cl = np.sin(self.lon), np.cos(self.lon)
        sp, cp = np.sin(self.lat), np.cos(self.lat)
        self.east = np.stack([-sl, cl, np.zeros_like(sl)], axis=1)
        self.north = np.stack([-sp * cl, -sp * sl, cp], axis=1)
        self._orography: Optional[np.ndarray] = None

    @property
    def orography(self) -> np.ndarray:
        """Surface height in m, the same for every map (fixed seed)."""
        if self._orography is None:
            rng = np.random.default_rng(_OROGRAPHY_SEED)
            f, _ = _smooth_fields(rng, self.xyz, 1, (3.0, 9.0))
            self._orography = 2500.0 * np.maximum(f[:, 0] - 1.2, 0.0)
        return self._orography


def _smooth_fields(rng: np.random.Generator, xyz: np.ndarray, n_fields: int,
                   wavenumbers: Tuple[float, float], waves: int = 24,
                   gradient: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    r"""Isotropic smooth random fields of unit variance, the restriction to the
    sphere of random plane waves in 3D:

    .. math::
        f(\mathbf{p}) = \sqrt{2 / K} \sum_{k=1}^K a_k \cos(\mathbf{w}_k \cdot
        \mathbf{p} + \varphi_k),

    with :math:`a_k \sim \mathcal{N}(0, 1)`, uniform directions of
    :math:`\mathbf{w}_k`, :math:`|\mathbf{w}_k|` uniform in ``wavenumbers``
    (correlation length about :math:`1 / |\mathbf{w}|` radians). Returns the
    values [n, F] and, if asked, the 3D gradients [n, F, 3].
    """
    k = n_fields * waves
    direction = rng.standard_normal((k, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    w = direction * rng.uniform(*wavenumbers, size=(k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=k)
    amp = rng.standard_normal(k) * math.sqrt(2.0 / waves)
    # float32 trigonometry is an order of magnitude faster, and precise enough.
    arg = xyz.astype(np.float32) @ w.T.astype(np.float32) + phase.astype(np.float32)
    amp32 = amp.astype(np.float32)
    values = (np.cos(arg) * amp32).reshape(-1, n_fields, waves).sum(-1, dtype=np.float64)
    grad = None
    if gradient:
        s = (np.sin(arg) * -amp32).reshape(-1, n_fields, waves)
        grad = np.einsum('nfk,fkd->nfd', s, w.reshape(n_fields, waves, 3).astype(np.float32))
        grad = grad.astype(np.float64)
    return values, grad
