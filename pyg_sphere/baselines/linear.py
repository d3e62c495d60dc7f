r"""The classifier every baseline of pyg_sphere uses: multinomial logistic
regression on standardized summary features."""
from __future__ import annotations

import torch


class LinearClassifier:
    r"""Multinomial logistic regression with L2 penalty, fitted full-batch by
    L-BFGS on standardized features (deterministic: zero initialization).

    .. math::
        \min_{W, b}\; \frac{1}{N}\sum_i -\log \operatorname{softmax}(W f_i + b)_{y_i}
        + \lambda \lVert W \rVert^2

    Args:
        weight_decay (float, optional): :math:`\lambda`. (default: 1e-3)
        max_iter (int, optional): L-BFGS iterations. (default: 500)
    """
    def __init__(self, weight_decay: float = 1e-3, max_iter: int = 500) -> None:
        self.weight_decay = float(weight_decay)
        self.max_iter = int(max_iter)

    def fit(self, features: torch.Tensor, y: torch.Tensor) -> 'LinearClassifier':
        f = features.double()
        self.mean = f.mean(0)
        self.std = f.std(0).clamp_min(1e-12) if f.size(0) > 1 else torch.ones_like(self.mean)
        f = (f - self.mean) / self.std
        num_classes = int(y.max()) + 1
        self.weight = torch.zeros(num_classes, f.size(1), dtype=torch.float64,
                                  requires_grad=True)
        self.bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([self.weight, self.bias], max_iter=self.max_iter,
                                tolerance_grad=1e-9, tolerance_change=1e-12,
                                line_search_fn='strong_wolfe')

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(f @ self.weight.T + self.bias, y)
            loss = loss + self.weight_decay * self.weight.pow(2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return self

    @torch.no_grad()
    def decision_function(self, features: torch.Tensor) -> torch.Tensor:
        """Logits float64 [N, num_classes] of ``features`` [N, F]."""
        if not hasattr(self, 'weight'):
            raise ValueError("This LinearClassifier is not fitted yet: call fit() first")
        f = (features.double() - self.mean) / self.std
        return f @ self.weight.T + self.bias

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted classes, long [N]."""
        return self.decision_function(features).argmax(1)

    def score(self, features: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy in [0, 1]."""
        return float((self.predict(features) == y).double().mean())
