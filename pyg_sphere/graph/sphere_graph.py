"""Build the Gaussian-weighted kNN graph of a spherical sampling."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch

from .._validation import check_choice, check_int, check_pos, check_positive_float
from .geometry import DISTANCES
from .kernel_width import TABULATED_K, healpix_kernel_width, heuristic_kernel_width
from .knn import knn_table, symmetrize
from .tuned_widths import tuned_kernel_width


def default_kernel_width(sampling: Any, k: int,
                         mean_sq_distance: Union[float, Callable[[], float]]) -> float:
    """The kernel width used when none is given.

    The published optimum for HEALPix with a tabulated k; the tuned width
    (:func:`~pyg_sphere.graph.tuned_widths.tuned_kernel_width`: tabulated for
    equiangular, Gauss-Legendre, icosahedral and cubed grids, scaled with the
    mean squared edge distance between tabulated resolutions) for other
    samplings; the HEALPix-calibrated heuristic (:func:`heuristic_kernel_width`)
    otherwise. ``mean_sq_distance`` may be a function computing it: it is then
    called only when needed (a pass over 10^8 edges at nside 1024).
    """
    if getattr(sampling, 'name', None) == 'healpix' and k in TABULATED_K:
        return healpix_kernel_width(sampling['nside'], k)
    if callable(mean_sq_distance):
        mean_sq_distance = float(mean_sq_distance())
    tuned = tuned_kernel_width(sampling, k, mean_sq_distance)
    if tuned is not None:
        return tuned
    return heuristic_kernel_width(mean_sq_distance, k)


def sphere_knn_graph(pos: torch.Tensor, k: int = 8, kernel_width: Optional[float] = None,
                     distance: str = 'geodesic', sampling: Any = None,
                     ipix: Optional[torch.Tensor] = None,
                     ) -> Tuple[torch.Tensor, torch.Tensor, float]:
    r"""Symmetric kNN graph with Gaussian weights of the distance on the sphere.

    .. math::
        w_{ij} = \exp\left(-\frac{d_{ij}^2}{4t}\right)

    ``i`` and ``j`` are joined if either is among the ``k`` nearest of the
    other. Coincident points are not joined to each other.

    Args:
        pos (torch.Tensor): unit vectors [n, 3].
        k (int): number of neighbours. (default: :obj:`8`)
        kernel_width (float, optional): ``t`` in steradians (unit sphere);
            :obj:`None` picks :func:`default_kernel_width`. (default: :obj:`None`)
        distance (str): ``'geodesic'`` (great-circle angle) or ``'chordal'``.
        sampling (SphereSampling, optional): enables the HEALPix fast search
            and the published widths.
        ipix (torch.Tensor, optional): HEALPix pixel of each row (partial sky).

    Returns:
        ``(edge_index [2, E] long, edge_weight [E] of pos.dtype, t)``, edges
        sorted by ``edge_index[0]``.
    """
    pos = check_pos(pos)
    k = check_int('k', k, minimum=1)
    check_choice('distance', distance, DISTANCES)
    if kernel_width is not None:
        kernel_width = check_positive_float('kernel_width', kernel_width)
    nbr, chord2 = knn_table(pos, k, sampling=sampling, ipix=ipix)
    value = chord2
    del chord2
    if distance == 'geodesic':  # d = 2 asin(c / 2), in place: large graphs
        value.sqrt_().mul_(0.5).clamp_(max=1.0).asin_().mul_(2.0).square_()
    edge_index, value = symmetrize(nbr, value, sorted_knn=True)
    del nbr
    if kernel_width is None:
        kernel_width = default_kernel_width(sampling, k,
                                            lambda: float(value.mean(dtype=torch.float64)))
    edge_weight = value.mul_(-1.0 / (4.0 * kernel_width)).exp_()  # gaussian_weight, in place
    return edge_index, edge_weight, kernel_width
