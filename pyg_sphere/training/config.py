"""Optimisation settings of a training run."""
from __future__ import annotations

from dataclasses import dataclass

from .._validation import check_int, check_positive_float


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: Adam with a per-step exponential decay of the
    learning rate, as in DeepSphere's experiments.

    Args:
        epochs (int): passes over the training set. (default: :obj:`10`)
        batch_size (int): samples per optimisation step, over all processes
            (the *global* batch of a distributed run). (default: :obj:`16`)
        lr (float): initial learning rate. (default: :obj:`1e-3`)
        lr_decay (float): factor applied to the learning rate after every
            step. (default: :obj:`0.999`)
        weight_decay (float): Adam's L2 penalty. (default: :obj:`0.0`)
        seed (int): seed of the weights, the batch order and the noise.
            (default: :obj:`0`)
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``. (default: ``'cpu'``)
    """
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    lr_decay: float = 0.999
    weight_decay: float = 0.0
    seed: int = 0
    device: str = 'cpu'

    def __post_init__(self) -> None:
        check_int('epochs', self.epochs, minimum=1)
        check_int('batch_size', self.batch_size, minimum=1)
        check_int('seed', self.seed, minimum=0)
        check_positive_float('lr', self.lr)
        check_positive_float('lr_decay', self.lr_decay)
        if not self.weight_decay >= 0:
            raise ValueError(f"Expected 'weight_decay' >= 0 (got {self.weight_decay})")
        if not isinstance(self.device, str) or not (
                self.device == 'cpu' or self.device.split(':')[0] == 'cuda'):
            raise ValueError(f"Expected 'device' to be 'cpu', 'cuda' or 'cuda:N' "
                             f"(got {self.device!r})")
