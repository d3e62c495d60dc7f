"""Augmentations of dense training batches, passed to
:func:`~pyg_sphere.training.train_model` as ``augment``."""
from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_int
from ..samplings.nested_patch import nested_patch_symmetries


class PatchSymmetries:
    """Each map of a batch of NESTED base-pixel patches ``[B, n, F]``
    transformed by one of the 8 symmetries of the patch grid (rotations by
    90 degrees and reflections, :func:`~pyg_sphere.samplings.nested_patch.nested_patch_symmetries`),
    drawn uniformly and independently per map from ``generator``.

    The symmetries permute the pixels of a patch among themselves and keep
    grid neighbours neighbours, so an augmented patch is a patch of the same
    pixels, as a rotated or mirrored sky would give (the HEALPix pixels of a
    base pixel are not exactly a square, so this holds for the grid, not to
    the arcminute).

    Args:
        n (int): pixels per patch, a power of four.
    """
    def __init__(self, n: int) -> None:
        self.n = check_int('n', n, minimum=1)
        self.perms = nested_patch_symmetries(n)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if x.dim() != 3 or x.size(1) != self.n:
            raise ValueError(f"Expected a batch of patches [B, {self.n}, F] (got "
                             f"{tuple(x.shape)})")
        g = torch.randint(0, self.perms.size(0), (x.size(0),), generator=generator)
        index = self.perms[g]                                    # [B, n]
        return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.size(2)))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(n={self.n})'
