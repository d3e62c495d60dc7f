r"""Does the graph Laplacian look like the Laplace-Beltrami operator?"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from .._validation import _got, check_choice, check_int
from ..graph import NORMALIZATIONS, laplacian
from ..samplings import SphereSampling, pixel_area
from ..rotation.harmonics import positions_float64, real_sph_harm
from .equivariance import _check_data

# Below this many nodes the dense eigensolver is used.
_DENSE_MAX = 200


@dataclasses.dataclass
class SpectrumAlignment:
    r"""What :func:`laplacian_spectrum_alignment` measured.

    Attributes:
        degrees (list of int): :math:`\ell = 0 .. \ell_{max}`.
        expected_sizes (list of int): :math:`2\ell + 1`.
        group_sizes (list of int): sizes of the eigenvalue groups found by
            splitting the low spectrum at its :math:`\ell_{max} + 1` largest
            relative gaps (equal to ``expected_sizes`` when the spectrum
            clusters like the sphere's).
        eigenvalues (list of list of float): the eigenvalues of the expected
            group :math:`\ell` (indices :math:`\ell^2 .. (\ell+1)^2 - 1`).
        alignment (list of float): mean cosine of the principal angles
            between the eigenvectors of group :math:`\ell` and the spherical
            harmonics of degree :math:`\ell`, in the area-weighted inner
            product (1 = the same subspace).
        min_cosine (list of float): the smallest of those cosines.
        spread (list of float): (max - min) / mean of the eigenvalues of each
            group (0 for an exact multiplicity).
    """
    degrees: List[int]
    expected_sizes: List[int]
    group_sizes: List[int]
    eigenvalues: List[List[float]]
    alignment: List[float]
    min_cosine: List[float]
    spread: List[float]

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _low_eigenpairs(L: sp.spmatrix, num: int, mass: Optional[np.ndarray]):
    """Smallest ``num`` eigenpairs of L v = lambda M v (M = diag(mass) or I)."""
    n = L.shape[0]
    if n <= _DENSE_MAX:
        b = None if mass is None else np.diag(mass)
        val, vec = sla.eigh(L.toarray(), b=b, subset_by_index=[0, num - 1])
        return val, vec
    from scipy.sparse.linalg import eigsh
    diag = np.abs(L.diagonal()).max()
    m = None if mass is None else sp.diags(mass)
    val, vec = eigsh(L.tocsc(), k=num, M=m, sigma=-1e-3 * diag, which='LM')
    order = np.argsort(val)
    return val[order], vec[:, order]


def laplacian_spectrum_alignment(data: Data, edge_index: Optional[torch.Tensor] = None,
                                 edge_weight: Optional[torch.Tensor] = None, lmax: int = 4,
                                 normalization: Optional[str] = None) -> SpectrumAlignment:
    r"""Low spectrum of a graph Laplacian against the spherical harmonics.

    The Laplace-Beltrami operator has eigenvalues :math:`\ell(\ell+1)` with
    multiplicity :math:`2\ell + 1` and the spherical harmonics of degree
    :math:`\ell` as eigenvectors; a graph Laplacian that converges to it
    (`DeepSphere <https://openreview.net/forum?id=B1e3OlStPB>`_) shows the
    same groups and (near) the same eigenspaces at low :math:`\ell`.

    Computes the :math:`(\ell_{max}+1)^2 + 2\ell_{max} + 3` smallest
    eigenpairs (SciPy: dense ``eigh`` up to 200 nodes, shift-invert
    ``eigsh`` above), then for each degree

    * the eigenvalues with indices :math:`\ell^2 .. (\ell+1)^2 - 1` and their
      relative spread;
    * the alignment of their eigenvectors :math:`V_\ell` with the sampled real
      harmonics :math:`Y_\ell`: the cosines of the principal angles between
      :math:`\mathrm{span}(A^{1/2} V_\ell)` and :math:`\mathrm{span}(A^{1/2}
      Y_\ell)`, :math:`A` the pixel areas, and their mean;

    and the group sizes found from the spectrum alone (split at the
    :math:`\ell_{max} + 1` largest relative gaps
    :math:`(\lambda_{i+1} - \lambda_i) / \lambda_{i+1}`).

    Args:
        data (Data): a full-sky sampling (``data.sampling`` for the pixel
            areas; uniform weights otherwise).
        edge_index (torch.Tensor, optional): the graph. (default:
            ``data.edge_index``)
        edge_weight (torch.Tensor, optional): its weights. (default:
            ``data.edge_weight``, else 1)
        lmax (int): largest degree. (default: :obj:`4`)
        normalization (str, optional): :obj:`None` (:math:`D - W`), ``'sym'``
            or ``'rw'`` (solved as :math:`(D - W) v = \lambda D v`).
            (default: :obj:`None`)

    Returns:
        :class:`SpectrumAlignment`.

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> from pyg_sphere.transforms import SphereKNNGraph
        >>> res = laplacian_spectrum_alignment(SphereKNNGraph(k=8)(healpix(8)), lmax=2)
        >>> res.group_sizes
        [1, 3, 5]
    """
    data = _check_data(data)
    lmax = check_int('lmax', lmax, minimum=0)
    check_choice('normalization', normalization, NORMALIZATIONS)
    if edge_index is None:
        edge_index = getattr(data, 'edge_index', None)
        if edge_weight is None:
            edge_weight = getattr(data, 'edge_weight', None)
    if edge_index is None:
        raise ValueError("Expected 'edge_index' (or data.edge_index) to hold a graph (got None)")
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or \
            edge_index.size(0) != 2:
        raise ValueError(f"Expected 'edge_index' to be a [2, E] tensor (got {_got(edge_index)})")
    if edge_weight is not None and edge_weight.numel() != edge_index.size(1):
        raise ValueError(f"Expected 'edge_weight' to have one value per edge "
                         f"({edge_index.size(1)}) (got {edge_weight.numel()})")
    n = int(data.num_nodes)
    num = (lmax + 1) ** 2 + 2 * lmax + 3
    if num >= n:
        raise ValueError(f"Expected 'lmax' small enough that (lmax + 2)**2 < n = {n} "
                         f"eigenpairs exist (got lmax={lmax})")
    if normalization == 'rw':
        comb = laplacian(edge_index, edge_weight, n, None)
        val, vec = _low_eigenpairs(comb, num, comb.diagonal())
    else:
        val, vec = _low_eigenpairs(laplacian(edge_index, edge_weight, n, normalization), num,
                                   None)
    val = np.maximum(val, 0.0)
    sampling = getattr(data, 'sampling', None)
    area = (pixel_area(data).numpy() if isinstance(sampling, SphereSampling)
            else np.full(n, 4 * np.pi / n))
    sw = np.sqrt(area)[:, None]
    Y = real_sph_harm(lmax, positions_float64(data))
    alignment, min_cos, spread, eigenvalues = [], [], [], []
    for l in range(lmax + 1):
        idx = slice(l * l, (l + 1) ** 2)
        qa = sla.orth(sw * vec[:, idx])
        qb = sla.orth(sw * Y[:, idx])
        cos = np.clip(sla.svdvals(qa.T @ qb), 0.0, 1.0)
        if cos.size < 2 * l + 1:  # rank-deficient block
            cos = np.concatenate([cos, np.zeros(2 * l + 1 - cos.size)])
        alignment.append(float(cos.mean()))
        min_cos.append(float(cos.min()))
        group = val[idx]
        mean = group.mean()
        spread.append(float((group.max() - group.min()) / mean) if mean > 0 else 0.0)
        eigenvalues.append([float(v) for v in group])
    # groups from the spectrum alone
    rel = (val[1:] - val[:-1]) / np.maximum(val[1:], 1e-300)
    cuts = np.sort(np.argsort(rel)[::-1][:lmax + 1]) + 1
    sizes = np.diff(np.concatenate([[0], cuts])).tolist()
    return SpectrumAlignment(
        degrees=list(range(lmax + 1)), expected_sizes=[2 * l + 1 for l in range(lmax + 1)],
        group_sizes=[int(s) for s in sizes], eigenvalues=eigenvalues, alignment=alignment,
        min_cosine=min_cos, spread=spread)
