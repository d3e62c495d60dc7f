r"""Kernel widths tuned for the kNN graphs of non-HEALPix samplings.

No optimal widths were published for equiangular, icosahedral, cubed-sphere
or Gauss-Legendre graphs; these were found with
:func:`pyg_sphere.metrics.tune_kernel_width`, which minimizes the
rotation-equivariance error of the combinatorial Laplacian :math:`D - W` of
the symmetric kNN graph (geodesic distances, weights :math:`e^{-d^2/(4t)}`),
as DeepSphere did for HEALPix. The objective is the geometric mean over 8
degrees in :math:`[1, 0.75\sqrt{n/3}]` of the mean equivariance error (3
signals x 3 Haar rotations per degree, seed 0).

Each entry holds ``(t, ratio)``: the tuned width ``t`` and
``ratio = t / mean(d^2)``, the mean taken over the graph's edges. For a
resolution that is not tabulated, :func:`tuned_kernel_width` multiplies the
mean squared edge distance of the actual graph by the ratio of the nearest
tabulated resolution of the same family (nearest in :math:`\log n`): the ratio
varies slowly with resolution (see ``docs/equivariance.md``), as it does for
HEALPix (:obj:`pyg_sphere.graph.HEALPIX_WIDTH_RATIO`).

Entries flagged in :obj:`AT_BRACKET_EDGE` had no interior optimum: grids with
pole rows (Driscoll-Healy, Clenshaw-Curtis) keep improving as ``t`` grows
towards the unweighted graph, and the largest width tried (16x the calibrated
heuristic) is stored.

Regenerate with ``python benchmarks/tune_widths.py`` (it rewrites the block
between the ``BEGIN/END GENERATED`` markers).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

# BEGIN GENERATED
#: {family: {resolution: {k: (t, t / mean d^2)}}}; family = (sampling name,
#: variant), resolution = nlat (equiangular, Gauss-Legendre) or subdivisions
#: (icosahedral, cubed).
TUNED_WIDTHS: Dict[Tuple[str, ...], Dict[int, Dict[int, Tuple[float, float]]]] = {
    ('equiangular', 'none'): {
        32: {8: (0.0028585, 0.2951), 20: (0.0086261, 0.4042), 40: (0.023708, 0.5533)},
        64: {8: (0.00055011, 0.2266), 20: (0.0016919, 0.3154), 40: (0.003803, 0.3601)},
        128: {8: (0.00012808, 0.2114), 20: (0.00037999, 0.2831), 40: (0.00080844, 0.3093)},
    },
    ('equiangular', 'north'): {
        32: {8: (0.021735, 2.179), 20: (0.033755, 1.576), 40: (0.065539, 1.52)},
        64: {8: (0.0053581, 2.179), 20: (0.0084635, 1.576), 40: (0.015896, 1.52)},
        128: {8: (0.0013309, 2.179), 20: (0.0021159, 1.576), 40: (0.0025213, 0.9697)},
    },
    ('equiangular', 'both'): {
        33: {8: (0.00058117, 0.05838), 20: (0.032765, 1.576), 40: (0.062687, 1.52)},
        65: {8: (0.00014488, 0.05896), 20: (0.0083296, 1.576), 40: (0.015553, 1.52)},
        129: {8: (0.0013306, 2.179), 20: (0.0020986, 1.576), 40: (0.0039073, 1.52)},
    },
    ('gauss_legendre', 'regular'): {
        32: {8: (0.0024313, 0.2516), 20: (0.0076501, 0.3587), 40: (0.024345, 0.556)},
        64: {8: (0.00055343, 0.2288), 20: (0.0016314, 0.3035), 40: (0.0037339, 0.3519)},
        128: {8: (0.00012953, 0.2139), 20: (0.00038336, 0.2856), 40: (0.00081202, 0.3093)},
    },
    ('gauss_legendre', 'reduced'): {
        32: {8: (0.002655, 0.2129), 20: (0.01374, 0.4913), 40: (0.08215, 1.52)},
        64: {8: (0.00075096, 0.1989), 20: (0.0025343, 0.2954), 40: (0.012974, 0.8002)},
        128: {8: (0.00018698, 0.1738), 20: (0.00063647, 0.2654), 40: (0.0021031, 0.4608)},
    },
    ('icosahedral',): {
        3: {8: (0.0049798, 0.1497), 20: (0.013652, 0.1914), 40: (0.032361, 0.2377)},
        4: {8: (0.0012193, 0.1445), 20: (0.0033971, 0.1907), 40: (0.0097, 0.2867)},
        5: {8: (0.0003054, 0.1455), 20: (0.00083326, 0.1861), 40: (0.0032566, 0.384)},
    },
    ('cubed', 'equiangular'): {
        3: {8: (0.0077196, 0.152), 20: (0.030056, 0.2596), 40: (0.12623, 0.5542)},
        4: {8: (0.002068, 0.1644), 20: (0.0086512, 0.3024), 40: (0.034443, 0.6108)},
        5: {8: (0.00050798, 0.1616), 20: (0.0018619, 0.2611), 40: (0.0063125, 0.4527)},
    },
    ('cubed', 'equidistant'): {
        3: {8: (0.019301, 0.3721), 20: (0.19295, 1.576), 40: (0.34178, 1.52)},
        4: {8: (0.0041913, 0.3315), 20: (0.019764, 0.6691), 40: (0.088835, 1.52)},
        5: {8: (0.00092031, 0.2927), 20: (0.0034396, 0.4792), 40: (0.010608, 0.7343)},
    },
}
#: (family, resolution, k) whose optimum sat at the edge of the search bracket.
AT_BRACKET_EDGE: Tuple[Tuple[Tuple[str, ...], int, int], ...] = (
    (('equiangular', 'north'), 32, 8),
    (('equiangular', 'north'), 32, 20),
    (('equiangular', 'north'), 32, 40),
    (('equiangular', 'north'), 64, 8),
    (('equiangular', 'north'), 64, 20),
    (('equiangular', 'north'), 64, 40),
    (('equiangular', 'north'), 128, 8),
    (('equiangular', 'north'), 128, 20),
    (('equiangular', 'both'), 33, 20),
    (('equiangular', 'both'), 33, 40),
    (('equiangular', 'both'), 65, 20),
    (('equiangular', 'both'), 65, 40),
    (('equiangular', 'both'), 129, 8),
    (('equiangular', 'both'), 129, 20),
    (('equiangular', 'both'), 129, 40),
    (('gauss_legendre', 'reduced'), 32, 40),
    (('cubed', 'equidistant'), 3, 20),
    (('cubed', 'equidistant'), 3, 40),
    (('cubed', 'equidistant'), 4, 40),
)
# END GENERATED


def sampling_family(sampling: Any) -> Optional[Tuple[Tuple[str, ...], int, int]]:
    """``(family, resolution, num_pixels)`` of a sampling descriptor, or
    :obj:`None` for samplings without tuned widths (HEALPix has published
    widths; arbitrary points and non-default grid shapes have none)."""
    name = getattr(sampling, 'name', None)
    try:
        if name == 'equiangular':
            nlat, nlon, poles = sampling['nlat'], sampling['nlon'], sampling['poles']
            if nlon != (2 * (nlat - 1) if poles == 'both' else 2 * nlat):
                return None
            return ('equiangular', poles), nlat, nlat * nlon
        if name == 'gauss_legendre':
            nlat, nlon, reduced = sampling['nlat'], sampling['nlon'], sampling['reduced']
            if reduced:
                half = nlat // 2
                return ('gauss_legendre', 'reduced'), nlat, 4 * half * half + 36 * half
            if nlon != 2 * nlat:
                return None
            return ('gauss_legendre', 'regular'), nlat, 2 * nlat * nlat
        if name == 'icosahedral':
            level = sampling['subdivisions']
            return ('icosahedral',), level, 10 * 4 ** level + 2
        if name == 'cubed':
            level = sampling['subdivisions']
            return ('cubed', sampling['spacing']), level, 6 * 4 ** level
    except KeyError:
        return None
    return None


def tuned_kernel_width(sampling: Any, k: int,
                       mean_sq_distance: Optional[float] = None) -> Optional[float]:
    r"""Tuned width ``t`` for the kNN graph of ``sampling`` with ``k``
    neighbours, or :obj:`None` if there is none.

    Tabulated (family, resolution, k): the tuned ``t``. Same family and ``k``
    at another resolution: ``ratio * mean_sq_distance`` with the ratio of the
    nearest tabulated resolution (:obj:`None` if ``mean_sq_distance`` is not
    given). Otherwise :obj:`None` (the caller falls back to a heuristic).
    """
    fam = sampling_family(sampling)
    if fam is None:
        return None
    family, resolution, npix = fam
    table = TUNED_WIDTHS.get(family)
    if not table:
        return None
    if resolution in table and k in table[resolution]:
        return table[resolution][k][0]
    if mean_sq_distance is None:
        return None
    candidates = [(res, row[k]) for res, row in table.items() if k in row]
    if not candidates:
        return None
    sizes = {res: _pixels(family, res) for res, _ in candidates}
    res, entry = min(candidates, key=lambda c: abs(math.log(sizes[c[0]] / npix)))
    return entry[1] * float(mean_sq_distance)


def _pixels(family: Tuple[str, ...], resolution: int) -> int:
    name = family[0]
    if name == 'equiangular':
        return resolution * (2 * (resolution - 1) if family[1] == 'both' else 2 * resolution)
    if name == 'gauss_legendre':
        if family[1] == 'reduced':
            half = resolution // 2
            return 4 * half * half + 36 * half
        return 2 * resolution * resolution
    if name == 'icosahedral':
        return 10 * 4 ** resolution + 2
    return 6 * 4 ** resolution
