"""Random rotations of maps sampled on the sphere (data augmentation)."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validation import _got, check_choice, check_int

#: Allowed values of ``mode``: all of SO(3), or rotations about the z axis.
ROTATION_MODES = ('so3', 'z')


@functional_transform('sphere_random_rotation')
class RandomSphereRotation(BaseTransform):
    r"""Rotates the maps sampled on a sphere by a random rotation (functional
    name: :obj:`sphere_random_rotation`): the signal moves, the pixels stay,
    :math:`x'(p_i) = x(R^{-1} p_i)`.

    ``mode='so3'`` draws :math:`R` uniformly (Haar) on :math:`SO(3)` (a
    normalized Gaussian quaternion); ``mode='z'`` draws a rotation about the
    z axis by a uniform angle.

    How the sampled map is rotated:

    * ``mode='so3'``: in harmonic space. The map is expanded in real
      spherical harmonics up to ``lmax``, the coefficients are rotated with
      real Wigner matrices, and the result is synthesized on the same pixels
      (:func:`pyg_sphere.metrics.rotate_signal`). On HEALPix (RING or NESTED)
      this is what healpy's ``rotate_map_alms`` does (quadrature analysis,
      refined by ``iter`` conjugate-gradient steps, no pixel weights): exact
      up to the analysis error, which grows near ``3 * nside - 1``. On equiangular and regular
      Gauss-Legendre grids the expansion is an exact least-squares fit
      (exact for maps band-limited to ``lmax``). On other samplings
      (icosahedral, cubed, points) it is a weighted least-squares fit with
      the pixel areas as weights (exact for band-limited maps; the design
      matrix, ``n * (lmax + 1)**2`` floats, is cached). In every case the
      content of the map above ``lmax`` is dropped: the output is
      band-limited to ``lmax``.
    * ``mode='z'`` on isolatitude grids whose every ring resolves ``lmax``
      (equiangular and regular Gauss-Legendre grids at the default ``lmax``):
      a longitude shift of every ring by FFT (trigonometric interpolation,
      exact for maps band-limited along each ring, norm-preserving, and a
      permutation for shifts by a multiple of the pixel spacing; content
      above ``lmax`` is kept). Elsewhere (HEALPix, whose short polar rings
      alias, reduced Gauss-Legendre grids at high ``lmax``, icosahedral,
      cubed): the harmonic path above.

    Transforms ``data[key]`` of shape [n] or [n, F] for each key of ``keys``
    (floating point; the same rotation for all keys), keeping dtype and
    device; ``pos``, the graph and other attributes are untouched (the
    pixels do not move).

    Args:
        mode (str, optional): one of :obj:`ROTATION_MODES`. (default:
            ``'so3'``)
        lmax (int, optional): band limit of the harmonic path. (default:
            ``3 * nside - 1`` for HEALPix, see
            :func:`pyg_sphere.metrics.default_lmax` otherwise)
        keys (sequence of str, optional): attributes to rotate.
            (default: ``('x',)``)
        iter (int, optional): conjugate-gradient iterations of the HEALPix
            (and reduced Gauss-Legendre) analysis. (default: :obj:`3`)
        generator (torch.Generator, optional): source of randomness.
            (default: :obj:`None`, the global torch RNG)

    Example:
        >>> import torch
        >>> from pyg_sphere.samplings import healpix
        >>> data = healpix(8)
        >>> data.x = torch.randn(data.num_nodes, 2)
        >>> out = RandomSphereRotation(generator=torch.Generator().manual_seed(0))(data)
        >>> out.x.shape
        torch.Size([768, 2])
    """
    def __init__(self, mode: str = 'so3', lmax: Optional[int] = None,
                 keys: Sequence[str] = ('x',), iter: int = 3,
                 generator: Optional[torch.Generator] = None) -> None:
        self.mode = check_choice('mode', mode, ROTATION_MODES)
        self.lmax = None if lmax is None else check_int('lmax', lmax, minimum=0)
        if isinstance(keys, str):
            keys = (keys,)
        if (not isinstance(keys, (tuple, list)) or not keys
                or not all(isinstance(k, str) for k in keys)):
            raise ValueError(f"Expected 'keys' to be a non-empty sequence of attribute names "
                             f"(got {keys!r})")
        self.keys = tuple(keys)
        self.iter = check_int('iter', iter, minimum=0)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"Expected 'generator' to be a torch.Generator or None "
                             f"(got {_got(generator)})")
        self.generator = generator
        self._rings = {}

    def sample_rotation(self) -> torch.Tensor:
        """Draw a rotation matrix (float64 [3, 3]) as :meth:`forward` does."""
        from ..rotation import quaternion_to_matrix, z_rotation
        if self.mode == 'z':
            angle = float(torch.rand((), generator=self.generator, dtype=torch.float64))
            return torch.from_numpy(z_rotation(2 * math.pi * angle)[0])
        q = torch.randn(4, generator=self.generator, dtype=torch.float64).numpy()
        return torch.from_numpy(quaternion_to_matrix(q))

    def _ring_structure(self, data: Data):
        from ..rotation import ring_structure
        sampling = getattr(data, 'sampling', None)
        key = sampling if getattr(sampling, 'name', 'points') != 'points' else None
        if key is not None and getattr(data, 'ipix', None) is None and key in self._rings:
            return self._rings[key]
        structure = ring_structure(data)
        if key is not None and getattr(data, 'ipix', None) is None:
            self._rings = {key: structure}
        return structure

    def rotate(self, data: Data, rotation: Any) -> Data:
        """Rotate the maps of ``data`` by the given 3 x 3 ``rotation``."""
        from ..rotation import default_lmax, harmonic_transform
        from ..rotation import WignerRotation, check_rotation, rotate_rings_z
        if getattr(data, 'sampling', None) is None or getattr(data, 'pos', None) is None:
            raise ValueError("Expected 'data' to be a sampling from pyg_sphere.samplings "
                             "(with 'pos' and 'sampling')")
        sampling = data.sampling
        if getattr(sampling, 'name', None) == 'healpix' and getattr(data, 'ipix', None) is not None:
            raise ValueError("Expected a full-sky HEALPix map: a partial sky (data.ipix set) "
                             "cannot be rotated")
        r = check_rotation(rotation)
        n = int(data.num_nodes)
        values = []
        for key in self.keys:
            x = getattr(data, key, None)
            if not isinstance(x, torch.Tensor):
                raise ValueError(f"Expected 'data.{key}' to be a tensor of shape [n] or [n, F] "
                                 f"(got {_got(x)})")
            if x.dim() not in (1, 2) or x.size(0) != n:
                raise ValueError(f"Expected 'data.{key}' to have shape [n] or [n, F] with "
                                 f"n = {n} pixels (got {tuple(x.shape)})")
            if not x.is_floating_point():
                raise ValueError(f"Expected 'data.{key}' to be floating point (got {x.dtype})")
            values.append(x)
        flat = np.concatenate([v.detach().cpu().double().numpy().reshape(n, -1)
                               for v in values], axis=1)
        lmax = default_lmax(data) if self.lmax is None else self.lmax
        if getattr(sampling, 'name', None) == 'healpix' and lmax > 3 * sampling['nside'] - 1:
            nside = sampling['nside']
            raise ValueError(f"Expected 'lmax' <= 3 * nside - 1 = {3 * nside - 1} for "
                             f"HEALPix nside {nside} (got {lmax})")
        is_z = bool(np.allclose(r[2], [0.0, 0.0, 1.0], atol=1e-14))
        structure = self._ring_structure(data) if (self.mode == 'z' and is_z) else None
        if structure is not None and structure[2] >= lmax:
            out = rotate_rings_z(flat, structure, math.atan2(r[1, 0], r[0, 0]))
        else:
            sht = harmonic_transform(data, lmax, iter=self.iter)
            out = sht.synthesis(WignerRotation(r, lmax).apply(sht.analysis(flat)))
        start = 0
        for key, x in zip(self.keys, values):
            width = 1 if x.dim() == 1 else x.size(1)
            block = torch.from_numpy(np.ascontiguousarray(out[:, start:start + width]))
            start += width
            data[key] = block.reshape(x.shape).to(dtype=x.dtype, device=x.device)
        return data

    def forward(self, data: Data) -> Data:
        return self.rotate(data, self.sample_rotation())

    def __repr__(self) -> str:
        gen = (None if self.generator is None
               else f'Generator(seed={self.generator.initial_seed()})')
        return (f'{self.__class__.__name__}(mode={self.mode!r}, lmax={self.lmax}, '
                f'keys={self.keys!r}, iter={self.iter}, generator={gen})')
