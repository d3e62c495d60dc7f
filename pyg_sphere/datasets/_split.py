"""One rule to split N items into train / val / test."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._validation import check_int

#: The splits, in order.
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')


def check_fractions(fractions: Any, name: str = 'split_fractions') -> Tuple[float, float, float]:
    """Three finite numbers >= 0 summing to 1, with a positive train fraction."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        values = ()
    if (isinstance(fractions, (str, bytes)) or len(values) != 3
            or not all(math.isfinite(f) and f >= 0 for f in values)
            or abs(sum(values) - 1) > 1e-6 or values[0] <= 0):
        raise ValueError(f"Expected '{name}' to be 3 numbers (train, val, test) >= 0 summing "
                         f"to 1, with a positive train fraction (got {fractions!r})")
    return values


def split_counts(n: int, fractions: Sequence[float]) -> Tuple[int, int, int]:
    """``(n_train, n_val, n_test)``: ``round(n * fraction)`` items go to val
    and to test, the rest to train."""
    n = check_int('n', n, minimum=1)
    fr = check_fractions(fractions)
    n_val, n_test = round(n * fr[1]), round(n * fr[2])
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"Expected 'split_fractions' {list(fractions)} to leave at least one of "
                         f"the {n} items for training (got {n_train})")
    return n_train, n_val, n_test


def split_indices(n: int, fractions: Sequence[float],
                  seed: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
    """Indices ``range(n)`` split into :obj:`SPLITS` (sorted int64 arrays):
    a permutation drawn from ``numpy.random.default_rng(seed)``, or, with
    ``seed=None``, contiguous blocks in order (for time series, where
    neighbouring items are near copies)."""
    n_train, n_val, _ = split_counts(n, fractions)
    order = np.arange(n) if seed is None else np.random.default_rng(list(seed)).permutation(n)
    return {'train': np.sort(order[:n_train]),
            'val': np.sort(order[n_train:n_train + n_val]),
            'test': np.sort(order[n_train + n_val:])}
