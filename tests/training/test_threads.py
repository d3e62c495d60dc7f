"""The CPU thread policy of a training step (pyg_sphere.nn.coarse_threads)."""
import tempfile

import torch

from pyg_sphere.nn import DeepSphere, coarse_threads
from pyg_sphere.nn._threads import num_participants
from pyg_sphere.samplings import healpix
from pyg_sphere.training import TrainConfig, train_model


def _train(threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(1)
        X = torch.randn(48, 768, 2, generator=g)
        y = torch.randint(0, 3, (48,), generator=g)
        model = DeepSphere(healpix(8), 2, channels=(8, 16), out_channels=3, K=3)
        with tempfile.TemporaryDirectory() as d:
            train_model(model, (X[:32], y[:32]), (X[32:], y[32:]),
                        TrainConfig(epochs=1, batch_size=8), d, log=lambda *a: None,
                        progress=False, noise_std=0.1)
        return model.state_dict()
    finally:
        torch.set_num_threads(previous)


def test_training_does_not_depend_on_the_thread_count():
    one, two = _train(1), _train(2)
    assert one.keys() == two.keys()
    for key in one:
        assert torch.equal(one[key], two[key]), key


def test_coarse_threads_keeps_the_kernel_participants():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with coarse_threads():
            assert torch.get_num_threads() == 1  # PyTorch's own ops
            assert num_participants() == 2  # the kernels' blocks
            with coarse_threads():  # nested: still the outer setting
                assert num_participants() == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
