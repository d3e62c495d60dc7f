r"""Shape-retrieval metrics as the SHREC'17 evaluator computes them
(`Savva et al. 2017 <https://shapenet.cs.stanford.edu/shrec17/>`_), the
scores of the 3D shape experiments of `Cohen et al. (2018)
<https://arxiv.org/abs/1801.10130>`_ and `DeepSphere (Defferrard et al.
2020) <https://openreview.net/forum?id=B1e3OlStPB>`_.

A classifier becomes a retrieval system as in those experiments: the
retrieval list of query :math:`i` is every sample predicted in the class
predicted for :math:`i` (the query included), ranked by the probability of
that class, highest first (ties: lower index first). A retrieved sample is
relevant when its true class is the query's.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

import torch

from .._validation import _got, check_int

#: Longest retrieval list the SHREC'17 evaluator reads (longer lists are cut).
SHREC17_CUTOFF: int = 1000


@dataclasses.dataclass(frozen=True)
class RetrievalMetrics:
    r"""What :func:`retrieval_metrics` measured, each in :math:`[0, 1]`.

    ``micro_*`` average over the queries, ``macro_*`` over the true classes
    (the mean of each class's mean over its queries). ``precision``,
    ``recall`` and ``f1`` are the evaluator's P@N, R@N and F1@N (N the length
    of each query's list); ``map`` is its mAP. The DeepSphere and Cohen et
    al. tables quote ``micro_f1`` and ``micro_map``.
    """
    micro_precision: float
    micro_recall: float
    micro_f1: float
    micro_map: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    macro_map: float

    def as_dict(self) -> Dict[str, float]:
        """The eight values by name (JSON serializable)."""
        return dataclasses.asdict(self)


def _check(prob: Any, target: Any) -> tuple:
    if not isinstance(prob, torch.Tensor) or prob.dim() != 2 or prob.size(0) < 1 \
            or not prob.is_floating_point():
        raise ValueError(f"Expected 'prob' to be a float tensor [N, C] of class scores with "
                         f"N >= 1 (got {_got(prob)})")
    if not torch.isfinite(prob).all():
        raise ValueError("Expected 'prob' to be finite (got NaN or inf)")
    if not isinstance(target, torch.Tensor) or target.shape != (prob.size(0),) \
            or target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"Expected 'target' to be an integer tensor [{prob.size(0)}] "
                         f"(got {_got(target)})")
    if int(target.min()) < 0 or int(target.max()) >= prob.size(1):
        raise ValueError(f"Expected 'target' in [0, {prob.size(1)}) (got values in "
                         f"[{int(target.min())}, {int(target.max())}])")
    return prob.detach().double().cpu(), target.detach().long().cpu()


def retrieval_metrics(prob: torch.Tensor, target: torch.Tensor,
                      cutoff: int = SHREC17_CUTOFF) -> RetrievalMetrics:
    r"""SHREC'17 micro and macro precision, recall, F1 at N and mAP of a
    classifier's predictions used as retrieval lists (see the module).

    For query :math:`i` of true class :math:`c_i`, with its list cut to its
    first :math:`N_i \le` ``cutoff`` entries, :math:`\mathrm{rel}_k = 1` when
    entry :math:`k` has class :math:`c_i`, :math:`h_k = \sum_{j \le k}
    \mathrm{rel}_j`, and :math:`R_i = \min(n_{c_i}, \text{cutoff})` the
    number of relevant samples the list could hold (:math:`n_c`: samples of
    class :math:`c`, the query included):

    .. math::
        P_i = \frac{h_{N_i}}{N_i}, \qquad
        R_i = \frac{h_{N_i}}{R_i}, \qquad
        F1_i = \frac{2 P_i R_i}{P_i + R_i} \ (0 \text{ if } P_i + R_i = 0),
        \qquad
        AP_i = \frac{1}{R_i} \sum_{k \le N_i} \mathrm{rel}_k \frac{h_k}{k}.

    The average precision is divided by the number of relevant samples in the
    evaluated set, not by those retrieved (the evaluator's fix of
    2017-02-23). Micro values are means over all queries, macro values the
    means over the classes present in ``target`` of the per-class means.

    Args:
        prob (torch.Tensor): class probabilities (or any scores ranked the
            same way) [N, C].
        target (torch.Tensor): true classes [N], integers in ``[0, C)``.
        cutoff (int, optional): longest list read. (default:
            :obj:`SHREC17_CUTOFF`, the evaluator's 1000)

    Returns:
        :class:`RetrievalMetrics`.

    Example:
        >>> import torch
        >>> prob = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> m = retrieval_metrics(prob, torch.tensor([0, 1, 1]))
        >>> round(m.micro_f1, 4), round(m.macro_map, 4)
        (0.6111, 0.6875)
    """
    prob, target = _check(prob, target)
    cutoff = check_int('cutoff', cutoff, minimum=1)
    n, num_classes = prob.shape
    pred = prob.argmax(1)
    conf = prob[torch.arange(n), pred]
    size = torch.bincount(target, minlength=num_classes).double()
    precision, recall, f1, ap = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    for c in pred.unique().tolist():
        members = torch.nonzero(pred == c).flatten()
        # highest probability first; a stable sort keeps ties in index order
        order = torch.sort(-conf[members], stable=True).indices
        ranked = target[members[order]][:cutoff]
        length = float(ranked.numel())
        rank = torch.arange(1, ranked.numel() + 1, dtype=torch.float64)
        queries = members
        for t in target[queries].unique().tolist():
            rel = (ranked == t).double()
            hits = torch.cumsum(rel, 0)
            possible = min(float(size[t]), float(cutoff))
            p, r = float(hits[-1]) / length, float(hits[-1]) / possible
            which = queries[target[queries] == t]
            precision[which] = p
            recall[which] = r
            f1[which] = 2 * p * r / (p + r) if p + r > 0 else 0.0
            ap[which] = float((rel * hits / rank).sum()) / possible
    classes = target.unique()

    def macro(values: torch.Tensor) -> float:
        return float(torch.stack([values[target == c].mean() for c in classes]).mean())
    return RetrievalMetrics(
        micro_precision=float(precision.mean()), micro_recall=float(recall.mean()),
        micro_f1=float(f1.mean()), micro_map=float(ap.mean()),
        macro_precision=macro(precision), macro_recall=macro(recall), macro_f1=macro(f1),
        macro_map=macro(ap))
