import json
import math

import numpy as np
import pytest
import torch

from pyg_sphere.metrics import (SegmentationMetrics, average_precision, confusion_matrix,
                                segmentation_metrics)


def brute_force_ap(score: np.ndarray, positive: np.ndarray) -> float:
    """AP from its definition: for every distinct threshold, from high to low,
    the precision and recall of the pixels scored at least that high."""
    n_pos = positive.sum()
    total, prev_recall = 0.0, 0.0
    for threshold in sorted(set(score.tolist()), reverse=True):
        selected = score >= threshold
        tp = (selected & positive).sum()
        precision, recall = tp / selected.sum(), tp / n_pos
        total += (recall - prev_recall) * precision
        prev_recall = recall
    return total


# -- average precision -------------------------------------------------------------


def test_ap_closed_form():
    # Positives at ranks 1, 3, 5: AP = (1/1 + 2/3 + 3/5) / 3 = 34/45.
    ap = average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]), torch.tensor([1, 0, 1, 0, 1]))
    assert ap == pytest.approx(34 / 45, abs=1e-12)
    # Ties are one threshold: {0.9} gives P=0, R=0; {0.9, 0.8, 0.8} gives
    # P=2/3, R=1, so AP = 2/3 (breaking the tie would give 1/2 or 1).
    ap = average_precision(torch.tensor([0.9, 0.8, 0.8, 0.1]), torch.tensor([0, 1, 1, 0]))
    assert ap == pytest.approx(2 / 3, abs=1e-12)
    ap = average_precision(torch.tensor([0.5, 0.5, 0.5, 0.5]), torch.tensor([1, 0, 0, 0]))
    assert ap == pytest.approx(1 / 4, abs=1e-12)
    ap = average_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([True, True, False]))
    assert ap == 1.0
    assert math.isnan(average_precision(torch.tensor([0.3, 0.2]), torch.tensor([0, 0])))


@pytest.mark.parametrize('seed', range(4))
def test_ap_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    positive = rng.random(n) < rng.uniform(0.05, 0.5)
    positive[0] = True
    # Scores related to the labels, rounded so that there are many ties.
    score = np.round(rng.random(n) + 0.6 * positive, 1 + seed % 2)
    expected = brute_force_ap(score, positive)
    got = average_precision(torch.from_numpy(score).float(), torch.from_numpy(positive))
    assert got == pytest.approx(expected, abs=1e-6)
    assert 0 < got <= 1


# -- confusion matrix --------------------------------------------------------------


def test_confusion_matrix_against_loops():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=(3, 50))
    pred = rng.integers(0, 4, size=(3, 50))
    expected = np.zeros((4, 4), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):
        expected[t, p] += 1
    got = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 4, chunk_size=7)
    assert got.dtype == torch.long
    assert got.tolist() == expected.tolist()
    ignored = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, -1, 1]), 2,
                               ignore_index=-1)
    assert ignored.tolist() == [[1, 0], [0, 1]]


# -- segmentation metrics -----------------------------------------------------------


def hand_example():
    # Two maps of 4 pixels, 3 classes. Predictions (argmax):
    #   map 0: targets 0 0 1 2 -> predicted 0 1 1 2
    #   map 1: targets 0 0 2 2 -> predicted 0 0 2 0
    probs = torch.tensor([
        [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]],
        [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]],
    ])
    target = torch.tensor([[0, 0, 1, 2], [0, 0, 2, 2]])
    return probs, target


def test_metrics_hand_example():
    probs, target = hand_example()
    m = segmentation_metrics(probs, target, num_classes=3)
    assert isinstance(m, SegmentationMetrics)
    # Rows true, columns predicted.
    assert m.confusion.tolist() == [[3, 1, 0], [0, 1, 0], [1, 0, 2]]
    # Accuracy (recall): 3/4, 1/1, 2/3. IoU: 3/(4+4-3), 1/(1+2-1), 2/(3+2-2).
    assert m.accuracy.tolist() == pytest.approx([3 / 4, 1.0, 2 / 3])
    assert m.iou.tolist() == pytest.approx([3 / 5, 1 / 2, 2 / 3])
    assert m.overall_accuracy == pytest.approx(6 / 8)
    assert m.mean_classes == (1, 2)
    assert m.mean_accuracy == pytest.approx((1.0 + 2 / 3) / 2)
    assert m.mean_iou == pytest.approx((1 / 2 + 2 / 3) / 2)
    # AP of class 1: scores sorted 0.8(+) 0.6 0.2 0.2 ... -> 1.0.
    # AP of class 2: scores 0.7(+) 0.7(+) 0.4(+) 0.1 ... -> 1.0 (all positives first).
    # AP of class 0: 0.9(+) 0.8(+) 0.7(+) 0.5(-) 0.3(+): (1 + 1 + 1 + 4/5) / 4.
    assert m.ap.tolist() == pytest.approx([3.8 / 4, 1.0, 1.0])
    assert m.mean_ap == pytest.approx(1.0)
    assert m['mean_accuracy'] == m.mean_accuracy
    json.dumps(m.as_dict())


