r"""Rotation-equivariance error of operators on sampled spherical maps."""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from .._validation import _got, check_int
from ..graph import laplacian
from ..rotation import HarmonicTransform, default_lmax, degree_slice, harmonic_transform
from ..rotation import WignerRotation, random_rotation


@dataclasses.dataclass
class EquivarianceResult:
    r"""What :func:`equivariance_error` measured.

    Attributes:
        degrees (numpy.ndarray): the degrees :math:`\ell` [D] (``[-1]`` when a
            ``spectrum`` was given).
        error (numpy.ndarray): mean equivariance error per degree [D].
        error_std (numpy.ndarray): its standard deviation over signals and
            rotations [D].
        samples (numpy.ndarray): every error [D, n_signals, n_rotations].
        relative (numpy.ndarray): mean of the unsquared ratio
            :math:`\lVert \mathbf{R} L f - L \mathbf{R} f\rVert / \lVert L f\rVert`
            per degree [D] (what the notebook of the DeepSphere authors
            averaged; see ``docs/equivariance.md``).
        floor (numpy.ndarray): mean round-trip error of the rotation itself
            per degree, :math:`(\lVert \mathbf{R}^{-1}\mathbf{R} f - f\rVert /
            \lVert f \rVert)^2` with both rotations applied to the sampled map
            through the harmonic transform [D] (NaN if not measured).
        lmax (int): band limit of the harmonic transform.
        backend (str): the harmonic transform, one of
            :obj:`~pyg_sphere.metrics.BACKENDS` (``'rings'``, ``'rings_iter'``,
            ``'lstsq'``).
    """
    degrees: np.ndarray
    error: np.ndarray
    error_std: np.ndarray
    samples: np.ndarray
    relative: np.ndarray
    floor: np.ndarray
    lmax: int
    backend: str

    def as_dict(self) -> Dict[str, Any]:
        """Plain Python values (JSON serializable)."""
        return {
            'degrees': [int(d) for d in self.degrees],
            'error': [float(e) for e in self.error],
            'error_std': [float(e) for e in self.error_std],
            'relative': [float(e) for e in self.relative],
            'floor': [float(e) for e in self.floor],
            'lmax': int(self.lmax),
            'backend': self.backend,
        }


def _check_data(data: Any) -> Data:
    if not isinstance(data, Data):
        raise ValueError(f"Expected 'data' to be a torch_geometric.data.Data made by "
                         f"pyg_sphere.samplings (got {_got(data)})")
    if getattr(data, 'pos', None) is None:
        raise ValueError("Expected 'data.pos' to hold the [n, 3] unit vectors of a sampling "
                         "(got None)")
    return data


def _as_operator(data: Data, operator: Any, in_channels: int, batched: bool,
                 dtype: Optional[torch.dtype]) -> Callable[[np.ndarray, int], np.ndarray]:
    """A function ``apply(x [n, S * F], F) -> [n, S * F_out]`` (float64 numpy)."""
    n = int(data.num_nodes)
    if isinstance(operator, str):
        if operator != 'laplacian':
            raise ValueError(f"Expected 'operator' to be 'laplacian', a matrix or a callable "
                             f"(got {operator!r})")
        if getattr(data, 'edge_index', None) is None:
            raise ValueError("Expected 'data.edge_index' to be set for operator='laplacian' "
                             "(apply SphereKNNGraph first)")
        operator = laplacian(data.edge_index, getattr(data, 'edge_weight', None), n, None)
    if isinstance(operator, torch.Tensor):
        if operator.is_sparse or operator.layout in (torch.sparse_csr, torch.sparse_csc):
            coo = operator.detach().cpu().to_sparse_coo().coalesce()
            idx = coo.indices().numpy()
            operator = sp.csr_matrix((coo.values().double().numpy(), (idx[0], idx[1])),
                                     shape=tuple(coo.shape))
        else:
            operator = operator.detach().cpu().double().numpy()
    if sp.issparse(operator) or isinstance(operator, np.ndarray):
        if operator.shape != (n, n):
            raise ValueError(f"Expected 'operator' to be an [n, n] matrix with n = {n} "
                             f"pixels (got shape {tuple(operator.shape)})")
        mat = operator.tocsr() if sp.issparse(operator) else operator
        return lambda x, f: np.asarray(mat @ x, dtype=np.float64)
    if not callable(operator):
        raise ValueError(f"Expected 'operator' to be 'laplacian', a scipy / torch matrix or "
                         f"a callable (got {_got(operator)})")
    module_param = None
    if isinstance(operator, torch.nn.Module):
        module_param = next((p for p in operator.parameters() if p.is_floating_point()), None)
    run_dtype = dtype or (module_param.dtype if module_param is not None else torch.float64)
    device = module_param.device if module_param is not None else torch.device('cpu')

    def apply(x: np.ndarray, f: int) -> np.ndarray:
        num = x.shape[1] // f
        blocks = torch.from_numpy(x).to(run_dtype).to(device)
        blocks = blocks.view(n, num, f).permute(1, 0, 2)  # [S, n, F]
        with torch.no_grad():
            if batched:
                out = operator(blocks)
                if out.dim() == 2:
                    out = out.unsqueeze(-1)
                if out.dim() != 3 or out.shape[:2] != (num, n):
                    raise ValueError(f"Expected the operator to map [B, n, F] to [B, n, F'] "
                                     f"with n = {n} (got {tuple(out.shape)})")
            else:
                outs = []
                for s in range(num):
                    o = operator(blocks[s])
                    if o.dim() == 1:
                        o = o.unsqueeze(-1)
                    if o.dim() != 2 or o.size(0) != n:
                        raise ValueError(f"Expected the operator to map [n, F] to [n, F'] "
                                         f"with n = {n} (got {tuple(o.shape)})")
                    outs.append(o)
                out = torch.stack(outs)
        out = out.detach().cpu().double()  # [S, n, F']
        return out.permute(1, 0, 2).reshape(n, -1).numpy()
    return apply


