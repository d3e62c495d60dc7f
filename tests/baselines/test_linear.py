"""The linear classifier of every baseline (pyg_sphere.baselines.linear)."""
import pytest
import torch

from pyg_sphere.baselines import LinearClassifier


def test_linear_classifier_separates_and_fails_honestly():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(200, 3, generator=g)
    y = (f[:, 0] + 0.5 * f[:, 1] > 0).long()
    clf = LinearClassifier().fit(f[:100], y[:100])
    assert clf.score(f[100:], y[100:]) > 0.95
    noise_labels = torch.randint(0, 2, (200,), generator=g)
    chance = LinearClassifier().fit(f[:100], noise_labels[:100]).score(f[100:],
                                                                       noise_labels[100:])
    assert chance < 0.7


def test_decision_function_is_the_affine_map_of_standardized_features():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(90, 4, generator=g) * torch.tensor([1.0, 10.0, 0.1, 3.0]) + 5.0
    y = torch.arange(90) % 3
    clf = LinearClassifier(max_iter=50).fit(f, y)
    logits = clf.decision_function(f[:7])
    assert logits.shape == (7, 3) and logits.dtype == torch.float64
    # oracle: the logits from the fitted parameters, by hand
    z = (f[:7].double() - f.double().mean(0)) / f.double().std(0)
    expected = z @ clf.weight.detach().T + clf.bias.detach()
    assert torch.allclose(logits, expected, atol=1e-12, rtol=0)
    assert torch.equal(clf.predict(f[:7]), logits.argmax(1))
    assert clf.score(f[:7], y[:7]) == float((logits.argmax(1) == y[:7]).double().mean())
    assert not logits.requires_grad


def test_fit_is_deterministic_and_regularized():
    g = torch.Generator().manual_seed(2)
    f = torch.randn(60, 2, generator=g)
    y = (f[:, 0] > 0).long()  # separable: only the penalty keeps the weights finite
    a = LinearClassifier().fit(f, y)
    b = LinearClassifier().fit(f, y)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    strong = LinearClassifier(weight_decay=1.0).fit(f, y)
    assert strong.weight.norm() < a.weight.norm()
    # the penalty's optimum: gradient of loss + lambda |W|^2 vanishes
    z = (f.double() - a.mean) / a.std
    w = a.weight.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(z @ w.T + a.bias.detach(), y) \
        + a.weight_decay * w.pow(2).sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-6


def test_unfitted_classifier_says_so():
    with pytest.raises(ValueError, match=r'not fitted yet: call fit\(\) first'):
        LinearClassifier().decision_function(torch.zeros(2, 3))
    with pytest.raises(ValueError, match='not fitted yet'):
        LinearClassifier().predict(torch.zeros(2, 3))
