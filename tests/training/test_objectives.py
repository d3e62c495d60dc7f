"""Objectives of the training loop: the inverse-frequency class weights of
the climate task (pyg_sphere.training.objectives.class_weights)."""
import pytest
import torch

from pyg_sphere.simulate import TARGET_FRACTIONS
from pyg_sphere.training import class_weights


def test_class_weights_closed_form():
    y = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 2, 2, 2]])
    # f = (0.6, 0.1, 0.3); 1/f = (5/3, 10, 10/3), sum 15.
    w = class_weights(y)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([1 / 9, 2 / 3, 2 / 9])
    # The paper's fractions give the weights of the published code.
    counts = [round(f * 100000) for f in TARGET_FRACTIONS]
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    assert class_weights(y).tolist() == pytest.approx([0.00102, 0.955, 0.0434], abs=2e-3)
    assert class_weights(torch.tensor([0, 0, 2]), 4).tolist() == pytest.approx(
        [1 / 3, 0, 2 / 3, 0])
    # int32 labels and any shape give the same weights
    y2 = y.to(torch.int32).view(-1, 100)
    assert torch.equal(class_weights(y2), class_weights(y))


def test_class_weights_errors():
    with pytest.raises(ValueError, match="'y' to hold integer labels"):
        class_weights(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"'y' to hold labels in \[0, 2\] \(got 3\)"):
        class_weights(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"'y' to hold labels in \[0, 2\] \(got -1\)"):
        class_weights(torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="at least one label"):
        class_weights(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="'y' to be a torch.Tensor"):
        class_weights([0, 1])
    with pytest.raises(ValueError, match="'num_classes' to be >= 1"):
        class_weights(torch.tensor([0]), 0)
