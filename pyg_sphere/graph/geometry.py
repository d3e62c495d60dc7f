"""Distances on the unit sphere."""
from __future__ import annotations

import torch

#: Distances a graph can be built with.
DISTANCES = ('geodesic', 'chordal')


def chordal_to_geodesic(chord: torch.Tensor) -> torch.Tensor:
    r"""Great-circle angle from chord length: :math:`d = 2 \arcsin(c / 2)`."""
    return 2 * torch.asin((chord / 2).clamp(max=1.0))


def geodesic_to_chordal(angle: torch.Tensor) -> torch.Tensor:
    r"""Chord length from great-circle angle: :math:`c = 2 \sin(d / 2)`."""
    return 2 * torch.sin(angle / 2)
