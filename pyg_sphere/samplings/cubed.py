"""Cubed-sphere sampling: 6 gnomonic faces of N x N cells."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch_geometric.data import Data

from .._validation import check_choice, check_int
from ._base import SphereSampling, make_data, register, register_area

#: Allowed values of ``spacing``.
CUBED_SPACINGS = ('equiangular', 'equidistant')

#: Largest accepted ``subdivisions`` (6 * 4**12 = 100,663,296 cells).
MAX_SUBDIVISIONS = 12

#: (normal, u, v) of the faces, in pixel order +x, +y, -x, -y, +z, -z.
#: Every frame is right-handed (u x v = normal): seen from outside, u points
#: right and v up. The equatorial faces have u eastwards and v = +z; the polar
#: faces have u = +y and v = -x (+z) or +x (-z), so that face +x continues
#: across its top edge into +z and across its bottom edge into -z.
CUBED_FACES = np.array([
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[0, 1, 0], [-1, 0, 0], [0, 0, 1]],
    [[-1, 0, 0], [0, -1, 0], [0, 0, 1]],
    [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
    [[0, 0, 1], [0, 1, 0], [-1, 0, 0]],
    [[0, 0, -1], [0, 1, 0], [1, 0, 0]],
], dtype=np.float64)


def _check_args(subdivisions: Any, spacing: Any) -> tuple:
    subdivisions = check_int('subdivisions', subdivisions, minimum=0)
    if subdivisions > MAX_SUBDIVISIONS:
        raise ValueError(f"Expected 'subdivisions' to be <= {MAX_SUBDIVISIONS} "
                         f"(got {subdivisions})")
    spacing = check_choice('spacing', spacing, CUBED_SPACINGS)
    return subdivisions, spacing


def _face_coords(num: int, spacing: str, edges: bool) -> np.ndarray:
    """Face-plane coordinates in [-1, 1] of the ``num`` cell centres, or of
    the ``num + 1`` cell edges."""
    if edges:
        t = np.arange(num + 1, dtype=np.float64)
    else:
        t = np.arange(num, dtype=np.float64) + 0.5
    if spacing == 'equiangular':
        coords = np.tan(t / num * (np.pi / 2) - np.pi / 4)
    else:
        coords = t / num * 2 - 1
    if edges:
        coords[0], coords[-1] = -1.0, 1.0  # tan(+-pi/4) is 1 - 1e-16
    return coords


@register('cubed')
def cubed(subdivisions: int, spacing: str = 'equiangular',
          dtype: Optional[torch.dtype] = None) -> Data:
    r"""Cubed-sphere sampling (`Ronchi et al. 1996
    <https://doi.org/10.1006/jcph.1996.0047>`_): the cube's 6 faces, each an
    :math:`N \times N` grid of cells with :math:`N = 2^l`, projected from the
    centre onto the sphere, :math:`n = 6 \cdot 4^l` cells at
    :math:`l` = ``subdivisions``.

    The centre of cell :math:`(j, i)` of a face with outward normal
    :math:`\mathbf{e}` and in-plane axes :math:`\mathbf{u}, \mathbf{v}` is

    .. math::
        \mathbf{x}_{ji} = \frac{\mathbf{e} + a_i \mathbf{u} + a_j \mathbf{v}}
        {\lVert \mathbf{e} + a_i \mathbf{u} + a_j \mathbf{v} \rVert}, \quad
        a_i = \begin{cases}
            \tan\left(-\frac{\pi}{4} + (i + \frac12) \frac{\pi}{2N}\right)
                & \text{spacing='equiangular'} \\
            -1 + (i + \frac12) \frac{2}{N} & \text{spacing='equidistant'}
        \end{cases}

    Ordering is face-major, then row-major on a face: pixel
    ``f * N * N + j * N + i`` is column ``i`` (along :math:`\mathbf{u}`) of
    row ``j`` (along :math:`\mathbf{v}`) of face ``f``. Faces come in the
    order (normal; u; v):

    ====  ======  ======  ======
    f     normal  u       v
    ====  ======  ======  ======
    0     +x      +y      +z
    1     +y      -x      +z
    2     -x      -y      +z
    3     -y      +x      +z
    4     +z      +y      -x
    5     -z      +y      +x
    ====  ======  ======  ======

    Every frame is right-handed (:math:`\mathbf{u} \times \mathbf{v} =
    \mathbf{e}`: seen from outside, u points right and v up); the four
    equatorial faces run eastwards with v to the north, and face +x continues
    into +z across its top edge and into -z across its bottom edge. The cell
    edges of level :math:`l - 1` are cell edges of level :math:`l`, so the
    2x2 blocks of a face (``signal.view(6, N // 2, 2, N // 2, 2)``) are the
    cells of the coarser grid.

    The pixel areas (:func:`pixel_area`) are the exact areas of the cells: for
    a cell :math:`[x_0, x_1] \times [y_0, y_1]` of the face plane,

    .. math::
        a = F(x_1, y_1) - F(x_0, y_1) - F(x_1, y_0) + F(x_0, y_0), \quad
        F(x, y) = \arctan \frac{x y}{\sqrt{1 + x^2 + y^2}},

    which sum to :math:`4\pi`.

    Args:
        subdivisions (int): level :math:`l`, ``0 <= subdivisions <= 12``; each
            face has :math:`N = 2^l` cells along each side.
        spacing (str, optional): cell spacing on a face, one of
            :obj:`CUBED_SPACINGS`: ``'equiangular'`` (equal angles seen from
            the centre, more uniform areas) or ``'equidistant'`` (equal steps
            on the face plane). (default: ``'equiangular'``)
        dtype (torch.dtype, optional): dtype of ``pos``.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        :class:`torch_geometric.data.Data` with ``pos`` [n, 3] (unit vectors),
        ``num_nodes`` and ``sampling`` (a :class:`SphereSampling` with
        ``subdivisions``, ``spacing``).

    Example:
        >>> data = cubed(2)
        >>> data.num_nodes
        96
        >>> cubed(0).pos.tolist()  # one cell per face: the face centres
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]
    """
    subdivisions, spacing = _check_args(subdivisions, spacing)
    num = 2 ** subdivisions
    a = _face_coords(num, spacing, edges=False)
    normal, u, v = CUBED_FACES[:, 0], CUBED_FACES[:, 1], CUBED_FACES[:, 2]
    # [6, N (row j, along v), N (column i, along u), 3]
    xyz = (normal[:, None, None, :]
           + a[None, None, :, None] * u[:, None, None, :]
           + a[None, :, None, None] * v[:, None, None, :])
    sampling = SphereSampling('cubed', {'subdivisions': subdivisions, 'spacing': spacing})
    return make_data(xyz.reshape(-1, 3), sampling, dtype)


def _face_areas(num: int, spacing: str) -> np.ndarray:
    """Exact areas [N, N] of the cells of one face (the same on every face)."""
    e = _face_coords(num, spacing, edges=True)
    x, y = e[None, :], e[:, None]
    corner = np.arctan(x * y / np.sqrt(1 + x * x + y * y))  # F at [y edge, x edge]
    return corner[1:, 1:] - corner[1:, :-1] - corner[:-1, 1:] + corner[:-1, :-1]


@register_area('cubed')
def _cubed_area(data: Data) -> torch.Tensor:
    num = 2 ** data.sampling['subdivisions']
    face = _face_areas(num, data.sampling['spacing'])
    return torch.from_numpy(np.tile(face.reshape(-1), 6))
