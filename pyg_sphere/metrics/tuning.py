r"""Kernel widths that minimize the equivariance error of the graph Laplacian."""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from .._validation import check_choice, check_int, check_positive_float
from ..graph import DISTANCES, NORMALIZATIONS, heuristic_kernel_width, sphere_knn_graph
from ..rotation.harmonics import default_lmax, positions_float64
from .equivariance import EquivarianceProblem, _check_data


@dataclasses.dataclass
class TuningResult:
    r"""What :func:`tune_kernel_width` found.

    Attributes:
        kernel_width (float): the tuned width :math:`t`.
        objective (float): the objective at :math:`t` (geometric mean of the
            equivariance error over ``degrees``).
        mean_sq_distance (float): :math:`\overline{d^2}`, the mean squared
            edge distance of the graph.
        ratio (float): ``kernel_width / mean_sq_distance``.
        degrees (list of int): the degrees of the objective.
        errors (list of float): the mean error per degree at :math:`t`.
        heuristic (dict): ``{name: (t, objective, errors)}`` for the two
            heuristics, ``'calibrated'`` (:func:`~pyg_sphere.graph.heuristic_kernel_width`)
            and ``'half_mean'`` (:math:`t = \overline{d^2} / 2`).
        evaluations (list of (float, float)): every ``(t, objective)`` tried.
    """
    kernel_width: float
    objective: float
    mean_sq_distance: float
    ratio: float
    degrees: List[int]
    errors: List[float]
    heuristic: Dict[str, Tuple[float, float, List[float]]]
    evaluations: List[Tuple[float, float]]


def default_tuning_degrees(data: Data, lmax: Optional[int] = None, num: int = 8) -> np.ndarray:
    r"""Degrees of the tuning objective: ``num`` degrees evenly spaced in
    :math:`[1, \ell_{obj}]` with :math:`\ell_{obj} = 0.75 \sqrt{n / 3}` (half
    of ``3 * nside - 1`` on HEALPix, the same pixel-density band on other
    samplings), capped by the band limit ``lmax`` of the harmonic transform.
    """
    top = int(round(0.75 * math.sqrt(int(data.num_nodes) / 3)))
    cap = default_lmax(data) if lmax is None else lmax
    top = max(1, min(top, cap))
    return np.unique(np.round(np.linspace(1, top, min(num, top))).astype(np.int64))


class _Objective:
    def __init__(self, problem: EquivarianceProblem, edge_index: torch.Tensor,
                 sq_dist: np.ndarray, n: int, normalization: Optional[str]) -> None:
        self.problem = problem
        self.row, self.col = edge_index[0].numpy(), edge_index[1].numpy()
        self.sq_dist = sq_dist
        self.n = n
        self.normalization = normalization
        self.cache: Dict[float, Tuple[float, np.ndarray]] = {}

    def laplacian(self, t: float) -> sp.csr_matrix:
        w = np.exp(-self.sq_dist / (4 * t))
        W = sp.csr_matrix((w, (self.row, self.col)), shape=(self.n, self.n))
        deg = np.asarray(W.sum(axis=1)).ravel()
        if self.normalization is None:
            return (sp.diags(deg) - W).tocsr()
        inv = np.where(deg > 0, 1 / np.where(deg > 0, deg, 1), 0.0)
        if self.normalization == 'sym':
            s = sp.diags(np.sqrt(inv))
            return (sp.eye(self.n) - s @ W @ s).tocsr()
        return (sp.eye(self.n) - sp.diags(inv) @ W).tocsr()

    def __call__(self, log_t: float) -> float:
        return self.at(float(math.exp(log_t)))

    def at(self, t: float) -> float:
        if t not in self.cache:
            L = self.laplacian(t)
            per_degree = self.problem.errors(lambda x, f: L @ x).mean(axis=(1, 2))
            value = float(np.exp(np.mean(np.log(np.maximum(per_degree, 1e-300)))))
            self.cache[t] = (value, per_degree)
        return self.cache[t][0]


