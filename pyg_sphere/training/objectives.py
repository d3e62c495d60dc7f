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
