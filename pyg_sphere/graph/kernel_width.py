r"""Gaussian kernel widths for spherical kNN graphs.

Edges carry :math:`w_{ij} = \exp(-d_{ij}^2 / (4t))`; ``t`` is the kernel width.
For HEALPix the optimal widths of Defferrard et al. (ICLR 2020) are tabulated
(published as :math:`\sigma` with :math:`t = \sigma^2 / (4 \ln 2)`, chordal
distance; geodesic and chordal distances of neighbours differ by < 0.1 %).
For other samplings a HEALPix-calibrated heuristic is used (see
:func:`heuristic_kernel_width`).
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import torch

from .._validation import check_int, check_positive_float

#: Published optimal sigma for HEALPix kNN graphs: {k: {nside: sigma}}.
PUBLISHED_SIGMA: Dict[int, Dict[int, float]] = {
    8: {32: 0.02500, 64: 0.01228, 128: 0.00614, 256: 0.00307, 512: 0.00154, 1024: 0.00077},
    20: {32: 0.03185, 64: 0.01564, 128: 0.00782, 256: 0.00391, 512: 0.00196, 1024: 0.00098},
    40: {32: 0.042432, 64: 0.021354, 128: 0.010595, 256: 0.005551},
    60: {32: 0.051720, 64: 0.025403, 128: 0.012695, 256: 0.006351},
}
#: The k for which HEALPix widths are tabulated.
TABULATED_K: Tuple[int, ...] = tuple(sorted(PUBLISHED_SIGMA))

#: t / mean(d^2 over the graph's edges) of the published HEALPix widths,
#: measured on our symmetric kNN graphs (geodesic d) at nside 64-256; it is
#: constant in nside to 1-3 %. Regenerate with
#: ``python benchmarks/calibrate_kernel_width.py``.
HEALPIX_WIDTH_RATIO: Dict[int, float] = {8: 0.1362, 20: 0.0985, 40: 0.0950, 60: 0.0909}


def sigma_to_t(sigma: float) -> float:
    r""":math:`t = \sigma^2 / (4 \ln 2)` (kernel :math:`e^{-\ln 2\, d^2/\sigma^2}`)."""
    return sigma * sigma / (4 * math.log(2))


def healpix_kernel_width(nside: int, k: int) -> float:
    r"""Optimal kernel width ``t`` for a HEALPix kNN graph (published table).

    Entries not in the published table are extrapolated with
    :math:`\sigma \propto 1/n_{side}` from the nearest published nside: below
    nside 32 as :math:`\sigma(32) \cdot 32 / n_{side}` (as the authors did),
    above the table by halving per doubling (k=40 and 60 above nside 256 are
    therefore extrapolated, and were marked doubtful by the authors).

    Args:
        nside (int): HEALPix resolution (any positive integer).
        k (int): number of neighbours, one of :obj:`TABULATED_K`.
    """
    nside = check_int('nside', nside, minimum=1)
    k = check_int('k', k, minimum=1)
    if k not in PUBLISHED_SIGMA:
        raise ValueError(f"Expected 'k' to be one of {TABULATED_K} for the published HEALPix "
                         f"kernel widths (got {k})")
    table = PUBLISHED_SIGMA[k]
    ref = min(table, key=lambda s: (abs(math.log2(s / nside)), -s))
    return sigma_to_t(table[ref] * ref / nside)


def heuristic_kernel_width(mean_sq_distance: float, k: int) -> float:
    r"""Kernel width from the mean squared edge distance of a kNN graph.

    .. math::
        t = c_k \, \overline{d^2}

    where :math:`c_k` is the ratio of the published optimal HEALPix width to
    the mean squared edge distance of the same HEALPix graph
    (:obj:`HEALPIX_WIDTH_RATIO`: 0.136 for k=8 down to 0.091 for k=60),
    interpolated linearly in :math:`\log k` and held constant outside
    [8, 60]. For HEALPix it reproduces the table to a few percent; for other
    samplings it transfers the same relation between width and neighbour
    spacing. (The older heuristic :math:`t = \overline{d^2}/2` is about 3.7x
    wider for k=8, and measurably less rotation equivariant.)
    """
    mean_sq_distance = check_positive_float('mean_sq_distance', mean_sq_distance)
    k = check_int('k', k, minimum=1)
    ks = sorted(HEALPIX_WIDTH_RATIO)
    if k <= ks[0]:
        c = HEALPIX_WIDTH_RATIO[ks[0]]
    elif k >= ks[-1]:
        c = HEALPIX_WIDTH_RATIO[ks[-1]]
    else:
        hi = next(i for i in range(len(ks)) if ks[i] >= k)
        k0, k1 = ks[hi - 1], ks[hi]
        a = (math.log(k) - math.log(k0)) / (math.log(k1) - math.log(k0))
        c = (1 - a) * HEALPIX_WIDTH_RATIO[k0] + a * HEALPIX_WIDTH_RATIO[k1]
    return c * mean_sq_distance


def gaussian_weight(distance_sq: torch.Tensor, kernel_width: float) -> torch.Tensor:
    r""":math:`w = \exp(-d^2 / (4t))`."""
    return torch.exp(distance_sq / (-4.0 * kernel_width))