def tune_kernel_width(data: Data, k: int = 8, degrees: Any = None, n_signals: int = 2,
                      n_rotations: int = 2, seed: Any = 0, lmax: Optional[int] = None,
                      bracket: Sequence[float] = (0.0625, 16.0), xtol: float = 0.01,
                      distance: str = 'geodesic', normalization: Optional[str] = None,
                      iter: int = 3, return_details: bool = False) -> Any:
    r"""Kernel width :math:`t` of the kNN graph that minimizes the
    equivariance error of its Laplacian, as DeepSphere (ICLR 2020) did for
    HEALPix, for any sampling.

    The graph is :func:`~pyg_sphere.graph.sphere_knn_graph` (``k``
    neighbours, weights :math:`e^{-d^2/(4t)}`), the operator its Laplacian
    (combinatorial :math:`D - W` by default), and the objective the
    geometric mean over ``degrees`` of the mean equivariance error
    :math:`E_\ell(t)` (:func:`equivariance_error`), evaluated on the same
    signals and rotations for every :math:`t` (common random numbers, so the
    objective is a smooth function of :math:`t`). The geometric mean weights
    every degree alike although :math:`E_\ell` spans decades across degrees.

    The search runs in :math:`\log t`: a scan of 9 widths spread over
    ``bracket`` (factors of the HEALPix-calibrated heuristic
    :func:`~pyg_sphere.graph.heuristic_kernel_width`), then a bounded Brent
    minimization between the neighbours of the best one, to a relative
    tolerance ``xtol`` in :math:`t`. A warning is raised if the optimum sits
    at the edge of the bracket.

    Args:
        data (Data): a full-sky sampling from :mod:`pyg_sphere.samplings`.
        k (int): number of neighbours. (default: :obj:`8`)
        degrees (sequence of int, optional): degrees of the objective.
            (default: :func:`default_tuning_degrees`: 8 degrees in
            :math:`[1, 0.75\sqrt{n/3}]`, i.e. up to ``1.5 * nside`` on HEALPix)
        n_signals (int): signals per degree. (default: :obj:`2`)
        n_rotations (int): random rotations. (default: :obj:`2`)
        seed (int): seeds signals and rotations. (default: :obj:`0`)
        lmax (int, optional): band limit of the harmonic transform.
            (default: :func:`~pyg_sphere.metrics.default_lmax`)
        bracket (tuple of float): search range as factors of the heuristic
            width. (default: ``(1 / 16, 16)``: the scan steps by factors of 2)
        xtol (float): relative tolerance on :math:`t`. (default: :obj:`0.01`)
        distance (str): ``'geodesic'`` or ``'chordal'``, as in
            :class:`~pyg_sphere.transforms.SphereKNNGraph`.
            (default: ``'geodesic'``)
        normalization (str, optional): Laplacian normalization (:obj:`None`
            for :math:`D - W`, ``'sym'`` or ``'rw'``). (default: :obj:`None`)
        iter (int): conjugate-gradient iterations of the HEALPix / reduced
            Gauss-Legendre analysis (the floor is negligible at the tuning
            degrees). (default: :obj:`3`)
        return_details (bool): return a :class:`TuningResult` instead of the
            width. (default: :obj:`False`)

    Returns:
        float (the width :math:`t`) or :class:`TuningResult`.

    Example:
        >>> from pyg_sphere.samplings import healpix
        >>> t = tune_kernel_width(healpix(8), k=8)  # doctest: +SKIP
    """
    data = _check_data(data)
    k = check_int('k', k, minimum=1)
    check_choice('distance', distance, DISTANCES)
    check_choice('normalization', normalization, NORMALIZATIONS)
    xtol = check_positive_float('xtol', xtol)
    if (not isinstance(bracket, (tuple, list)) or len(bracket) != 2
            or not 0 < float(bracket[0]) < 1 < float(bracket[1])):
        raise ValueError(f"Expected 'bracket' to be two factors (lo, hi) with "
                         f"0 < lo < 1 < hi (got {bracket!r})")
    if not isinstance(return_details, bool):
        raise ValueError(f"Expected 'return_details' to be a bool (got {return_details!r})")
    if degrees is None:
        degrees = default_tuning_degrees(data, lmax)
    problem = EquivarianceProblem(data, degrees=degrees, n_signals=n_signals,
                                  n_rotations=n_rotations, seed=seed, lmax=lmax, iter=iter)
    # the graph's edges and squared distances, once (float64 positions)
    pos = torch.from_numpy(positions_float64(data))
    edge_index, weight, _ = sphere_knn_graph(pos, k, kernel_width=1.0, distance=distance,
                                             sampling=getattr(data, 'sampling', None),
                                             ipix=getattr(data, 'ipix', None))
    sq_dist = (-4.0 * torch.log(weight)).numpy()
    mean_sq = float(sq_dist.mean())
    objective = _Objective(problem, edge_index, sq_dist, int(data.num_nodes), normalization)

    t0 = heuristic_kernel_width(mean_sq, k)
    lo, hi = math.log(t0 * float(bracket[0])), math.log(t0 * float(bracket[1]))
    grid = np.linspace(lo, hi, 9)
    values = [objective(g) for g in grid]
    best = int(np.argmin(values))
    if best in (0, len(grid) - 1):
        warnings.warn(f"The tuned kernel width sits at the edge of the search bracket "
                      f"({math.exp(grid[best]):.3g}); widen 'bracket'", stacklevel=2)
        log_t = float(grid[best])
    else:
        from scipy.optimize import minimize_scalar
        res = minimize_scalar(objective, bounds=(grid[best - 1], grid[best + 1]),
                              method='bounded', options={'xatol': math.log1p(xtol)})
        log_t = float(res.x) if res.fun <= values[best] else float(grid[best])
    t = math.exp(log_t)
    value = objective.at(t)
    if not return_details:
        return t
    heuristic = {}
    for name, th in (('calibrated', t0), ('half_mean', mean_sq / 2)):
        val = objective.at(th)
        heuristic[name] = (th, val, objective.cache[th][1].tolist())
    evaluations = sorted((tt, v[0]) for tt, v in objective.cache.items())
    return TuningResult(kernel_width=t, objective=value, mean_sq_distance=mean_sq,
                        ratio=t / mean_sq, degrees=[int(d) for d in problem.degrees],
                        errors=objective.cache[t][1].tolist(), heuristic=heuristic,
                        evaluations=evaluations)
