r"""Baselines tuned on the validation split: among several feature options
(e.g. bin counts, smoothing scales) and L2 penalties, the
:class:`~pyg_sphere.baselines.LinearClassifier` with the best validation
accuracy, refitted on nothing else and scored once on the test split."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Hashable, Sequence, Tuple

import torch

from .linear import LinearClassifier

#: L2 penalties tried by :func:`tune_linear`.
WEIGHT_DECAYS: Tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)

#: Features of one option: ``(train, val, test)``, each float [N, F].
Features = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclasses.dataclass
class TunedBaseline:
    """The chosen ``option`` and ``weight_decay``, its ``val_accuracy``, the
    ``test_accuracy``, and the fitted ``classifier``."""
    option: Any
    weight_decay: float
    val_accuracy: float
    test_accuracy: float
    classifier: LinearClassifier

    def to_dict(self) -> Dict[str, Any]:
        return {'option': self.option, 'weight_decay': self.weight_decay,
                'val_accuracy': self.val_accuracy, 'test_accuracy': self.test_accuracy}


def tune_linear(options: Dict[Hashable, Features], y_train: torch.Tensor,
                y_val: torch.Tensor, y_test: torch.Tensor,
                weight_decays: Sequence[float] = WEIGHT_DECAYS) -> TunedBaseline:
    """Fit a :class:`LinearClassifier` on the training features of every
    option and penalty, keep the best by validation accuracy (ties: the
    first, in the order given), and score it on the test features."""
    if not options:
        raise ValueError("Expected at least one feature option in 'options' (got none)")
    if not weight_decays:
        raise ValueError("Expected at least one value in 'weight_decays' (got none)")
    best = None
    for option, (f_train, f_val, _) in options.items():
        for wd in weight_decays:
            clf = LinearClassifier(wd).fit(f_train, y_train)
            acc = clf.score(f_val, y_val)
            if best is None or acc > best[0]:
                best = (acc, option, wd, clf)
    acc, option, wd, clf = best
    return TunedBaseline(option, float(wd), acc, clf.score(options[option][2], y_test), clf)


def combine(parts: Dict[str, Features]) -> Features:
    """The features of several baselines side by side (train, val, test)."""
    if not parts:
        raise ValueError("Expected at least one part in 'parts' (got none)")
    return tuple(torch.cat([p[i].float() for p in parts.values()], dim=1)  # type: ignore
                 for i in range(3))
