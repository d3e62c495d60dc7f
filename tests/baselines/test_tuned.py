"""Baselines tuned on validation and their combination
(pyg_sphere.baselines.tuned), on seeded synthetic features."""
import pytest
import torch

from pyg_sphere.baselines.tuned import combine, tune_linear


def synthetic(n, seed):
    """Two parts, each with one informative feature (independent signals of
    the class, separation 1 sigma each) and three noise features."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    signal = (2 * y - 1).double()[:, None] * 0.5
    a = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    a[:, :1] += signal
    b[:, 2:3] += signal
    return a, b, y


def test_combined_is_at_least_as_good_as_its_best_part():
    (a_tr, b_tr, y_tr), (a_va, b_va, y_va), (a_te, b_te, y_te) = (
        synthetic(2000, 0), synthetic(2000, 1), synthetic(4000, 2))
    parts = {'a': (a_tr, a_va, a_te), 'b': (b_tr, b_va, b_te)}
    single = {name: tune_linear({name: f}, y_tr, y_va, y_te) for name, f in parts.items()}
    both = tune_linear({'all': combine(parts)}, y_tr, y_va, y_te)
    best_part = max(r.test_accuracy for r in single.values())
    # one sigma of separation each: Phi(0.5) = 69 %; both: Phi(0.5 sqrt 2) = 76 %
    assert 0.66 < best_part < 0.72
    assert both.test_accuracy >= best_part + 0.04
    assert both.test_accuracy == pytest.approx(0.76, abs=0.02)


def test_the_option_with_the_best_validation_accuracy_is_kept():
    (a_tr, b_tr, y_tr), (a_va, b_va, y_va), (a_te, b_te, y_te) = (
        synthetic(1000, 3), synthetic(1000, 4), synthetic(1000, 5))
    noise = torch.randn(1000, 4, generator=torch.Generator().manual_seed(6),
                        dtype=torch.float64)
    options = {'noise': (noise, noise, noise), 'a': (a_tr, a_va, a_te)}
    tuned = tune_linear(options, y_tr, y_va, y_te, weight_decays=(1e-3, 1e-1))
    assert tuned.option == 'a' and tuned.weight_decay in (1e-3, 1e-1)
    assert tuned.val_accuracy > 0.6 and tuned.to_dict()['option'] == 'a'
    with pytest.raises(ValueError, match="'options'"):
        tune_linear({}, y_tr, y_va, y_te)
