r"""A NESTED HEALPix base-pixel patch seen as a square grid.

A patch of :math:`n = s^2` pixels (:math:`s` a power of two) is a contiguous
NESTED index range :math:`[q n, (q + 1) n)` inside one of the 12 base pixels;
its local index :math:`i = p - q n` interleaves the bits of the grid
coordinates, :math:`x` in the even bits and :math:`y` in the odd bits
(healpy's ``pix2xyf`` within a face, Gorski et al. 2005). So every patch of
the same size has the same grid, whatever its base pixel, and the grid's
:math:`8` symmetries (the dihedral group of the square) permute the pixels of
a patch among themselves, mapping grid neighbours to grid neighbours.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from .._validation import check_int, is_power_of_two

#: The 8 symmetries of the square, as (transpose, flip x, flip y), applied
#: in that order; index 0 is the identity.
PATCH_SYMMETRIES: Tuple[Tuple[bool, bool, bool], ...] = tuple(
    (t, fx, fy) for t in (False, True) for fx in (False, True) for fy in (False, True))


def patch_side(n: int) -> int:
    """The side :math:`s` of a patch of ``n`` = :math:`s^2` pixels (a power of four)."""
    n = check_int('n', n, minimum=1)
    side = int(round(n ** 0.5))
    if side * side != n or not is_power_of_two(side):
        raise ValueError(f"Expected 'n' to be a power of four (the pixels of a NESTED "
                         f"base-pixel patch) (got {n})")
    return side


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Bit k of ``v`` moved to bit 2k."""
    out = np.zeros_like(v)
    for k in range(31):
        out |= ((v >> k) & 1) << (2 * k)
    return out


def nested_patch_grid(n: int) -> np.ndarray:
    """Local NESTED index of each grid cell, int64 [s, s]: ``grid[y, x]`` is the
    pixel at grid coordinates ``(x, y)`` of a patch of ``n`` pixels."""
    side = patch_side(n)
    coord = np.arange(side, dtype=np.int64)
    return _spread_bits(coord)[None, :] | (_spread_bits(coord)[:, None] << 1)


def nested_patch_xy(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Grid coordinates ``(x, y)`` (int64 [n] each) of the local indices ``0 .. n - 1``."""
    grid = nested_patch_grid(n)
    side = grid.shape[0]
    x = np.empty(n, dtype=np.int64)
    y = np.empty(n, dtype=np.int64)
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing='ij')
    x[grid.ravel()] = xx.ravel()
    y[grid.ravel()] = yy.ravel()
    return x, y


def nested_patch_symmetries(n: int) -> torch.Tensor:
    """The 8 symmetries of a patch of ``n`` pixels as permutations, long [8, n]:
    ``x[..., perms[g]]`` is patch ``x`` transformed by :obj:`PATCH_SYMMETRIES`
    ``[g]`` (row 0 is the identity). Each row is a permutation of ``0 .. n - 1``
    that maps grid neighbours to grid neighbours."""
    grid = nested_patch_grid(n)
    x, y = nested_patch_xy(n)
    side = grid.shape[0]
    rows = []
    for transpose, flip_x, flip_y in PATCH_SYMMETRIES:
        u, v = (y, x) if transpose else (x, y)
        if flip_x:
            u = side - 1 - u
        if flip_y:
            v = side - 1 - v
        rows.append(grid[v, u])
    return torch.from_numpy(np.stack(rows))


def nested_patch_neighbours(n: int) -> np.ndarray:
    """The 8 grid neighbours of each pixel of a patch of ``n`` pixels, int64
    [n, 8] (local indices; -1 where the neighbour is outside the patch). In
    the interior of a base pixel these are the pixel's HEALPix neighbours."""
    grid = nested_patch_grid(n)
    x, y = nested_patch_xy(n)
    side = grid.shape[0]
    out = np.full((n, 8), -1, dtype=np.int64)
    offsets = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)]
    for k, (dx, dy) in enumerate(offsets):
        u, v = x + dx, y + dy
        ok = (u >= 0) & (u < side) & (v >= 0) & (v < side)
        out[ok, k] = grid[v[ok], u[ok]]
    return out
