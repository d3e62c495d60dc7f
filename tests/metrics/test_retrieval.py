"""SHREC'17 retrieval metrics against cases computed by hand."""
from fractions import Fraction as Fr

import pytest
import torch

from pyg_sphere.metrics import SHREC17_CUTOFF, RetrievalMetrics, retrieval_metrics


def scores(pred, conf, num_classes):
    """Scores whose argmax is ``pred`` with that class scored ``conf``."""
    prob = torch.zeros(len(pred), num_classes, dtype=torch.float64)
    for i, (c, p) in enumerate(zip(pred, conf)):
        prob[i] = (1 - p) / (num_classes - 1)
        prob[i, c] = p
    return prob


def check(m, expected):
    got = m.as_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), abs=1e-12), key


def test_five_queries_two_classes_by_hand():
    # true classes 0 0 0 1 1; predicted 0 0 1 1 0 with confidences below.
    # Lists: predicted 0 -> samples [0 (.9), 4 (.7), 1 (.6)] = classes [0, 1, 0];
    #        predicted 1 -> samples [3 (.8), 2 (.7)]         = classes [1, 0].
    # class sizes 3 and 2. Per query (P, R, F1, AP):
    #   q0, q1 (class 0, list 0): 2/3, 2/3, 2/3, (1/1 + 2/3) / 3 = 5/9
    #   q4     (class 1, list 0): 1/3, 1/2, 2/5, (1/2) / 2 = 1/4
    #   q2     (class 0, list 1): 1/2, 1/3, 2/5, (1/2) / 3 = 1/6
    #   q3     (class 1, list 1): 1/2, 1/2, 1/2, (1/1) / 2 = 1/2
    prob = scores([0, 0, 1, 1, 0], [0.9, 0.6, 0.7, 0.8, 0.7], 2)
    m = retrieval_metrics(prob, torch.tensor([0, 0, 0, 1, 1]))
    assert isinstance(m, RetrievalMetrics)
    check(m, {
        'micro_precision': Fr(8, 15), 'micro_recall': Fr(8, 15), 'micro_f1': Fr(79, 150),
        'micro_map': Fr(73, 180),
        # class 0: means over q0, q1, q2; class 1: over q3, q4; then their mean
        'macro_precision': Fr(37, 72), 'macro_recall': Fr(19, 36), 'macro_f1': Fr(37, 72),
        'macro_map': Fr(173, 432),
    })


def test_cutoff_cuts_lists_and_caps_the_relevant_count():
    # as above with lists cut to 2: list 0 = classes [0, 1], list 1 = [1, 0];
    # relevant counts min(3, 2) = 2 and min(2, 2) = 2.
    #   q0, q1: P 1/2, R 1/2, F1 1/2, AP 1/2;   q4: 1/2, 1/2, 1/2, (1/2) / 2 = 1/4
    #   q2: 1/2, 1/2, 1/2, 1/4;                 q3: 1/2, 1/2, 1/2, 1/2
    prob = scores([0, 0, 1, 1, 0], [0.9, 0.6, 0.7, 0.8, 0.7], 2)
    m = retrieval_metrics(prob, torch.tensor([0, 0, 0, 1, 1]), cutoff=2)
    check(m, {
        'micro_precision': Fr(1, 2), 'micro_recall': Fr(1, 2), 'micro_f1': Fr(1, 2),
        'micro_map': Fr(2, 5),
        'macro_precision': Fr(1, 2), 'macro_recall': Fr(1, 2), 'macro_f1': Fr(1, 2),
        # class 0: (1/2 + 1/2 + 1/4) / 3 = 5/12; class 1: (1/2 + 1/4) / 2 = 3/8
        'macro_map': Fr(19, 48),
    })
    assert SHREC17_CUTOFF == 1000


def test_perfect_and_constant_classifiers():
    target = torch.tensor([0, 0, 1, 2, 2, 2])
    perfect = torch.nn.functional.one_hot(target, 3).double()
    assert all(v == 1.0 for v in retrieval_metrics(perfect, target).as_dict().values())
    # everything predicted class 0 with equal confidence: one list, in index
    # order, [0 0 1 2 2 2]; class sizes 2, 1, 3 of N = 6.
    #   class 0 (2 queries): P 1/3, R 1, F1 1/2, AP (1 + 1) / 2 = 1
    #   class 1 (1 query):   P 1/6, R 1, F1 2/7, AP (1/3) / 1 = 1/3
    #   class 2 (3 queries): P 1/2, R 1, F1 2/3, AP (1/4 + 2/5 + 3/6) / 3 = 23/60
    constant = torch.tensor([[1.0, 0.0, 0.0]]).repeat(6, 1)
    m = retrieval_metrics(constant, target)
    check(m, {
        'micro_precision': (2 * Fr(1, 3) + Fr(1, 6) + 3 * Fr(1, 2)) / 6, 'micro_recall': 1,
        'micro_f1': (2 * Fr(1, 2) + Fr(2, 7) + 3 * Fr(2, 3)) / 6,
        'micro_map': (2 * 1 + Fr(1, 3) + 3 * Fr(23, 60)) / 6,
        'macro_precision': (Fr(1, 3) + Fr(1, 6) + Fr(1, 2)) / 3, 'macro_recall': 1,
        'macro_f1': (Fr(1, 2) + Fr(2, 7) + Fr(2, 3)) / 3,
        'macro_map': (1 + Fr(1, 3) + Fr(23, 60)) / 3,
    })


def test_ranking_uses_the_probability_of_the_predicted_class():
    # one list of three, classes [a, b, a]; ranked by confidence the relevant
    # ones come first or last, which changes the AP but not P, R or F1.
    target = torch.tensor([0, 1, 0])
    first = retrieval_metrics(scores([0, 0, 0], [0.9, 0.5, 0.8], 3), target)
    last = retrieval_metrics(scores([0, 0, 0], [0.5, 0.9, 0.6], 3), target)
    assert first.micro_f1 == last.micro_f1
    # class 0 queries: AP (1 + 1) / 2 = 1 against (1/2 + 2/3) / 2 = 7/12;
    # the class 1 query: AP (1/3) / 1 against (1/1) / 1
    assert first.micro_map == pytest.approx(float((2 * 1 + Fr(1, 3)) / 3), abs=1e-12)
    assert last.micro_map == pytest.approx(float((2 * Fr(7, 12) + 1) / 3), abs=1e-12)


@pytest.mark.parametrize('prob,target,match', [
    (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), r"'prob' to be a float tensor \[N, C\]"),
    (torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, dtype=torch.long), "'prob' to be a float"),
    (torch.tensor([[float('nan'), 0.0]]), torch.zeros(1, dtype=torch.long), "'prob' to be finite"),
    (torch.zeros(3, 2), torch.zeros(3), r"'target' to be an integer tensor \[3\]"),
    (torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), r"'target' to be an integer tensor"),
    (torch.zeros(3, 2), torch.tensor([0, 1, 2]), r"'target' in \[0, 2\) \(got values in \[0, 2\]\)"),
])
def test_errors(prob, target, match):
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(prob, target)
    with pytest.raises(ValueError, match="'cutoff' to be >= 1"):
        retrieval_metrics(torch.ones(1, 2), torch.zeros(1, dtype=torch.long), cutoff=0)
