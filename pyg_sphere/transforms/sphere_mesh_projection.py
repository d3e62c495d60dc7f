"""Transform projecting a mesh onto a spherical sampling, in a random pose."""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validation import _got, check_choice, check_pos
from ..samplings import sampling_key
from .mesh_projection import (MESH_CENTERS, MESH_ROTATIONS, check_translate, project_mesh,
                              random_pose)


@functional_transform('sphere_mesh_projection')
class SphereMeshProjection(BaseTransform):
    r"""Projects a triangle mesh onto a spherical sampling (functional name:
    :obj:`sphere_mesh_projection`): the 6-channel SHREC'17 input of
    `Cohen et al. (2018) <https://arxiv.org/abs/1801.10130>`_ and
    `DeepSphere <https://arxiv.org/abs/2012.15000>`_, computed by
    :func:`project_mesh`.

    The input is a mesh as PyG stores it (e.g. :class:`~torch_geometric.
    datasets.ModelNet`): ``pos`` [V, 3] vertices and ``face`` [3, F]. The
    output is (a shallow copy of) ``sampling`` with ``x`` [n, 6]
    (:obj:`MESH_CHANNELS`, dtype of ``sampling.pos``) and the input's ``y``.

    Augmentation, drawn from ``generator`` at each call, after
    normalization: a rotation (``'z'``: about the z axis by a uniform angle,
    ``'so3'``: uniform on SO(3) from a normalized Gaussian quaternion), then
    a translation in a uniform random direction by a length uniform in
    :math:`[0, \text{translate}]` (in units of the normalized radius).

    Args:
        sampling (Data): the pixels, with ``pos`` [n, 3] unit vectors (any
            sampling of :mod:`pyg_sphere.samplings`).
        rotate (str, optional): one of :obj:`MESH_ROTATIONS`. (default: ``'none'``)
        translate (float, optional): largest shift, >= 0. (default: :obj:`0.0`)
        center (str, optional): one of :obj:`MESH_CENTERS`. (default: ``'bbox'``)
        generator (torch.Generator, optional): source of randomness.
            (default: :obj:`None`, the global torch RNG)

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> from pyg_sphere.samplings import healpix, icosahedral
        >>> mesh = icosahedral(2)  # a sphere: pos [162, 3], face [3, 320]
        >>> transform = SphereMeshProjection(healpix(4), rotate='so3',
        ...                                  generator=torch.Generator().manual_seed(0))
        >>> transform(Data(pos=mesh.pos, face=mesh.face, y=torch.tensor([3]))).x.shape
        torch.Size([192, 6])
    """
    def __init__(self, sampling: Data, rotate: str = 'none', translate: float = 0.0,
                 center: str = 'bbox', generator: Optional[torch.Generator] = None) -> None:
        if not isinstance(sampling, Data) or getattr(sampling, 'pos', None) is None:
            raise ValueError(f"Expected 'sampling' to be a Data with 'pos' (a sampling from "
                             f"pyg_sphere.samplings) (got {_got(sampling)})")
        check_pos(sampling.pos, 'sampling.pos')
        self.sampling = sampling
        self.rotate = check_choice('rotate', rotate, MESH_ROTATIONS)
        self.translate = check_translate(translate)
        self.center = check_choice('center', center, MESH_CENTERS)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"Expected 'generator' to be a torch.Generator or None "
                             f"(got {_got(generator)})")
        self.generator = generator
        self._sampling_repr = sampling_key(sampling)

    def sample_pose(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Draw ``(rotation [3, 3] or None, translation [3] or None)`` as
        :meth:`forward` does (float64): :func:`random_pose` with a numpy
        generator seeded from ``generator`` (or fresh entropy)."""
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator))
        return random_pose(np.random.default_rng(seed), self.rotate, self.translate)

    def forward(self, data: Data) -> Data:
        vertices, face = getattr(data, 'pos', None), getattr(data, 'face', None)
        if not isinstance(vertices, torch.Tensor) or not isinstance(face, torch.Tensor):
            raise ValueError("Expected 'data' to be a mesh with 'pos' [V, 3] and 'face' "
                             f"[3, F] (got pos={_got(vertices)}, face={_got(face)})")
        if face.dim() != 2 or face.size(0) != 3:
            raise ValueError(f"Expected 'data.face' to have shape [3, F] "
                             f"(got {tuple(face.shape)})")
        rotation, translation = self.sample_pose()
        out = copy.copy(self.sampling)
        out.x = project_mesh(vertices, face.t(), self.sampling.pos, center=self.center,
                             rotation=rotation, translation=translation)
        if getattr(data, 'y', None) is not None:
            out.y = data.y
        return out

    def __repr__(self) -> str:
        gen = (None if self.generator is None
               else f'Generator(seed={self.generator.initial_seed()})')
        return (f'{self.__class__.__name__}(sampling={self._sampling_repr}, '
                f'rotate={self.rotate!r}, translate={self.translate}, '
                f'center={self.center!r}, generator={gen})')
