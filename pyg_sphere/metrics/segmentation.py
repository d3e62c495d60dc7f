r"""Metrics of dense (per-pixel) segmentation: confusion matrix, per-class
accuracy (recall), intersection over union and average precision, with the
means over the event classes reported by the DeepSphere climate experiment
(`Defferrard et al. 2020 <https://openreview.net/forum?id=B1e3OlStPB>`_,
after `Jiang et al. 2019 <https://arxiv.org/abs/1901.02039>`_).

Everything is computed with torch, in chunks of pixels, so that maps of
:math:`10^7` pixels fit in memory: the largest temporaries are one score
column, its sort order and a cumulative count (about 16 bytes per pixel).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .._validation import _got, check_int

#: Pixels processed at once by the chunked passes.
DEFAULT_CHUNK_SIZE: int = 1 << 22


@dataclasses.dataclass
class SegmentationMetrics:
    r"""What :func:`segmentation_metrics` measured.

    Per-class values are NaN where they are undefined (a class with no pixel
    in ``target``, or with an empty union); the means ignore NaNs.

    Attributes:
        confusion (torch.Tensor): confusion matrix, long [C, C]; row = true
            class, column = predicted class (argmax of the scores).
        accuracy (torch.Tensor): per-class accuracy (recall),
            :math:`TP_c / (TP_c + FN_c)`, float64 [C].
        iou (torch.Tensor): per-class intersection over union,
            :math:`TP_c / (TP_c + FP_c + FN_c)`, float64 [C].
        ap (torch.Tensor): per-class average precision of the class scores
            (one-vs-rest, see :func:`average_precision`), float64 [C].
        mean_classes (tuple): the classes averaged in the means.
        mean_accuracy (float): mean of ``accuracy`` over ``mean_classes``.
        mean_iou (float): mean of ``iou`` over ``mean_classes``.
        mean_ap (float): mean of ``ap`` over ``mean_classes``.
        overall_accuracy (float): fraction of pixels predicted right.
    """
    confusion: torch.Tensor
    accuracy: torch.Tensor
    iou: torch.Tensor
    ap: torch.Tensor
    mean_classes: Tuple[int, ...]
    mean_accuracy: float
    mean_iou: float
    mean_ap: float
    overall_accuracy: float

    def __getitem__(self, key: str) -> Any:
        """Dict-style access: ``metrics['mean_ap']``."""
        if not isinstance(key, str) or key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    @staticmethod
    def keys() -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(SegmentationMetrics))

    def as_dict(self) -> Dict[str, Any]:
        """Plain Python values (JSON serializable; NaN stays NaN)."""
        return {
            'confusion': self.confusion.tolist(),
            'accuracy': [float(v) for v in self.accuracy],
            'iou': [float(v) for v in self.iou],
            'ap': [float(v) for v in self.ap],
            'mean_classes': list(self.mean_classes),
            'mean_accuracy': self.mean_accuracy,
            'mean_iou': self.mean_iou,
            'mean_ap': self.mean_ap,
            'overall_accuracy': self.overall_accuracy,
        }


def _check_tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"Expected '{name}' to be a torch.Tensor (got {_got(value)})")
    return value


def _check_labels(name: str, target: Any) -> torch.Tensor:
    target = _check_tensor(name, target)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"Expected '{name}' to hold integer class labels (got {target.dtype})")
    return target


def _check_chunk(chunk_size: Any) -> int:
    return check_int('chunk_size', chunk_size, minimum=1)


def _check_range(name: str, target: torch.Tensor, num_classes: int,
                 ignore_index: Optional[int]) -> None:
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.numel() == 0:
        return
    low, high = int(valid.min()), int(valid.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        extra = '' if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(f"Expected '{name}' to hold labels in [0, {num_classes - 1}]{extra} "
                         f"(got {bad})")


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: Optional[int] = None,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    r"""Confusion matrix of integer predictions.

    .. math::
        M_{ij} = \#\{\text{pixels } p : y_p = i,\ \hat y_p = j\}

    Args:
        pred (torch.Tensor): predicted classes, integer, any shape.
        target (torch.Tensor): true classes, integer, same shape as ``pred``.
        num_classes (int): number of classes :math:`C`.
        ignore_index (int, optional): pixels whose target has this value are
            left out. (default: :obj:`None`)
        chunk_size (int, optional): pixels counted at once.
            (default: :obj:`DEFAULT_CHUNK_SIZE`)

    Returns:
        torch.Tensor: long [C, C], rows true classes, columns predictions, on
        the device of ``target``.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    num_classes = check_int('num_classes', num_classes, minimum=1)
    pred = _check_labels('pred', pred)
    target = _check_labels('target', target)
    chunk_size = _check_chunk(chunk_size)
    if ignore_index is not None:
        ignore_index = check_int('ignore_index', ignore_index)
    if pred.shape != target.shape:
        raise ValueError(f"Expected 'pred' and 'target' to have the same shape (got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)})")
    _check_range('target', target, num_classes, ignore_index)
    _check_range('pred', pred, num_classes, None)
    pred, target = pred.reshape(-1), target.reshape(-1)
    counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=target.device)
    for start in range(0, target.numel(), chunk_size):
        t = target[start:start + chunk_size].long()
        p = pred[start:start + chunk_size].long().to(t.device)
        if ignore_index is not None:
            keep = t != ignore_index
            t, p = t[keep], p[keep]
        counts += torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def average_precision(score: torch.Tensor, target: torch.Tensor) -> float:
    r"""Average precision of one binary problem, ranking-based, as
    :func:`sklearn.metrics.average_precision_score`.

    Thresholds are the distinct score values, from high to low; at each one,
    :math:`P_k` and :math:`R_k` are the precision and recall of the pixels
    scored at least that high (ties are one threshold, never broken), and

    .. math::
        \mathrm{AP} = \sum_k (R_k - R_{k-1}) P_k, \qquad R_0 = 0.

    Args:
        score (torch.Tensor): scores, float, any shape; higher means more
            likely positive.
        target (torch.Tensor): positives, bool or 0/1 integers, same shape.

    Returns:
        float: the AP, NaN when ``target`` has no positive.

    Example:
        >>> average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]),
        ...                   torch.tensor([1, 0, 1, 0, 1]))  # (1 + 2/3 + 3/5) / 3
        0.7555555555555555
    """
    score = _check_tensor('score', score)
    target = _check_tensor('target', target)
    if not score.is_floating_point():
        raise ValueError(f"Expected 'score' to be a floating point tensor (got {score.dtype})")
    if score.shape != target.shape:
        raise ValueError(f"Expected 'score' and 'target' to have the same shape (got "
                         f"{tuple(score.shape)} and {tuple(target.shape)})")
    if target.dtype != torch.bool:
        if target.is_floating_point() or target.is_complex():
            raise ValueError(f"Expected 'target' to be bool or integer 0/1 (got {target.dtype})")
        if target.numel() and bool(((target != 0) & (target != 1)).any()):
            raise ValueError("Expected 'target' to hold only 0 and 1 (got other values)")
        target = target != 0
    if target.numel() and not bool(torch.isfinite(score).all()):
        raise ValueError("Expected 'score' to be finite (got NaN or infinite values)")
    return _average_precision(score.reshape(-1), target.reshape(-1))


