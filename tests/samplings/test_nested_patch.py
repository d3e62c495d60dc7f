"""A NESTED base-pixel patch as a grid (pyg_sphere.samplings.nested_patch),
against healpy's pix2xyf and get_all_neighbours."""
import healpy as hp
import numpy as np
import pytest

from pyg_sphere.samplings.nested_patch import (PATCH_SYMMETRIES, nested_patch_grid,
                                               nested_patch_neighbours, nested_patch_symmetries,
                                               nested_patch_xy)

NSIDE, ORDER = 16, 2           # patches of (16 / 2)^2 = 64 pixels, 48 per map
N = (NSIDE // ORDER) ** 2


@pytest.mark.parametrize('patch', [0, 5, 21, 47])  # polar, equatorial and southern faces
def test_grid_is_healpix_face_coordinates(patch):
    ipix = np.arange(patch * N, (patch + 1) * N)
    x, y, face = hp.pix2xyf(NSIDE, ipix, nest=True)
    assert len(set(face.tolist())) == 1
    lx, ly = nested_patch_xy(N)
    assert (x - x.min()).tolist() == lx.tolist()
    assert (y - y.min()).tolist() == ly.tolist()
    grid = nested_patch_grid(N)
    assert sorted(grid.ravel().tolist()) == list(range(N))
    assert grid[ly, lx].tolist() == list(range(N))


@pytest.mark.parametrize('patch', [0, 5, 21, 47])
def test_neighbours_are_healpix_neighbours_inside_the_patch(patch):
    ipix = np.arange(patch * N, (patch + 1) * N)
    ours = nested_patch_neighbours(N)
    theirs = hp.get_all_neighbours(NSIDE, ipix, nest=True).T    # [N, 8]
    for i in range(N):
        inside = {int(j) - patch * N for j in theirs[i] if patch * N <= j < (patch + 1) * N}
        assert set(ours[i][ours[i] >= 0].tolist()) == inside, i
    interior = (ours >= 0).all(axis=1)
    side = int(N ** 0.5)
    assert interior.sum() == (side - 2) ** 2


def test_the_eight_symmetries_map_the_patch_onto_itself():
    perms = nested_patch_symmetries(N).numpy()
    assert perms.shape == (8, N) and len(PATCH_SYMMETRIES) == 8
    assert perms[0].tolist() == list(range(N))
    # each is a permutation of the patch's pixels, and all 8 differ
    for p in perms:
        assert sorted(p.tolist()) == list(range(N))
    assert len({tuple(p) for p in perms}) == 8
    # neighbours stay neighbours: the HEALPix 8-neighbourhood (inside the
    # patch) of pixel perm[i] is the image of the neighbourhood of pixel i
    ipix = np.arange(N)
    healpy_nb = hp.get_all_neighbours(NSIDE, ipix, nest=True).T
    nb = [{int(j) for j in row if 0 <= j < N} for row in healpy_nb]
    for p in perms:
        for i in range(N):
            assert {int(p[j]) for j in nb[i]} == nb[int(p[i])], i
    # a group: closed under composition
    rows = {tuple(p) for p in perms}
    for a in perms:
        for b in perms:
            assert tuple(a[b]) in rows


def test_bad_patch_sizes():
    for n in (0, 8, 48, 12):
        with pytest.raises(ValueError, match="'n'"):
            nested_patch_grid(n)
