"""What a training run minimises and how it is scored.

An objective gives the loss of a batch as a *sum* over its samples (or
pixels) together with the normaliser of the global batch, so that a
data-parallel run, where every process sees a slice of the batch, minimises
exactly the same mean as one process would.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import _got, check_int


class Classification:
    """One label per sample: cross-entropy, scored by accuracy.

    ``logits [B, C]``, ``target [B]`` (long).
    """
    score_name = 'accuracy'

    def normalizer(self, target: Tensor) -> float:
        return float(target.numel())

    def loss_sum(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, reduction='sum')

    def batch_stats(self, logits: Tensor, target: Tensor) -> float:
        """Correct predictions in the batch (for the progress bar)."""
        return float((logits.argmax(-1) == target).sum())

    def metrics(self, prob: Tensor, target: Tensor) -> Dict[str, Any]:
        """Accuracy, mean cross-entropy and confusion matrix from class
        probabilities ``prob [N, C]``."""
        num_classes = prob.size(-1)
        loss = F.nll_loss(torch.log(prob.clamp_min(1e-12)), target).item()
        pred = prob.argmax(dim=-1)
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        confusion.index_put_((target, pred), torch.ones_like(target), accumulate=True)
        acc = float((pred == target).float().mean())
        return {'accuracy': acc, 'loss': loss, 'score': acc, 'confusion': confusion.tolist()}


class Segmentation:
    r"""One label per pixel: class-weighted cross-entropy,

    .. math::
        \ell = \frac{\sum_{b, i} w_{y_{bi}}\,(-\log p_{bi, y_{bi}})}
        {\sum_{b, i} w_{y_{bi}}},

    as PyTorch's weighted ``cross_entropy`` with the global batch as the sum.
    Scored by the mean average precision over ``score_classes`` (the paper's
    mAP over tropical cyclones and atmospheric rivers).

    ``logits [B, n, C]``, ``target [B, n]`` (long).
    """
    score_name = 'mean_ap'

    def __init__(self, num_classes: int, weight: Optional[Tensor] = None,
                 score_classes: Optional[Sequence[int]] = None) -> None:
        self.num_classes = int(num_classes)
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            if weight.shape != (self.num_classes,):
                raise ValueError(f"Expected 'weight' to have shape ({self.num_classes},) "
                                 f"(got {tuple(weight.shape)})")
        self.weight = weight
        self.score_classes = (tuple(range(1, self.num_classes)) if score_classes is None
                              else tuple(score_classes))

    def _w(self, device: torch.device) -> Optional[Tensor]:
        return None if self.weight is None else self.weight.to(device)

    def normalizer(self, target: Tensor) -> float:
        if self.weight is None:
            return float(target.numel())
        return float(self.weight[target.reshape(-1).cpu()].double().sum())

    def loss_sum(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1),
                               weight=self._w(logits.device), reduction='sum')

    def batch_stats(self, logits: Tensor, target: Tensor) -> float:
        """Mean pixel accuracy of each sample, summed over the batch."""
        return float((logits.argmax(-1) == target).float().mean(-1).sum())

    def metrics(self, prob: Tensor, target: Tensor) -> Dict[str, Any]:
        from ..metrics.segmentation import segmentation_metrics
        logp = torch.log(prob.clamp_min(1e-12)).reshape(-1, prob.size(-1))
        flat = target.reshape(-1)
        loss = F.nll_loss(logp, flat, weight=self.weight).item()
        m = segmentation_metrics(prob, target, num_classes=self.num_classes,
                                 from_logits=False, mean_classes=self.score_classes)
        return {'loss': loss, 'score': m.mean_ap, 'mean_ap': m.mean_ap,
                'mean_accuracy': m.mean_accuracy, 'mean_iou': m.mean_iou,
                'accuracy': m.overall_accuracy, 'class_accuracy': m.accuracy.tolist(),
                'class_iou': m.iou.tolist(), 'class_ap': m.ap.tolist(),
                'confusion': m.confusion.tolist()}


def class_weights(y: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    r"""Inverse-frequency class weights for a weighted cross-entropy, as in
    the climate experiments of `Jiang et al. 2019
    <https://arxiv.org/abs/1901.02039>`_ and DeepSphere:

    .. math::
        w_c = \frac{1 / f_c}{\sum_{k : f_k > 0} 1 / f_k},

    with :math:`f_c` the fraction of pixels of class :math:`c` in ``y``. The
    weights sum to 1; a class absent from ``y`` gets weight 0. With the
    paper's fractions (97.7 %, 0.1 %, 2.2 %) this gives about
    (0.001, 0.955, 0.044).

    Args:
        y (torch.Tensor): labels, integer, any shape, values in
            ``[0, num_classes)``.
        num_classes (int, optional): number of classes. (default: :obj:`3`)

    Returns:
        torch.Tensor: float32 [num_classes], for
        :class:`torch.nn.CrossEntropyLoss` ``(weight=...)``.

    Example:
        >>> class_weights(torch.tensor([0, 0, 0, 1]))
        tensor([0.2500, 0.7500, 0.0000])
    """
    num_classes = check_int('num_classes', num_classes, minimum=1)
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"Expected 'y' to be a torch.Tensor of labels (got {_got(y)})")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"Expected 'y' to hold integer labels (got {y.dtype})")
    if y.numel() == 0:
        raise ValueError("Expected 'y' to hold at least one label (got an empty tensor)")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"Expected 'y' to hold labels in [0, {num_classes - 1}] (got "
                         f"{low if low < 0 else high})")
    counts = torch.bincount(y.reshape(-1).long().cpu(), minlength=num_classes).double()
    inverse = torch.where(counts > 0, counts.sum() / counts.clamp(min=1),
                          torch.zeros_like(counts))
    return (inverse / inverse.sum()).float()