def _check_degrees(degrees: Any, lmax: int, data: Data) -> np.ndarray:
    if degrees is None:
        return np.unique(np.round(np.linspace(1, lmax, min(lmax, 16))).astype(np.int64))
    if isinstance(degrees, numbers.Integral) and not isinstance(degrees, bool):
        degrees = [degrees]
    arr = np.asarray(list(degrees))
    if arr.size == 0 or arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Expected 'degrees' to be an int or a non-empty sequence of ints "
                         f"(got {degrees!r})")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise ValueError(f"Expected 'degrees' >= 0 (got {int(arr.min())})")
    if arr.max() > lmax:
        sampling = getattr(data, 'sampling', None)
        where = (f"3 * nside - 1 = {lmax} for HEALPix nside {sampling['nside']}"
                 if getattr(sampling, 'name', None) == 'healpix' else f"{lmax}")
        raise ValueError(f"Expected 'degrees' <= lmax = {where} (got {int(arr.max())})")
    return arr


class EquivarianceProblem:
    """Signals, rotations and their exact rotations, drawn once.

    Lets the same draws score several operators (common random numbers: the
    kernel-width tuner compares widths on identical signals and rotations).
    """
    def __init__(self, data: Data, degrees: Any = None, spectrum: Any = None,
                 n_signals: int = 4, n_rotations: int = 4, seed: Any = 0,
                 lmax: Optional[int] = None, in_channels: int = 1, iter: int = 10) -> None:
        data = _check_data(data)
        self.n = int(data.num_nodes)
        self.n_signals = check_int('n_signals', n_signals, minimum=1)
        self.n_rotations = check_int('n_rotations', n_rotations, minimum=1)
        self.in_channels = check_int('in_channels', in_channels, minimum=1)
        self.lmax = default_lmax(data) if lmax is None else check_int('lmax', lmax, minimum=0)
        if getattr(data, 'sampling', None) is not None and \
                getattr(data.sampling, 'name', None) == 'healpix' and \
                self.lmax > 3 * data.sampling['nside'] - 1:
            nside = data.sampling['nside']
            raise ValueError(f"Expected 'lmax' <= 3 * nside - 1 = {3 * nside - 1} for HEALPix "
                             f"nside {nside} (got {self.lmax})")
        if spectrum is not None and degrees is not None:
            raise ValueError("Expected either 'degrees' or 'spectrum', not both")
        rng = np.random.default_rng(seed)
        self.rotations = random_rotation(self.n_rotations, rng)
        self.sht: HarmonicTransform = harmonic_transform(data, self.lmax, iter=iter)
        self._wigner = [WignerRotation(r, self.lmax) for r in self.rotations]
        self._wigner_inv = None
        p = (self.lmax + 1) ** 2
        cols = self.n_signals * self.in_channels
        if spectrum is not None:
            spec = np.asarray(spectrum, dtype=np.float64).ravel()
            if spec.size == 0 or spec.size > self.lmax + 1 or (spec < 0).any() \
                    or not np.isfinite(spec).all():
                raise ValueError(f"Expected 'spectrum' to hold 1 to lmax + 1 = {self.lmax + 1} "
                                 f"non-negative values C_l (got {spec.size} values)")
            self.degrees = np.array([-1])
            c = np.zeros((p, cols))
            for l, cl in enumerate(spec):
                s = degree_slice(l)
                c[s] = math.sqrt(cl) * rng.standard_normal((2 * l + 1, cols))
            coeffs = [c]
        else:
            self.degrees = _check_degrees(degrees, self.lmax, data)
            coeffs = []
            for l in self.degrees:
                c = np.zeros((p, cols))
                c[degree_slice(int(l))] = rng.standard_normal((2 * int(l) + 1, cols))
                coeffs.append(c)
        # all degrees side by side: column block d holds degree d's signals
        self.coeffs = np.concatenate(coeffs, axis=1)  # [p, D * S * F]
        self.signals = self.sht.synthesis(self.coeffs)  # [n, D*S*F]
        self.rotated = [self.sht.synthesis(w.apply(self.coeffs)) for w in self._wigner]

    def rotate_sampled(self, x: np.ndarray, r: int, inverse: bool = False) -> np.ndarray:
        """Rotate sampled maps [n, B] by rotation ``r`` through the transform."""
        if inverse:
            if self._wigner_inv is None:
                self._wigner_inv = [WignerRotation(q.T, self.lmax) for q in self.rotations]
            w = self._wigner_inv[r]
        else:
            w = self._wigner[r]
        return self.sht.synthesis(w.apply(self.sht.analysis(x)))

    def _per_signal(self, sq: np.ndarray, num_out: int) -> np.ndarray:
        """Sum squared values [n, D*S*F'] over pixels and channels -> [D, S]."""
        total = sq.sum(axis=0)
        return total.reshape(len(self.degrees), self.n_signals, num_out).sum(-1)

    def errors(self, apply: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
        """Equivariance errors [D, S, R] of ``apply`` (see :func:`equivariance_error`)."""
        f = self.in_channels
        lf = apply(self.signals, f)
        num_out = lf.shape[1] // (len(self.degrees) * self.n_signals)
        norm = self._per_signal(lf ** 2, num_out)
        ref = self._per_signal(self.signals ** 2, f)
        out = np.empty((len(self.degrees), self.n_signals, self.n_rotations))
        coeffs = self.sht.analysis(lf)
        for r, w in enumerate(self._wigner):
            rlf = self.sht.synthesis(w.apply(coeffs))
            lrf = apply(self.rotated[r], f)
            diff = self._per_signal((rlf - lrf) ** 2, num_out)
            with np.errstate(divide='ignore', invalid='ignore'):
                out[:, :, r] = np.where(norm > 1e-24 * ref, diff / norm, np.nan)
        return out

    def floor(self) -> np.ndarray:
        """Round-trip errors [D, S, R] of the sampled rotation (rotate, rotate back)."""
        f = self.in_channels
        ref = self._per_signal(self.signals ** 2, f)
        out = np.empty((len(self.degrees), self.n_signals, self.n_rotations))
        for r in range(self.n_rotations):
            back = self.rotate_sampled(self.rotate_sampled(self.signals, r), r, inverse=True)
            out[:, :, r] = self._per_signal((back - self.signals) ** 2, f) / ref
        return out


def equivariance_error(data: Data, operator: Any = 'laplacian', degrees: Any = None,
                       spectrum: Optional[Sequence[float]] = None, n_signals: int = 4,
                       n_rotations: int = 4, seed: Any = 0, lmax: Optional[int] = None,
                       in_channels: int = 1, iter: int = 10, floor: bool = True,
                       batched: bool = False,
                       dtype: Optional[torch.dtype] = None) -> EquivarianceResult:
    r"""Mean rotation-equivariance error of an operator on a sampled sphere,
    as in `DeepSphere (ICLR 2020) <https://openreview.net/forum?id=B1e3OlStPB>`_:

    .. math::
        E = \mathbb{E}_{f, R} \left(\frac{\lVert \mathbf{R}\, L f -
        L\, \mathbf{R} f \rVert}{\lVert L f \rVert}\right)^2

    over random band-limited signals :math:`f` and random rotations
    :math:`R`, uniform (Haar) on :math:`SO(3)`, with Euclidean norms over the
    pixels. Per degree :math:`\ell`, the signals are Gaussian with all their
    power in degree :math:`\ell` (i.i.d. standard normal real coefficients
    :math:`c_{\ell m}`, the same law as :func:`healpy.synfast` of a spectrum
    that is 1 at :math:`\ell`); with ``spectrum`` they have
    :math:`c_{\ell m} \sim \mathcal{N}(0, C_\ell)`.

    Rotations (see :mod:`pyg_sphere.rotation`):

    * :math:`\mathbf{R} f` of a drawn signal is exact: its coefficients are
      rotated with real Wigner matrices and synthesized on the pixels (the
      same as evaluating the band-limited function at :math:`R^{-1}x_i`).
    * :math:`\mathbf{R}\, L f` rotates a sampled map, so it goes through the
      sampling's harmonic transform up to ``lmax``: on HEALPix, healpy's
      ``map2alm`` quadrature (RING order, no pixel weights; NESTED maps are
      reordered) refined by ``iter`` conjugate-gradient steps; ring FFTs and
      Legendre least squares (exact for band-limited maps) on equiangular and
      regular Gauss-Legendre grids; a weighted least-squares fit otherwise. The part of :math:`L f` above
      ``lmax`` is dropped, so it counts as error.

    The error floor of the rotation itself is measured too (``floor=True``):
    the round trip :math:`\mathbf{R}^{-1}\mathbf{R} f` through the transform,
    per degree. Errors below it are not meaningful.

    Args:
        data (Data): a full-sky sampling from :mod:`pyg_sphere.samplings`
            (with its graph, ``edge_index`` / ``edge_weight``, for
            ``operator='laplacian'``).
        operator: ``'laplacian'`` (the combinatorial Laplacian
            :math:`D - W` of ``data``'s graph), an [n, n] SciPy sparse,
            NumPy or torch (sparse or dense) matrix, or a callable on torch
            tensors mapping [n, F] to [n, F'] (or [B, n, F] to [B, n, F'] with
            ``batched=True``) on the same pixels, e.g. ``lambda x: conv(x,
            edge_index, edge_weight)`` or an ``nn.Module``. (default:
            ``'laplacian'``)
        degrees (int or sequence of int, optional): degrees to test, each in
            ``[0, lmax]``. (default: 16 degrees evenly spaced in ``[1, lmax]``)
        spectrum (sequence of float, optional): a power spectrum
            :math:`C_\ell`, ``l = 0 .. len - 1`` (instead of ``degrees``).
        n_signals (int): signals per degree. (default: :obj:`4`)
        n_rotations (int): rotations, shared by all signals. (default: :obj:`4`)
        seed (int or numpy.random.Generator): seeds signals and rotations.
            (default: :obj:`0`)
        lmax (int, optional): band limit of the transform (and largest
            degree). (default: ``3 * nside - 1`` for HEALPix, see
            :func:`~pyg_sphere.metrics.default_lmax` otherwise)
        in_channels (int): input channels of a callable operator (each an
            independent signal of the same degree). (default: :obj:`1`)
        iter (int): conjugate-gradient iterations of the HEALPix (and reduced
            Gauss-Legendre) analysis; more lower the floor near
            ``3 * nside - 1``. (default: :obj:`10`)
        floor (bool): also measure the rotation round-trip floor.
            (default: :obj:`True`)
        batched (bool): call a callable operator once on [B, n, F].
            (default: :obj:`False`)
        dtype (torch.dtype, optional): dtype of the inputs of a callable
            operator. (default: that of the module's parameters, else
            :obj:`torch.float64`)

    Returns:
        :class:`EquivarianceResult` (errors per degree, their spread, every
        sample and the floor).

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> from pyg_sphere.transforms import SphereKNNGraph
        >>> data = SphereKNNGraph(k=20)(healpix(8))
        >>> res = equivariance_error(data, degrees=[4, 8], n_signals=2, n_rotations=2)
        >>> bool((res.error < 0.1).all())
        True
    """
    if not isinstance(floor, bool):
        raise ValueError(f"Expected 'floor' to be a bool (got {floor!r})")
    in_channels = check_int('in_channels', in_channels, minimum=1)
    problem = EquivarianceProblem(data, degrees=degrees, spectrum=spectrum,
                                  n_signals=n_signals, n_rotations=n_rotations, seed=seed,
                                  lmax=lmax, in_channels=in_channels, iter=iter)
    apply = _as_operator(data, operator, in_channels, batched, dtype)
    samples = problem.errors(apply)
    floor_values = (problem.floor().mean(axis=(1, 2)) if floor
                    else np.full(len(problem.degrees), np.nan))
    return EquivarianceResult(
        degrees=problem.degrees, error=samples.mean(axis=(1, 2)),
        error_std=samples.std(axis=(1, 2)), samples=samples,
        relative=np.sqrt(samples).mean(axis=(1, 2)), floor=floor_values,
        lmax=problem.lmax, backend=problem.sht.backend)