def _average_precision(score: torch.Tensor, positive: torch.Tensor) -> float:
    n_pos = int(positive.sum())
    if n_pos == 0:
        return math.nan
    # Ties form one threshold below, so the order within a tie does not matter.
    sorted_score, order = torch.sort(score, descending=True)
    hits = positive.to(score.device)[order]
    del order
    count_dtype = torch.int32 if hits.numel() < 2 ** 31 - 1 else torch.long
    tp = torch.cumsum(hits, 0, dtype=count_dtype)
    del hits
    # The last pixel of each group of equal scores closes a threshold.
    last = torch.ones_like(sorted_score, dtype=torch.bool)
    last[:-1] = sorted_score[1:] != sorted_score[:-1]
    del sorted_score
    ends = last.nonzero().view(-1)
    del last
    tp_k = tp[ends].double()
    del tp
    predicted = (ends + 1).double()
    gained = torch.diff(tp_k, prepend=tp_k.new_zeros(1))
    # sum_k (R_k - R_{k-1}) P_k with R_k = tp_k / n_pos and P_k = tp_k / predicted_k.
    return float((gained * (tp_k / predicted)).sum() / n_pos)


def _is_probability(scores: torch.Tensor, chunk_size: int) -> bool:
    flat = scores.reshape(-1, scores.size(-1))
    for start in range(0, flat.size(0), chunk_size):
        chunk = flat[start:start + chunk_size]
        if bool((chunk < 0).any()) or bool((chunk > 1).any()):
            return False
        if bool(((chunk.double().sum(-1) - 1).abs() > 1e-3).any()):
            return False
    return True