def test_metrics_ap_matches_per_class_brute_force():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(3, 40, 3))).float()
    target = torch.from_numpy(rng.integers(0, 3, size=(3, 40)))
    m = segmentation_metrics(logits, target)
    probs = torch.softmax(logits, -1)
    for c in range(3):
        expected = brute_force_ap(probs[..., c].reshape(-1).numpy(),
                                  (target == c).reshape(-1).numpy())
        assert float(m.ap[c]) == pytest.approx(expected, abs=1e-6)


def test_logits_probabilities_and_chunks_agree():
    rng = np.random.default_rng(2)
    logits = torch.from_numpy(rng.normal(size=(2, 50, 3)) * 2).float()
    target = torch.from_numpy(rng.integers(0, 3, size=(2, 50)))
    from_logits = segmentation_metrics(logits, target)
    from_probs = segmentation_metrics(torch.softmax(logits, -1), target)
    flat_chunked = segmentation_metrics(logits.view(-1, 3), target.view(-1), chunk_size=9,
                                        from_logits=True)
    for other in (from_probs, flat_chunked):
        assert other.confusion.tolist() == from_logits.confusion.tolist()
        assert torch.allclose(other.ap, from_logits.ap, atol=1e-6)
        assert other.mean_ap == pytest.approx(from_logits.mean_ap, abs=1e-6)
    # Ranking by the raw logit is not ranking by the probability: the metric
    # must apply the softmax.
    raw = average_precision(logits[..., 1], target == 1)
    assert raw != pytest.approx(float(from_logits.ap[1]), abs=1e-4)


def test_absent_class_and_ignore_index():
    probs, target = hand_example()
    target = target.clone()
    target[0, 2] = 0                      # no more class-1 pixels
    m = segmentation_metrics(probs, target)
    assert math.isnan(float(m.accuracy[1])) and math.isnan(float(m.ap[1]))
    assert m.mean_accuracy == pytest.approx(float(m.accuracy[2]))
    assert m.mean_ap == pytest.approx(float(m.ap[2]))
    target[0, 2] = -1                     # ignored: as if the pixel were not there
    ignored = segmentation_metrics(probs, target, ignore_index=-1)
    kept = segmentation_metrics(probs.view(-1, 3)[torch.arange(8) != 2],
                                target.view(-1)[torch.arange(8) != 2])
    assert ignored.confusion.tolist() == kept.confusion.tolist()
    assert torch.allclose(ignored.iou, kept.iou, equal_nan=True)
    assert torch.allclose(ignored.ap, kept.ap, equal_nan=True)


def test_mean_classes():
    probs, target = hand_example()
    m = segmentation_metrics(probs, target, mean_classes=[0, 1, 2])
    assert m.mean_accuracy == pytest.approx(float(m.accuracy.mean()))


@pytest.mark.parametrize('kwargs, match', [
    (dict(scores=[[0.5, 0.5]], target=torch.tensor([0])), "'scores' to be a torch.Tensor"),
    (dict(scores=torch.ones(4, 3, dtype=torch.long), target=torch.zeros(4, dtype=torch.long)),
     "'scores' to be a floating point"),
    (dict(scores=torch.rand(4, 3), target=torch.zeros(4)), "'target' to hold integer"),
    (dict(scores=torch.rand(2, 4, 3), target=torch.zeros(2, 5, dtype=torch.long)),
     r"'target' to have shape \(2, 4\)"),
    (dict(scores=torch.rand(4, 3), target=torch.tensor([0, 1, 3, 0])),
     r"'target' to hold labels in \[0, 2\] \(got 3\)"),
    (dict(scores=torch.rand(4, 3), target=torch.zeros(4, dtype=torch.long), num_classes=2),
     "num_classes=2"),
    (dict(scores=torch.rand(4, 3), target=torch.zeros(4, dtype=torch.long),
          mean_classes=[1, 5]), "'mean_classes'"),
    (dict(scores=torch.rand(4, 3), target=torch.zeros(4, dtype=torch.long), from_logits=1),
     "'from_logits'"),
    (dict(scores=torch.tensor([[0.1, math.nan], [0.2, 0.3]]),
          target=torch.zeros(2, dtype=torch.long)), "'scores' to be finite"),
    (dict(scores=torch.rand(4, 3), target=torch.zeros(4, dtype=torch.long), chunk_size=0),
     "'chunk_size' to be >= 1"),
])
def test_metrics_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        segmentation_metrics(**kwargs)


def test_helper_errors():
    with pytest.raises(ValueError, match="'target' to hold only 0 and 1"):
        average_precision(torch.rand(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="same shape"):
        average_precision(torch.rand(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'score' to be a floating point"):
        average_precision(torch.tensor([1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'score' to be finite"):
        average_precision(torch.tensor([1.0, math.inf]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"'pred' to hold labels in \[0, 1\]"):
        confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="'num_classes' to be >= 1"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 0)
