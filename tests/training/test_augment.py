"""PatchSymmetries (pyg_sphere.training.augment): every augmented patch is the
original under one of the 8 grid symmetries, drawn reproducibly."""
import pytest
import torch

from pyg_sphere.samplings.nested_patch import nested_patch_symmetries
from pyg_sphere.training import PatchSymmetries


def test_each_augmented_patch_is_a_symmetry_of_its_original():
    n, B = 64, 200
    x = torch.randn(B, n, 2, generator=torch.Generator().manual_seed(0))
    aug = PatchSymmetries(n)
    out = aug(x, torch.Generator().manual_seed(1))
    perms = nested_patch_symmetries(n)
    used = []
    for b in range(B):
        match = [g for g in range(8) if torch.equal(out[b], x[b, perms[g]])]
        assert len(match) == 1, b
        used.append(match[0])
    assert set(used) == set(range(8))  # all 8 drawn
    again = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(again, out)
    assert not torch.equal(aug(x, torch.Generator().manual_seed(2)), out)
    with pytest.raises(ValueError, match=r'\[B, 64, F\]'):
        aug(torch.zeros(3, 16, 1), torch.Generator())