def _class_scores(flat: torch.Tensor, c: int, from_logits: bool, chunk_size: int,
                  out: torch.Tensor) -> torch.Tensor:
    for start in range(0, flat.size(0), chunk_size):
        chunk = flat[start:start + chunk_size]
        if from_logits:
            out[start:start + chunk_size] = torch.softmax(chunk.float(), dim=-1)[:, c]
        else:
            out[start:start + chunk_size] = chunk[:, c]
    return out


def _nanmean(values: torch.Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else math.nan


def segmentation_metrics(scores: torch.Tensor, target: torch.Tensor,
                         num_classes: Optional[int] = None,
                         from_logits: Optional[bool] = None,
                         mean_classes: Optional[Sequence[int]] = None,
                         ignore_index: Optional[int] = None,
                         chunk_size: int = DEFAULT_CHUNK_SIZE) -> SegmentationMetrics:
    r"""Per-class accuracy, IoU and average precision of a dense segmentation,
    and their means over the event classes, as in the DeepSphere climate
    experiment (mean accuracy and mAP over tropical cyclones and atmospheric
    rivers, classes 1 and 2).

    With :math:`M` the confusion matrix (rows true, columns predicted
    :math:`\hat y = \arg\max_c s_c`):

    .. math::
        \mathrm{acc}_c = \frac{M_{cc}}{\sum_j M_{cj}}, \qquad
        \mathrm{IoU}_c = \frac{M_{cc}}{\sum_j M_{cj} + \sum_i M_{ic} - M_{cc}},

    and :math:`\mathrm{AP}_c` is the :func:`average_precision` of the class
    probability :math:`p_c` against :math:`y = c` over all pixels. AP depends
    on how pixels are ranked by :math:`p_c`, which is not the ranking by the
    logit :math:`s_c`: logits are turned into probabilities (softmax over the
    last dimension) first.

    Args:
        scores (torch.Tensor): class scores [..., C] (e.g. [N, n, C] for N
            maps of n pixels): probabilities or logits.
        target (torch.Tensor): true classes, integer [...] (e.g. [N, n]).
        num_classes (int, optional): :math:`C`; checked against
            ``scores.size(-1)``. (default: :obj:`None`, from ``scores``)
        from_logits (bool, optional): whether ``scores`` are logits (softmax
            is applied) or probabilities. :obj:`None` decides from the values:
            probabilities if they lie in [0, 1] and sum to 1 (to 1e-3) on
            every pixel. (default: :obj:`None`)
        mean_classes (sequence of int, optional): classes averaged in the
            means. (default: :obj:`None`, every class but 0, the background)
        ignore_index (int, optional): pixels whose target has this value are
            left out of every metric. (default: :obj:`None`)
        chunk_size (int, optional): pixels processed at once.
            (default: :obj:`DEFAULT_CHUNK_SIZE`)

    Returns:
        SegmentationMetrics: also readable as a dict
        (``metrics['mean_ap']``).

    Example:
        >>> scores = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1],
        ...                        [0.3, 0.3, 0.4], [0.1, 0.2, 0.7]])
        >>> m = segmentation_metrics(scores, torch.tensor([0, 1, 1, 2]))
        >>> m.accuracy.tolist(), m.mean_accuracy
        ([1.0, 0.5, 1.0], 0.75)
    """
    scores = _check_tensor('scores', scores)
    target = _check_labels('target', target)
    chunk_size = _check_chunk(chunk_size)
    if not scores.is_floating_point():
        raise ValueError(f"Expected 'scores' to be a floating point tensor (got {scores.dtype})")
    if scores.dim() < 1 or scores.size(-1) < 1:
        raise ValueError(f"Expected 'scores' to have shape [..., C] with C >= 1 (got "
                         f"{tuple(scores.shape)})")
    if scores.shape[:-1] != target.shape:
        raise ValueError(f"Expected 'target' to have shape {tuple(scores.shape[:-1])}, the "
                         f"shape of 'scores' {tuple(scores.shape)} without the class "
                         f"dimension (got {tuple(target.shape)})")
    C = scores.size(-1)
    if num_classes is not None:
        num_classes = check_int('num_classes', num_classes, minimum=1)
        if num_classes != C:
            raise ValueError(f"Expected 'scores' to have num_classes={num_classes} entries in "
                             f"its last dimension (got shape {tuple(scores.shape)})")
    if from_logits is not None and not isinstance(from_logits, bool):
        raise ValueError(f"Expected 'from_logits' to be True, False or None (got "
                         f"{from_logits!r})")
    if ignore_index is not None:
        ignore_index = check_int('ignore_index', ignore_index)
    if mean_classes is None:
        mean_classes = tuple(range(1, C)) if C > 1 else (0,)
    else:
        if isinstance(mean_classes, (str, bytes)) or not isinstance(mean_classes, Sequence):
            raise ValueError(f"Expected 'mean_classes' to be a sequence of class indices (got "
                             f"{mean_classes!r})")
        mean_classes = tuple(mean_classes)
        if not mean_classes or any(isinstance(c, bool) or not isinstance(c, numbers.Integral)
                                   or not 0 <= c < C for c in mean_classes):
            raise ValueError(f"Expected 'mean_classes' to be a non-empty sequence of integers "
                             f"in [0, {C - 1}] (got {mean_classes!r})")
        mean_classes = tuple(int(c) for c in mean_classes)
    _check_range('target', target, C, ignore_index)

    flat = scores.detach().reshape(-1, C)
    labels = target.detach().reshape(-1).to(flat.device)
    if ignore_index is not None:
        keep = labels != ignore_index
        if not bool(keep.all()):
            flat, labels = flat[keep], labels[keep]
    if flat.numel() and not bool(torch.isfinite(flat).all()):
        raise ValueError("Expected 'scores' to be finite (got NaN or infinite values)")
    if from_logits is None:
        from_logits = not _is_probability(flat, chunk_size)

    pred = torch.empty_like(labels, dtype=torch.long)
    for start in range(0, flat.size(0), chunk_size):
        pred[start:start + chunk_size] = flat[start:start + chunk_size].argmax(dim=-1)
    confusion = confusion_matrix(pred, labels, C, chunk_size=chunk_size)
    del pred

    cm = confusion.double()
    tp = cm.diagonal()
    true_count = cm.sum(dim=1)
    pred_count = cm.sum(dim=0)
    nan = torch.tensor(math.nan, dtype=torch.float64, device=cm.device)
    accuracy = torch.where(true_count > 0, tp / true_count.clamp(min=1), nan)
    union = true_count + pred_count - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)

    ap = torch.full((C,), math.nan, dtype=torch.float64)
    buffer = torch.empty(flat.size(0), dtype=torch.float32 if from_logits else flat.dtype,
                         device=flat.device)
    for c in range(C):
        positive = labels == c
        if bool(positive.any()):
            ap[c] = _average_precision(_class_scores(flat, c, from_logits, chunk_size, buffer),
                                       positive)
    del buffer
    ap = ap.to(cm.device)

    sel = torch.tensor(mean_classes, dtype=torch.long, device=cm.device)
    total = cm.sum()
    return SegmentationMetrics(
        confusion=confusion,
        accuracy=accuracy,
        iou=iou,
        ap=ap,
        mean_classes=mean_classes,
        mean_accuracy=_nanmean(accuracy[sel]),
        mean_iou=_nanmean(iou[sel]),
        mean_ap=_nanmean(ap[sel]),
        overall_accuracy=float(tp.sum() / total) if float(total) > 0 else math.nan,
    )
