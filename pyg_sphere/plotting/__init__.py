r"""Plots of maps on any spherical sampling, confusion matrices and training curves.

Maps are drawn in the `Mollweide projection
<https://en.wikipedia.org/wiki/Mollweide_projection>`_ on Matplotlib's
``'mollweide'`` axes, longitude increasing to the right (east), centred on
longitude 0. Any sampling works: the map is resampled by nearest pixel onto an
image that is regular in the projected plane, and image points farther than
:obj:`MASK_FACTOR` typical pixel spacings from every pixel are left blank, so a
partial sky shows as blank.

Matplotlib is an optional dependency (``pip install pyg-sphere[plot]``). This
module only builds :class:`matplotlib.figure.Figure` objects and never touches
``pyplot``'s global state or backend, so it is safe under the ``Agg`` backend
and in worker processes.

Example:
    >>> import torch
    >>> from pyg_sphere.samplings import healpix
    >>> from pyg_sphere.plotting import mollweide
    >>> data = healpix(8)
    >>> ax = mollweide(data.pos[:, 2], data, title='sin(lat)')
    >>> ax.name
    'mollweide'
"""
from .diagnostics import CURVE_PANELS, plot_confusion, plot_training_curves
from .maps import plot_maps
from .mollweide import DEFAULT_RESOLUTION, MASK_FACTOR, mollweide

__all__ = [
    'mollweide',
    'plot_maps',
    'plot_confusion',
    'plot_training_curves',
    'MASK_FACTOR',
    'CURVE_PANELS',
    'DEFAULT_RESOLUTION',
]
